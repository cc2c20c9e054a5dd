"""Head attribution to the selector: where each head looks, and what it writes to the answer.

Per head ``L{l}H{h}`` this measures, at the answer position (the SEP where the first target
token is predicted):

- attention to the selector ``z`` (summed over its tokens), to the base string (summed over its
  positions) and to the answer position itself (the rest goes to BOS, an earlier SEP or filler);
- attention to ``z`` averaged over all prediction positions (relevant when ``target_len > 1``);
- ``attn_prev``: attention to the previous position, averaged over every position before the
  answer position. Where z sits right before the answer position, attention to z is attention
  to the previous position; a head with high ``attn_prev`` is a generic previous-token head,
  and its attention to z says nothing about routing (compare a layout with ``selector_gap``);
- direct logit attribution (DLA): the head's output, passed linearly through the final norm
  (centred for LayerNorm, divided by the cached ``ln_final.hook_scale``, times ``ln_final.w``)
  and projected on ``W_U[:, correct] - mean(W_U[:, other K-1 candidates])``.

The non-head components (embeddings, attention biases, MLPs, the norm/unembedding biases) get
the same treatment, so the components sum exactly to the model's logit difference; a circuit's
DLA is the sum over its heads (:meth:`HeadAttribution.circuit_dla`).

Attention alone is not evidence of routing (attention sinks park mass on uninformative tokens);
combine it with a causal measure such as :mod:`mbc_interp.analysis.patching`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens import ActivationCache, HookedTransformer
from transformer_lens.components import LayerNorm, LayerNormPre

from mbc_interp.analysis.heads import head_labels, head_records
from mbc_interp.tasks.protocol import HasSelector

HEAD_METRICS: tuple[str, ...] = (
    "attn_to_z",
    "attn_to_z_pred",
    "attn_to_base",
    "attn_to_sep",
    "attn_prev",
    "dla",
)


@dataclass(frozen=True)
class HeadAttribution:
    """Per-head attention and DLA means over the examples; tensors are ``[n_layers, n_heads]``."""

    attn_to_z: Float[Tensor, "layer head"]
    """Attention from the answer position (SEP) to the selector."""
    attn_to_z_pred: Float[Tensor, "layer head"]
    """Attention to the selector, averaged over all prediction positions."""
    attn_to_base: Float[Tensor, "layer head"]
    """Attention from the answer position to the base string, summed over its positions."""
    attn_to_sep: Float[Tensor, "layer head"]
    """Attention from the answer position to itself (SEP)."""
    attn_prev: Float[Tensor, "layer head"]
    """Attention to the previous position, averaged over the positions before the answer."""
    dla: Float[Tensor, "layer head"]
    """Direct logit attribution to ``correct - mean(other candidates)`` at the answer position."""
    other_dla: Float[Tensor, " component"]
    """DLA of the non-head components, named by ``other_labels``."""
    other_labels: tuple[str, ...]
    logit_diff: float
    """The model's mean ``correct - mean(other candidates)`` logit difference at the answer."""
    n_examples: int

    @property
    def head_labels(self) -> list[str]:
        return head_labels(*self.dla.shape)

    def circuit_dla(self, heads: Sequence[str]) -> float:
        """Summed DLA of the named heads (``"L1H2"``...): the circuit's direct contribution."""
        index = {label: i for i, label in enumerate(self.head_labels)}
        flat = self.dla.flatten()
        return float(sum(flat[index[h]] for h in heads))

    def total_dla(self) -> float:
        """Sum over every component; equals :attr:`logit_diff` up to float error."""
        return float(self.dla.sum() + self.other_dla.sum())

    def to_records(self) -> list[dict]:
        """One row per (component, metric); non-head components carry only ``"dla"``."""
        rows = head_records({m: getattr(self, m) for m in HEAD_METRICS})
        for label, value in zip(self.other_labels, self.other_dla.tolist(), strict=True):
            layer = int(label.split(".")[0][1:]) if label.startswith("L") else None
            rows.append(
                {"component": label, "layer": layer, "head": None, "metric": "dla", "value": value}
            )
        return rows

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.to_records()).astype(
            {"layer": "Int64", "head": "Int64"}
        )


