"""Early warning: forecast the loss drop from hidden progress while the run is on the plateau.

The signal is the task's primary hidden-progress signal where it fits the model below
(:func:`forecast_signal`): on the wind tunnel Δz (``dz``: the loss with z deranged within each B
group minus the clean loss, on every evaluation example), which grows from zero on the plateau
while the loss stays at log K; levels are in units of the task's loss scale (log K there).
Rules (the extrapolation's set before the backtest that scores it, the analog's after it; see
REPRODUCTION.md):

- **Data**: only the evaluations at or before the forecast time ``as_of`` are read; the loss
  times on them come from :func:`~mbc_interp.analysis.timing.summary.transition_of`, the summary's
  own rule. Status ``already_dropped`` when that finds the drop, ``no_plateau`` when it finds no
  plateau (yet), else a forecast or ``not_enough_signal``.
- **Fit**: once Δz has an onset (above 3 SE for 3 evaluations,
  :func:`~mbc_interp.analysis.timing.growth.growth_onset`) and ``min_points`` evaluations above
  2 SE after it, Δz = exp(a + b t) is fitted to every evaluation from the plateau start to
  ``as_of`` by weighted least squares on the linear scale (weights 1/SE²: a fit of ln Δz on
  the evaluations above a threshold would keep the early ones only when their noise is upward,
  and flatten the slope), the covariance of (a, b) scaled up by the reduced chi-square when it
  exceeds 1; the doubling time is ln 2 / b. ``not_enough_signal`` without an onset, with too
  few points, or with a slope under ``min_slope_t`` standard errors.
- **Analog** (with at least ``MIN_REFERENCES`` finished reference runs that reached the run's
  current Δz level x, in units of log K): in each reference, the time from reaching x to its
  drop, in units of the doubling time the same fit gave on its evaluations up to then; the
  forecast is now + the median of those ratios x the run's own doubling time. The interval is
  a predictive interval for one more run on the log scale of the time still to wait: Student t
  with n - 1 degrees of freedom (n references) and variance s²(1 + 1/n) + (SE of the run's own
  ln doubling time)², s the SD of the references' ln ratio
  (:func:`~mbc_interp.analysis.timing.forecast_fit.predictive_bounds`). Δz does not grow at one
  rate: slowly after its onset, fastest in the middle of the plateau, slower again near the
  drop; runs of one task share that shape, which the ratio carries over.
- **Extrapolation** (fewer references): the step at which the fitted line reaches
  ``level`` x log K, the Δz at which earlier runs' loss crossed log K / 2 (:func:`drop_level`:
  1.1-1.6 log K on the proxy and the paper's task; default 1.5), never before ``as_of``. The
  fit's own interval (``fit_low``, ``fit_high``: the central ``coverage`` range of the same
  crossing over draws of the fit's parameters and of the level, log-normal ``level_sd``) leaves
  out the error of extrapolating one exponential; the interval given (``low``, ``high``) joins
  it with that error as measured on the backtests
  (:mod:`mbc_interp.analysis.timing.forecast_calibration`), and is open (``as_of`` to no upper
  bound)
  where no calibration applies. ``high`` is ``None``: no upper bound. ``interval`` says how the
  interval was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import pandas as pd

from mbc_interp.analysis.timing.forecast_calibration import (
    Calibration,
    calibrated_interval,
    load_calibration,
)
from mbc_interp.analysis.timing.forecast_fit import (
    crossing_interval,
    exp_fit,
    line_crossing,
    predictive_bounds,
    time_at,
    value_at,
)
from mbc_interp.analysis.timing.growth import growth_onset
from mbc_interp.analysis.timing.signals import transition_of
from mbc_interp.core.checks import check_field
from mbc_interp.tasks.protocol import ProgressSignal, Task, Transition

ForecastStatus = Literal["forecast", "not_enough_signal", "already_dropped", "no_plateau"]
SIGNAL = ("dz", "dz_se")
"""The hidden-progress signal (value column, SE column): Δz on whole target sequences, measured
on every evaluation example (``dz_cand``, on the candidate subsample, is ~3x noisier). The
committed calibration and :data:`DEFAULT_LEVEL` were measured on its backtests: a forecast
from another signal gets neither (an open interval; the analog method needs references)."""
MIN_REFERENCES = 3
"""Reference runs needed for an analog forecast (else the extrapolation alone)."""
COMMITTED = "committed"
"""``forecast(calibration=COMMITTED)``: the calibration committed with the backtest
(:func:`~mbc_interp.analysis.timing.forecast_calibration.load_calibration`)."""
DEFAULT_LEVEL = 1.5
"""Δz at the drop in units of log K (see the module docstring and :func:`drop_level`)."""


@dataclass(frozen=True)
class ForecastConfig:
    """How a forecast is made (see the module docstring)."""

    level: float = DEFAULT_LEVEL
    level_sd: float = 0.25
    min_points: int = 4
    min_slope_t: float = 3.0
    coverage: float = 0.8
    draws: int = 4000
    seed: int = 0

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="forecast")
        need(bool(np.isfinite(self.level)) and self.level > 0, "level", "must be > 0 (log K)")
        need(self.level_sd >= 0, "level_sd", "must be >= 0")
        need(self.min_points >= 3, "min_points", "must be >= 3")
        need(0 < self.coverage < 1, "coverage", "must be in (0, 1)")
        need(self.draws >= 100, "draws", "must be >= 100")


@dataclass(frozen=True)
class Reference:
    """A finished run's hidden-progress curve, to calibrate forecasts of others by."""

    steps: np.ndarray
    dz: np.ndarray
    dz_se: np.ndarray
    log_k: float
    t_plateau_start: float
    t_loss: float

    @classmethod
    def from_metrics(cls, metrics: pd.DataFrame, log_k: float) -> Reference | None:
        """The reference of a finished run (``None`` without a plateau, a drop or a logged
        Δz: a forward-direction run has no selector to replace)."""
        times, _ = transition_of(metrics, _as_transition(log_k))
        if times["t_loss"] is None or times["t_plateau_start"] is None or log_k <= 0:
            return None
        if SIGNAL[0] not in metrics or metrics[SIGNAL[0]].isna().all():
            return None
        steps, v, se = (metrics[c].to_numpy(float) for c in ("step", *SIGNAL))
        return cls(steps, v, se, log_k, times["t_plateau_start"], times["t_loss"])

    def drop_level(self) -> float | None:
        """Δz at ``t_loss`` in units of log K, ln-interpolated between the evaluations around
        it; ``None`` without a positive Δz on both sides."""
        s, v, t = self.steps, self.dz, self.t_loss
        i = int(np.searchsorted(s, t))
        if i == 0 or i >= len(s) or not (v[i - 1] > 0 and v[i] > 0):
            return None
        frac = (t - s[i - 1]) / (s[i] - s[i - 1])
        return float(np.exp((1 - frac) * np.log(v[i - 1]) + frac * np.log(v[i])) / self.log_k)

    def pace_at(self, level: float, config: ForecastConfig) -> float | None:
        """(t_loss - t) / doubling time, where t is when Δz first reached ``level`` (log K
        units, held 2 evaluations) and the doubling time is the forecast's own fit on the
        evaluations up to t: how many of its then doubling times the drop was still away."""
        t = time_at(self.steps, self.dz / self.log_k, level)
        if t is None or t > self.t_loss:
            return None
        keep = self.steps <= t
        fit = _fit(self.steps[keep], self.dz[keep], self.dz_se[keep], self.t_plateau_start,
                   config)  # fmt: skip
        if isinstance(fit, str):
            return None
        return (self.t_loss - t) / fit["doubling"]


