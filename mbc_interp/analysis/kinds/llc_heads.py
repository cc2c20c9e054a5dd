"""``llc_heads``: the local learning coefficient restricted to given heads' weights
(:mod:`mbc_interp.analysis.dynamics.llc_heads`)."""

from __future__ import annotations

from mbc_interp.analysis.extra_settings import LLCHeadsConfig
from mbc_interp.analysis.kinds import llc
from mbc_interp.analysis.registry import CostContext, ExtraKind


def cost(s: LLCHeadsConfig, c: CostContext) -> float:
    """The whole model's LLC estimate (:func:`mbc_interp.analysis.kinds.llc.cost`) per head."""
    return len(s.heads) * llc.cost(s, c)


KIND = ExtraKind(
    name="llc_heads",
    run="mbc_interp.analysis.kind_runs:llc_heads",
    settings=LLCHeadsConfig,
    cost=cost,
    report="mbc_interp.viz.kinds:llc_heads_section",
    title="LLC per head",
    help="the LLC restricted to given heads' weights (settings: heads)",
    order=80,
)
