"""The seeded row subsample: sizes, order, determinism, and several tables from one generator."""

from __future__ import annotations

import torch

from mbc_interp.core.sampling import seeded_subset, seeded_subsets


def test_a_subset_is_m_sorted_distinct_rows_and_none_when_all_are_used():
    rows = seeded_subset(50, 7, seed=3)
    assert rows is not None and len(rows) == 7 and len(set(rows.tolist())) == 7
    assert torch.equal(rows, rows.sort().values) and int(rows.max()) < 50
    assert torch.equal(seeded_subset(50, 7, seed=3), rows)
    assert not torch.equal(seeded_subset(50, 7, seed=4), rows)
    assert seeded_subset(50, None, 0) is None and seeded_subset(50, 50, 0) is None


def test_several_tables_draw_in_turn_from_one_generator():
    """The first table's subset is :func:`seeded_subset`'s; a later one continues the
    generator (so it differs from a fresh draw), unless every table before it was used whole."""
    first, second = seeded_subsets((40, 40), 5, seed=1)
    assert torch.equal(first, seeded_subset(40, 5, seed=1))
    g = torch.Generator().manual_seed(1)
    torch.randperm(40, generator=g)
    assert torch.equal(second, torch.randperm(40, generator=g)[:5].sort().values)
    assert not torch.equal(second, first)
    whole, fresh = seeded_subsets((3, 40), 5, seed=1)
    assert whole is None and torch.equal(fresh, seeded_subset(40, 5, seed=1))
