"""Transition times read off checkpoint curves: the log K plateau, the loss drop, a metric's onset.

Pure numpy on ``(steps, values)`` pairs (:mod:`mbc_interp.analysis.timing.curves`): every
crossing time is linearly interpolated and counts only if the curve then stays across. Growing
signals' onsets are in :mod:`~mbc_interp.analysis.timing.growth`, resting stretches in
:mod:`~mbc_interp.analysis.timing.stretches`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from mbc_interp.analysis.timing.curves import Curve, Step, clean_curve, sustained_crossing

TransitionStatus = Literal["transitioned", "no_plateau", "no_transition", "not_solved"]


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
    s, v = clean_curve(steps, loss, "loss")
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
        solved = sustained_crossing(s, v, solved_frac * log_k, True, 0, min_after)
        m = int(np.argmin(v))
        return result(
            "no_plateau",
            f"loss never stayed within {plateau_tol:.0%} of log K for {min_plateau_points} "
            f"evaluations (min loss {v[m]:.4g} at step {s[m]:g})",
            t_solved=None if solved is None else solved[0],
        )
    drop = sustained_crossing(s, v, half * log_k, True, start + 1, min_after)
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
    solved = sustained_crossing(s, v, solved_frac * log_k, True, drop[1], min_after)
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
    s, v = clean_curve(steps, signal, "signal")
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
    drop = sustained_crossing(s, v, half * log_k, True, start + 1, min_after)
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
    solved = sustained_crossing(s, v, solved_frac * log_k, True, drop[1], min_after)
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
    s, v = clean_curve(steps, values, "values")
    if len(v) < 2:
        return None
    lo = float(np.median(v[:n_edge])) if baseline is None else float(baseline)
    hi = float(np.median(v[-n_edge:])) if final is None else float(final)
    span = max(float(np.ptp(v)), abs(hi - lo))
    if span == 0 or abs(hi - lo) <= 1e-9 * span:
        return None
    hit = sustained_crossing(s, v, lo + frac * (hi - lo), hi < lo, 0, sustain)
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


def phase_of(t: Step | None, t_plateau_start: Step | None, t_loss: Step | None) -> str | None:
    """Where a time falls: ``before_plateau``, ``plateau``, ``after_drop`` (None if unknown)."""
    if t is None:
        return None
    if t_plateau_start is not None and t < t_plateau_start:
        return "before_plateau"
    if t_loss is not None and t > t_loss:
        return "after_drop"
    return "plateau"
