"""``groups``: per group of examples (the task's), solved or not at each checkpoint, and how
collective the solving is (:mod:`mbc_interp.analysis.groups`)."""

from __future__ import annotations

from mbc_interp.analysis.groups import GroupsConfig
from mbc_interp.analysis.registry import CostContext, ExtraKind
from mbc_interp.tasks.protocol import HasGroups


def cost(s: GroupsConfig, c: CostContext) -> float:
    """Every member of each followed group, its candidates scored (a task without candidates:
    at most every example, once)."""
    if c.k == 1:
        return float(c.n_examples)
    return float(min(s.n_groups, c.n_examples // c.k) * c.k * c.candidate_passes)


KIND = ExtraKind(
    name="groups",
    run="mbc_interp.analysis.kind_runs:groups",
    settings=GroupsConfig,
    cost=cost,
    needs=(HasGroups,),
    summary="mbc_interp.analysis.groups:summary_entry",
    report="mbc_interp.viz.kinds:groups_section",
    title="Groups solved over training",
    help="per group (the task's: a B; an answer c): solved (all members right, loss < 0.05 of "
    "its chance level)",
    order=30,
)