def head_outputs(
    model: HookedTransformer, cache: ActivationCache, pos: int
) -> Float[Tensor, "layer head batch d_model"]:
    """Each head's output (``hook_z`` through ``W_O``) written to the residual at ``pos``."""
    return torch.stack(
        [
            torch.einsum("bhd,hdm->hbm", cache[f"blocks.{l}.attn.hook_z"][:, pos], model.W_O[l])
            for l in range(model.cfg.n_layers)
        ]
    )


def final_norm_linear(
    model: HookedTransformer,
    stack: Float[Tensor, "... batch d_model"],
    scale: Float[Tensor, "batch 1"] | None,
) -> Float[Tensor, "... batch d_model"]:
    """The final norm applied linearly to residual components, with the scale frozen at ``scale``.

    Centring (LayerNorm), division by the cached scale and the weight ``w`` are linear, so the
    images of the components sum to ``ln_final(resid) - b``. No-op without a final norm."""
    if not hasattr(model, "ln_final"):
        return stack
    norm = model.ln_final
    if isinstance(norm, (LayerNorm, LayerNormPre)):
        stack = stack - stack.mean(-1, keepdim=True)
    stack = stack / scale
    return stack * norm.w if hasattr(norm, "w") else stack


def head_attribution(
    model: HookedTransformer,
    task: HasSelector,
    examples: Int[Tensor, " n"] | None = None,
    *,
    batch_size: int = 1024,
) -> HeadAttribution:
    """Attention to z/B/SEP and DLA per head, averaged over ``examples`` (rows of ``task.tokens``,
    default all), processed ``batch_size`` rows at a time."""
    if task.K < 2:
        raise ValueError(f"task.K = {task.K}: DLA contrasts the correct target with K-1 others")
    rows = torch.arange(len(task)) if examples is None else torch.as_tensor(examples)
    sep, z, preds = task.answer_pos, list(task.selector_positions), list(task.prediction_positions)
    base = list(task.base_positions)
    before = torch.arange(1, sep)  # positions with a previous one, before the answer position
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    other_labels = _other_labels(model)
    names = _needed_hooks(model)

    sums = torch.zeros(6, n_layers, n_heads, dtype=torch.float64)
    other_sum = torch.zeros(len(other_labels), dtype=torch.float64)
    logit_diff_sum = 0.0
    device = model.cfg.device
    with torch.no_grad():
        for chunk in rows.split(batch_size):
            tokens = task.tokens[chunk].to(device)
            logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
            pattern = torch.stack([cache[f"blocks.{l}.attn.hook_pattern"] for l in range(n_layers)])
            # pattern: [layer, batch, head, dest, src]
            at_sep = pattern[:, :, :, sep]
            sums[0] += at_sep[..., z].sum(-1).sum(1).double().cpu()
            sums[1] += pattern[:, :, :, preds][..., z].sum(-1).mean(-1).sum(1).double().cpu()
            sums[2] += at_sep[..., base].sum(-1).sum(1).double().cpu()
            sums[3] += at_sep[..., sep].sum(1).double().cpu()
            prev = pattern[:, :, :, before, before - 1]  # [layer, batch, head, pos]
            sums[5] += prev.mean(-1).sum(1).double().cpu()

            cands = task.candidate_first(chunk).to(device)
            correct = task.tokens[chunk, sep + 1].to(device)
            direction = _logit_direction(model, correct, cands)  # [batch, d_model]
            scale = cache["ln_final.hook_scale"][:, sep] if "ln_final.hook_scale" in names else None
            head_dla = (final_norm_linear(model, head_outputs(model, cache, sep), scale)
                        * direction).sum(-1)  # fmt: skip
            sums[4] += head_dla.sum(-1).double().cpu()
            others = _other_components(model, cache, sep, tokens.shape[0])
            other_dla = (final_norm_linear(model, others, scale) * direction).sum(-1)
            other_dla[-1] += _bias_dla(model, direction, correct, cands)
            other_sum += other_dla.sum(-1).double().cpu()

            logit_diff_sum += float(_candidate_diff(logits[:, sep], correct, cands).sum())

    n = len(rows)
    means = (sums / n).float()
    return HeadAttribution(
        attn_to_z=means[0],
        attn_to_z_pred=means[1],
        attn_to_base=means[2],
        attn_to_sep=means[3],
        attn_prev=means[5],
        dla=means[4],
        other_dla=(other_sum / n).float(),
        other_labels=other_labels,
        logit_diff=logit_diff_sum / n,
        n_examples=n,
    )


