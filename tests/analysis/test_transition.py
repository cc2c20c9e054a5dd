"""Transition detection on synthetic curves with known answers (irregular checkpoint steps)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from mbc_interp.analysis.timing.transition import (
    detect_loss_transition,
    lead_fraction,
    onset,
    steps_to_tokens,
)

LOG_K = math.log(4)
L0 = 3.0  # initial loss, above log K
TAU = 100 / math.log((L0 - LOG_K) / (0.05 * LOG_K))  # excess over log K hits the 5% band at 100
MID, WIDTH = 1000.0, 30.0


def schedule() -> np.ndarray:
    """Log-spaced early, every 17 steps around the drop (1000 is not a checkpoint), sparse late."""
    early = np.unique(np.geomspace(1, 500, 40).astype(int))
    dense = np.arange(503, 1500, 17)
    late = np.unique(np.geomspace(1500, 5000, 15).astype(int))
    return np.concatenate([[0], early, dense, late]).astype(float)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def clean_loss(t: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Fast fall to log K (entering the 5% band at step 100), then a sigmoid drop centred at MID."""
    level = LOG_K + (L0 - LOG_K) * np.exp(-t / TAU)
    return level * (floor + (1 - floor) * sigmoid(-(t - MID) / WIDTH))


STEPS = schedule()
# Expected answers, from the definitions applied to the closed form.
T_SOLVED = MID + WIDTH * math.log(19)  # sigmoid = 0.05
IN_BAND = np.abs(clean_loss(STEPS) - LOG_K) <= 0.05 * LOG_K
START = float(STEPS[np.argmax(IN_BAND)])
END = float(STEPS[STEPS < MID][IN_BAND[STEPS < MID]][-1])


def test_clean_sigmoid_drop() -> None:
    assert 100 <= START < 120  # the first checkpoint after the analytic entry at step 100
    r = detect_loss_transition(STEPS, clean_loss(STEPS), LOG_K)
    assert r.status == "transitioned", r.reason
    assert r.t_plateau_start == START
    assert r.t_plateau_end == END
    assert r.t_plateau_end <= MID - WIDTH * math.log(19)  # sigmoid factor still >= 0.95
    assert r.t_loss == pytest.approx(MID, abs=1.0)  # linear interpolation across a 17-step gap
    assert r.t_solved == pytest.approx(T_SOLVED, abs=3.0)
    assert r.plateau_loss == pytest.approx(LOG_K, abs=0.01)
    d = r.to_dict()
    assert set(d) == {
        "log_k",
        "plateau_loss",
        "t_plateau_start",
        "t_plateau_end",
        "t_loss",
        "t_solved",
        "status",
        "reason",
    }
    json.dumps(d)


def test_accepts_lists_and_series() -> None:
    a = detect_loss_transition(STEPS, clean_loss(STEPS), LOG_K)
    b = detect_loss_transition(STEPS.astype(int).tolist(), clean_loss(STEPS).tolist(), LOG_K)
    c = detect_loss_transition(pd.Series(STEPS), pd.Series(clean_loss(STEPS)), LOG_K)
    assert a == b == c


@pytest.mark.parametrize("seed", range(5))
def test_noisy_sigmoid_drop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    loss = clean_loss(STEPS) + rng.normal(0, 0.01, len(STEPS))
    r = detect_loss_transition(STEPS, loss, LOG_K)
    assert r.status == "transitioned", r.reason
    i = int(np.searchsorted(STEPS, START))
    assert STEPS[i - 1] <= r.t_plateau_start <= STEPS[i + 1]
    assert r.t_loss == pytest.approx(MID, abs=5.0)
    assert r.t_solved == pytest.approx(T_SOLVED, abs=30.0)
    assert r.plateau_loss == pytest.approx(LOG_K, abs=0.01)


def test_single_dip_on_plateau_is_ignored() -> None:
    loss = clean_loss(STEPS)
    j = int(np.searchsorted(STEPS, 600))
    loss[j] = 0.3 * LOG_K
    r = detect_loss_transition(STEPS, loss, LOG_K)
    assert r.status == "transitioned"
    assert r.t_plateau_start == START
    assert r.t_loss == pytest.approx(MID, abs=1.0)
    # Without the sustain rule the dip would be taken for the drop.
    assert detect_loss_transition(STEPS, loss, LOG_K, min_after=1).t_loss < STEPS[j]


