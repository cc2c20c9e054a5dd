"""The drop forecast on synthetic runs whose signal and drop time are known exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mbc_interp.analysis.timing.forecast import (
    ForecastConfig,
    Reference,
    drop_level,
    forecast,
    forecast_path,
)
from mbc_interp.analysis.timing.forecast_fit import predictive_bounds

LOG_K = float(np.log(4))
LEVEL = 1.5


def synthetic(
    t_drop: float,
    ln_dz,
    *,
    every: float = 10.0,
    seed: int = 0,
    rel_se: float = 0.03,
    floor_se: float = 0.002,
) -> pd.DataFrame:
    """Evaluations of a run that descends to log K by step ~100, rests there and drops at
    ``t_drop`` (loss = log K / 2 there); Δz = exp(ln_dz(t)) with Gaussian noise of known SE."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, t_drop * 1.5, every)
    loss = LOG_K * (1 + np.exp(-t / 15)) / (1 + np.exp((t - t_drop) / 20))
    dz = np.exp(ln_dz(t))
    se = floor_se + rel_se * dz
    return pd.DataFrame({"step": t, "loss": loss, "dz": dz + se * rng.standard_normal(len(t)),
                         "dz_se": se})  # fmt: skip


def exponential(t_drop: float, tau: float):
    """Δz reaching LEVEL log K exactly at the drop, growing e-fold every ``tau`` steps."""
    return lambda t: np.log(LEVEL * LOG_K) + (t - t_drop) / tau


def bent(t_drop: float, scale: float):
    """A Δz whose growth rate changes (slow, fast, slow): the shape a plain exponential
    extrapolation gets wrong; ``scale`` stretches time."""

    def ln_dz(t):
        x = (t - t_drop) / scale  # 0 at the drop
        return np.log(LEVEL * LOG_K) + 3.0 * np.tanh(x / 300) + 0.003 * x

    return ln_dz


def test_an_exponential_signal_is_forecast_within_tolerance_at_half_the_plateau():
    t_drop = 1000.0
    m = synthetic(t_drop, exponential(t_drop, tau=100))
    fc = forecast(m, LOG_K, as_of=550)
    assert fc.status == "forecast" and fc.method == "extrapolation"
    assert fc.signal == "dz" and fc.as_of_step == 550
    assert abs(fc.t_loss_forecast - t_drop) / t_drop < 0.05
    assert fc.low <= t_drop <= fc.high
    assert fc.doubling_steps == pytest.approx(100 * np.log(2), rel=0.1)


def test_only_data_up_to_the_forecast_time_is_used():
    t_drop = 1000.0
    m = synthetic(t_drop, exponential(t_drop, tau=100))
    garbage = m.copy()
    after = garbage.step > 550
    garbage.loc[after, "dz"] = 1e-6
    garbage.loc[after, "loss"] = 0.0
    assert forecast(m, LOG_K, as_of=550) == forecast(garbage, LOG_K, as_of=550)


def test_no_signal_yet_says_so_and_gives_no_number():
    t_drop = 1000.0
    m = synthetic(t_drop, exponential(t_drop, tau=100))
    fc = forecast(m, LOG_K, as_of=300)  # Δz ~ 2e-3 < its SE: no onset
    assert fc.status == "not_enough_signal"
    assert fc.t_loss_forecast is None and fc.low is None and fc.high is None
    assert "no onset" in fc.reason


def test_before_the_plateau_and_after_the_drop():
    t_drop = 1000.0
    m = synthetic(t_drop, exponential(t_drop, tau=100))
    early = forecast(m, LOG_K, as_of=40)  # still descending towards log K
    assert early.status == "no_plateau" and early.t_loss_forecast is None
    late = forecast(m, LOG_K, as_of=1100)
    assert late.status == "already_dropped"
    assert late.t_loss == pytest.approx(t_drop, abs=5)
    assert forecast(m.iloc[:0], LOG_K).status == "no_plateau"


def test_a_signal_that_stopped_growing_gives_no_forecast():
    m = synthetic(1000.0, lambda t: np.log(0.05) - ((t - 300) / 120) ** 2)  # rose, then fell
    fc = forecast(m, LOG_K, as_of=700)
    assert fc.status == "not_enough_signal" and "not growing" in fc.reason


