"""``ablation_z``: the ablation engine with z resampled within B, each ablated head seeing another
selector of the same B: necessity and sufficiency of the use of z alone, the reading of B kept
(:mod:`mbc_interp.analysis.ablation`, ``z_resample``)."""

from __future__ import annotations

from dataclasses import dataclass

from mbc_interp.analysis.ablation import AblationConfig
from mbc_interp.analysis.kinds.ablation import cost
from mbc_interp.analysis.registry import ExtraKind
from mbc_interp.tasks.protocol import HasSelector


@dataclass(frozen=True)
class ZAblationConfig(AblationConfig):
    """:class:`AblationConfig` whose method is ``z_resample``."""

    methods: tuple[str, ...] = ("z_resample",)


KIND = ExtraKind(
    name="ablation_z",
    run="mbc_interp.analysis.kind_runs:ablation_z",
    settings=ZAblationConfig,
    cost=cost,
    needs=(HasSelector,),
    summary="mbc_interp.analysis.timing.extra_summary:ablation_z_entry",
    report="mbc_interp.viz.kinds:ablation_z_section",
    title="Ablation of z alone",
    help="every head, the head set and its complement seeing another selector of the same B",
    order=55,
)
