"""The example loss of every task: cross-entropy on the positions from ``answer_pos`` on.

Written once here and used by training, evaluation and the analyses that read or differentiate
the loss (gradients, LLC, the logit lens, a task's per-row scores), so all of them measure the
same quantity on any task of the protocol. Three entry points, one per input: a model
(:func:`target_losses`), the logits it gave at the answer positions (:func:`logit_losses`, where
the caller also needs the logits) and log-probabilities of any predictor (:func:`log_prob_losses`:
a reference predictor, a residual stream read through the unembedding).
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


def logit_losses(
    logits: Float[Tensor, "batch n_target d_vocab"], targets: Int[Tensor, "batch n_target"]
) -> Float[Tensor, "batch n_target"]:
    """Per-example, per-target loss in nats from the logits that predict each target."""
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


def target_losses(
    model: Callable[[Tensor], Tensor], tokens: Int[Tensor, "batch seq"], answer_pos: int
) -> Float[Tensor, "batch n_target"]:
    """Per-example, per-target-position loss in nats (predictions from ``answer_pos`` on):
    the example loss, once for training, evaluation and the gradient and LLC analyses.

    ``model`` maps tokens to logits: the model, or under ``torch.func`` (``vmap`` of ``grad``)
    a ``functional_call`` of it on the parameters being differentiated."""
    logits = model(tokens[:, :-1])[:, answer_pos:]
    return logit_losses(logits, tokens[:, answer_pos + 1 :])


def log_prob_losses(
    log_probs: Float[Tensor, "batch pos d_vocab"], tokens: Int[Tensor, "batch seq"],
    answer_pos: int,
) -> Float[Tensor, "batch n_target"]:  # fmt: skip
    """The same loss from log-probabilities: ``log_probs[:, p]`` predicts ``tokens[:, p + 1]``
    and may cover ``seq`` or ``seq - 1`` positions (the last predicts nothing)."""
    n_pred = tokens.shape[1] - 1
    picked = log_probs[:, answer_pos:n_pred].gather(-1, tokens[:, answer_pos + 1 :, None])
    return -picked.squeeze(-1)
