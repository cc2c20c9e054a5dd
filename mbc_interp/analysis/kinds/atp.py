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


ATP_PASSES = 3.2
"""Forward passes of a pair's prompt that attribution patching costs: the clean run with its
cache (about 1), the corrupt run keeping the activations' graph and the backward to the
activations only, no weight gradients (about 2 together), and the pairs and rows around them.
Measured by ``benchmarks/bench_analysis.py``: 3.0 on the paper preset's model, 3.35 on the
default one, where the fixed costs weigh more."""


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
    help="linear estimates of every head and residual patch (~3 forward passes)",
    order=70,
)
