"""How the wind tunnel's strings are drawn (the layout and the loss live in
:mod:`mbc_interp.tasks.wind_tunnel.task`).

Everything comes from one numpy PCG64 stream consumed in a fixed order (the base strings, then
the targets), so a :class:`~mbc_interp.tasks.wind_tunnel.task.TaskConfig` always yields the same
data; any change to the order or the draws here changes the fingerprint that saved runs are checked
against.

The target strings are drawn so that, whenever the fields allow it, no two examples share an A
string: then the map A -> B is a function and the ``"forward"`` direction (A SEP B) is a
deterministic control for the ambiguous ``"backward"`` one. Both directions use the same pairs.
"""

from __future__ import annotations

import numpy as np


def distinct_rows(rng: np.random.Generator, n: int, length: int, alphabet: int) -> np.ndarray:
    """``n`` distinct strings of ``length`` symbols over ``alphabet``, in random order."""
    total = alphabet**length
    if total <= 1 << 24:
        codes = rng.choice(total, size=n, replace=False)
        digits = (codes[:, None] // alphabet ** np.arange(length - 1, -1, -1)) % alphabet
        return digits.astype(np.int64)
    seen: set[bytes] = set()
    rows: list[np.ndarray] = []
    while len(rows) < n:
        for row in rng.integers(0, alphabet, size=(n, length)):
            key = row.tobytes()
            if key not in seen:
                seen.add(key)
                rows.append(row)
                if len(rows) == n:
                    break
    return np.stack(rows).astype(np.int64)


def build_targets(
    rng: np.random.Generator, construction: str, n_bases: int, k: int, length: int, alphabet: int
) -> np.ndarray:
    """Target symbol indices, shape [n_bases, k, length]; ``A[b, j]`` is picked by z_{j+1}.

    - ``"shared_pool"``: first symbols from one pool of K (a per-B permutation), then a
      B-specific stem shared by the B's K targets; the stems are distinct strings whenever
      ``n_bases <= alphabet ** (length - 1)`` (``length >= 2``), so every A is then distinct.
    - ``"distinct_random"``: K distinct random first symbols per B, random further symbols; an A
      that repeats an earlier one gets its further symbols redrawn when every first symbol has
      room for all the A's that start with it (always when ``n_bases <= alphabet ** (length-1)``).
    """
    out = np.empty((n_bases, k, length), dtype=np.int64)
    if construction == "shared_pool":
        pool = rng.choice(alphabet, size=k, replace=False)
        perm = rng.permuted(np.tile(np.arange(k), (n_bases, 1)), axis=1)
        out[:, :, 0] = pool[perm]
        if length >= 2 and n_bases <= alphabet ** (length - 1):
            stem = distinct_rows(rng, n_bases, length - 1, alphabet)
        else:  # length 1 (the default task), or more B's than stems: stems may repeat
            stem = rng.integers(0, alphabet, size=(n_bases, length - 1))
        out[:, :, 1:] = stem[:, None, :]
    else:
        out[:, :, 0] = np.argsort(rng.random((n_bases, alphabet)), axis=1)[:, :k]
        out[:, :, 1:] = rng.integers(0, alphabet, size=(n_bases, k, length - 1))
        _redraw_repeated_tails(rng, out.reshape(n_bases * k, length), alphabet)
    return out


def _redraw_repeated_tails(rng: np.random.Generator, rows: np.ndarray, alphabet: int) -> None:
    """Make the rows (a view, edited in place) distinct by redrawing the symbols after the first
    of every repeat, in row order; leaves them as they are when that is impossible."""
    n, length = rows.shape
    if np.bincount(rows[:, 0], minlength=alphabet).max() > alphabet ** (length - 1):
        return  # some first symbol starts more A's than there are tails to tell them apart
    _, first_seen = np.unique(rows, axis=0, return_index=True)
    if len(first_seen) == n:
        return
    repeats = np.setdiff1d(np.arange(n), first_seen)
    seen = {rows[i].tobytes() for i in first_seen}
    for i in repeats:
        while True:
            rows[i, 1:] = rng.integers(0, alphabet, size=length - 1)
            key = rows[i].tobytes()
            if key not in seen:
                seen.add(key)
                break


def targets_distinct(
    construction: str, n_bases: int, k: int, length: int, alphabet: int
) -> bool | None:
    """Whether :func:`build_targets` gives ``n_bases * k`` distinct A strings: ``True`` or
    ``False`` when the fields decide it, ``None`` when it depends on the draw
    (``distinct_random`` only)."""
    if n_bases <= alphabet ** (length - 1):
        return True
    if construction == "shared_pool" or n_bases * k > alphabet**length:
        return False  # repeated stems (or a single pool symbol) / more A's than strings
    return None


def repeated_row(rows: np.ndarray) -> tuple[int, int] | None:
    """Indices ``(i, j)``, ``i < j``, of the first row that repeats an earlier one, or ``None``."""
    first: dict[bytes, int] = {}
    for j, row in enumerate(rows):
        i = first.setdefault(row.tobytes(), j)
        if i != j:
            return i, j
    return None


def distinct_per_row(
    rng: np.random.Generator, n: int, k: int, length: int, alphabet: int
) -> np.ndarray:
    """``n`` groups of ``k`` strings, distinct within each group (not across groups),
    shape [n, k, length]."""
    total = alphabet**length
    if total <= 1 << 16:
        codes = np.argsort(rng.random((n, total)), axis=1)[:, :k]
    else:  # rejection per group: k << total here
        codes = np.stack([rng.choice(total, size=k, replace=False) for _ in range(n)])
    digits = (codes[..., None] // alphabet ** np.arange(length - 1, -1, -1)) % alphabet
    return digits.astype(np.int64)


def build_random_strings(
    rng: np.random.Generator,
    n_bases: int,
    k: int,
    lengths: tuple[int, int, int],
    alphabet: int,
    per_base_selectors: bool,
    distinct_first: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's strings over one alphabet: bases [n, L_B], selectors [n, k, L_z] and
    targets [n, k, L_A], drawn in that order.

    Selectors: one set of ``k`` distinct strings shared by every B, or (``per_base_selectors``)
    ``k`` distinct strings drawn for each B. Targets: every A distinct across the whole dataset,
    or (``distinct_first``) the ``k`` targets of each B start with ``k`` distinct symbols (further
    symbols random; A strings may then repeat across B's)."""
    base_len, sel_len, target_len = lengths
    bases = distinct_rows(rng, n_bases, base_len, alphabet)
    if per_base_selectors:
        selectors = distinct_per_row(rng, n_bases, k, sel_len, alphabet)
    else:
        selectors = np.broadcast_to(distinct_rows(rng, k, sel_len, alphabet), (n_bases, k, sel_len))
    if distinct_first:
        targets = np.empty((n_bases, k, target_len), dtype=np.int64)
        targets[:, :, 0] = np.argsort(rng.random((n_bases, alphabet)), axis=1)[:, :k]
        targets[:, :, 1:] = rng.integers(0, alphabet, size=(n_bases, k, target_len - 1))
    else:
        targets = distinct_rows(rng, n_bases * k, target_len, alphabet).reshape(
            n_bases, k, target_len
        )
    return bases, np.ascontiguousarray(selectors), targets
