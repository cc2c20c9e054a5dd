"""Per-head z-use: the part of each head's output at the answer position that changes with z.

For clean/corrupt pairs (same B, another selector whose target starts with another token,
:meth:`~mbc_interp.tasks.protocol.HasPatchingPairs.patching_pairs`), each head's **direct
z-effect** is its direct logit attribution to ``logit[clean answer] - logit[corrupt answer]`` in the
clean run minus the same in the corrupt run: its output at the answer position, through the final
norm (each run's own cached scale) and ``W_U[:, clean] - W_U[:, corrupt]``. Summed with the non-head
components it equals the model's clean - corrupt logit-difference gap exactly, so it is the head's
direct share of the model's z-dependence.

Unlike attention to z, it is zero for a head that attends to z but writes nothing that depends
on z, or writes it in a direction the unembedding does not read; unlike the normalised patching
effect it is defined on the plateau (small, with its standard error over the pairs as its noise
floor). The head's **total** effect, through later layers too, is its raw patching effect
(``head_out_all_pos``, :mod:`mbc_interp.analysis.patching`), also with a standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from mbc_interp.analysis.attribution import final_norm_linear, head_outputs
from mbc_interp.analysis.heads import head_records
from mbc_interp.tasks.pairs import PatchingPairs


@dataclass(frozen=True)
class HeadZUse:
    """Per-head direct z-effect, mean and standard error over pairs, ``[n_layers, n_heads]``."""

    direct: Float[Tensor, "layer head"]
    direct_se: Float[Tensor, "layer head"]
    gap: float
    """The model's clean - corrupt logit-difference gap (mean over pairs)."""
    n_pairs: int

    def to_records(self) -> list[dict]:
        return head_records({"zuse_direct": self.direct, "zuse_direct_se": self.direct_se})


def _head_dla(
    model: HookedTransformer, tokens: Tensor, pos: int, direction: Tensor
) -> tuple[Float[Tensor, "layer head batch"], Float[Tensor, "batch d_vocab"]]:
    """Each head's direct logit attribution along ``direction`` at ``pos``, and the logits
    there."""
    n_layers = model.cfg.n_layers
    names = {f"blocks.{l}.attn.hook_z" for l in range(n_layers)} | {"ln_final.hook_scale"}
    logits, cache = model.run_with_cache(tokens, names_filter=lambda n: n in names)
    scale = cache["ln_final.hook_scale"][:, pos] if "ln_final.hook_scale" in cache else None
    dla = (final_norm_linear(model, head_outputs(model, cache, pos), scale) * direction).sum(-1)
    return dla, logits[:, pos]


def head_z_use(
    model: HookedTransformer, pairs: PatchingPairs, *, batch_size: int = 1024
) -> HeadZUse:
    """Direct z-effect of every head on ``pairs`` (see the module docstring)."""
    device = model.cfg.device
    pos = pairs.answer_pos
    w_u = model.W_U.T  # [d_vocab, d_model]
    diffs, gaps = [], []
    with torch.no_grad():
        for rows in torch.arange(len(pairs)).split(batch_size):
            chunk = pairs.subset(rows)
            clean_ans = chunk.clean_answer.to(device)
            corrupt_ans = chunk.corrupt_answer.to(device)
            direction = w_u[clean_ans] - w_u[corrupt_ans]
            clean_tokens = chunk.clean_tokens.to(device)
            clean_dla, clean_logits = _head_dla(model, clean_tokens, pos, direction)
            corrupt_dla, corrupt_logits = _head_dla(
                model, chunk.corrupt_tokens.to(device), pos, direction
            )
            diffs.append((clean_dla - corrupt_dla).double().cpu())

            def ld(logits: Tensor, c=clean_ans, w=corrupt_ans) -> Tensor:
                return logits.gather(-1, c[:, None]).squeeze(-1) - logits.gather(
                    -1, w[:, None]
                ).squeeze(-1)

            gaps.append((ld(clean_logits) - ld(corrupt_logits)).double().cpu())
    d = torch.cat(diffs, -1)  # [layer, head, pair]
    n = d.shape[-1]
    se = d.std(-1, unbiased=True) / math.sqrt(n) if n > 1 else torch.full(d.shape[:2], math.nan)
    return HeadZUse(
        direct=d.mean(-1).float(),
        direct_se=se.float(),
        gap=float(torch.cat(gaps).mean()),
        n_pairs=n,
    )
