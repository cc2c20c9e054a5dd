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

Rule added on 2026-12-08, before any run was read for it. A solve time (the group's loss below
0.05 of chance) is read in the drop's tail, where a group that crossed half-way with the others
can still take long to settle, so the solve-time spread measures how the groups finish as much
as when they escape. The escape is timed on the criterion of ``t_loss`` itself:

- **Half-way time** of a group: the first analysed checkpoint from which the group's mean loss
  (the same candidate-normalised loss) stays below :data:`HALFWAY` x the transition's scale
  (the summary's ``loss_scale``: log K; log p, the groups' ``group_loss_scale``) for
  :data:`HOLD` checkpoints: ``t_loss``'s criterion, per group, read at checkpoints.
- **Half-way score**: the 10-90% spread of the half-way times over ``t_loss -
  t_plateau_start``, judged by the same thresholds (*collective* below :data:`COLLECTIVE`,
  *staggered* at or above :data:`STAGGERED`; *undetermined* when fewer than 80% of the groups
  have a half-way time, or there is no plateau).
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
HALFWAY = 0.5
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
    steps: np.ndarray,
    solved: np.ndarray,
    t_plateau_start: float | None,
    t_loss: float | None,
    below_half: np.ndarray | None = None,
) -> dict[str, Any]:
    """The solved fraction at the plateau's middle, the collective score and its verdict (see
    the module docstring) from a checkpoints x groups matrix of solved flags; with
    ``below_half`` (the same matrix of the groups' loss below :data:`HALFWAY` x scale), the
    half-way score and its verdict too."""
    plateau = (None if t_plateau_start is None or t_loss is None or t_loss <= t_plateau_start
               else (t_plateau_start, t_loss))  # fmt: skip
    solved_at = solve_times(steps, solved)
    solve = _spread(solved_at, plateau)
    out: dict[str, Any] = {
        "n_groups": int(solved.shape[1]), "n_solved_groups": solve["n_timed"],
        "solve_time_p10": solve["p10"], "solve_time_p90": solve["p90"], "solved_at_half": None,
        "collective_score": solve["score"], "collective": solve["verdict"],
    }  # fmt: skip
    if below_half is not None:
        halfway_at = solve_times(steps, below_half)
        half = _spread(halfway_at, plateau)
        out.update({"n_halfway_groups": half["n_timed"], "halfway_time_p10": half["p10"],
                    "halfway_time_p90": half["p90"], "halfway_score": half["score"],
                    "halfway": half["verdict"]})  # fmt: skip
        # each group's two times, in one order (None: never), for the report to draw
        out["group_times"] = {"halfway": _listed(halfway_at), "solved": _listed(solved_at)}
    if plateau is not None:
        middle = plateau[0] + 0.5 * (plateau[1] - plateau[0])
        out["solved_at_half"] = float(solved[int(np.argmin(np.abs(steps - middle)))].mean())
    return out


def _listed(times: np.ndarray) -> list[float | None]:
    return [float(t) if np.isfinite(t) else None for t in times]


def _spread(times: np.ndarray, plateau: tuple[float, float] | None) -> dict[str, Any]:
    """The 10th and 90th percentiles of the groups' times, their spread over the plateau's
    length and its verdict (undetermined without a plateau or with under 80% timed)."""
    timed = np.isfinite(times)
    out: dict[str, Any] = {"n_timed": int(timed.sum()), "p10": None, "p90": None,
                           "score": None, "verdict": "undetermined"}  # fmt: skip
    if timed.any():
        out["p10"], out["p90"] = (float(v) for v in np.quantile(times[timed], [0.1, 0.9]))
    if plateau is None or timed.mean() < MIN_TIMED:
        return out
    score = (out["p90"] - out["p10"]) / (plateau[1] - plateau[0])
    out["score"] = float(score)
    out["verdict"] = ("collective" if score < COLLECTIVE
                      else "staggered" if score >= STAGGERED else "intermediate")  # fmt: skip
    return out


def summary_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``groups`` kind's entry of the run's summary: :func:`collective_summary` of the
    analysed checkpoints' solved flags and of their group losses below :data:`HALFWAY` x the
    summary's ``loss_scale`` (checkpoints missing a group's value left out) against the
    summary's ``t_plateau_start`` and ``t_loss``."""
    groups = table[table.analysis == "groups"]
    solved = _wide(groups, "group_solved")
    if solved.empty:
        return None
    loss = _wide(groups, "group_cand_loss").reindex(index=solved.index, columns=solved.columns)
    scale = summary.get("loss_scale")
    below = None if scale is None else (loss < HALFWAY * scale).to_numpy()
    return collective_summary(solved.index.to_numpy(float), solved.to_numpy() > 0.5,
                              summary["t_plateau_start"], summary["t_loss"], below)  # fmt: skip


def _wide(groups: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Checkpoints x groups of one of the kind's per-group metrics, complete checkpoints only."""
    rows = groups[groups.metric == metric]
    if rows.empty:
        return rows
    wide = rows.pivot_table(index="step", columns="component", values="value").sort_index()
    return wide.dropna(axis=0)
