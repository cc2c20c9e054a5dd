"""The optimiser a run trains with and the forward it trains through (eager or torch.compile):
shared by the training loop and the training benchmark, so both compare like with like."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from transformer_lens import HookedTransformer

from mbc_interp.config import RunConfig


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why."""


# -- torch.compile ------------------------------------------------------------------------------
def check_compiler(device: torch.device) -> None:
    """Raise :class:`TrainingError` naming ``--compile`` unless torch.compile works on ``device``.

    A tiny function is compiled before anything is written, so a machine without a C++
    compiler (CPU) or Triton (CUDA) fails with a clear message instead of mid-run, deep in
    the first training step; its cost is mostly the compiler start-up the run pays anyway."""
    try:
        probe = torch.compile(lambda x: (x * 2).sin(), dynamic=False)
        probe(torch.ones(4, device=device))
    except Exception as e:  # torch raises many kinds (BackendCompilerFailed, RuntimeError...)
        detail = " ".join(str(e).split())[:300]
        raise TrainingError(
            f"train.compile (--compile): torch.compile does not work on {device} here "
            f"({type(e).__name__}: {detail}); train without --compile"
        ) from None


def training_forward(model: HookedTransformer, compile: bool) -> Callable[[Tensor], Tensor]:
    """The callable the training step runs ``model`` through: the model itself, or a
    torch.compile wrapper of it (the module is not replaced, so its ``state_dict`` keys, its
    checkpoints and every evaluation, which calls the module eagerly, stay as they are).
    Shapes never change during training, hence ``dynamic=False``."""
    return torch.compile(model, dynamic=False) if compile else model


# -- the optimiser ----------------------------------------------------------------------------
def make_optimizer(model: HookedTransformer, config: RunConfig) -> torch.optim.Optimizer:
    """The training loop's optimiser, AdamW or SGD by ``train.optimizer`` (also the benchmark's,
    so both compare like with like)."""
    tc = config.train
    params = list(model.parameters())
    if tc.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay, foreach=True
        )
    kwargs = {"lr": tc.lr, "betas": tc.betas, "eps": tc.eps, "weight_decay": tc.weight_decay}
    try:  # one fused kernel per step: ~1 ms saved at this size (CPU support needs torch >= 2.4)
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except RuntimeError:  # recorded in config.json ("optimizer"): the numerics differ slightly
        return torch.optim.AdamW(params, foreach=True, **kwargs)


def optimizer_record(optimizer: torch.optim.Optimizer) -> dict[str, str]:
    """Which AdamW implementation runs (``fused``, or the ``foreach`` fallback), for config.json."""
    fused = bool(optimizer.defaults.get("fused"))
    record = {"adamw": "fused" if fused else "foreach"}
    if not fused:
        record["note"] = "fused AdamW unavailable here (torch or device); foreach fallback"
    return record
