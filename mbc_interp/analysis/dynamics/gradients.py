"""Gradient and noise diagnostics of one checkpoint: |G|, B_simple, coherence, within-B split.

The loss is the training loss (:func:`mbc_interp.tasks.losses.target_losses`): per example, the
cross-entropy summed over the target positions (predicted from ``task.answer_pos`` on), i.e.
nats per example; averaged over examples.
``G`` is its gradient over all examples (or a fixed seeded subsample when there are more than
``full_batch_cap``), exact. Per-example gradients ``g_i`` come from ``torch.func`` (``vmap``
over ``grad`` of a ``functional_call``) on a seeded sample of whole B-groups, so the within-B
decomposition is defined for every sampled example; when G covers every example, the sample's
share of it is the sum of those g_i and full-batch autograd runs over the other examples only
(no example goes through the model twice). With
``eps_i = g_i - G`` (the exact G, not the sample mean: on the plateau |G|^2 is a few percent of
mean |g_i|^2 and the sample estimate of it is mostly noise):

- ``b_simple = mean_i |eps_i|^2 / |G|^2`` (tr Sigma / |G|^2, the simple noise scale);
- ``coherence = |mean_i g_i|^2 / mean_i |g_i|^2``; for n independent zero-mean vectors it is
  ``1/n`` (``coherence_null``), for identical vectors 1;
- ``group_ratio = rms_b |m_b| / rms_i |eps_i - m_b(i)|`` where ``m_b`` is the mean of ``eps_i``
  over B-group b (the part shared by the K targets of one B: the marginal) and the deviations
  are the part that differs with z (the conditional). The first rms is over groups, the second
  over examples. For independent vectors with E|eps|^2 = s^2 in groups of n_b,
  E|m_b|^2 = s^2/n_b and E|dev|^2 = s^2 (n_b-1)/n_b, so the null is
  ``sqrt(mean_b(1/n_b) / mean_i((n_b-1)/n_b))``, i.e. ``1/sqrt(K-1)`` for whole groups of K
  (``group_ratio_null``). Above it, the K gradients of one B pull together.

Every metric is reported per parameter group (:func:`param_group`) and for ``"all"``; the
estimators, from running sums over chunks of per-example gradients, are in
:mod:`mbc_interp.analysis.dynamics.noise_sums`. The Adam
and Hessian parts are in :mod:`mbc_interp.analysis.dynamics.hessian` and :func:`adam_update_stats`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.func import functional_call, grad, vmap

from mbc_interp.analysis.dynamics.hessian import HessianResult, hessian_extremes
from mbc_interp.analysis.dynamics.noise_sums import NoiseSums
from mbc_interp.analysis.extra_settings import GradientConfig
from mbc_interp.core.sampling import seeded_subset
from mbc_interp.store.run import OptimizerState
from mbc_interp.tasks.losses import target_losses

ALL = "all"


# -- parameter groups ---------------------------------------------------------------------------
def param_group(name: str) -> tuple[str, int | None]:
    """``(component, layer)`` of a HookedTransformer parameter: ``embed`` (W_E, W_pos),
    ``L{l}.attn`` (with ln1), ``L{l}.mlp`` (with ln2), ``unembed`` (W_U, b_U, ln_final)."""
    parts = name.split(".")
    if parts[0] in ("embed", "pos_embed"):
        return "embed", None
    if parts[0] in ("unembed", "ln_final"):
        return "unembed", None
    if parts[0] == "blocks" and len(parts) >= 3:
        layer = int(parts[1])
        if parts[2] in ("attn", "ln1"):
            return f"L{layer}.attn", layer
        if parts[2] in ("mlp", "ln2"):
            return f"L{layer}.mlp", layer
    raise ValueError(f"parameter {name!r}: no gradient group for it (see param_group)")


def _columns(model: nn.Module) -> tuple[list[str], list[int | None], Int[Tensor, " p"]]:
    """Component names (in first-seen order), their layers, and each flat column's component."""
    names: list[str] = []
    layers: list[int | None] = []
    cols = []
    for pname, p in model.named_parameters():
        comp, layer = param_group(pname)
        if comp not in names:
            names.append(comp)
            layers.append(layer)
        cols.append(torch.full((p.numel(),), names.index(comp), dtype=torch.long))
    return names, layers, torch.cat(cols)


# -- gradients of the model's loss ---------------------------------------------------------------
def full_gradient(
    model: nn.Module,
    tokens: Int[Tensor, "n seq"],
    answer_pos: int,
    chunk_size: int = 2048,
    n_total: int | None = None,
) -> Float[Tensor, " p"]:
    """Gradient of the mean example loss (:func:`~mbc_interp.tasks.losses.target_losses` summed
    over target positions), flattened in ``named_parameters`` order (the sum over these
    examples divided by ``n_total``, when given: part of a larger mean)."""
    params = [p for _, p in model.named_parameters()]
    total = [torch.zeros_like(p) for p in params]
    n = tokens.shape[0] if n_total is None else n_total
    for t in tokens.split(chunk_size):
        loss = target_losses(model, t, answer_pos).sum() / n
        for acc, g in zip(total, torch.autograd.grad(loss, params), strict=True):
            acc += g
    return torch.cat([g.flatten() for g in total])


