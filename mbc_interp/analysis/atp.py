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
from typing import TYPE_CHECKING, Any

import numpy as np

from mbc_interp.analysis.records import record
from mbc_interp.tasks.protocol import HasPatchingPairs, require

if TYPE_CHECKING:
    from mbc_interp.tasks.wind_tunnel.task import PatchingPairs


def atp_records(
    model: Any, task: HasPatchingPairs, pairs: PatchingPairs | None = None, *,
    n_pairs: int = 256, seed: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """Tidy rows (``analysis = "atp"``, ``kind`` the site kind, metric ``atp_raw`` and
    ``atp_raw_se``) of the estimates above."""
    import torch

    from mbc_interp.analysis.patching import logit_diff

    require(task, HasPatchingPairs, "analysis kind 'atp'")
    if pairs is None:
        pairs = task.patching_pairs(min(n_pairs, len(task)), seed)
    n_layers = model.cfg.n_layers
    z_names = [f"blocks.{l}.attn.hook_z" for l in range(n_layers)]
    r_names = [f"blocks.{l}.hook_resid_pre" for l in range(n_layers)]
    names = set(z_names) | set(r_names)
    device = model.cfg.device
    with torch.no_grad():  # the activations only: the unembedding is skipped
        _, clean = model.run_with_cache(pairs.clean_tokens.to(device), stop_at_layer=n_layers,
                                        names_filter=lambda n: n in names)  # fmt: skip
    saved: dict[str, torch.Tensor] = {}

    def keep(act: torch.Tensor, hook) -> torch.Tensor:
        if not act.requires_grad:  # the first site: the graph starts here
            act = act.detach().requires_grad_(True)
        else:
            act.retain_grad()
        saved[hook.name] = act
        return act

    # gradients with respect to the activations only: with the weights frozen, the backward
    # skips every weight gradient (about half its cost) and the model's .grad stay untouched
    trainable = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in trainable:
            p.requires_grad_(False)
        with torch.enable_grad():
            logits = model.run_with_hooks(pairs.corrupt_tokens.to(device),
                                          fwd_hooks=[(n, keep) for n in names])  # fmt: skip
            logit_diff(logits, pairs).sum().backward()
    finally:
        for p in trainable:
            p.requires_grad_(True)
    out: list[dict[str, Any]] = []
    labels = task.position_labels
    labels = labels() if callable(labels) else labels  # a property on some tasks
    for l in range(n_layers):
        z = saved[z_names[l]]
        heads = ((clean[z_names[l]] - z.detach()) * z.grad).sum(dim=(1, 3))  # [pair, head]
        for h, (mean, se) in enumerate(_mean_se(heads)):
            out += _rows(mean, se, kind="head_out_all_pos", component=f"L{l}H{h}", layer=l,
                         head=h, position="all")  # fmt: skip
        r = saved[r_names[l]]
        positions = ((clean[r_names[l]] - r.detach()) * r.grad).sum(-1)  # [pair, pos]
        for p, (mean, se) in enumerate(_mean_se(positions)):
            out += _rows(mean, se, kind="resid_pre", component=f"L{l} {labels[p]}", layer=l,
                         pos=p, position=labels[p])  # fmt: skip
    return out


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
