"""``ablation``: mean and resample ablation of every head, and the necessity and sufficiency of
a head set (:mod:`mbc_interp.analysis.ablation`)."""

from __future__ import annotations

from mbc_interp.analysis.ablation import AblationConfig
from mbc_interp.analysis.registry import CostContext, ExtraKind


def cost(s: AblationConfig, c: CostContext) -> float:
    """Per row: the clean run with its cache, then per method every head alone, the head set
    and its complement (``z_resample``: and the run with another selector it takes from)."""
    passes = 1 + len(s.methods) * (c.heads + 2) + s.methods.count("z_resample")
    return float(min(s.n_examples, c.n_examples) * passes)


KIND = ExtraKind(
    name="ablation",
    run="mbc_interp.analysis.kind_runs:ablation",
    settings=AblationConfig,
    cost=cost,
    summary="mbc_interp.analysis.timing.extra_summary:ablation_entry",
    report="mbc_interp.viz.kinds:ablation_section",
    title="Ablation",
    help="mean/resample ablation per head; necessity and sufficiency of a head set",
    order=50,
)
