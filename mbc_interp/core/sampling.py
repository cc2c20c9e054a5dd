"""The seeded row subsample: which ``m`` of ``n`` rows a measurement uses when it uses fewer
than all. One rule everywhere (evaluation, the analyses' example sets, gradient batches), so
the same seed and sizes give the same rows in every part of the package."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch loads with the first sample drawn
    from torch import Tensor


def seeded_subset(n: int, m: int | None, seed: int) -> Tensor | None:
    """``m`` of the rows ``0..n-1``, drawn by a permutation seeded with ``seed`` and sorted;
    ``None`` when every row is used (``m`` is ``None`` or at least ``n``)."""
    return seeded_subsets((n,), m, seed)[0]


def seeded_subsets(sizes: Sequence[int], m: int | None, seed: int) -> list[Tensor | None]:
    """:func:`seeded_subset` of several tables in turn (a task's splits) from one generator
    seeded with ``seed``: each table of more than ``m`` rows draws its permutation from where
    the one before left the generator; a table used whole draws nothing."""
    import torch

    g = torch.Generator().manual_seed(seed)
    out: list[Tensor | None] = []
    for n in sizes:
        if m is None or m >= n:
            out.append(None)
        else:
            out.append(torch.randperm(n, generator=g)[:m].sort().values)
    return out
