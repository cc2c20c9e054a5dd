"""Checkpoint curves as the timing rules read them: ``(steps, values)`` pairs, validated, and
the one sustained-crossing rule the crossing times share.

Steps may be irregular (log-spaced early, dense around the transition). A crossing time is
linearly interpolated between the two evaluations around it, and counts only if the curve then
*stays* across for several evaluations, so a single noisy checkpoint neither starts nor ends a
phase. NaN values are dropped (with their steps) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class _SupportsArray(Protocol):
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray: ...


Curve = Sequence[float | int] | _SupportsArray  # lists, tuples, arrays, Series
Step = float | int


def clean_curve(steps: Curve, values: Curve, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` as float arrays without the NaN values; a malformed curve (not 1-D,
    lengths differ, steps not finite and strictly increasing, an infinite value) is an error
    naming ``name`` and the problem."""
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    if s.ndim != 1 or v.ndim != 1:
        raise ValueError(f"steps and {name} must be 1-D, got shapes {s.shape} and {v.shape}")
    if len(s) != len(v):
        raise ValueError(f"steps and {name} differ in length: {len(s)} != {len(v)}")
    if not np.all(np.isfinite(s)):
        raise ValueError("steps must be finite")
    if np.any(np.diff(s) <= 0):
        i = int(np.argmax(np.diff(s) <= 0))
        raise ValueError(f"steps must be strictly increasing (step {s[i]:g} then {s[i + 1]:g})")
    if np.any(np.isinf(v)):
        raise ValueError(f"{name} contains infinite values")
    keep = ~np.isnan(v)
    return s[keep], v[keep]


def sustained_crossing(
    s: np.ndarray, v: np.ndarray, level: float, below: bool, start: int, sustain: int
) -> tuple[float, int] | None:
    """First sustained crossing of ``level`` at or after index ``start``: (interpolated step, i).

    ``i`` is the first of ``sustain`` consecutive evaluations strictly across ``level`` and must
    follow an evaluation that is not across (a curve that starts across never "crosses").
    """
    across = v < level if below else v > level
    for i in range(max(start, 1), len(v) - sustain + 1):
        if across[i] and not across[i - 1] and across[i : i + sustain].all():
            v0, v1 = v[i - 1], v[i]
            frac = 0.0 if v0 == level else (level - v0) / (v1 - v0)
            return float(s[i - 1] + frac * (s[i] - s[i - 1])), i
    return None
