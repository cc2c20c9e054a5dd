"""z corruptions of the wind tunnel: another selector of the same B, as a row table and as
clean/corrupt patching pairs. The task's methods (``derangement``, ``with_selector_of``,
``patching_pairs``) call these; they hold no state of their own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor

from mbc_interp.tasks.pairs import PatchingPairs

if TYPE_CHECKING:
    from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask


def derangement_table(data_seed: int, K: int, n: int, seed: int) -> Int[Tensor, " n"]:
    """For each of ``n`` rows (``n / K`` groups of ``K`` consecutive rows), a row of the same
    group other than itself: a random cyclic order within each group, fixed by both seeds."""
    groups = n // K
    rng = np.random.default_rng([data_seed, seed, 2])
    perm = np.argsort(rng.random((groups, K)), axis=1)  # a random order within each group
    nxt = np.empty_like(perm)
    np.put_along_axis(nxt, perm, np.roll(perm, -1, axis=1), axis=1)  # perm[i] -> perm[i+1]
    return torch.from_numpy((np.arange(groups)[:, None] * K + nxt).reshape(-1))


def with_selector_of(
    task: WindTunnelTask, rows: Int[Tensor, " n"], donors: Int[Tensor, " n"]
) -> Int[Tensor, "n seq"]:
    """``task.tokens[rows]`` with the selector tokens of ``donors``."""
    out = task.tokens[torch.as_tensor(rows)].clone()
    cols = list(task.selector_positions)
    out[:, cols] = task.tokens[torch.as_tensor(donors)][:, cols]
    return out


def patching_pairs(task: WindTunnelTask, n: int | None, seed: int) -> PatchingPairs:
    """Clean/corrupt pairs: the same B, another selector whose target starts with another token,
    drawn uniformly among those; ``n`` clean rows without replacement (all when ``None``); rows
    whose B has no such selector are skipped."""
    total = len(task)
    if n is not None and not 1 <= n <= total:
        raise ValueError(f"n = {n}: must be in 1..{total} (the number of examples)")
    rng = np.random.default_rng([task.config.seed, seed, 1])
    rows = np.arange(total) if n is None else np.sort(rng.choice(total, size=n, replace=False))
    first = task.tokens[:, task.answer_pos + 1].numpy()
    group = task.group_rows(torch.from_numpy(rows)).numpy()
    ok = first[group] != first[rows][:, None]  # [n, K]: a different first token
    keep = ok.any(1)
    rows, group, ok = rows[keep], group[keep], ok[keep]
    pick = np.array([rng.choice(np.flatnonzero(o)) for o in ok], dtype=np.int64)
    other = group[np.arange(len(rows)), pick]
    rows_t, other_t = torch.from_numpy(rows), torch.from_numpy(other)
    prompt = slice(0, task.answer_pos + 1)
    return PatchingPairs(
        clean_tokens=task.tokens[rows_t, prompt],
        corrupt_tokens=with_selector_of(task, rows_t, other_t)[:, prompt],
        clean_answer=task.tokens[rows_t, task.answer_pos + 1],
        corrupt_answer=task.tokens[other_t, task.answer_pos + 1],
        example_index=rows_t,
        corrupt_index=other_t,
        answer_pos=task.answer_pos,
    )
