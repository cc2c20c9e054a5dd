"""Attribution patching: the linear estimate of every activation-patching effect at once.

For the clean/corrupt pairs of :mod:`mbc_interp.analysis.patching` (same direction: clean
activation written into the corrupt run; same metric: the logit difference at the answer
position, raw, in logits), the effect of patching site ``a`` is estimated to first order as
``(a_clean - a_corrupt) . d metric / d a`` at the corrupt run (Nanda 2023; Syed et al. 2023):
one clean forward, one corrupt forward and one backward for every site; the backward is taken
with respect to the activations only (the weights frozen), so it costs about one forward.
Sites: each head's output at every position together (``head_out_all_pos``, the sum over
positions of its ``hook_z`` term) and the residual stream before each layer at each position
(``resid_pre``). Each estimate is the mean over pairs with its standard error. Where exact
patching ran on the same pairs, :func:`rank_agreement` gives the Spearman correlation between
the two. Needs a task with clean/corrupt pairs
(:class:`~mbc_interp.tasks.protocol.HasPatchingPairs`).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from mbc_interp.analysis.records import record
from mbc_interp.tasks.protocol import HasPatchingPairs, require

if TYPE_CHECKING:
    from mbc_interp.tasks.pairs import PatchingPairs


def atp_records(
    model: Any, task: HasPatchingPairs, pairs: PatchingPairs | None = None, *,
    n_pairs: int = 256, seed: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Tidy rows (``analysis = "atp"``, ``kind`` the site kind, metric ``atp_raw`` and
    ``atp_raw_se``) of the estimates above.

    Each run does only the work its sites and the metric need (``benchmarks/bench_analysis.py``
    holds the whole to 3 forward passes of the prompts):

    - the corrupt run narrows the stream to the answer position after the last attention (the
      one position whose output reaches the metric), so the last MLP, the final LayerNorm and
      the unembedding, and their backward, run on one position; the other positions'
      gradients there are exactly zero either way;
    - the clean run, without a graph, starts at the first position where any pair's prompts
      differ: under causal attention every activation before it is the same in both runs, so
      it takes those positions' keys and values from the corrupt run (and their estimates are
      exactly zero); it stops at the last site, the last layer's ``hook_z``."""
    import torch
    from transformer_lens import TransformerLensKeyValueCache, TransformerLensKeyValueCacheEntry

    from mbc_interp.analysis.patching import logit_diff

    require(task, HasPatchingPairs, "analysis kind 'atp'")
    if pairs is None:
        pairs = task.patching_pairs(min(n_pairs, len(task)), seed)
    n_layers, device = model.cfg.n_layers, model.cfg.device
    clean_tokens, corrupt_tokens = pairs.clean_tokens.to(device), pairs.corrupt_tokens.to(device)
    n, n_pos = clean_tokens.shape
    differs = (clean_tokens != corrupt_tokens).any(0).nonzero().flatten().tolist()
    shared = min(differs[0] if differs else n_pos, n_pos - 1)  # the clean run's first position
    if model.cfg.attention_dir != "causal":
        shared = 0
    z_names = [f"blocks.{l}.attn.hook_z" for l in range(n_layers)]
    r_names = [f"blocks.{l}.hook_resid_pre" for l in range(n_layers)]
    kv_names = [f"blocks.{l}.attn.hook_{kv}" for l in range(n_layers) for kv in "kv"]
    mid = hasattr(model.blocks[-1], "hook_resid_mid")  # none without an MLP or beside one
    narrow = f"blocks.{n_layers - 1}.hook_resid_{'mid' if mid else 'post'}"
    clean: dict[str, torch.Tensor] = {}
    corrupt: dict[str, torch.Tensor] = {}
    prefix: dict[str, torch.Tensor] = {}

    class _LastSite(Exception):
        """Ends the clean run: nothing after the last site is needed."""

    def site(act: torch.Tensor, hook) -> torch.Tensor:
        if not torch.is_grad_enabled():  # the clean run
            clean[hook.name] = act
            if hook.name == z_names[-1]:
                raise _LastSite
            return act
        if not act.requires_grad:  # the first site: the graph starts here
            act = act.detach().requires_grad_(True)
        else:
            act.retain_grad()
        corrupt[hook.name] = act
        return act

    def keep_prefix(act: torch.Tensor, hook) -> torch.Tensor:
        if torch.is_grad_enabled():  # the corrupt run's keys and values, for the clean one
            prefix[hook.name] = act[:, :shared].detach()
        return act

    def answer_only(act: torch.Tensor, hook) -> torch.Tensor:
        return act[:, pairs.answer_pos, None]

    hooks = [(name, site) for name in (*z_names, *r_names)] + [(narrow, answer_only)]
    hooks += [(name, keep_prefix) for name in kv_names] if shared else []
    # gradients with respect to the activations only: with the weights frozen, the backward
    # skips every weight gradient (about half its cost) and the model's .grad stay untouched
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in trainable:
            p.requires_grad_(False)
        with model.hooks(fwd_hooks=hooks):
            with torch.enable_grad():
                logits = model(corrupt_tokens)  # [pair, 1, d_vocab]: the answer position
                logit_diff(logits, replace(pairs, answer_pos=0)).sum().backward()
            run: dict[str, Any] = {}
            if shared:
                entries = [TransformerLensKeyValueCacheEntry(prefix[kv_names[2 * l]],
                                                             prefix[kv_names[2 * l + 1]], True)
                           for l in range(n_layers)]  # fmt: skip
                ones = torch.ones(n, n_pos, dtype=torch.int, device=device)
                cache = TransformerLensKeyValueCache(entries, ones[:, :shared], True)
                run = {"past_kv_cache": cache, "attention_mask": ones[:, shared:]}
            try:
                with torch.no_grad():
                    model(clean_tokens[:, shared:], **run)
            except _LastSite:
                pass
    finally:
        for p in trainable:
            p.requires_grad_(True)
    with torch.no_grad():
        heads = torch.cat([_attribution(clean[k], corrupt[k], shared).sum(dim=(1, 3))
                           for k in z_names], 1)  # fmt: skip
        positions = clean[r_names[0]].new_zeros(n, n_layers, n_pos)  # zero before `shared`
        for l, k in enumerate(r_names):
            positions[:, l, shared:] = _attribution(clean[k], corrupt[k], shared).sum(-1)
    heads, positions = _mean_se(heads), _mean_se(positions.flatten(1))  # [layer * head], ...
    n_heads = model.cfg.n_heads
    labels = task.position_labels
    labels = labels() if callable(labels) else labels  # a property on some tasks
    out: list[dict[str, Any]] = []
    for l in range(n_layers):
        for h in range(n_heads):
            out += _rows(*heads[l * n_heads + h], kind="head_out_all_pos", component=f"L{l}H{h}",
                         layer=l, head=h, position="all")  # fmt: skip
        for p, label in enumerate(labels[:n_pos]):
            out += _rows(*positions[l * n_pos + p], kind="resid_pre", component=f"L{l} {label}",
                         layer=l, pos=p, position=label)  # fmt: skip
    return out


