"""Is the transition collective? Per group of examples (the task's groups: the wind tunnel's
base string B and its K selectors; modular addition's answer c over the held-out pairs), whether
the group is solved at a checkpoint, and how spread out the groups' solve times are against the
plateau.

Rules (fixed before the sweeps that report them):

- **Solved group** at a checkpoint: every member is answered right (the wind tunnel: the
  selected candidate scores highest among B's K, the ``cand_acc`` criterion; modular addition:
  the argmax is c) *and* the group's mean loss (candidate-normalised; the answer's) is below
  :data:`SOLVED_FRAC` x the task's ``group_loss_scale`` (log K; log p), ``t_solved``'s
  threshold.
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

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mbc_interp.analysis.records import record
from mbc_interp.core.checks import check_field, is_int
from mbc_interp.tasks.protocol import HasGroups, require

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

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


def group_records(
    model: nn.Module, task: HasGroups, config: GroupsConfig = GroupsConfig()
) -> list[dict[str, Any]]:
    """Tidy rows (``analysis = "groups"``, ``component`` = the group's name) of each followed
    group's mean loss, whether every member is right, and the solved flag at this checkpoint,
    and the solved fraction; the groups and their scores come from the task
    (:class:`~mbc_interp.tasks.protocol.HasGroups`)."""
    import torch

    require(task, HasGroups, "analysis kind 'groups'")
    names, members = task.group_members(config.n_groups, config.seed)
    loss, right = task.member_scores(model, torch.cat(members))
    sizes = [len(m) for m in members]
    threshold = SOLVED_FRAC * task.group_loss_scale
    out: list[dict[str, Any]] = []
    n_solved = 0
    for name, lg, rg in zip(names, loss.split(sizes), right.split(sizes), strict=True):
        mean, all_right = float(lg.double().mean()), bool(rg.all())
        solved = all_right and mean < threshold
        n_solved += solved
        out += [_row(name, "group_cand_loss", mean),
                _row(name, "group_all_right", float(all_right)),
                _row(name, "group_solved", float(solved))]  # fmt: skip
    out.append(_row("all", "solved_fraction", n_solved / len(names)))
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


def summary_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``groups`` kind's entry of the run's summary: :func:`collective_summary` of the
    analysed checkpoints' solved flags (checkpoints missing a group's flag left out) against
    the summary's ``t_plateau_start`` and ``t_loss``."""
    rows = table[(table.analysis == "groups") & (table.metric == "group_solved")]
    if rows.empty:
        return None
    wide = rows.pivot_table(index="step", columns="component", values="value").sort_index()
    wide = wide.dropna(axis=0)
    return collective_summary(wide.index.to_numpy(float), wide.to_numpy() > 0.5,
                              summary["t_plateau_start"], summary["t_loss"])  # fmt: skip
