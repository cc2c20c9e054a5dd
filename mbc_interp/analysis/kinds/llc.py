"""``llc``: the local learning coefficient at each checkpoint, by localised SGLD
(:mod:`mbc_interp.analysis.dynamics.llc`)."""

from __future__ import annotations

from mbc_interp.analysis.extra_settings import LLCConfig
from mbc_interp.analysis.registry import CostContext, ExtraKind


def cost(s: LLCConfig, c: CostContext) -> float:
    """4 forward equivalents per example of every SGLD minibatch (burn-in included)."""
    return 4.0 * s.chains * (s.draws + s.burn_in) * min(s.batch_size, c.n_examples)


KIND = ExtraKind(
    name="llc",
    run="mbc_interp.analysis.dynamics.llc:timeline_rows",
    settings=LLCConfig,
    cost=cost,
    report="mbc_interp.viz.noise:llc_section",
    title="Local learning coefficient",
    help="local learning coefficient by SGLD, ~10 s per checkpoint",
    order=20,
)
