"""The backtest's baselines and its per-block table, on records whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mbc_interp.sweep.backtest import METHODS, _baselines, block_summary


def record(t_loss: float, n_examples: int, batch: int = 100) -> dict:
    return {"t_loss": t_loss, "n_examples": n_examples, "batch": batch, "tokens_per_step": 10}


def test_epochs_baseline_is_the_median_epochs_with_an_interval_that_opens_when_unmeasurable():
    rec = record(0.0, 1000)
    others = [record(t, 1000) for t in (400.0, 500.0, 600.0)]  # 40, 50, 60 epochs
    pred, low, high = _baselines(rec, others, 0.8)["epochs"]
    assert pred == pytest.approx(500.0)
    assert low < 400.0 and high > 600.0  # one more run: wider than the others' own range
    pred, low, high = _baselines(rec, others[:1], 0.8)["epochs"]
    assert pred == pytest.approx(400.0) and low == 0.0 and high is None


def test_power_law_interval_widens_away_from_the_sizes_it_was_fitted_on():
    # t_loss (tokens) = N^1.2 with a little scatter, at N = 100 .. 800
    rng = np.random.default_rng(0)
    others = [record(float(n**1.2 * np.exp(0.05 * rng.standard_normal()) / 10), n)
              for n in (100, 200, 200, 400, 400, 800)]  # fmt: skip
    near = _baselines(record(0.0, 283), others, 0.8)["power_law"]
    far = _baselines(record(0.0, 6400), others, 0.8)["power_law"]
    assert near[0] == pytest.approx(283**1.2 / 10, rel=0.1)
    assert far[0] == pytest.approx(6400**1.2 / 10, rel=0.25)
    assert np.log(far[2] / far[1]) > 1.5 * np.log(near[2] / near[1])


def test_block_summary_counts_the_reference_point_in_every_block_it_belongs_to():
    errors = {"ref": 0.1, "lr_hi": 0.3, "D_big": 0.5}
    blocks = {"ref": "D+lr", "lr_hi": "lr", "D_big": "D"}
    rows = [{"sweep": "s", "run": run, "blocks": blocks[run], "fraction": f, "method": m,
             "prediction": 1.0, "rel_err": errors[run] * (2 if m == "epochs" else 1),
             "covered": run != "D_big"}
            for run in errors for f in (0.25, 0.5) for m in METHODS]  # fmt: skip
    table = pd.DataFrame(rows)
    out = block_summary(table).set_index("block")
    assert list(out.index) == ["D", "lr"]
    assert out.loc["D", "runs"] == 2 and out.loc["lr", "runs"] == 2
    assert out.loc["D", "forecast"] == pytest.approx(0.3)  # median of 0.1 and 0.5
    assert out.loc["lr", "epochs"] == pytest.approx(0.4)  # median of 0.2 and 0.6
    assert out.loc["D", "forecast_coverage"] == pytest.approx(0.5)
    assert out.loc["lr", "forecast_coverage"] == pytest.approx(1.0)
    assert block_summary(table.drop(columns="blocks")).empty
