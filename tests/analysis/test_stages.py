"""The matched marginal/conditional crossings and the resting levels, on curves whose answers
are known, and the plateau rule that keeps a K level whose candidate loss sits above log K."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mbc_interp.analysis.timing.stages import half_crossing, resting_levels, stage_times
from mbc_interp.analysis.timing.transition import detect_rest_transition

LOG_K = math.log(20)
CHANCE = 4 * math.log(36) - LOG_K


def _metrics(t_marg: float, t_cond: float, se: float = 0.01) -> pd.DataFrame:
    """Sigmoidal falls of both measures from their chance values to 0, centred on the given
    steps, so each half-way crossing is exactly there."""
    steps = np.arange(0, 2001, 20.0)
    marg = CHANCE / (1 + np.exp((steps - t_marg) / 40))
    cond = LOG_K / (1 + np.exp((steps - t_cond) / 40))
    return pd.DataFrame({
        "step": steps, "marg_loss": marg, "marg_loss_se": se, "marg_chance": CHANCE,
        "cand_loss": cond, "cand_loss_se": se,
    })  # fmt: skip


def test_half_crossing_is_interpolated_and_its_error_is_se_over_slope():
    t, err = half_crossing([0, 10, 20, 30], [4.0, 3.0, 1.0, 0.5], [0.1] * 4, chance=4.0)
    assert t == pytest.approx(15.0)  # 2.0 is half-way from 3.0 to 1.0
    assert err == pytest.approx(0.1 / 0.2)  # slope 2 nats per 10 steps
    # a crossing that does not hold is not one
    assert half_crossing([0, 10, 20, 30], [4.0, 1.0, 3.0, 3.0], None, chance=4.0) == (None, None)


@pytest.mark.parametrize(("t_marg", "t_cond", "order"), [
    (600, 1200, "marginal_first"), (1200, 600, "conditional_first"), (900, 900, "together"),
])  # fmt: skip
def test_stage_times_read_each_crossing_and_the_order(t_marg, t_cond, order):
    out = stage_times(_metrics(t_marg, t_cond), LOG_K)
    assert out["t_marginal_seq"] == pytest.approx(t_marg, abs=2)
    assert out["t_conditional_seq"] == pytest.approx(t_cond, abs=2)
    assert out["marginal_lead_seq"] == pytest.approx(t_cond - t_marg, abs=3)
    assert out["order_seq"] == order
    assert out["t_marginal_first"] is None and out["order_first"] is None  # not logged


def test_a_large_sampling_error_calls_a_small_lead_together():
    out = stage_times(_metrics(880, 920, se=0.5), LOG_K)
    assert out["marginal_lead_seq"] == pytest.approx(40, abs=3)
    assert out["marginal_lead_seq_se"] > 20 and out["order_seq"] == "together"


def test_rest_transition_keeps_a_plateau_above_log_k():
    """K = 5: the candidate loss rests at ~1.3 log K (B's candidates scored unequally), never
    within 5% of log K; the drop is still timed, from where the raw loss first rests."""
    log_k = math.log(5)
    steps = np.arange(0, 3001, 50.0)
    cand = np.where(steps < 2000, 1.3 * log_k, 0.01)
    cand[:3] = [2.5, 2.3, 2.2]
    lt = detect_rest_transition(steps, cand, log_k, rest_start=150.0)
    assert lt.status == "transitioned" and lt.t_plateau_start == 150.0
    assert 1950 < lt.t_loss <= 2000 and lt.t_plateau_end == 1950.0
    assert lt.plateau_loss == pytest.approx(1.3 * log_k)
    early = detect_rest_transition(steps, cand, log_k, rest_start=2500.0)
    assert early.status == "no_plateau" and early.t_loss is None


def test_resting_levels_first_rest_pre_drop_and_gain_without_z():
    steps = np.arange(0, 1001, 10.0)
    # falls to 2.87, rests, slides to 2.4, drops at 800
    loss_tok = np.interp(steps, [0, 50, 200, 790, 800, 1000], [3.6, 2.87, 2.87, 2.4, 0.1, 0.0])
    m = pd.DataFrame({"step": steps, "loss_tok": loss_tok, "loss": 5 * loss_tok,
                      "cand_loss": np.where(steps < 800, 3.2, 0.0),
                      "loss_zswap": 5 * np.maximum(loss_tok, 2.75)})  # fmt: skip
    fmt = 4 * math.log(36) / 5
    out = resting_levels(m, "cand_loss", LOG_K, 800.0, fmt, 500.0)
    assert out["t_first_rest"] == pytest.approx(50, abs=10)
    assert out["first_rest_loss_tok"] == pytest.approx(2.87, abs=0.02)
    assert out["pre_drop_loss_tok"] == pytest.approx(np.interp(790, steps, loss_tok))
    loss = 5 * np.interp(500, steps, loss_tok)
    want = (5 * fmt - 5 * 2.75) / (5 * fmt - loss)
    assert out["zfree_gain_frac_at_marginal"] == pytest.approx(want)
