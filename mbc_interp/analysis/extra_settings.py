"""Settings of the built-in extra kinds (``gradients``, ``llc``), as plain data.

Apart from the modules that compute them (:mod:`mbc_interp.analysis.dynamics.gradients`,
:mod:`mbc_interp.analysis.dynamics.llc`, which import torch) so that the analysis registry, the
command line and sweep files can build and validate them without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import ClassVar

from mbc_interp.core.checks import check_field


@dataclass(frozen=True)
class GradientConfig:
    """Sample sizes and switches for
    :func:`~mbc_interp.analysis.dynamics.gradients.gradient_diagnostics`."""

    sample_size: int = 512
    """Examples (whole B-groups, at most this many) for the per-example gradients."""
    seed: int = 0
    """Seed of the example sample and the full-batch subsample."""
    full_batch_cap: int | None = 4096
    """|G| over all examples up to this many, else over a seeded subsample of this size."""
    chunk_size: int = 128
    """Examples per vmap call (memory: chunk x parameters floats)."""
    adam_quantiles: tuple[float, ...] = (0.1, 0.5, 0.9, 0.99)
    """Quantiles of |m_hat| / (sqrt(v_hat) + eps) reported from an Adam state."""
    hessian: bool = False
    """Lanczos on Hessian-vector products for the extreme eigenvalues (slower)."""
    lanczos_iters: int = 30
    hessian_examples: int = 1024
    """Examples in the loss whose Hessian is probed (seeded subsample)."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="gradients")

        need(self.sample_size >= 2, "sample_size", "must be >= 2")
        need(self.seed >= 0, "seed", "must be >= 0")
        need(self.full_batch_cap is None or self.full_batch_cap >= 1, "full_batch_cap", ">= 1")
        need(self.chunk_size >= 1, "chunk_size", "must be >= 1")
        need(all(0 <= q <= 1 for q in self.adam_quantiles), "adam_quantiles", "each in [0, 1]")
        need(self.lanczos_iters >= 2, "lanczos_iters", "must be >= 2")
        need(self.hessian_examples >= 1, "hessian_examples", "must be >= 1")


@dataclass(frozen=True)
class LLCConfig:
    """SGLD settings (defaults from examples/calibrate_llc.py on the default run)."""

    step_size: float = 1e-3
    """eps: SGLD step size (1e-4 had not settled on the plateau within 150 steps)."""
    nbeta: float = 100.0
    """n x inverse temperature, multiplying the mean per-example loss."""
    localization: float = 100.0
    """gamma: pull towards the checkpoint's weights."""
    chains: int = 2
    draws: int = 100
    burn_in: int = 50
    batch_size: int = 256
    seed: int = 0
    kind: ClassVar[str] = "llc"
    """The analysis kind these settings belong to: the section its errors name."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section=self.kind)

        for name in ("step_size", "nbeta"):
            value = getattr(self, name)
            need(math.isfinite(value) and value > 0, name, "must be a finite number > 0")
        need(self.localization >= 0, "localization", "must be >= 0")
        for name in ("chains", "draws", "batch_size"):
            need(getattr(self, name) >= 1, name, "must be >= 1")
        need(self.burn_in >= 0, "burn_in", "must be >= 0")
        need(self.seed >= 0, "seed", "must be >= 0")


@dataclass(frozen=True)
class LLCHeadsConfig(LLCConfig):
    """The ``llc`` kind's SGLD settings, plus the heads whose weights alone the chains move
    (:mod:`mbc_interp.analysis.dynamics.llc_heads`): the routing heads and a control head."""

    heads: tuple[str, ...] = ()
    kind: ClassVar[str] = "llc_heads"

    def __post_init__(self) -> None:
        super().__post_init__()
        need = partial(check_field, obj=self, section=self.kind)

        example = "--kind-setting 'llc_heads.heads=[\"L0H0\", \"L1H3\"]'"  # fmt: skip
        need(bool(self.heads), "heads", "give the heads, e.g. the routing heads of summary.json "
             f"and a control head: {example}")  # fmt: skip