def test_sliding_through_log_k_is_no_plateau() -> None:
    steps = np.array([0, 20, 50, 90, 125, 135, 145, 160, 200, 300, 500, 800, 1200], float)
    loss = 2 * LOG_K * np.exp(-steps / 200)  # inside the band only for steps ~129..149
    assert (np.abs(loss - LOG_K) <= 0.05 * LOG_K).sum() == 2
    r = detect_loss_transition(steps, loss, LOG_K)
    assert r.status == "no_plateau"
    assert "5% of log K for 3 evaluations" in r.reason and "step 1200" in r.reason
    assert r.t_plateau_start is r.t_plateau_end is r.t_loss is r.plateau_loss is None
    assert r.t_solved == pytest.approx(200 * math.log(40), rel=0.05)  # loss = 0.05 log K
    assert detect_loss_transition(steps, loss, LOG_K, min_plateau_points=2).status != "no_plateau"


def test_plateau_without_drop_is_no_transition() -> None:
    loss = LOG_K + (L0 - LOG_K) * np.exp(-STEPS / TAU)
    r = detect_loss_transition(STEPS, loss, LOG_K)
    assert r.status == "no_transition"
    assert "never fell below 0.5 log K after the plateau" in r.reason
    assert r.t_plateau_start == START and r.t_plateau_end == STEPS[-1]
    assert r.plateau_loss == pytest.approx(LOG_K, abs=0.01)
    assert r.t_loss is None and r.t_solved is None


def test_partial_drop_is_not_solved() -> None:
    r = detect_loss_transition(STEPS, clean_loss(STEPS, floor=0.3), LOG_K)
    assert r.status == "not_solved", r.reason
    assert r.t_loss == pytest.approx(MID + WIDTH * math.log(2.5), abs=1.0)  # 0.3 + 0.7 s = 0.5
    assert r.t_solved is None and "never stayed below 0.05 log K" in r.reason


def test_k_equals_one() -> None:
    r = detect_loss_transition(STEPS, np.zeros(len(STEPS)), 0.0)
    assert r.status == "no_plateau" and "K = 1" in r.reason
    assert r.t_loss is None and r.t_solved is None


def test_nan_losses_are_dropped() -> None:
    loss = clean_loss(STEPS)
    for s in (5, 300, 700, 1013):
        loss[np.searchsorted(STEPS, s)] = np.nan
    r = detect_loss_transition(STEPS, loss, LOG_K)
    assert r.status == "transitioned"
    assert r.t_plateau_start == START
    assert r.t_loss == pytest.approx(MID, abs=3.0)
    all_nan = detect_loss_transition(STEPS, np.full(len(STEPS), np.nan), LOG_K)
    assert all_nan.status == "no_plateau" and "no finite" in all_nan.reason


@pytest.mark.parametrize(
    ("steps", "loss", "log_k", "match"),
    [
        ([0, 1, 2], [1.0, 1.0], 1.0, "differ in length"),
        ([0, 2, 2], [1.0, 1.0, 1.0], 1.0, "strictly increasing"),
        ([0, 3, 2], [1.0, 1.0, 1.0], 1.0, "strictly increasing"),
        ([0, 1, np.nan], [1.0, 1.0, 1.0], 1.0, "steps must be finite"),
        ([0, 1, 2], [1.0, np.inf, 1.0], 1.0, "infinite"),
        ([0, 1, 2], [1.0, 1.0, 1.0], -1.0, "log_k"),
        ([0, 1, 2], [1.0, 1.0, 1.0], math.nan, "log_k"),
        ([0, 1, 2], [1.0, 1.0, 1.0], math.inf, "log_k"),
        ([[0, 1], [2, 3]], [[1.0, 1.0], [1.0, 1.0]], 1.0, "1-D"),
    ],
)
def test_invalid_inputs(steps, loss, log_k, match) -> None:
    with pytest.raises(ValueError, match=match):
        detect_loss_transition(np.asarray(steps), np.asarray(loss), log_k)


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="solved_frac < half"):
        detect_loss_transition(STEPS, clean_loss(STEPS), LOG_K, solved_frac=0.6)
    with pytest.raises(ValueError, match="frac"):
        onset(STEPS, STEPS, frac=1.5)
    with pytest.raises(ValueError, match="differ in length"):
        onset([0, 1, 2], [0.0, 1.0])


ROUTE_MID, ROUTE_W = 700.0, 50.0
ROUTE = 0.2 + 0.6 * sigmoid((STEPS - ROUTE_MID) / ROUTE_W)


