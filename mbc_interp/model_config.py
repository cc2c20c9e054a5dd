"""The model's architecture as a plain dataclass, importable without torch or TransformerLens.

Configs, flags and the command line need it long before (or without) a model being built; the
builder that turns it into a ``HookedTransformer`` is :func:`mbc_interp.model.build_model`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Literal

from mbc_interp.core.checks import check_field

Normalization = Literal["LN", "LNPre", "RMS", "RMSPre", "none"]
PositionalEmbedding = Literal["standard", "rotary", "shortformer"]
NORMALIZATIONS: tuple[str, ...] = ("LN", "LNPre", "RMS", "RMSPre", "none")
POSITIONAL: tuple[str, ...] = ("standard", "rotary", "shortformer")
ACT_FNS: tuple[str, ...] = ("gelu", "relu", "silu", "gelu_new", "solu_ln")


class ModelConfigError(ValueError):
    """A model parameter is out of range; the message names the field and the limit."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the transformer; vocabulary and context come from the task."""

    n_layers: int = 2
    """Transformer blocks."""
    d_model: int = 64
    """Width of the residual stream."""
    n_heads: int = 4
    """Attention heads per layer."""
    d_head: int | None = None
    """Per-head width; ``None`` means ``d_model // n_heads``."""
    d_mlp: int | None = 256
    """MLP width; ``None`` makes the model attention-only."""
    act_fn: str = "gelu"
    """MLP activation (TransformerLens name: gelu, relu, silu, gelu_new, solu_ln)."""
    normalization: Normalization = "LN"
    """TransformerLens ``normalization_type``: LayerNorm (``LN``), ``LNPre`` (without learned
    scale and bias), RMSNorm (``RMS``, ``RMSPre``) or ``none``."""
    positional_embedding: PositionalEmbedding = "standard"
    """Learned absolute positions (``standard``), ``rotary`` or ``shortformer``."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="model", error=ModelConfigError)

        for name in ("n_layers", "d_model", "n_heads"):
            value = getattr(self, name)
            need(isinstance(value, int) and value >= 1, name, "must be an int >= 1")
        if self.d_head is None:
            need(
                self.d_model % self.n_heads == 0,
                "d_model",
                f"must be divisible by n_heads = {self.n_heads} when d_head is not set",
            )
        else:
            need(isinstance(self.d_head, int) and self.d_head >= 1, "d_head", "must be >= 1")
        if self.d_mlp is not None:
            need(isinstance(self.d_mlp, int) and self.d_mlp >= 1, "d_mlp", "must be >= 1 or null")
        need(self.act_fn in ACT_FNS, "act_fn", f"must be one of {ACT_FNS}")
        need(self.normalization in NORMALIZATIONS, "normalization", f"one of {NORMALIZATIONS}")
        need(
            self.positional_embedding in POSITIONAL, "positional_embedding", f"one of {POSITIONAL}"
        )
        if self.positional_embedding == "rotary":
            need(self.head_dim % 2 == 0, "d_head", "must be even for rotary embeddings")

    @property
    def head_dim(self) -> int:
        return self.d_head if self.d_head is not None else self.d_model // self.n_heads

    @property
    def attn_only(self) -> bool:
        return self.d_mlp is None

    def to_dict(self) -> dict:
        return asdict(self)
