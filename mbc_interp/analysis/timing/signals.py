"""A task's transition and hidden-progress signals, timed by one set of rules for every task.

Rules (fixed before the sweeps that report them):

- **The transition** (:func:`transition_of`): on a task with a resting level (the wind
  tunnel's log K) the plateau is where the transition metric stays within 5% of it and the
  drop its held crossing of half of it (:func:`~mbc_interp.analysis.timing.transition.
  detect_loss_transition`); where the metric never rests there and the task names a
  ``fallback`` metric that was logged, the times come from the fallback, the plateau starting
  where the per-token loss first rests (:func:`~mbc_interp.analysis.timing.transition.
  detect_rest_transition`). A band plateau that starts after the fallback has already dropped
  is not a rest but a pause on the way down (the paper task's raw loss, which rests at the
  layout-only value, ~14 nats an example, can pause inside log K's band for a few evaluations
  after z is in use): the times then come from the fallback too. (That check was added on
  2026-12-07, when one paper-regime run, N = 20,000 seed 1, had been timed from such a pause;
  the rule it enforces, a plateau is where the metric rests, is the one stated here since the
  sweep began.) On a task without a resting level (modular addition) the plateau starts where
  ``rest_from`` (the training loss) is first held below ``solved_frac x scale``
  for 3 evaluations, and the drop is the transition metric's (the test loss's) held crossing of
  half the scale after it (:func:`~mbc_interp.analysis.timing.transition.detect_rest_transition`).
- **Progress onsets** (:func:`signal_onset`): a signal with ``baseline = "zero"`` and a
  standard error leaves its noise floor where it exceeds 3 SE, held for 3 evaluations (3
  checkpoints for a per-checkpoint signal is too many where checkpoints are sparse: 2, as for a
  head's effect), the Δz rule; one with ``baseline = "rest"`` is measured as its change from its
  value at the plateau's start, signed by its direction, against 3 SE where it has one, else
  against ``REL_FLOOR`` (5%) of that value, and searched from the plateau's start on. The
  primary signal's onset is ``t_progress``; every signal's onset, phase and lead fraction are in
  ``progress``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.timing.growth import growth_onset, growth_rate
from mbc_interp.analysis.timing.stretches import first_stretch
from mbc_interp.analysis.timing.transition import (
    detect_loss_transition,
    detect_rest_transition,
    lead_fraction,
    phase_of,
)
from mbc_interp.tasks.protocol import ProgressSignal, Transition

SOLVED_FRAC = 0.05
"""A metric counts as solved below this fraction of its scale (as the training loop's default)."""
REST_HELD = 3
"""Evaluations ``rest_from`` must stay solved for the plateau to start."""
METRIC_SUSTAIN = 3
"""Evaluations a logged signal must stay above its floor."""
CHECKPOINT_SUSTAIN = 2
"""Checkpoints a per-checkpoint signal must stay above its floor (checkpoints are sparser)."""
REL_FLOOR = 0.05
"""Without a standard error, a ``rest``-baseline signal must move this fraction of its value."""


def transition_of(metrics: pd.DataFrame, transition: Transition) -> tuple[dict[str, Any], str]:
    """The loss times of a metrics table and the metric they were read from (see the rules)."""
    m = metrics
    if m.empty:
        raise ValueError("no evaluation in the metrics yet")
    if transition.metric not in m:
        raise ValueError(f"the metrics hold no {transition.metric!r} (the task's transition)")
    steps = m["step"].to_numpy(float)
    values = m[transition.metric].to_numpy(float)
    if transition.rest_level is None:
        start = _held_below(m, transition.rest_from, SOLVED_FRAC * transition.scale)
        out = detect_rest_transition(steps, values, transition.scale, start).to_dict()
        if start is None:
            out["reason"] = (f"{transition.rest_from} never stayed below {SOLVED_FRAC:g} x "
                             f"{transition.scale:.4g} for {REST_HELD} evaluations: the plateau "
                             "after it never started")  # fmt: skip
        return out, transition.metric
    lt = detect_loss_transition(steps, values, transition.rest_level)
    fb = transition.fallback
    if fb is None or fb not in m or not m[fb].notna().any():
        return lt.to_dict(), transition.metric
    rest = first_stretch(steps, m["loss_tok"]).start if "loss_tok" in m else None
    cand = detect_rest_transition(steps, m[fb].to_numpy(float), transition.rest_level, rest)
    paused = lt.t_plateau_start is not None and cand.t_loss is not None and (
        cand.t_loss < lt.t_plateau_start
    )
    if lt.status == "no_plateau" or paused:
        out = cand.to_dict()
        out["raw_loss_reason"] = lt.reason if not paused else (
            f"{lt.reason}; a pause on the way down: {fb} fell below half the level first"
        )
        return out, fb
    return lt.to_dict(), transition.metric


def _held_below(m: pd.DataFrame, metric: str | None, level: float) -> float | None:
    """The first evaluation from which ``metric`` stays below ``level`` for REST_HELD of them."""
    if metric is None or metric not in m:
        return None
    s, v = m["step"].to_numpy(float), m[metric].to_numpy(float)
    keep = np.isfinite(v)
    s, v = s[keep], v[keep]
    below = v < level
    for i in range(len(v) - REST_HELD + 1):
        if below[i : i + REST_HELD].all():
            return float(s[i])
    return None


def signal_series(
    signal: ProgressSignal, metrics: pd.DataFrame, table: pd.DataFrame
) -> pd.DataFrame | None:
    """``step``, ``value``, ``se`` (NaN where none) of a signal, or ``None`` where it was not
    measured: from the metrics, or from its kind's rows of the analysis timeline."""
    if signal.source == "metrics":
        if signal.name not in metrics or metrics[signal.name].isna().all():
            return None
        se = metrics[signal.se] if signal.se and signal.se in metrics else np.nan
        out = pd.DataFrame({"step": metrics["step"], "value": metrics[signal.name], "se": se})
        return out.dropna(subset=["value"]).reset_index(drop=True)
    if table.empty or "analysis" not in table:
        return None
    rows = table[(table.analysis == signal.source) & (table.component == "all")]
    wide = rows.pivot_table(index="step", columns="metric", values="value")
    if signal.name not in wide:
        return None
    se = wide[signal.se] if signal.se and signal.se in wide else np.nan
    out = pd.DataFrame({"step": wide.index.to_numpy(float), "value": wide[signal.name].to_numpy(),
                        "se": se if np.isscalar(se) else se.to_numpy()})  # fmt: skip
    return out.dropna(subset=["value"]).reset_index(drop=True)


def signal_onset(
    signal: ProgressSignal, series: pd.DataFrame, t_plateau_start: float | None,
    t_loss: float | None,
) -> dict[str, Any]:  # fmt: skip
    """A signal's onset, phase and lead fraction (see the rules), with the reason for a null."""
    sustain = METRIC_SUSTAIN if signal.source == "metrics" else CHECKPOINT_SUSTAIN
    s, v, se = (series[c].to_numpy(float) for c in ("step", "value", "se"))
    has_se = np.isfinite(se).any()
    sign = 1.0 if signal.direction == "up" else -1.0
    if signal.baseline == "zero":
        change, first = sign * v, 0
    else:
        if t_plateau_start is None:
            return _onset_row(signal, None, "no plateau start to measure its change from",
                              t_plateau_start, t_loss)  # fmt: skip
        first = int(np.searchsorted(s, t_plateau_start))
        if first >= len(s):
            return _onset_row(signal, None, "not measured after the plateau starts",
                              t_plateau_start, t_loss)  # fmt: skip
        change = sign * (v - v[first])
    s, change, se = s[first:], change[first:], se[first:]
    if has_se:
        onset = growth_onset(s, change, se, sustain=sustain)
    else:
        ref = abs(v[first]) if signal.baseline == "rest" else float(np.nanmax(np.abs(v)))
        onset = growth_onset(s, change, floor=max(REL_FLOOR * ref, 1e-12), sustain=sustain)
    row = _onset_row(signal, onset.t, onset.reason, t_plateau_start, t_loss)
    if has_se and signal.baseline == "zero" and signal.direction == "up":
        start = onset.t if onset.t is not None else t_plateau_start
        g = growth_rate(s, change, se, start, t_loss)
        row["doubling_steps"], row["growth_fit"] = g.doubling, g.to_dict()
    return row


def _onset_row(signal: ProgressSignal, t: float | None, reason: str, start: float | None,
               t_loss: float | None) -> dict[str, Any]:  # fmt: skip
    phase = phase_of(t, start, t_loss)
    lead = lead_fraction(t, t_loss, start) if phase == "plateau" else None
    return {"source": signal.source, "direction": signal.direction, "baseline": signal.baseline,
            "t": t, "reason": reason, "phase": phase, "lead_fraction": lead}  # fmt: skip


def progress_summary(
    signals: tuple[ProgressSignal, ...], metrics: pd.DataFrame, table: pd.DataFrame,
    t_plateau_start: float | None, t_loss: float | None,
) -> dict[str, Any]:  # fmt: skip
    """``progress_signal`` (the primary's name), ``t_progress`` (its onset, with
    ``t_progress_reason``) and ``progress`` (every signal's onset row)."""
    if not signals:
        why = "the task declares no hidden-progress signal"
        return {"progress_signal": None, "t_progress": None, "t_progress_reason": why,
                "progress": {}}  # fmt: skip
    rows: dict[str, Any] = {}
    for sig in signals:
        series = signal_series(sig, metrics, table)
        if series is None or series.empty:
            where = "the metrics" if sig.source == "metrics" else f"the {sig.source!r} analysis"
            rows[sig.name] = {"source": sig.source, "t": None,
                              "reason": f"not measured: {where} holds no {sig.name!r}"}  # fmt: skip
        else:
            rows[sig.name] = signal_onset(sig, series, t_plateau_start, t_loss)
    primary = rows[signals[0].name]
    return {"progress_signal": signals[0].name, "t_progress": primary["t"],
            "t_progress_reason": primary["reason"], "progress": rows}  # fmt: skip