def test_analog_references_correct_a_shape_the_extrapolation_gets_wrong():
    t_drop = 1200.0
    target = synthetic(t_drop, bent(t_drop, 1.0), seed=5)
    refs = [Reference.from_metrics(synthetic(d, bent(d, d / t_drop), seed=i), LOG_K)
            for i, d in enumerate((800.0, 1000.0, 1500.0, 1800.0))]  # fmt: skip
    assert all(r is not None for r in refs)
    as_of = 800.0
    alone = forecast(target, LOG_K, as_of=as_of)
    analog = forecast(target, LOG_K, as_of=as_of, references=refs)
    assert alone.method == "extrapolation" and analog.method == "analog"
    assert analog.n_references == 4
    err_alone = abs(alone.t_loss_forecast - t_drop) / t_drop
    err_analog = abs(analog.t_loss_forecast - t_drop) / t_drop
    assert err_analog < 0.05 and err_alone > 0.3
    assert analog.low <= t_drop <= analog.high
    # with too few references it falls back to the extrapolation
    assert forecast(target, LOG_K, as_of=as_of, references=refs[:2]).method == "extrapolation"


def test_drop_level_and_forecast_path():
    t_drop = 1000.0
    m = synthetic(t_drop, exponential(t_drop, tau=100), rel_se=0.0)
    assert drop_level(m, LOG_K) == pytest.approx(LEVEL, rel=0.02)
    path = forecast_path(m, LOG_K)
    assert list(path.as_of_step) == list(m.step)
    assert {"no_plateau", "not_enough_signal", "forecast", "already_dropped"} <= set(path.status)
    made = path[path.status == "forecast"]
    assert (made.t_loss_forecast >= made.as_of_step).all()
    late = made[made.as_of_step > 700]
    assert ((late.t_loss_forecast - t_drop).abs() / t_drop < 0.05).all()


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="coverage"):
        ForecastConfig(coverage=1.5)
    with pytest.raises(ValueError, match="level"):
        ForecastConfig(level=0.0)


def test_predictive_bounds_cover_one_more_draw_at_the_stated_rate():
    """For normal draws the Student t interval with sd x sqrt(1 + 1/n) is exact; the quantile
    range of the n draws (the v2 interval) is far too narrow at small n."""
    rng = np.random.default_rng(0)
    trials, n, coverage = 4000, 4, 0.8
    draws = rng.normal(3.0, 0.5, size=(trials, n + 1))
    seen, new = draws[:, :n], draws[:, n]
    covered = quantile = 0
    for x, y in zip(seen, new, strict=True):
        lo, hi = predictive_bounds(x.mean(), x.std(ddof=1) * np.sqrt(1 + 1 / n), n - 1, coverage)
        covered += lo <= y <= hi
        qlo, qhi = np.quantile(x, [0.1, 0.9])
        quantile += qlo <= y <= qhi
    assert covered / trials == pytest.approx(coverage, abs=0.025)
    assert quantile / trials < 0.6
    assert predictive_bounds(1.0, 0.5, 0, coverage) == (-np.inf, np.inf)


def test_the_analog_interval_carries_the_runs_own_doubling_time_error():
    """References that agree (their ratios within 0.5%: an interval from them alone would be
    ~3 steps wide) still leave the run's own growth rate uncertain (~5% on its doubling time
    here, so ~+-9% of the ~400 steps still to wait): a noisier Δz widens it further."""
    t_drop = 1000.0
    refs = [Reference.from_metrics(synthetic(d, exponential(d, tau=100), seed=i, rel_se=0.0,
                                             floor_se=1e-4), LOG_K)
            for i, d in enumerate((800.0, 900.0, 1100.0, 1200.0))]  # fmt: skip
    widths = []
    for rel_se in (0.01, 0.1):
        m = synthetic(t_drop, exponential(t_drop, tau=100), seed=9, rel_se=rel_se)
        fc = forecast(m, LOG_K, as_of=600, references=refs)
        assert fc.method == "analog" and fc.low <= t_drop <= fc.high
        widths.append(fc.high - fc.low)
    assert widths[0] > 40 and widths[1] > 1.3 * widths[0]