def per_example_gradient_blocks(
    model: nn.Module, tokens: Int[Tensor, "n seq"], answer_pos: int
) -> list[Float[Tensor, "n ..."]]:
    """Each example's loss gradient, one ``vmap(grad(...))`` call: one [n, *shape] block per
    parameter in ``named_parameters`` order, in vmap's memory layout (not flattened nor
    concatenated: :class:`~mbc_interp.analysis.dynamics.noise_sums.NoiseSums` takes the blocks
    as they are, saving copies)."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss_one(p: dict[str, Tensor], t: Tensor) -> Tensor:
        logits = partial(functional_call, model, (p, buffers))  # tokens -> logits at p
        return target_losses(logits, t[None], answer_pos).sum()

    grads = vmap(grad(loss_one), in_dims=(None, 0))(params, tokens)
    return [grads[k] for k in params]


def per_example_gradients(
    model: nn.Module, tokens: Int[Tensor, "n seq"], answer_pos: int
) -> Float[Tensor, "n p"]:
    """Each example's loss gradient, flattened like :func:`full_gradient`."""
    blocks = per_example_gradient_blocks(model, tokens, answer_pos)
    return torch.cat([b.flatten(1) for b in blocks], dim=1)


def group_sample(base_index: Int[Tensor, " n"], size: int, seed: int) -> Int[Tensor, " m"]:
    """Rows of whole B-groups in a seeded random order of groups, at most ``size`` rows (at
    least one group), each group's rows contiguous."""
    uniq, inv = torch.unique(base_index, return_inverse=True)
    order = np.random.default_rng(seed).permutation(len(uniq))
    members = [[] for _ in range(len(uniq))]
    for row, g in enumerate(inv.tolist()):
        members[g].append(row)
    rows: list[int] = []
    for g in order:
        if rows and len(rows) + len(members[g]) > size:
            break
        rows.extend(members[g])
    return torch.tensor(rows, dtype=torch.long)


def _chunks(groups: Int[Tensor, " m"], chunk_size: int) -> list[slice]:
    """Slices of at most ``chunk_size`` rows (or one whole group) that never split a group."""
    bounds = [0, *(torch.nonzero(groups[1:] != groups[:-1]).flatten() + 1).tolist(), len(groups)]
    out, start = [], 0
    for lo, hi in itertools.pairwise(bounds):
        if hi - start > chunk_size and lo > start:
            out.append(slice(start, lo))
            start = lo
    out.append(slice(start, len(groups)))
    return out


# -- Adam ---------------------------------------------------------------------------------------
def adam_update_stats(
    state: OptimizerState, model: nn.Module, quantiles: tuple[float, ...]
) -> list[dict[str, Any]]:
    """From an AdamW state: quantiles of ``|m_hat| / (sqrt(v_hat) + eps)`` (the per-parameter
    update size in units of lr) and ``eps_dominated_frac``, the fraction of parameters with
    ``eps > sqrt(v_hat)``; per component and ``"all"``. Rows with kind ``"adam"``."""
    beta1, beta2 = state.hyper["betas"]
    eps, t = float(state.hyper["eps"]), state.step
    names, layers, columns = _columns(model)
    m = torch.cat([state.buffers["exp_avg"][k].flatten() for k, _ in model.named_parameters()])
    v = torch.cat([state.buffers["exp_avg_sq"][k].flatten() for k, _ in model.named_parameters()])
    m_hat, v_root = m.double() / (1 - beta1**t), (v.double() / (1 - beta2**t)).sqrt()
    ratio, dominated = m_hat.abs() / (v_root + eps), (v_root < eps).double()
    rows = []
    for c, (comp, layer) in enumerate([*zip(names, layers, strict=True), (ALL, None)]):
        sel = columns == c if comp != ALL else slice(None)
        qs = torch.quantile(ratio[sel].float(), torch.tensor(quantiles)).tolist()
        metrics = {
            f"adam_ratio_q{round(q * 100):02d}": v for q, v in zip(quantiles, qs, strict=True)
        }
        metrics["eps_dominated_frac"] = float(dominated[sel].mean())
        rows += [_row("adam", comp, layer, k, v) for k, v in metrics.items()]
    return rows


# -- the checkpoint diagnostics ---------------------------------------------------------------
def _row(kind: str, component: str, layer: int | None, metric: str, value: float | int) -> dict:
    return {
        "analysis": "gradients", "kind": kind, "component": component, "layer": layer,
        "head": None, "pos": None, "position": "", "metric": metric, "value": float(value),
    }  # fmt: skip