def test_onset_rising_falling_flat() -> None:
    assert onset(STEPS, ROUTE) == pytest.approx(ROUTE_MID, abs=1.0)
    assert onset(STEPS, 1 - ROUTE) == pytest.approx(ROUTE_MID, abs=1.0)
    quarter = ROUTE_MID + ROUTE_W * math.log(1 / 3)
    assert onset(STEPS, ROUTE, frac=0.25) == pytest.approx(quarter, abs=2.0)
    assert onset(STEPS, ROUTE, baseline=0.2, final=0.8) == pytest.approx(ROUTE_MID, abs=1.0)
    assert onset(STEPS, np.full(len(STEPS), 0.3)) is None
    assert onset(STEPS, ROUTE, baseline=0.2, final=0.2) is None
    assert onset(STEPS, ROUTE, baseline=0.9, final=1.0) is None  # never reaches the level
    assert onset([0, 1], [0.0, 1.0], n_edge=1, sustain=1) == pytest.approx(0.5)
    assert onset([0], [0.0]) is None


@pytest.mark.parametrize("seed", range(5))
def test_onset_noisy_with_spike(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = ROUTE + rng.normal(0, 0.01, len(STEPS))
    values[np.searchsorted(STEPS, 300)] = 0.9  # one bad checkpoint well before the rise
    assert onset(STEPS, values) == pytest.approx(ROUTE_MID, abs=5.0)
    assert onset(STEPS, values, sustain=1) < 350  # the spike counts without the sustain rule


def test_lead_fraction_and_tokens() -> None:
    assert lead_fraction(550, 1000, 100) == pytest.approx(0.5)
    assert lead_fraction(1000.0, 1000.0, 100.0) == 0.0
    assert lead_fraction(1100.0, 1000.0, 100.0) == pytest.approx(-1 / 9)
    assert lead_fraction(None, 1000.0, 100.0) is None
    assert lead_fraction(500.0, None, 100.0) is None
    assert lead_fraction(500.0, 1000.0, None) is None
    assert lead_fraction(500.0, 100.0, 100.0) is None
    assert steps_to_tokens(100, 512) == 51200.0
    assert steps_to_tokens(12.5, 8) == 100.0
    assert steps_to_tokens(None, 512) is None
    with pytest.raises(ValueError, match="tokens_per_step"):
        steps_to_tokens(1.0, 0)


# -- where a curve rests, whatever the level ----------------------------------------------------
def test_flat_stretch_finds_the_resting_height_of_a_curve_without_a_known_level() -> None:
    from mbc_interp.analysis.timing.stretches import flat_stretch

    rng = np.random.default_rng(0)
    level = 2.867  # what a model that knows only where EOS goes scores (paper task)
    t = STEPS
    curve = level + (4.2 - level) * np.exp(-t / 40)  # falls to the level...
    curve = curve * sigmoid(-(t - MID) / WIDTH)  # ...rests, then drops at MID
    curve = curve * (1 + 0.004 * rng.standard_normal(len(t)))  # 0.4% noise: inside the 2%
    flat = flat_stretch(t, curve, stop=MID)
    assert flat.level == pytest.approx(level, rel=0.01)
    rests = t[(np.abs(curve / level - 1) <= 0.02) & (t <= MID)]
    assert rests[0] <= flat.start <= rests[0] + 60 and MID - 5 * WIDTH <= flat.end < MID
    # the first value is not a rest (the curve has not fallen 5% yet), nor a curve that never falls
    assert flat_stretch([0, 1, 2, 3], [4.0, 4.0, 4.0, 4.0]).level is None
    # a steady slide rests nowhere; too few evaluations in the band either
    assert flat_stretch(np.arange(20), np.linspace(4, 0.1, 20)).level is None
    assert flat_stretch([0, 1, 2, 3, 4], [4, 3, 3, 1, 0]).level is None
    assert flat_stretch([0, 1, 2, 3, 4], [4, 3, 3, 3, 0]).level == 3.0
    # nothing after ``stop`` counts
    assert flat_stretch([0, 1, 2, 3, 4, 5], [4, 2, 3, 3, 3, 3], stop=3).level is None


def test_format_loss_tok_is_the_layout_only_loss() -> None:
    from mbc_interp.tasks.wind_tunnel.task import TaskConfig

    paper = TaskConfig(construction="random_strings", K=20, n_examples=3000, base_len=6,
                       selector_len=2, target_len=4)  # fmt: skip
    assert paper.format_loss_tok == pytest.approx(4 * math.log(36) / 5)
    assert TaskConfig().format_loss_tok is None  # the proxy has no EOS
