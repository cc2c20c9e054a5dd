"""The noise estimators of :mod:`mbc_interp.analysis.dynamics.gradients` (``b_simple``,
``coherence``, ``group_ratio`` and their nulls, per component), from running sums over chunks
of per-example gradients: no per-example copy is kept."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, Int
from torch import Tensor


class NoiseSums:
    """Running sums over chunks of per-example gradients (each chunk holding whole B-groups).

    Only sums over examples and per-component scalars are kept, never per-example copies, and
    nothing in :meth:`add` needs G, so the per-example gradients can come first and G (which
    reuses their sum) after. With float64 totals, |eps_i|^2, the within-group deviations and the
    centred group means follow from sum_i |g_i - G|^2 = sum_i |g_i|^2 - 2 G.sum_i g_i + n |G|^2,
    sum_i |g_i - gbar_b|^2 = sum_i |g_i|^2 - sum_b n_b |gbar_b|^2 and
    sum_b |gbar_b - G|^2 = sum_b |gbar_b|^2 - 2 G.sum_b gbar_b + n_groups |G|^2."""

    def __init__(
        self, full_grad: Float[Tensor, " p"] | None, columns: Int[Tensor, " p"], n_comp: int
    ):
        self.G = None if full_grad is None else full_grad.double()
        self.columns, self.n_comp = columns, n_comp
        change = torch.nonzero(columns[1:] != columns[:-1]).flatten() + 1
        bounds = [0, *change.tolist(), len(columns)]
        self.segments = [(lo, hi, int(columns[lo])) for lo, hi in itertools.pairwise(bounds)]
        """Runs of columns of one component: ``(start, stop, component)``."""
        self.sum_g = torch.zeros(len(columns), dtype=torch.float64)
        self.sum_means = torch.zeros_like(self.sum_g)
        zero = torch.zeros(n_comp, dtype=torch.float64)
        self.sq, self.between, self.means_sq = zero.clone(), zero.clone(), zero.clone()
        self.n = 0
        self.inv_sizes: list[float] = []

    def _per_comp(self, col_sums: Float[Tensor, " p"]) -> Float[Tensor, " c"]:
        out = torch.zeros(self.n_comp, dtype=torch.float64)
        return out.index_add_(0, self.columns, col_sums.double())

    def _pieces(self, g: Tensor | list[Tensor]):
        """``(start, stop, component, [n, ...] view)`` over a [n, P] matrix or over blocks
        [n, *shape] whose flattened columns concatenate to one (per-parameter gradients, left
        in their own memory layout: a block inside one component is never copied)."""
        off = 0
        for block in [g] if isinstance(g, Tensor) else g:
            width = block[0].numel()
            for lo, hi, comp in self.segments:
                a, z = max(lo, off), min(hi, off + width)
                if a == off and z == off + width:
                    yield a, z, comp, block
                elif a < z:
                    yield a, z, comp, block.reshape(block.shape[0], -1)[:, a - off : z - off]
            off += width
        if off != len(self.columns):
            raise ValueError(f"gradients have {off} columns, the model {len(self.columns)}")

    def add(self, g: Float[Tensor, "n p"] | list[Tensor], groups: Int[Tensor, " n"]) -> None:
        """Add a chunk (a [n, P] matrix or its column blocks); no B-group may be split across
        chunks."""
        _, inv, counts = torch.unique(groups, return_inverse=True, return_counts=True)
        n_groups, size = len(counts), int(counts[0])
        # whole groups of one size, each contiguous (as group_sample orders them): a reshape
        # (group order is irrelevant to every sum below when the sizes are equal)
        blocked = bool((counts == size).all()) and bool(
            (groups.view(n_groups, size) == groups.view(n_groups, size)[:, :1]).all()
        )
        sizes = counts.double()
        ones, inv_sizes = torch.ones(1, n_groups), (1 / sizes).float()[None]
        for lo, hi, comp, x in self._pieces(g):
            if blocked:
                sums = _group_sums(x, n_groups, size)
            else:
                flat = x.reshape(len(groups), -1)
                sums = torch.zeros(n_groups, hi - lo, dtype=x.dtype).index_add_(0, inv, flat)
            # float32 over the [groups, width] sums, row and matrix-vector reductions (fast and
            # exact to ~1e-7), totals in float64
            self.sum_g[lo:hi] += (ones.to(x.dtype) @ sums)[0].double()
            self.sum_means[lo:hi] += (inv_sizes.to(x.dtype) @ sums)[0].double()
            row_sq = torch.linalg.vector_norm(sums, dim=1).double().square()
            self.between[comp] += (row_sq / sizes).sum()
            self.means_sq[comp] += (row_sq / sizes.square()).sum()
            row_norms = torch.linalg.vector_norm(x, dim=tuple(range(1, x.dim())))
            self.sq[comp] += row_norms.double().square().sum()
        self.n += len(groups)
        self.inv_sizes.extend((1.0 / sizes).tolist())

    def result(self, full_grad: Float[Tensor, " p"] | None = None) -> dict[str, Any]:
        """Per component (then ``"all"`` last): ``b_simple``, ``coherence``, ``group_ratio``,
        ``grad_sq`` (|G|^2); and the nulls. ``full_grad``: G, unless given at construction."""
        G = self.G if full_grad is None else full_grad.double()
        if G is None:
            raise ValueError("NoiseSums.result: no full-batch gradient given")
        n, n_groups = self.n, len(self.inv_sizes)

        def with_all(x: Tensor) -> Tensor:
            return torch.cat([x, x.sum()[None]])

        grad_sq = with_all(self._per_comp(G * G))
        mean_g = self.sum_g / n
        mean_g_sq = with_all(self._per_comp(mean_g * mean_g))
        sq = with_all(self.sq)
        eps_sq = sq - 2 * with_all(self._per_comp(self.sum_g * G)) + n * grad_sq
        dev_sq = (sq - with_all(self.between)).clamp_min(0)
        centred_sq = (
            with_all(self.means_sq) - 2 * with_all(self._per_comp(self.sum_means * G))
            + n_groups * grad_sq
        ).clamp_min(0)  # fmt: skip
        rms_mean = (centred_sq / n_groups).sqrt()
        rms_dev = (dev_sq / n).sqrt()
        dev_frac = (n - n_groups) / n  # mean_i (n_b - 1) / n_b
        null = math.sqrt(np.mean(self.inv_sizes) / dev_frac) if dev_frac > 0 else math.inf
        return {
            "grad_sq": grad_sq.tolist(),
            "b_simple": (eps_sq / n / grad_sq).tolist(),
            "coherence": (mean_g_sq / (sq / n)).tolist(),
            "group_ratio": (rms_mean / rms_dev).tolist(),
            "coherence_null": 1.0 / n,
            "group_ratio_null": null,
            "n": n,
        }


def _group_sums(x: Float[Tensor, "n ..."], n_groups: int, size: int) -> Float[Tensor, "g w"]:
    """Sums of consecutive runs of ``size`` rows, flattened: the reduction runs in ``x``'s own
    memory order (vmap leaves some gradients transposed), then the small result is put back."""
    order = sorted(range(1, x.dim()), key=lambda d: -x.stride(d))
    xp = x.permute(0, *order)
    if not xp.is_contiguous():
        xp, order = x.contiguous(), list(range(1, x.dim()))
    sums = xp.reshape(n_groups, size, -1).sum(1).view(n_groups, *xp.shape[1:])
    back = [0] * x.dim()
    for i, d in enumerate(order, start=1):
        back[d] = i
    return sums.permute(*back).reshape(n_groups, -1)


def noise_statistics(
    per_example: Float[Tensor, "n p"],
    full_grad: Float[Tensor, " p"],
    groups: Int[Tensor, " n"],
    columns: Int[Tensor, " p"] | None = None,
) -> dict[str, Any]:
    """The estimators of the module docstring on a gradient matrix (``columns`` assigns each
    column a component id 0..C-1; default: one component). Lists end with ``"all"``."""
    if columns is None:
        columns = torch.zeros(per_example.shape[1], dtype=torch.long)
    sums = NoiseSums(full_grad, columns, int(columns.max()) + 1)
    sums.add(per_example, groups)
    return sums.result()
