"""The model: a small TransformerLens ``HookedTransformer``.

Every TransformerLens construction in the package lives here, so that moving to its successor
(TransformerBridge, TL 4.x) is a one-file change. TL 3.x marks ``HookedTransformer`` deprecated;
that warning is silenced here, around construction only. The architecture itself is a plain
dataclass in :mod:`mbc_interp.model_config` (re-exported here), so configs and the command line
never import torch or TransformerLens; importing this module does.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from transformer_lens import HookedTransformer, HookedTransformerConfig
from transformer_lens.components import LayerNorm as _TLLayerNorm

try:  # TL 3.x's later releases; the earlier ones name it HookedTransformerKeyValueCache
    from transformer_lens.cache.key_value_cache import TransformerLensKeyValueCache as _KVCache
except ImportError:  # pragma: no cover  (the installed release decides)
    try:
        from transformer_lens.past_key_value_caching import (
            HookedTransformerKeyValueCache as _KVCache,
        )
    except ImportError:  # no key-value cache: shared_prefix_losses runs whole sequences
        _KVCache = None

from mbc_interp.model_config import (
    ACT_FNS,
    NORMALIZATIONS,
    POSITIONAL,
    ModelConfig,
    ModelConfigError,
    Normalization,
    PositionalEmbedding,
)

__all__ = [
    "ACT_FNS",
    "NORMALIZATIONS",
    "POSITIONAL",
    "FastLayerNorm",
    "ModelConfig",
    "ModelConfigError",
    "Normalization",
    "PositionalEmbedding",
    "build_model",
    "load_model_state",
    "model_state",
    "resolve_device",
    "shared_prefix_losses",
]

def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/``None`` picks CUDA when present, else CPU; anything else is taken as given."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_model(
    config: ModelConfig,
    d_vocab: int,
    n_ctx: int,
    *,
    seed: int | None = None,
    device: str | torch.device | None = "cpu",
) -> HookedTransformer:
    """A freshly initialised ``HookedTransformer`` (initialisation seeded by ``seed``)."""
    tl_cfg = HookedTransformerConfig(
        n_layers=config.n_layers,
        d_model=config.d_model,
        n_heads=config.n_heads,
        d_head=config.head_dim,
        d_mlp=config.d_mlp,
        attn_only=config.attn_only,
        act_fn=None if config.attn_only else config.act_fn,
        normalization_type=None if config.normalization == "none" else config.normalization,
        positional_embedding_type=config.positional_embedding,
        d_vocab=d_vocab,
        n_ctx=n_ctx,
        seed=seed,
        init_weights=True,
        default_prepend_bos=False,
        device=str(resolve_device(device)),
    )
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"HookedTransformer is deprecated", category=DeprecationWarning
        )
        model = HookedTransformer(tl_cfg)
    for module in model.modules():
        if type(module) is _TLLayerNorm:
            module.__class__ = FastLayerNorm
    return model


def _has_hooks(m: nn.Module) -> bool:
    return bool(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks)


class FastLayerNorm(_TLLayerNorm):
    """TransformerLens's LayerNorm, run as one fused ``F.layer_norm`` when nothing hooks it.

    TL computes LayerNorm in ~7 small ops plus two hook points; on CPU models this small that
    is most of the gap to a plain-PyTorch step (benchmarks/bench_train.py). Same parameters,
    same maths (to float rounding); whenever ``hook_scale`` or ``hook_normalized`` carries a hook
    (``run_with_cache``, ``run_with_hooks``), TL's own code runs so hooks see TL's values."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (
            self.cfg.dtype in (torch.float32, torch.float64)
            and not _has_hooks(self.hook_scale)
            and not _has_hooks(self.hook_normalized)
            and not (
                nn.modules.module._global_forward_hooks
                or nn.modules.module._global_forward_pre_hooks
                or nn.modules.module._global_backward_hooks
            )
        ):
            return F.layer_norm(x, (self.length,), self.w, self.b, self.eps)
        return super().forward(x)


def shared_prefix_losses(
    model: nn.Module,
    prompts: Int[Tensor, "n prompt"],
    continuations: Int[Tensor, "n k cont"],
) -> Float[Tensor, "n k cont"]:
    """Per-token loss (nats) of each of ``k`` continuations teacher-forced after its row's
    prompt: ``-log p(continuation[t] | prompt, continuation[:t])``.

    For a ``HookedTransformer`` each prompt runs once and its keys and values are shared,
    through a frozen key-value cache, by its ``k`` continuations (the candidates of an
    evaluation): the numbers of running the ``n k`` whole sequences, to float rounding, for
    about 40% of the work. Any other model (tokens to logits), and a hooked one (a hook must
    see positions as a whole-sequence run numbers them), runs the whole sequences."""
    n, k, t = continuations.shape
    device = next(model.parameters()).device
    prompts, continuations = prompts.to(device), continuations.to(device)
    flat = continuations.reshape(n * k, t)
    hooked = isinstance(model, HookedTransformer) and any(
        _has_hooks(h) for h in model.hook_dict.values()
    )
    if _KVCache is None or not isinstance(model, HookedTransformer) or hooked:
        seqs = torch.cat([prompts.repeat_interleave(k, 0), flat], -1)
        logits = model(seqs[:, :-1])[:, prompts.shape[1] - 1 :]
        return F.cross_entropy(logits.transpose(1, 2), flat, reduction="none").reshape(n, k, t)
    cache = _KVCache.init_cache(model.cfg, device, n)
    first = model(prompts, attention_mask=torch.ones_like(prompts), past_kv_cache=cache)[:, -1]
    losses = F.cross_entropy(first.repeat_interleave(k, 0), flat[:, 0], reduction="none")[:, None]
    if t > 1:
        for entry in cache.entries:
            entry.past_keys = entry.past_keys.repeat_interleave(k, 0)
            entry.past_values = entry.past_values.repeat_interleave(k, 0)
        cache.previous_attention_mask = cache.previous_attention_mask.repeat_interleave(k, 0)
        cache.freeze()
        rest = flat[:, :-1]
        logits = model(rest, attention_mask=torch.ones_like(rest), past_kv_cache=cache)
        later = F.cross_entropy(logits.transpose(1, 2), flat[:, 1:], reduction="none")
        losses = torch.cat([losses, later], -1)
    return losses.reshape(n, k, t)


def model_state(model: HookedTransformer) -> dict[str, torch.Tensor]:
    """The learned parameters as a flat, contiguous CPU tensor dict (what a checkpoint stores)."""
    return {name: p.detach().to("cpu").contiguous() for name, p in model.named_parameters()}


def load_model_state(model: HookedTransformer, state: dict[str, torch.Tensor]) -> None:
    """Load parameters saved by :func:`model_state`; raises ``KeyError`` naming what differs."""
    params = dict(model.named_parameters())
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    if missing or unexpected:
        raise KeyError(f"parameter names differ: missing {missing}, unexpected {unexpected}")
    with torch.no_grad():
        for name, p in params.items():
            if p.shape != state[name].shape:
                raise KeyError(f"{name}: shape {tuple(state[name].shape)} != {tuple(p.shape)}")
            p.copy_(state[name])
