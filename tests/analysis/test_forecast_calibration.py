"""The extrapolation's calibrated interval: known error distributions, the committed calibration
recomputed from the committed backtest, and held-out scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbc_interp.analysis.timing.forecast_calibration import (
    CALIBRATION_FILE,
    MIN_ERRORS,
    Calibration,
    calibrated_interval,
    fit_calibration,
    held_out_intervals,
    load_calibration,
)
from mbc_interp.sweep.backtest import coverage_by_fraction

BACKTEST = Path(__file__).resolve().parents[2] / "results" / "forecast" / "backtest.csv"


def _simulated(rng: np.random.Generator, n: int, sd_of_p) -> tuple[np.ndarray, np.ndarray]:
    """``n`` forecasts (plateau start 0, forecast length 1000) made at a believed fraction ``p``
    whose real plateau length is 1000 exp(e), e ~ N(0.1, sd(p)); only those still on the plateau
    at the forecast time (a real backtest sees no other)."""
    ps, es = [], []
    while len(ps) < n:
        p = rng.uniform(0.05, 1.0)
        e = rng.normal(0.1, sd_of_p(p))
        if 1000 * np.exp(e) > 1000 * p:
            ps.append(p)
            es.append(e)
    return np.array(ps), np.array(es)


def test_nominal_coverage_holds_on_runs_with_a_known_error_distribution():
    rng = np.random.default_rng(0)
    sd = lambda p: 0.6 * (1.1 - p)  # noqa: E731 -- wider early on the plateau
    p, e = _simulated(rng, 400, sd)
    cal = Calibration(tuple(p), tuple(e))
    p_new, e_new = _simulated(rng, 3000, sd)
    hits, widths = [], {}
    for q, err in zip(p_new, e_new, strict=True):
        low, high, how = calibrated_interval(1000.0, 1000.0 * q, 0.0, (1000.0, 1000.0), cal, 0.8)
        assert high is not None and "backtest forecasts" in how
        hits.append(low <= 1000 * np.exp(err) <= high)
        widths.setdefault(q < 0.4, []).append(np.log(high / low))
    assert np.mean(hits) == pytest.approx(0.8, abs=0.03)
    assert np.mean(widths[True]) > 1.5 * np.mean(widths[False])  # early: wider


def test_the_fit_interval_alone_covers_far_less_than_it_states():
    """The failure the calibration fixes: the fit's narrow interval misses a biased
    extrapolation; joined with the calibrated error it covers."""
    rng = np.random.default_rng(1)
    p, e = _simulated(rng, 200, lambda p: 0.3)
    cal = Calibration(tuple(p), tuple(e))
    truth = 1000 * np.exp(0.35)  # the drop 42% later than the extrapolated 1000
    fit = (950.0, 1050.0)
    assert not fit[0] <= truth <= fit[1]
    low, high, _ = calibrated_interval(1000.0, 500.0, 0.0, fit, cal, 0.8)
    assert low <= fit[0] and high >= fit[1] and low <= truth <= high


def test_without_a_calibration_the_interval_is_open_never_the_fits_alone():
    low, high, how = calibrated_interval(1000.0, 400.0, 100.0, (950.0, 1050.0), None, 0.8)
    assert (low, high) == (400.0, None) and how.startswith("open")
    few = Calibration((0.5,) * (MIN_ERRORS - 1), (0.01,) * (MIN_ERRORS - 1))
    low, high, how = calibrated_interval(1000.0, 500.0, 0.0, (950.0, 1050.0), few, 0.8)
    assert (low, high) == (500.0, None) and f"need {MIN_ERRORS}" in how
    many = Calibration((0.5,) * 50, (0.01,) * 50)  # the other bins stay uncalibrated
    assert calibrated_interval(1000.0, 100.0, 0.0, (950.0, 1050.0), many, 0.8)[1] is None
    assert calibrated_interval(1000.0, 500.0, 0.0, (950.0, 1050.0), many, 0.8)[1] == 1050.0


def test_the_committed_calibration_is_the_committed_backtests_errors():
    table = pd.read_csv(BACKTEST)
    committed = load_calibration(CALIBRATION_FILE)
    assert committed is not None
    again = fit_calibration(table)
    assert np.allclose(again.p, committed.p) and np.allclose(again.e, committed.e)
    assert len(committed.e) == int(((table.method == "extrapolation")
                                    & table.prediction.notna()).sum())  # fmt: skip


def test_held_out_intervals_never_use_the_scored_sweeps_own_errors():
    table = pd.read_csv(BACKTEST)
    moved = table.copy()
    own = moved.sweep == "noise_cpu"
    moved.loc[own, "t_loss"] = moved.loc[own, "t_loss"] * 3  # its own truths: far off
    a, b = held_out_intervals(table), held_out_intervals(moved)
    pd.testing.assert_series_equal(a.loc[own, "low"], b.loc[own, "low"])
    pd.testing.assert_series_equal(a.loc[own, "high"], b.loc[own, "high"])
    assert not a.loc[~own, "high"].equals(b.loc[~own, "high"])  # the others' do change


def test_the_held_out_sweep_is_covered_at_about_the_stated_rate():
    cov = coverage_by_fraction(held_out_intervals(pd.read_csv(BACKTEST)))
    noise = cov[(cov.sweep == "noise_cpu") & (cov.method == "extrapolation")]
    assert noise.covered.sum() / noise.predicted.sum() >= 0.75
    every = cov[(cov.sweep == "all") & (cov.method == "extrapolation")]
    assert every.covered.sum() / every.predicted.sum() >= 0.75


def test_coverage_by_fraction_counts_every_prediction():
    t = pd.DataFrame({
        "sweep": ["a", "a", "a", "b"], "method": ["extrapolation"] * 4,
        "fraction": [0.5, 0.5, 0.75, 0.5], "prediction": [1.0, 1.0, None, 1.0],
        "covered": [True, False, None, True],
    })  # fmt: skip
    cov = coverage_by_fraction(t).set_index(["sweep", "fraction"])
    assert cov.loc[("a", 0.5), "coverage"] == 0.5 and ("a", 0.75) not in cov.index
    assert cov.loc[("all", 0.5), ["predicted", "covered"]].tolist() == [3, 2]
