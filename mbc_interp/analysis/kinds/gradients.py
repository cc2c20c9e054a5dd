"""``gradients``: gradient noise at each checkpoint (|G|, noise scale, coherence, the group
ratio, Adam statistics), from :mod:`mbc_interp.analysis.dynamics.gradients`."""

from __future__ import annotations

from mbc_interp.analysis.extra_settings import GradientConfig
from mbc_interp.analysis.registry import CostContext, ExtraKind


def cost(s: GradientConfig, c: CostContext) -> float:
    """Full-batch gradient over the examples, at most ``full_batch_cap`` (forward and backward,
    with per-sample overhead: 3 per example) and the per-example gradients of the sample (5 per
    example)."""
    n = c.n_examples
    full = n if s.full_batch_cap is None else min(n, s.full_batch_cap)
    return 3.0 * full + 5 * min(s.sample_size, n)


KIND = ExtraKind(
    name="gradients",
    run="mbc_interp.analysis.dynamics.gradients:timeline_rows",
    settings=GradientConfig,
    cost=cost,
    needs_optimizer_state=True,
    report="mbc_interp.viz.noise:gradient_section",
    title="Gradient noise",
    help="|G|, noise scale, coherence, group ratio, Adam statistics",
    order=10,
)