@dataclass(frozen=True)
class GradientDiagnostics:
    """One checkpoint's gradient measurements; ``to_records()`` gives the timeline rows."""

    components: tuple[str, ...]
    """Parameter groups, then ``"all"``."""
    layers: tuple[int | None, ...]
    grad_norm: tuple[float, ...]
    b_simple: tuple[float, ...]
    coherence: tuple[float, ...]
    group_ratio: tuple[float, ...]
    coherence_null: float
    group_ratio_null: float
    n_full: int
    """Examples behind G."""
    n_sample: int
    """Examples behind the per-example statistics."""
    adam: tuple[dict[str, Any], ...] = ()
    """Rows of :func:`adam_update_stats` (empty without an AdamW state)."""
    hessian: HessianResult | None = None

    def to_records(self) -> list[dict[str, Any]]:
        rows = []
        for i, (comp, layer) in enumerate(zip(self.components, self.layers, strict=True)):
            for metric in ("grad_norm", "b_simple", "coherence", "group_ratio"):
                rows.append(_row("", comp, layer, metric, getattr(self, metric)[i]))
        for metric in ("coherence_null", "group_ratio_null", "n_full", "n_sample"):
            rows.append(_row("", ALL, None, metric, getattr(self, metric)))
        rows.extend(self.adam)
        if self.hessian is not None:
            rows += [_row("hessian", ALL, None, k, v) for k, v in self.hessian.metrics().items()]
        return rows


def gradient_diagnostics(
    model: nn.Module,
    task: Any,
    config: GradientConfig = GradientConfig(),
    optimizer_state: OptimizerState | None = None,
) -> GradientDiagnostics:
    """Measure one checkpoint. ``task`` needs ``tokens``, ``answer_pos``, ``base_index`` only;
    ``optimizer_state`` (see :meth:`mbc_interp.store.run.Run.optimizer_state`) adds the Adam
    rows."""
    device = next(model.parameters()).device
    tokens, a = task.tokens.to(device), task.answer_pos
    if not 0 <= a < tokens.shape[1] - 1:
        raise ValueError(f"task.answer_pos = {a}: no target token after it (sequence length "
                         f"{tokens.shape[1]})")  # fmt: skip
    names, layers, columns = _columns(model)
    sums = NoiseSums(None, columns, len(names))
    rows = group_sample(task.base_index, config.sample_size, config.seed)
    groups = task.base_index[rows]
    for part in _chunks(groups, config.chunk_size):
        r = rows[part].to(device)
        blocks = per_example_gradient_blocks(model, tokens[r], a)
        sums.add([b.cpu() for b in blocks], groups[part])
    full_rows = _subsample(len(tokens), config.full_batch_cap, config.seed)
    if isinstance(full_rows, slice):  # G over every example: the sample's part is summed already
        rest = torch.ones(len(tokens), dtype=torch.bool)
        rest[rows] = False
        rest_idx = torch.nonzero(rest).flatten().to(device)
        G = full_gradient(model, tokens[rest_idx], a, n_total=1).cpu().double()
        G = (G + sums.sum_g) / len(tokens)
    else:
        G = full_gradient(model, tokens[full_rows], a).cpu().double()
    stats = sums.result(G)
    adam: list[dict[str, Any]] = []
    if optimizer_state is not None and "exp_avg_sq" in optimizer_state.buffers:
        adam = adam_update_stats(optimizer_state, model, config.adam_quantiles)
    hessian = None
    if config.hessian:
        h_rows = _subsample(len(tokens), config.hessian_examples, config.seed + 1)
        hessian = hessian_extremes(
            lambda: target_losses(model, tokens[h_rows], a).sum(-1).mean(),
            [p for _, p in model.named_parameters()],
            G.float().to(device),
            config.lanczos_iters,
            seed=config.seed,
        )
    return GradientDiagnostics(
        components=(*names, ALL),
        layers=(*layers, None),
        grad_norm=tuple(math.sqrt(x) for x in stats["grad_sq"]),
        b_simple=tuple(stats["b_simple"]),
        coherence=tuple(stats["coherence"]),
        group_ratio=tuple(stats["group_ratio"]),
        coherence_null=stats["coherence_null"],
        group_ratio_null=stats["group_ratio_null"],
        n_full=len(full_rows) if isinstance(full_rows, Tensor) else len(tokens),
        n_sample=stats["n"],
        adam=tuple(adam),
        hessian=hessian,
    )


def _subsample(n: int, cap: int | None, seed: int) -> Tensor | slice:
    rows = seeded_subset(n, cap, seed)
    return slice(None) if rows is None else rows


def timeline_rows(
    model: nn.Module,
    task: Any,
    settings: GradientConfig,
    optimizer_state: OptimizerState | None,
) -> list[dict[str, Any]]:
    """The ``gradients`` kind at one checkpoint (see :mod:`mbc_interp.analysis.registry`)."""
    return gradient_diagnostics(model, task, settings, optimizer_state).to_records()
