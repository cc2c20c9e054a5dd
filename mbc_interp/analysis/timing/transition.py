"""Transition times read off checkpoint curves: the log K plateau, the loss drop, a metric's onset.

Pure numpy on ``(steps, values)`` pairs; steps may be irregular (log-spaced early, dense around
the transition). Every crossing time is linearly interpolated between the two evaluations around
it, and counts only if the curve then *stays* across for several evaluations, so a single noisy
checkpoint neither starts nor ends a phase. NaN values are dropped (with their steps) first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

TransitionStatus = Literal["transitioned", "no_plateau", "no_transition", "not_solved"]


@runtime_checkable
class _SupportsArray(Protocol):
    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray: ...


Curve = Sequence[float | int] | _SupportsArray  # lists, tuples, arrays, Series
Step = float | int


@dataclass(frozen=True)
class LossTransition:
    """Plateau and drop times of an eval-loss curve (times are steps, ``None`` if not reached).

    ``status``: ``"transitioned"`` (all found), ``"no_plateau"``, ``"no_transition"`` (plateau
    but no drop) or ``"not_solved"`` (dropped below ``half`` log K but never below
    ``solved_frac`` log K); ``reason`` says why in words.
    """

    log_k: float
    plateau_loss: float | None
    t_plateau_start: float | None
    t_plateau_end: float | None
    t_loss: float | None
    t_solved: float | None
    status: TransitionStatus
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _clean(steps: Curve, values: Curve, name: str) -> tuple[np.ndarray, np.ndarray]:
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


def _crossing(
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


def detect_loss_transition(
    steps: Curve,
    loss: Curve,
    log_k: float,
    *,
    plateau_tol: float = 0.05,
    min_plateau_points: int = 3,
    half: float = 0.5,
    min_after: int = 2,
    solved_frac: float = 0.05,
) -> LossTransition:
    """Find the log K plateau and the drop after it in an eval-loss curve (nats/example).

    Definitions (band = ``|loss - log_k| <= plateau_tol * log_k``):

    - ``t_plateau_start``: the first step of the first run of ``>= min_plateau_points``
      consecutive evaluations inside the band (no interpolation); none -> ``"no_plateau"``.
    - ``t_loss``: the first downward crossing of ``half * log_k`` after ``t_plateau_start``
      whose evaluation and the next ``min_after - 1`` are all below it, linearly interpolated
      between the evaluations either side; none -> ``"no_transition"``.
    - ``t_plateau_end``: the last step before ``t_loss`` (or, with no drop, the last step) at
      which the loss is inside the band.
    - ``plateau_loss``: median loss over the evaluations from ``t_plateau_start`` to
      ``t_plateau_end`` inclusive.
    - ``t_solved``: the first downward crossing of ``solved_frac * log_k`` at or after the
      ``t_loss`` crossing (from the start if there is no plateau), sustained and interpolated
      the same way; ``None`` after a drop -> ``"not_solved"``.

    K = 1 (``log_k == 0``) has no plateau: ``"no_plateau"``. NaN losses are dropped.
    """
    if not (np.isfinite(log_k) and log_k >= 0):
        raise ValueError(f"log_k must be finite and >= 0, got {log_k}")
    if not 0 < plateau_tol < 1:
        raise ValueError(f"plateau_tol must be in (0, 1), got {plateau_tol}")
    if not 0 < solved_frac < half < 1:
        raise ValueError(f"need 0 < solved_frac < half < 1, got {solved_frac}, {half}")
    if min_plateau_points < 1 or min_after < 1:
        raise ValueError("min_plateau_points and min_after must be >= 1")
    s, v = _clean(steps, loss, "loss")
    log_k = float(log_k)

    def result(status: TransitionStatus, reason: str, **times: float | None) -> LossTransition:
        fields = dict.fromkeys(("plateau_loss", "t_plateau_start", "t_plateau_end", "t_loss"))
        return LossTransition(log_k=log_k, status=status, reason=reason, **{**fields, **times})

    if len(v) == 0:
        return result("no_plateau", "no finite loss values", t_solved=None)
    if log_k == 0:
        return result("no_plateau", "K = 1 (log K = 0): there is no plateau", t_solved=None)
    in_band = np.abs(v - log_k) <= plateau_tol * log_k
    n = min_plateau_points
    start = next((i for i in range(len(v) - n + 1) if in_band[i : i + n].all()), None)
    if start is None:
        solved = _crossing(s, v, solved_frac * log_k, True, 0, min_after)
        m = int(np.argmin(v))
        return result(
            "no_plateau",
            f"loss never stayed within {plateau_tol:.0%} of log K for {min_plateau_points} "
            f"evaluations (min loss {v[m]:.4g} at step {s[m]:g})",
            t_solved=None if solved is None else solved[0],
        )
    drop = _crossing(s, v, half * log_k, True, start + 1, min_after)
    stop = drop[1] if drop is not None else len(v)
    end = start + int(np.flatnonzero(in_band[start:stop])[-1])
    times: dict[str, float | None] = {
        "plateau_loss": float(np.median(v[start : end + 1])),
        "t_plateau_start": float(s[start]),
        "t_plateau_end": float(s[end]),
    }
    if drop is None:
        return result(
            "no_transition",
            f"loss never fell below {half:g} log K after the plateau "
            f"(last loss {v[-1]:.4g} = {v[-1] / log_k:.2f} log K at step {s[-1]:g})",
            t_solved=None,
            **times,
        )
    solved = _crossing(s, v, solved_frac * log_k, True, drop[1], min_after)
    if solved is None:
        return result(
            "not_solved",
            f"loss fell below {half:g} log K at step {drop[0]:.6g} but never stayed below "
            f"{solved_frac:g} log K (min loss {v[drop[1] :].min():.4g})",
            t_loss=drop[0],
            t_solved=None,
            **times,
        )
    return result(
        "transitioned",
        f"plateau from step {s[start]:g}, loss below {half:g} log K at step {drop[0]:.6g}, "
        f"below {solved_frac:g} log K at step {solved[0]:.6g}",
        t_loss=drop[0],
        t_solved=solved[0],
        **times,
    )


def detect_rest_transition(
    steps: Curve,
    signal: Curve,
    log_k: float,
    rest_start: Step | None,
    *,
    half: float = 0.5,
    min_after: int = 2,
    solved_frac: float = 0.05,
    pre_frac: float = 0.9,
) -> LossTransition:
    """Plateau and drop of a signal with no band around log K to rest in, the plateau timed
    from where another curve first rests (the candidate loss on the paper's task: it sits above
    log K by an amount that depends on K and on training while z is ignored, so a 5% band would
    lose whole K levels; the raw loss's first rest marks the plateau's start instead).

    - ``t_plateau_start``: ``rest_start``; ``None`` -> ``"no_plateau"``.
    - ``t_loss``: the first downward crossing of ``half * log_k`` after ``t_plateau_start``,
      held for ``min_after`` evaluations and interpolated; a signal already below it there ->
      ``"no_plateau"`` (the drop came before the rest); none -> ``"no_transition"``.
    - ``t_plateau_end``: the last evaluation before ``t_loss`` (or the last) with the signal at
      or above ``pre_frac * log_k``; ``plateau_loss`` the signal's median from start to end.
    - ``t_solved``: as in :func:`detect_loss_transition`.
    """
    s, v = _clean(steps, signal, "signal")
    log_k = float(log_k)

    def result(status: TransitionStatus, reason: str, **times: float | None) -> LossTransition:
        fields = dict.fromkeys(("plateau_loss", "t_plateau_start", "t_plateau_end", "t_loss",
                                "t_solved"))  # fmt: skip
        return LossTransition(log_k=log_k, status=status, reason=reason, **{**fields, **times})

    if rest_start is None or not len(v) or log_k == 0:
        return result("no_plateau", "the raw loss never rests before the drop")
    start = int(np.searchsorted(s, rest_start))
    if start >= len(v) or v[start] < half * log_k:
        return result("no_plateau", f"the signal is below {half:g} log K where the raw loss "
                                    f"first rests (step {rest_start:g})")  # fmt: skip
    drop = _crossing(s, v, half * log_k, True, start + 1, min_after)
    stop = drop[1] if drop is not None else len(v)
    high = np.flatnonzero(v[start:stop] >= pre_frac * log_k)
    end = start + int(high[-1]) if len(high) else start
    times: dict[str, float | None] = {
        "plateau_loss": float(np.median(v[start : end + 1])),
        "t_plateau_start": float(s[start]),
        "t_plateau_end": float(s[end]),
    }
    if drop is None:
        why = f"the signal never fell below {half:g} log K after the rest"
        return result("no_transition", f"{why} (last {v[-1]:.4g} at step {s[-1]:g})", **times)
    solved = _crossing(s, v, solved_frac * log_k, True, drop[1], min_after)
    if solved is None:
        why = f"below {half:g} log K at step {drop[0]:.6g}, never held below {solved_frac:g} log K"
        return result("not_solved", why, t_loss=drop[0], **times)
    return result(
        "transitioned",
        f"rest from step {s[start]:g}, signal below {half:g} log K at step {drop[0]:.6g}, "
        f"below {solved_frac:g} log K at step {solved[0]:.6g}",
        t_loss=drop[0], t_solved=solved[0], **times,
    )  # fmt: skip


def onset(
    steps: Curve,
    values: Curve,
    *,
    frac: float = 0.5,
    baseline: float | None = None,
    final: float | None = None,
    n_edge: int = 3,
    sustain: int = 2,
) -> float | None:
    """Step at which a curve first crosses ``baseline + frac * (final - baseline)`` for good.

    ``baseline``/``final`` default to the median of the first/last ``n_edge`` (non-NaN) values,
    and the crossing counts only if that evaluation and the next ``sustain - 1`` stay across:
    medians of the edges and the sustain rule keep one noisy checkpoint from moving either the
    level or the time. Rising if ``final > baseline``, falling (downward crossing) if lower.
    The step is linearly interpolated between the evaluations either side. ``None`` if
    ``|final - baseline|`` is within 1e-9 of the curve's range (flat curve), or if there is no
    sustained crossing (a curve already across at its first evaluation does not cross).
    """
    if not 0 < frac < 1:
        raise ValueError(f"frac must be in (0, 1), got {frac}")
    if n_edge < 1 or sustain < 1:
        raise ValueError("n_edge and sustain must be >= 1")
    s, v = _clean(steps, values, "values")
    if len(v) < 2:
        return None
    lo = float(np.median(v[:n_edge])) if baseline is None else float(baseline)
    hi = float(np.median(v[-n_edge:])) if final is None else float(final)
    span = max(float(np.ptp(v)), abs(hi - lo))
    if span == 0 or abs(hi - lo) <= 1e-9 * span:
        return None
    hit = _crossing(s, v, lo + frac * (hi - lo), hi < lo, 0, sustain)
    return None if hit is None else hit[0]


def lead_fraction(
    t_route: Step | None, t_loss: Step | None, t_plateau_start: Step | None
) -> float | None:
    """``(t_loss - t_route) / (t_loss - t_plateau_start)``: how far ahead of the loss drop the
    routing onset comes, as a fraction of the waiting time on the plateau (0: together; 1: at
    plateau entry; < 0: after the drop). ``None`` if any input is ``None`` or
    ``t_loss <= t_plateau_start``.
    """
    if t_route is None or t_loss is None or t_plateau_start is None or t_loss <= t_plateau_start:
        return None
    return float((t_loss - t_route) / (t_loss - t_plateau_start))


def steps_to_tokens(t: Step | None, tokens_per_step: Step) -> float | None:
    """``t * tokens_per_step`` (training tokens seen by step ``t``); ``None`` if ``t`` is None."""
    if tokens_per_step <= 0:
        raise ValueError(f"tokens_per_step must be > 0, got {tokens_per_step}")
    return None if t is None else float(t * tokens_per_step)


# -- growing signals: onset against a noise floor, growth rate -----------------------------------
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


def phase_of(t: Step | None, t_plateau_start: Step | None, t_loss: Step | None) -> str | None:
    """Where a time falls: ``before_plateau``, ``plateau``, ``after_drop`` (None if unknown)."""
    if t is None:
        return None
    if t_plateau_start is not None and t < t_plateau_start:
        return "before_plateau"
    if t_loss is not None and t > t_loss:
        return "after_drop"
    return "plateau"


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
    s, v = _clean(steps, values, "values")
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