@dataclass(frozen=True)
class Forecast:
    """A forecast of ``t_loss`` (steps) made from the evaluations up to ``as_of_step``."""

    status: ForecastStatus
    t_loss_forecast: float | None
    low: float | None
    high: float | None
    signal: str | None
    as_of_step: float | None
    reason: str
    method: str | None = None
    """``analog`` (calibrated on reference runs) or ``extrapolation`` (the fit alone)."""
    t_plateau_start: float | None = None
    t_loss: float | None = None
    """The observed drop (``already_dropped`` only)."""
    doubling_steps: float | None = None
    level: float | None = None
    """The Δz value (nats) the extrapolation aims at."""
    n_points: int = 0
    n_references: int = 0
    fit_low: float | None = None
    fit_high: float | None = None
    """The fit's own interval (``extrapolation`` only; see the module docstring)."""
    interval: str = ""
    """How ``low`` and ``high`` were made."""

    def to_dict(self, tokens_per_step: int | None = None) -> dict[str, Any]:
        out = asdict(self)
        if tokens_per_step is not None:
            for key in ("t_loss_forecast", "low", "high", "as_of_step", "t_loss"):
                v = out[key]
                out[f"{key}_tokens"] = None if v is None else float(v * tokens_per_step)
        return out

    def describe(self) -> str:
        """One line for people: the forecast with its interval, or why there is none."""
        if self.status == "forecast":
            hi = "no upper bound" if self.high is None else f"{self.high:,.0f}"
            how = (f"{self.n_references} reference runs" if self.method == "analog"
                   else "extrapolation")  # fmt: skip
            return (f"loss drop forecast at step {self.t_loss_forecast:,.0f} "
                    f"[{self.low:,.0f} - {hi}] from {self.signal} (doubling every "
                    f"{self.doubling_steps:,.0f} steps; {how}), as of step "
                    f"{self.as_of_step:,.0f}")  # fmt: skip
        return f"{self.status.replace('_', ' ')}: {self.reason}"


