"""The example loss of every task: cross-entropy on the positions from ``answer_pos`` on.

Written once here and used by training, evaluation and the analyses that differentiate the
loss (gradients, LLC), so all of them measure the same quantity on any task of the protocol.
"""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor


def target_losses(
    model: Callable[[Tensor], Tensor], tokens: Int[Tensor, "batch seq"], answer_pos: int
) -> Float[Tensor, "batch n_target"]:
    """Per-example, per-target-position loss in nats (predictions from ``answer_pos`` on):
    the example loss, once for training, evaluation and the gradient and LLC analyses.

    ``model`` maps tokens to logits: the model, or under ``torch.func`` (``vmap`` of ``grad``)
    a ``functional_call`` of it on the parameters being differentiated."""
    logits = model(tokens[:, :-1])[:, answer_pos:]
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, answer_pos + 1 :], reduction="none")