def _candidate_diff(
    values: Float[Tensor, "batch d_vocab"],
    correct: Int[Tensor, " batch"],
    candidates: Int[Tensor, "batch K"],
) -> Float[Tensor, " batch"]:
    """``values[correct] - mean(values[other candidates])`` (works on logits or W_U columns)."""
    k = candidates.shape[1]
    cand_sum = values.gather(-1, candidates).sum(-1)
    right = values.gather(-1, correct[:, None]).squeeze(-1)
    return right - (cand_sum - right) / (k - 1)


def _logit_direction(
    model: HookedTransformer, correct: Int[Tensor, " batch"], candidates: Int[Tensor, "batch K"]
) -> Float[Tensor, "batch d_model"]:
    """Unembedding direction ``W_U[:, correct] - mean(W_U[:, other K-1 candidates])``."""
    w_u = model.W_U.T  # [d_vocab, d_model]
    right = w_u[correct]
    return right - (w_u[candidates].sum(1) - right) / (candidates.shape[1] - 1)


def _bias_dla(
    model: HookedTransformer,
    direction: Float[Tensor, "batch d_model"],
    correct: Int[Tensor, " batch"],
    candidates: Int[Tensor, "batch K"],
) -> Float[Tensor, " batch"]:
    """Contribution of ``ln_final.b`` and ``b_U``: input-independent, but answer-dependent."""
    b_u = model.b_U[None].expand(direction.shape[0], -1)
    out = _candidate_diff(b_u, correct, candidates)
    norm = getattr(model, "ln_final", None)
    if norm is not None and hasattr(norm, "b"):
        out = out + direction @ norm.b
    return out


def _needed_hooks(model: HookedTransformer) -> set[str]:
    names = {"hook_embed"}
    if model.cfg.positional_embedding_type == "standard":
        names.add("hook_pos_embed")
    for l in range(model.cfg.n_layers):
        names |= {f"blocks.{l}.attn.hook_pattern", f"blocks.{l}.attn.hook_z"}
        if not model.cfg.attn_only:
            names.add(f"blocks.{l}.hook_mlp_out")
    if hasattr(model, "ln_final"):
        names.add("ln_final.hook_scale")
    return names


def _other_labels(model: HookedTransformer) -> tuple[str, ...]:
    labels = ["embed"]
    if model.cfg.positional_embedding_type == "standard":
        labels.append("pos_embed")
    for l in range(model.cfg.n_layers):
        labels.append(f"L{l}.attn_bias")
        if not model.cfg.attn_only:
            labels.append(f"L{l}.mlp")
    labels.append("bias")
    return tuple(labels)


def _other_components(
    model: HookedTransformer, cache: ActivationCache, pos: int, batch: int
) -> Float[Tensor, "component batch d_model"]:
    """Residual contributions at ``pos`` of everything but the heads, in ``_other_labels`` order;
    the final ``bias`` row is zero here (the norm bias is added after the norm)."""
    rows = [cache["hook_embed"][:, pos]]
    if model.cfg.positional_embedding_type == "standard":
        rows.append(cache["hook_pos_embed"][:, pos].expand(batch, -1))
    for l in range(model.cfg.n_layers):
        rows.append(model.b_O[l].expand(batch, -1))
        if not model.cfg.attn_only:
            rows.append(cache[f"blocks.{l}.hook_mlp_out"][:, pos])
    rows.append(torch.zeros_like(rows[0]))
    return torch.stack(rows)
