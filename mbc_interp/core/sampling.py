"""The seeded row subsample: which ``m`` of ``n`` rows a measurement uses when it uses fewer
than all. One rule everywhere (evaluation, the analyses' example sets, gradient batches), so
the same seed and sizes give the same rows in every part of the package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the first sample drawn
    from torch import Tensor


def seeded_subset(n: int, m: int | None, seed: int) -> Tensor | None:
    """``m`` of the rows ``0..n-1``, drawn by a permutation seeded with ``seed`` and sorted;
    ``None`` when every row is used (``m`` is ``None`` or at least ``n``)."""
    import torch

    if m is None or m >= n:
        return None
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:m].sort().values