def _attribution(clean: Any, corrupt: Any, start: int) -> Any:
    """``(clean - corrupt) * d metric / d corrupt`` elementwise, from position ``start`` on (the
    clean run's first position)."""
    return (clean - corrupt.detach()[:, start:]) * corrupt.grad[:, start:]


def _mean_se(x: Any) -> list[tuple[float, float]]:
    """Per column of ``x`` ([pair, site]): the mean over pairs and its standard error (NaN
    for one pair)."""
    n = x.shape[0]
    se = (x.std(dim=0) / math.sqrt(n)).tolist() if n > 1 else [float("nan")] * x.shape[1]
    return list(zip(x.mean(dim=0).tolist(), se, strict=True))


def _rows(mean: float, se: float, **where: Any) -> list[dict[str, Any]]:
    return [record("atp", "atp_raw", mean, **where), record("atp", "atp_raw_se", se, **where)]


def rank_agreement(estimate: np.ndarray, exact: np.ndarray) -> float:
    """Spearman's rank correlation between attribution estimates and exact effects (NaN when
    either is constant)."""
    from scipy import stats

    estimate, exact = np.asarray(estimate, float).ravel(), np.asarray(exact, float).ravel()
    if np.ptp(estimate) == 0 or np.ptp(exact) == 0:
        return float("nan")
    return float(stats.spearmanr(estimate, exact).statistic)
