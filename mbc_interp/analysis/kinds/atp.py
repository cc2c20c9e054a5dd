"""``atp``: attribution patching, linear estimates of every head and residual patch on the
exact patching's pairs (:mod:`mbc_interp.analysis.atp`)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from mbc_interp.analysis.registry import CostContext, ExtraKind
from mbc_interp.core.checks import check_field, is_int
from mbc_interp.tasks.protocol import HasPatchingPairs


@dataclass(frozen=True)
class AtpConfig:
    """Pairs of attribution patching (the exact patching's defaults)."""

    n_pairs: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="atp")

        need(is_int(self.n_pairs) and self.n_pairs >= 1, "n_pairs", "must be an int >= 1")
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")


ATP_PASSES = 2.5
"""Forward passes of a pair's prompt that attribution patching costs: the corrupt run keeping
the activations' graph (its last MLP and unembedding on the answer position only) and the
backward to the activations only, no weight gradients (about 1.8 together); the clean run
without a graph, from the first position where the pairs' prompts differ up to the last site
(about half a forward on the presets' pairs, which first differ at the selector; up to about
one where they differ from the start); and the pairs and rows around them. Measured by
``benchmarks/bench_analysis.py``: 2.25 on the paper preset's model, 2.47 on the default one,
where the fixed costs weigh more."""


def cost(s: AtpConfig, c: CostContext) -> float:
    """:data:`ATP_PASSES` forwards of each pair's prompt."""
    return ATP_PASSES * c.prompt_frac * min(s.n_pairs, c.n_examples)


KIND = ExtraKind(
    name="atp",
    run="mbc_interp.analysis.kind_runs:atp",
    settings=AtpConfig,
    cost=cost,
    needs=(HasPatchingPairs,),
    summary="mbc_interp.analysis.timing.extra_summary:atp_entry",
    report="mbc_interp.viz.kinds:atp_section",
    title="Attribution patching",
    help="linear estimates of every head and residual patch (~2.5 forward passes)",
    order=70,
)
