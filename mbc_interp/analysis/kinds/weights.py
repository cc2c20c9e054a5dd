"""``weights``: norms per parameter group and head, OV/QK effective ranks and a sketch of the
parameters for the cosines of successive updates (:mod:`mbc_interp.analysis.dynamics.weights`)."""

from __future__ import annotations

from mbc_interp.analysis.registry import ExtraKind, NoSettings

KIND = ExtraKind(
    name="weights",
    run="mbc_interp.analysis.kind_runs:weights",
    settings=NoSettings,
    cost=lambda s, c: 1.0,
    summary="mbc_interp.analysis.timing.extra_summary:weights_entry",
    report="mbc_interp.viz.kinds:weights_section",
    title="Weights",
    help="norms per group and head, OV/QK effective rank",
    order=40,
    summary_order=75,
)
