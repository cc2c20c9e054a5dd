"""Local learning coefficient (LLC) of a checkpoint by localised SGLD (Lau et al. 2023).

Chains start at the checkpoint's weights w* and follow

    w <- w - (eps/2) (nbeta grad L_m(w) + gamma (w - w*)) + N(0, eps)

with L_m the mean per-example loss (nats per example, as in training: the cross-entropy of
:func:`mbc_interp.tasks.losses.target_losses` summed over the target positions) on a fresh seeded
minibatch each step. After ``burn_in`` steps, the minibatch losses of the next ``draws`` steps
estimate E_w[L]; the estimate is

    LLC = nbeta (E_w[L] - L_n(w*)),

with L_n(w*) the exact loss over the examples. For a regular minimum in d dimensions it is d/2.

Why not ``devinterp`` (v2.0.1, checked): it runs on CPU with a HookedTransformer, but (1) its
loss hook is ``loss_fn(model, input_ids)`` per token, so a per-example loss mask must be
re-derived from the tokens and the per-example sum rescaled from its per-token mean; (2) its LLC
averages the loss over every step including burn-in; (3) each call writes a zarr store
(xarray + zarr 3 as new dependencies) and prints a progress bar per chain. The estimator is
twenty lines, so it lives here, tested against known answers (tests/analysis/test_llc.py).
Defaults come from ``examples/calibrate_llc.py`` on the default run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mbc_interp.analysis.extra_settings import LLCConfig
from mbc_interp.tasks.losses import target_losses


@dataclass(frozen=True)
class LLCResult:
    """The estimate, its spread over chains, and the loss traces behind it."""

    llc: float
    llc_std: float
    """Standard deviation of the per-chain estimates."""
    init_loss: float
    trace: Float[np.ndarray, "chains steps"]
    """Minibatch loss at every SGLD step (burn-in included)."""
    burn_in: int
    nbeta: float

    @property
    def per_chain(self) -> Float[np.ndarray, " chains"]:
        return self.nbeta * (self.trace[:, self.burn_in :].mean(1) - self.init_loss)

    def health(self) -> dict[str, float]:
        """Calibration checks on the draws, averaged over chains and over ten equal blocks (so
        minibatch noise does not count): ``drift`` (last block minus first, in units of the
        mean excess loss; ~0 once settled), ``below_init_frac`` (blocks under the initial loss;
        0 at a local minimum), ``spike`` (largest block excess over the mean excess; ~1)."""
        draws = self.trace[:, self.burn_in :].mean(0)
        n_blocks = min(10, len(draws))
        blocks = np.array([b.mean() for b in np.array_split(draws, n_blocks)])
        excess = draws.mean() - self.init_loss
        scale = abs(excess) if excess != 0 else 1.0
        return {
            "drift": float((blocks[-1] - blocks[0]) / scale),
            "below_init_frac": float((blocks < self.init_loss).mean()),
            "spike": float((blocks.max() - self.init_loss) / scale),
        }

    def to_records(self) -> list[dict[str, Any]]:
        """Timeline rows (analysis ``"llc"``): ``llc``, ``llc_std``, ``llc_init_loss``."""
        base = {"analysis": "llc", "kind": "", "component": "all", "layer": None, "head": None,
                "pos": None, "position": ""}  # fmt: skip
        values = {"llc": self.llc, "llc_std": self.llc_std, "llc_init_loss": self.init_loss}
        return [{**base, "metric": k, "value": float(v)} for k, v in values.items()]


def sgld_llc(
    params: list[Tensor],
    batch_loss: Callable[[Int[Tensor, " b"]], Tensor],
    n: int,
    init_loss: float,
    config: LLCConfig = LLCConfig(),
    masks: list[Tensor] | None = None,
) -> LLCResult:
    """Localised SGLD around the current ``params`` (restored afterwards). ``batch_loss(rows)``
    is the mean loss over the given example rows at the current parameter values; ``masks``
    (one per parameter, 0/1) restrict the chain to the entries marked 1, the others frozen at
    their values (the LLC of that subset of the weights)."""
    start = [p.detach().clone() for p in params]
    steps = config.burn_in + config.draws
    trace = np.empty((config.chains, steps))
    eps, nbeta, gamma = config.step_size, config.nbeta, config.localization
    try:
        for chain in range(config.chains):
            gen = torch.Generator().manual_seed(config.seed * 1_000_003 + chain)
            with torch.no_grad():
                for p, w0 in zip(params, start, strict=True):
                    p.copy_(w0)
            for step in range(steps):
                rows = torch.randint(n, (min(config.batch_size, n),), generator=gen)
                loss = batch_loss(rows)
                grads = torch.autograd.grad(loss, params)
                trace[chain, step] = float(loss.detach())
                with torch.no_grad():
                    for i, (p, g, w0) in enumerate(zip(params, grads, start, strict=True)):
                        drift = nbeta * g + gamma * (p - w0)
                        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
                        move = -0.5 * eps * drift + math.sqrt(eps) * noise.to(p.device)
                        p.add_(move if masks is None else move * masks[i])
    finally:
        with torch.no_grad():
            for p, w0 in zip(params, start, strict=True):
                p.copy_(w0)
    per_chain = nbeta * (trace[:, config.burn_in :].mean(1) - init_loss)
    return LLCResult(
        llc=float(per_chain.mean()),
        llc_std=float(per_chain.std()),
        init_loss=float(init_loss),
        trace=trace,
        burn_in=config.burn_in,
        nbeta=nbeta,
    )


def training_tokens(task: Any) -> Int[Tensor, "n seq"]:
    """The rows the model was trained on (all of them where the task has no held-out split):
    the LLC is a property of the training loss, so held-out rows never enter it."""
    rows = getattr(task, "train_rows", None)
    return task.tokens if rows is None else task.tokens[rows]


def estimate_llc(model: nn.Module, task: Any, config: LLCConfig = LLCConfig()) -> LLCResult:
    """The LLC of ``model`` on the task's training loss (its training rows). ``task`` needs
    ``tokens`` and ``answer_pos``; the model itself is left untouched (chains run on a copy)."""
    work = copy.deepcopy(model)
    device = next(work.parameters()).device
    tokens, a = training_tokens(task).to(device), task.answer_pos
    params = [p for p in work.parameters() if p.requires_grad]

    def batch_loss(rows: Tensor) -> Tensor:
        return target_losses(work, tokens[rows.to(device)], a).sum(-1).mean()

    with torch.no_grad():
        init = sum(float(target_losses(work, t, a).sum()) for t in tokens.split(2048))
    return sgld_llc(params, batch_loss, len(tokens), init / len(tokens), config)


def timeline_rows(
    model: nn.Module, task: Any, settings: LLCConfig, optimizer_state: object = None
) -> list[dict[str, Any]]:
    """The ``llc`` kind at one checkpoint (see :mod:`mbc_interp.analysis.registry`); the
    optimizer state is not used."""
    return estimate_llc(model, task, settings).to_records()
