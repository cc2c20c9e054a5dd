"""``probes``: per layer, held-out linear probes of the task's labels at the answer position
(:mod:`mbc_interp.analysis.probes`)."""

from __future__ import annotations

from mbc_interp.analysis.probes import ProbeConfig
from mbc_interp.analysis.registry import ExtraKind
from mbc_interp.tasks.protocol import HasProbeTargets

KIND = ExtraKind(
    name="probes",
    run="mbc_interp.analysis.kind_runs:probes",
    settings=ProbeConfig,
    cost=lambda s, c: float(min(s.n_examples, c.n_examples)),
    needs=(HasProbeTargets,),
    report="mbc_interp.viz.kinds:probes_section",
    title="Linear probes",
    help="per layer, held-out probes of the task's labels (z, first token; a, b, c)",
    order=60,
)