def forecast(
    metrics: pd.DataFrame,
    log_k: float | Transition,
    *,
    signal: tuple[str, str] = SIGNAL,
    as_of: float | int | None = None,
    references: Sequence[Reference] = (),
    config: ForecastConfig | None = None,
    calibration: Calibration | str | None = COMMITTED,
) -> Forecast:
    """Forecast the loss drop from ``metrics`` rows at or before ``as_of`` (default: all);
    with ``references`` (finished runs of the same task), by analogy with them. ``log_k``: the
    wind tunnel's log K, or any task's :class:`Transition` (its scale is the unit of the
    levels); ``signal``: the (value, SE) columns of a logged growing signal (see
    :func:`forecast_signal`). The
    extrapolation's interval uses ``calibration`` (default: the committed one; ``None``: none,
    an open interval)."""
    config = config or ForecastConfig()
    if isinstance(calibration, str):
        calibration = load_calibration()
    m = metrics if as_of is None else metrics[metrics["step"] <= as_of]
    if m.empty:
        return Forecast("no_plateau", None, None, None, None, None, "no evaluation yet")
    m = m.reset_index(drop=True)
    now = float(m["step"].iloc[-1])
    transition = _as_transition(log_k)
    log_k = transition.scale
    times, _ = transition_of(m, transition)
    col, se_col = signal
    base: dict[str, Any] = {"signal": None, "as_of_step": now,
                            "t_plateau_start": times["t_plateau_start"]}  # fmt: skip
    if times["t_loss"] is not None:
        return Forecast("already_dropped", None, None, None, **base, t_loss=times["t_loss"],
                        reason=f"the loss dropped at step {times['t_loss']:,.0f}")  # fmt: skip
    if times["status"] == "no_plateau":
        return Forecast("no_plateau", None, None, None, **base, reason=times["reason"])
    base["signal"] = col
    if col not in m or m[col].isna().all():
        return Forecast("not_enough_signal", None, None, None, **base,
                        reason=f"the run logged no {col}")  # fmt: skip
    steps, v, se = (m[c].to_numpy(float) for c in ("step", col, se_col))
    fit = _fit(steps, v, se, times["t_plateau_start"], config, col)
    if isinstance(fit, str):
        return Forecast("not_enough_signal", None, None, None, **base, reason=fit)
    base.update(n_points=fit["n"], doubling_steps=fit["doubling"])
    x_now = value_at(fit, now) / log_k
    paces = [p for r in references if (p := r.pace_at(x_now, config)) is not None and p > 0]
    if len(paces) >= MIN_REFERENCES:
        ln_pace = np.log(paces)
        sd = np.sqrt(ln_pace.var(ddof=1) * (1 + 1 / len(paces)) + fit["doubling_rel_se"] ** 2)
        centre = np.log(np.median(paces) * fit["doubling"])
        lo, hi = (now + np.exp(b) for b in predictive_bounds(centre, sd, len(paces) - 1,
                                                             config.coverage))  # fmt: skip
        mid = now + np.exp(centre)
        return Forecast("forecast", float(mid), float(lo), float(hi), **base, method="analog",
                        n_references=len(paces),
                        interval=f"{config.coverage:.0%} predictive interval from the spread "
                        f"of {len(paces)} reference runs and the doubling time's error",
                        reason=f"{col} at {x_now:.3g} log K, doubling every "
                        f"{fit['doubling']:,.0f} steps; the drop came "
                        f"{np.median(paces):.2f} doubling times after that level in "
                        f"{len(paces)} reference runs")  # fmt: skip
    level = config.level * log_k
    t_hat = max(now, float(line_crossing(fit, np.log(level), fit["coef"])))
    fit_low, fit_high = crossing_interval(fit, np.log(level), now, seed=config.seed,
                                          draws=config.draws, level_sd=config.level_sd,
                                          coverage=config.coverage)  # fmt: skip
    low, high, how = calibrated_interval(
        t_hat, now, times["t_plateau_start"], (fit_low, fit_high), calibration, config.coverage
    )
    return Forecast(
        "forecast", t_hat, low, high, **base, method="extrapolation", level=level,
        fit_low=fit_low, fit_high=fit_high, interval=how,
        reason=f"ln {col} fitted over {fit['n']} evaluations from step {fit['start']:,.0f}, "
        f"extrapolated to {config.level:g} log K",
    )  # fmt: skip


