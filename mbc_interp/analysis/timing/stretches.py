"""Where a curve rests, whatever the level: its longest or its first flat stretch (the height
the raw loss rests at when no level is known in advance)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mbc_interp.analysis.timing.curves import Curve, Step, clean_curve

FLAT_TOL = 0.02
"""A resting stretch: every evaluation within 2% of the stretch's median."""
FLAT_MIN = 3
"""... over at least 3 consecutive evaluations."""
FLAT_FALL = 0.05
"""It starts only once the curve has fallen 5% below its first value (not at initialisation)."""


@dataclass(frozen=True)
class FlatStretch:
    """The longest stretch where a curve rests (see :func:`flat_stretch`)."""

    level: float | None
    """Median over the stretch; ``None`` when the curve never rests."""
    start: float | None
    end: float | None


def flat_stretch(
    steps: Curve,
    values: Curve,
    *,
    stop: Step | None = None,
    tol: float = FLAT_TOL,
    min_evals: int = FLAT_MIN,
) -> FlatStretch:
    """Where a curve rests, whatever the level: the longest run of at least ``min_evals``
    consecutive evaluations, all within ``tol`` (relative) of their median, after the curve has
    fallen :data:`FLAT_FALL` below its first value and before ``stop`` (the drop). Ties go to
    the earliest. For the height the raw loss rests at when no level is known in advance (the
    paper's task: log K, or where a model that knows only the layout scores?)."""
    return _stretch(steps, values, stop, tol, min_evals, first=False)


def first_stretch(
    steps: Curve,
    values: Curve,
    *,
    stop: Step | None = None,
    tol: float = FLAT_TOL,
    min_evals: int = FLAT_MIN,
) -> FlatStretch:
    """Where a curve first rests: as :func:`flat_stretch`, but the earliest such run (extended
    as far as it stays within ``tol``) rather than the longest."""
    return _stretch(steps, values, stop, tol, min_evals, first=True)


def _stretch(
    steps: Curve, values: Curve, stop: Step | None, tol: float, min_evals: int, first: bool
) -> FlatStretch:
    s, v = clean_curve(steps, values, "values")
    if stop is not None:
        s, v = s[s <= stop], v[s <= stop]
    fallen = np.flatnonzero(v < (1 - FLAT_FALL) * v[0]) if len(v) else np.array([], int)
    if not len(fallen):
        return FlatStretch(None, None, None)
    s, v = s[fallen[0] :], v[fallen[0] :]
    best: tuple[int, int] | None = None
    for i in range(len(v)):
        j = i + min_evals
        if j > len(v) or not _within(v[i:j], tol):
            continue
        while j < len(v) and _within(v[i : j + 1], tol):
            j += 1
        if best is None or j - i > best[1] - best[0]:
            best = (i, j)
        if first:
            break
    if best is None:
        return FlatStretch(None, None, None)
    i, j = best
    return FlatStretch(float(np.median(v[i:j])), float(s[i]), float(s[j - 1]))


def _within(w: np.ndarray, tol: float) -> bool:
    return bool(np.all(np.abs(w / np.median(w) - 1) <= tol))
