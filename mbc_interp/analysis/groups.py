"""Is the transition collective? Per group of examples (the wind tunnel's base string B and its
K selectors), whether the group is solved at a checkpoint, and how spread out the groups'
solve times are against the plateau.

Rules (fixed before the sweeps that report them):

- **Solved group** at a checkpoint: every member's candidate answer is right (the selected
  candidate scores highest among B's K, the ``cand_acc`` criterion) *and* the group's mean
  candidate-normalised loss is below :data:`SOLVED_FRAC` x log K (``t_solved``'s threshold).
- **Solve time** of a group: the first analysed checkpoint from which it stays solved for
  :data:`HOLD` checkpoints (no interpolation: solved is a yes/no).
- **Solved fraction** over training: the share of the sampled groups solved at each checkpoint;
  ``solved_at_half`` is it at the checkpoint nearest the plateau's middle
  (``t_plateau_start + 0.5 (t_loss - t_plateau_start)``; the paper reports none there).
- **Collective score**: the 10-90% spread of the groups' solve times divided by the plateau's
  duration ``t_loss - t_plateau_start``. The transition is *collective* when the score is below
  :data:`COLLECTIVE`, *staggered* when it is at or above :data:`STAGGERED`, *intermediate* in
  between; *undetermined* when fewer than 80% of the groups have a solve time, or there is no
  plateau.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mbc_interp.analysis.records import record
from mbc_interp.core.checks import check_field, is_int

if TYPE_CHECKING:
    from torch import nn

    from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask

SOLVED_FRAC = 0.05
HOLD = 2
COLLECTIVE = 0.25
STAGGERED = 0.5
MIN_TIMED = 0.8


@dataclass(frozen=True)
class GroupsConfig:
    """How many groups are followed (a seeded sample, the same at every checkpoint)."""

    n_groups: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="groups")

        need(is_int(self.n_groups) and self.n_groups >= 1, "n_groups", "must be an int >= 1")
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")


def sample_groups(task: WindTunnelTask, config: GroupsConfig) -> np.ndarray:
    """The indices of the followed groups (sorted; all of them when there are fewer)."""
    n = len(task) // task.K
    rng = np.random.default_rng([config.seed, 7])
    return np.sort(rng.permutation(n)[: min(n, config.n_groups)])


def group_records(
    model: nn.Module, task: WindTunnelTask, config: GroupsConfig = GroupsConfig()
) -> list[dict[str, Any]]:
    """Tidy rows (``analysis = "groups"``, ``component = "B<index>"``) of each followed group's
    candidate loss, accuracy and solved flag at this checkpoint, and the solved fraction."""
    import torch

    from mbc_interp.tasks.wind_tunnel.evaluation import candidate_scores

    groups = sample_groups(task, config)
    k = task.K
    rows = torch.as_tensor((groups[:, None] * k + np.arange(k)[None, :]).reshape(-1))
    k_true = task.selector_index[rows]
    with torch.inference_mode():
        if task.first_token_distinct:
            from mbc_interp.tasks.wind_tunnel.evaluation import answer_log_probs

            scores = answer_log_probs(model, task.tokens[rows], task.answer_pos)
            scores = scores.gather(-1, task.candidate_first(rows))
        else:
            scores = candidate_scores(model, task, rows, task.tokens[rows])
    loss = -scores.log_softmax(-1).gather(-1, k_true[:, None]).squeeze(-1)
    right = scores.argmax(-1) == k_true
    loss_g = loss.reshape(len(groups), k).mean(-1)
    right_g = right.reshape(len(groups), k).all(-1)
    solved = right_g & (loss_g < SOLVED_FRAC * math.log(k))
    out: list[dict[str, Any]] = []
    for g, lg, rg, sg in zip(groups, loss_g.tolist(), right_g.tolist(), solved.tolist(),
                             strict=True):  # fmt: skip
        name = f"B{int(g)}"
        out += [_row(name, "group_cand_loss", lg), _row(name, "group_all_right", float(rg)),
                _row(name, "group_solved", float(sg))]  # fmt: skip
    out.append(_row("all", "solved_fraction", float(solved.double().mean())))
    return out


def _row(component: str, metric: str, value: float) -> dict[str, Any]:
    return record("groups", metric, value, component=component)


def solve_times(steps: np.ndarray, solved: np.ndarray, hold: int = HOLD) -> np.ndarray:
    """Per group (columns of ``solved``, checkpoints in rows), the first step from which it
    stays solved for ``hold`` checkpoints; NaN when it never does."""
    out = np.full(solved.shape[1], np.nan)
    for j in range(solved.shape[1]):
        col = solved[:, j].astype(bool)
        for i in range(len(col) - hold + 1):
            if col[i : i + hold].all():
                out[j] = steps[i]
                break
    return out


def collective_summary(
    steps: np.ndarray, solved: np.ndarray, t_plateau_start: float | None, t_loss: float | None
) -> dict[str, Any]:
    """The solved fraction at the plateau's middle, the collective score and its verdict (see
    the module docstring) from a checkpoints x groups matrix of solved flags."""
    times = solve_times(steps, solved)
    timed = np.isfinite(times)
    out: dict[str, Any] = {
        "n_groups": int(solved.shape[1]), "n_solved_groups": int(timed.sum()),
        "solve_time_p10": None, "solve_time_p90": None, "solved_at_half": None,
        "collective_score": None, "collective": "undetermined",
    }  # fmt: skip
    if timed.any():
        out["solve_time_p10"], out["solve_time_p90"] = (
            float(v) for v in np.quantile(times[timed], [0.1, 0.9])
        )  # fmt: skip
    if t_plateau_start is None or t_loss is None or t_loss <= t_plateau_start:
        return out
    half = t_plateau_start + 0.5 * (t_loss - t_plateau_start)
    out["solved_at_half"] = float(solved[int(np.argmin(np.abs(steps - half)))].mean())
    if timed.mean() < MIN_TIMED:
        return out
    score = (out["solve_time_p90"] - out["solve_time_p10"]) / (t_loss - t_plateau_start)
    out["collective_score"] = float(score)
    out["collective"] = ("collective" if score < COLLECTIVE
                         else "staggered" if score >= STAGGERED else "intermediate")  # fmt: skip
    return out