def _fit(
    steps: np.ndarray,
    v: np.ndarray,
    se: np.ndarray,
    plateau_start: float,
    config: ForecastConfig,
    name: str = SIGNAL[0],
) -> dict[str, Any] | str:
    """The growth fit of the module docstring on these evaluations of the signal ``name``, or
    why there is none."""
    z = growth_onset(steps, v, se, sustain=3)
    if z.t is None:
        return f"{name} has no onset yet ({z.reason})"
    window = (steps >= plateau_start) & np.isfinite(v) & np.isfinite(se) & (se > 0)
    n = int((window & (steps >= z.t) & (v > 2 * se)).sum())
    if n < config.min_points:
        return (f"{n} evaluations of {name} above 2 SE since its onset (step {z.t:,.0f}); "
                f"need {config.min_points}")  # fmt: skip
    fit = exp_fit(steps[window], v[window], se[window])
    slope, slope_se = fit["coef"][1], float(np.sqrt(fit["cov"][1, 1]))
    if not slope > config.min_slope_t * slope_se:
        return (f"{name} is not growing clearly: slope {slope:.3g} +- {slope_se:.2g} per "
                f"step over {n} evaluations")  # fmt: skip
    return {**fit, "n": n, "start": plateau_start, "doubling": float(np.log(2) / slope),
            "doubling_rel_se": slope_se / slope}  # fmt: skip


def _as_transition(log_k: float | Transition) -> Transition:
    """The wind tunnel's transition for a bare log K (the rule the summary uses there)."""
    if isinstance(log_k, Transition):
        return log_k
    return Transition("loss", log_k if log_k > 0 else 1.0, rest_level=log_k, fallback="cand_loss")


def forecast_signal(task: Task) -> tuple[str, str] | str:
    """The (value, SE) columns the forecast reads for ``task``: its primary hidden-progress
    signal where it fits the forecast's model, else a sentence naming the task, the signal and
    each requirement it misses. The model (see the module docstring) is an exponential growing
    from zero, fitted with weights from the signal's standard error to the evaluations read at
    the forecast time, so the signal must be logged at every evaluation (an analysis kind's
    column exists only where checkpoints were analysed, not while a run trains), have a
    standard error, rise, and be measured from zero (a signal timed from its value where the
    plateau starts has no zero to grow from)."""
    if not task.progress_signals:
        return f"task {task.name!r} declares no hidden-progress signal to forecast the drop from"
    sig: ProgressSignal = task.progress_signals[0]
    missing = [
        why
        for ok, why in (
            (sig.source == "metrics", f"it is a column of the {sig.source!r} analysis, not "
                                      "logged at every evaluation"),
            (sig.se is not None, "it has no standard error"),
            (sig.direction == "up", "it falls rather than grows"),
            (sig.baseline == "zero", "it is timed from its value where the plateau starts, "
                                     "not from zero"),
        )
        if not ok
    ]  # fmt: skip
    if missing:
        return (f"task {task.name!r}: the forecast extrapolates a logged signal's exponential "
                f"growth from zero, and its primary signal {sig.name!r} does not fit: "
                + "; ".join(missing))  # fmt: skip
    return sig.name, sig.se


def forecast_path(
    metrics: pd.DataFrame,
    log_k: float,
    *,
    references: Sequence[Reference] = (),
    config: ForecastConfig | None = None,
) -> pd.DataFrame:
    """The forecast made at every evaluation (as it would have been shown live): one row per
    ``as_of_step`` with the :class:`Forecast` fields."""
    config = config or ForecastConfig()
    rows = [forecast(metrics, log_k, as_of=s, references=references, config=config).to_dict()
            for s in metrics["step"].to_numpy(float)]  # fmt: skip
    return pd.DataFrame(rows)


def drop_level(metrics: pd.DataFrame, log_k: float) -> float | None:
    """Δz at the observed drop in units of log K (see :meth:`Reference.drop_level`); ``None``
    without a drop."""
    ref = Reference.from_metrics(metrics, log_k)
    return None if ref is None else ref.drop_level()
