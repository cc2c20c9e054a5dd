"""The exact reference predictors of the wind tunnel (the marginal that ignores z) and the
per-example loss they and models are scored with."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mbc_interp.tasks.losses import log_prob_losses

if TYPE_CHECKING:
    from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask


def marginal_log_probs(task: WindTunnelTask) -> Float[Tensor, "n seq d_vocab"]:
    """Log-probabilities of the exact predictor of the next token from every input token but the
    selector: backward the marginal P(next | B, target prefix), forward P(next | A, base
    prefix), which is deterministic (A names one B). Only rows at ``loss_mask`` positions are
    meaningful."""
    c = task.config
    tokens = task.tokens.numpy()
    out = np.full((len(task), c.seq_len, c.d_vocab), -np.inf)
    skip = set(task.layout.positions("selector"))
    for p in task.prediction_positions:
        ctx = tokens[:, [q for q in range(p + 1) if q not in skip]]
        _, group = np.unique(ctx, axis=0, return_inverse=True)
        group = group.reshape(-1)
        counts = np.zeros((group.max() + 1, c.d_vocab))
        np.add.at(counts, (group, tokens[:, p + 1]), 1.0)
        with np.errstate(divide="ignore"):
            out[:, p] = np.log((counts / counts.sum(axis=1, keepdims=True))[group])
    return torch.from_numpy(out)


def sequence_nll(
    log_probs: Float[Tensor, "n pos d_vocab"],
    tokens: Int[Tensor, "n seq"],
    loss_mask: Bool[Tensor, "n seq"],
) -> Float[Tensor, " n"]:
    """Per-example loss in nats, summed over the positions ``loss_mask`` marks (those whose
    next token carries the loss): :func:`~mbc_interp.tasks.losses.log_prob_losses` at every
    position, the others (where a reference predictor may give -inf) left out.

    ``log_probs[:, p]`` predicts ``tokens[:, p + 1]``; it may cover ``seq`` or ``seq - 1``
    positions."""
    losses = log_prob_losses(log_probs, tokens, 0)
    mask = loss_mask[:, : losses.shape[1]]
    return torch.where(mask, losses, torch.zeros((), dtype=losses.dtype)).sum(-1)
