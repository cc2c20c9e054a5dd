"""Logit lens: what the residual stream already predicts after the embedding and each block.

Each layer's accumulated residual (``blocks.0.hook_resid_pre``, then ``blocks.{l}.hook_resid_post``)
goes through ``model.ln_final`` and the unembedding. The final norm is *recomputed* on each
layer's residual (its own centring and scale), unlike TL's ``cache.accumulated_resid(
apply_ln=True)``, which divides every layer by the final layer's cached scale: an early residual
has a different norm, and reading it with the last layer's scale would distort its logits. The
last entry is then exactly the model's own output.

Per layer this gives the training loss (nats per example, summed over the target positions),
the probability mass on the K candidate first targets of the example's B at the answer position
(marginal knowledge: "one of these K") and the probability of the correct one (conditional
knowledge: "this one, given z").
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import HookedTransformer

from mbc_interp.tasks.losses import log_prob_losses
from mbc_interp.tasks.protocol import HasSelector

LENS_METRICS: tuple[str, ...] = ("loss", "candidate_mass", "correct_prob")


@dataclass(frozen=True)
class LogitLens:
    """Means over the examples; index 0 is the embedding, index ``l + 1`` is after block ``l``."""

    layer_labels: tuple[str, ...]
    """``"embed"``, ``"L0"``, ``"L1"``...: the residual after that stage."""
    loss: Float[Tensor, " stage"]
    """Loss in nats per example, summed over the target positions (the training loss)."""
    loss_by_position: Float[Tensor, "stage pred_pos"]
    """The loss split by prediction position; rows sum to ``loss``."""
    candidate_mass: Float[Tensor, " stage"]
    """Probability on the K candidate first targets at the answer position."""
    correct_prob: Float[Tensor, " stage"]
    """Probability on the correct first target at the answer position."""
    prediction_positions: tuple[int, ...]
    n_examples: int

    def to_records(self) -> list[dict]:
        """One row per (stage, metric); ``layer`` is -1 for the embedding."""
        rows = []
        for i, label in enumerate(self.layer_labels):
            for metric in LENS_METRICS:
                rows.append(
                    {
                        "component": label,
                        "layer": i - 1,
                        "metric": metric,
                        "value": float(getattr(self, metric)[i]),
                    }
                )
        return rows

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.to_records())


def residual_logits(
    model: HookedTransformer, resid: Float[Tensor, "batch pos d_model"]
) -> Float[Tensor, "batch pos d_vocab"]:
    """Logits read off a residual stream: the final norm recomputed on it, then the unembedding
    (and TL's output soft-cap when the model has one), as the model's own final step does."""
    if hasattr(model, "ln_final"):
        resid = model.ln_final(resid)
    logits = model.unembed(resid)
    cap = model.cfg.output_logits_soft_cap
    return cap * torch.tanh(logits / cap) if cap > 0 else logits


def logit_lens(
    model: HookedTransformer,
    task: HasSelector,
    examples: Int[Tensor, " n"] | None = None,
    *,
    batch_size: int = 1024,
) -> LogitLens:
    """Loss, candidate mass and correct-answer probability per layer, over ``examples`` (rows of
    ``task.tokens``, default all), ``batch_size`` rows per forward pass."""
    rows = torch.arange(len(task)) if examples is None else torch.as_tensor(examples)
    n_layers = model.cfg.n_layers
    names = ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(n_layers)]
    preds = list(task.prediction_positions)
    sep = task.answer_pos
    device = model.cfg.device

    loss_pos = torch.zeros(n_layers + 1, len(preds), dtype=torch.float64)
    mass = torch.zeros(n_layers + 1, dtype=torch.float64)
    correct_p = torch.zeros(n_layers + 1, dtype=torch.float64)
    with torch.no_grad():
        for chunk in rows.split(batch_size):
            tokens = task.tokens[chunk].to(device)
            _, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
            cands = task.candidate_first(chunk).to(device)
            correct = tokens[:, sep + 1]
            for i, name in enumerate(names):
                log_probs = residual_logits(model, cache[name]).log_softmax(-1)
                loss_pos[i] += log_prob_losses(log_probs, tokens, sep).double().sum(0).cpu()
                answer = log_probs[:, sep].exp()
                in_cands = torch.zeros_like(answer).scatter_(-1, cands, 1.0)  # each token once
                mass[i] += float((answer * in_cands).sum(-1).double().sum())
                correct_p[i] += float(answer.gather(-1, correct[:, None]).double().sum())

    n = len(rows)
    return LogitLens(
        layer_labels=("embed", *(f"L{l}" for l in range(n_layers))),
        loss=(loss_pos.sum(-1) / n).float(),
        loss_by_position=(loss_pos / n).float(),
        candidate_mass=(mass / n).float(),
        correct_prob=(correct_p / n).float(),
        prediction_positions=tuple(preds),
        n_examples=n,
    )
