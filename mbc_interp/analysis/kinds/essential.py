"""``essential``: essential dynamics, the outputs on a probe set projected at each checkpoint;
the summary's PCA across checkpoints and where the trajectory turns
(:mod:`mbc_interp.analysis.dynamics.essential`)."""

from __future__ import annotations

from mbc_interp.analysis.dynamics.essential import EssentialConfig
from mbc_interp.analysis.registry import ExtraKind

KIND = ExtraKind(
    name="essential",
    run="mbc_interp.analysis.kind_runs:essential",
    settings=EssentialConfig,
    cost=lambda s, c: float(min(s.n_examples, c.n_examples)),
    summary="mbc_interp.analysis.timing.extra_summary:essential_entry",
    report="mbc_interp.viz.kinds:essential_section",
    title="Essential dynamics",
    help="outputs on a probe set, projected; PCA across checkpoints and the turn",
    order=90,
    summary_order=35,
)
