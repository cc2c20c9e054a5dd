"""Growing signals (Δz, a head's z-effect): when one leaves its noise floor, and how fast it
grows there."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mbc_interp.analysis.timing.curves import Curve

ONSET_Z = 3.0
"""A growing signal is above its noise floor where it exceeds ONSET_Z standard errors."""


@dataclass(frozen=True)
class GrowthOnset:
    """When a signal that grows from zero (Δz, a head's z-effect) leaves its noise floor.

    Rules (fixed before any sweep was run on them):

    - the noise floor at each evaluation is ``ONSET_Z`` (3) standard errors of the signal there
      (or a given floor, e.g. the signal's value under a null model); its null value is 0, the
      value of any model that ignores z, so no baseline is taken from the curve itself (and
      never from initialisation);
    - ``t``: the first evaluation that is above the floor and stays above for ``sustain``
      evaluations, after one that is not; the step is interpolated linearly in
      ``value / floor`` between the two evaluations around the crossing. A curve that is above
      its floor from its first evaluation has no onset (``reason`` says so), as has one that
      never rises above it for good;
    - a half-way crossing on a linear scale is *not* used: an exponential reaches half of its
      final value only near its end.
    """

    t: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def growth_onset(
    steps: Curve,
    values: Curve,
    se: Curve | None = None,
    *,
    floor: Curve | float | None = None,
    z: float = ONSET_Z,
    sustain: int = 3,
) -> GrowthOnset:
    """Onset of a growing signal above its noise floor (see :class:`GrowthOnset`): ``z * se``
    per evaluation, or ``floor`` (scalar or per evaluation) when given."""
    if (se is None) == (floor is None):
        raise ValueError("give exactly one of se (standard errors) or floor")
    if sustain < 1:
        raise ValueError(f"sustain must be >= 1, got {sustain}")
    s = np.asarray(steps, dtype=float)
    v = np.asarray(values, dtype=float)
    f = z * np.asarray(se, dtype=float) if se is not None else np.broadcast_to(
        np.asarray(floor, dtype=float), v.shape
    )
    if not (s.shape == v.shape == f.shape and s.ndim == 1):
        raise ValueError(f"steps, values, floor differ in shape: {s.shape}, {v.shape}, {f.shape}")
    keep = np.isfinite(v) & np.isfinite(f)
    s, v, f = s[keep], v[keep], np.maximum(f[keep], 1e-12)
    if len(v) == 0:
        return GrowthOnset(None, "no finite values")
    above = v > f
    if above[: sustain].all() if len(v) >= sustain else above.all():
        return GrowthOnset(None, f"above its noise floor from the first evaluation (step {s[0]:g})")
    for i in range(1, len(v) - sustain + 1):
        if above[i] and not above[i - 1] and above[i : i + sustain].all():
            r0, r1 = v[i - 1] / f[i - 1], v[i] / f[i]
            frac = 0.0 if r1 == r0 else (1.0 - r0) / (r1 - r0)
            t = float(s[i - 1] + np.clip(frac, 0.0, 1.0) * (s[i] - s[i - 1]))
            what = f"{z:g} SE" if se is not None else "its floor"
            return GrowthOnset(t, f"above {what} for {sustain} evaluations from step {s[i]:g}")
    return GrowthOnset(None, f"never above its noise floor for {sustain} evaluations in a row")


@dataclass(frozen=True)
class Growth:
    """Exponential growth rate of a signal over a window: a weighted fit of log(value) on step
    (weights (value / se)^2, the inverse variance of log(value)), over the evaluations in the
    window whose value exceeds 2 standard errors; ``doubling`` = ln 2 / slope (steps)."""

    doubling: float | None
    slope: float | None
    n_points: int
    window: tuple[float, float] | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def growth_rate(
    steps: Curve, values: Curve, se: Curve, start: float | None, stop: float | None
) -> Growth:
    """Doubling time of ``values`` between ``start`` and ``stop`` (see :class:`Growth`)."""
    s, v, e = (np.asarray(x, dtype=float) for x in (steps, values, se))
    lo = -np.inf if start is None else start
    hi = np.inf if stop is None else stop
    use = (s >= lo) & (s <= hi) & np.isfinite(v) & np.isfinite(e) & (v > 2 * e) & (e > 0)
    if use.sum() < 3:
        return Growth(None, None, int(use.sum()), None, "fewer than 3 evaluations above 2 SE")
    x, y, w = s[use], np.log(v[use]), (v[use] / e[use]) ** 2
    slope = float(np.polyfit(x, y, 1, w=np.sqrt(w))[0])
    window = (float(x[0]), float(x[-1]))
    if slope <= 0:
        return Growth(None, slope, int(use.sum()), window, "not growing (slope <= 0)")
    return Growth(float(np.log(2) / slope), slope, int(use.sum()), window, "fitted")
