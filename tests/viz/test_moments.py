"""key_steps: the checkpoints before the plateau, on it, and after the transition."""

from __future__ import annotations

import pytest

from mbc_interp.analysis import key_steps

STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 100, 200, 300, 400, 500]


def test_three_moments_of_a_transitioned_run():
    summary = {"t_plateau_start": 16, "t_plateau_end": 300, "t_loss": 350.0}
    assert key_steps(summary, STEPS) == {
        "before plateau": 8, "on plateau": 200, "after transition": 500,
    }  # fmt: skip


def test_still_on_the_plateau_shows_the_latest():
    summary = {"t_plateau_start": 16, "t_plateau_end": 500, "t_loss": None}
    assert key_steps(summary, STEPS) == {"before plateau": 8, "on plateau": 300, "latest": 500}


def test_no_plateau_spreads_over_the_run():
    assert key_steps({"t_plateau_start": None}, STEPS) == {"first": 0, "middle": 200, "last": 500}
    assert key_steps({}, [5]) == {"first": 5}
    with pytest.raises(ValueError, match="no checkpoints"):
        key_steps({}, [])


def test_real_run(analysed):
    run, table, summary = analysed
    moments = key_steps(summary, table["step"].unique())
    assert list(moments) == ["before plateau", "on plateau", "after transition"]
    before, on, after = moments.values()
    assert before < summary["t_plateau_start"] <= on <= summary["t_plateau_end"]
    assert after == run.steps[-1] > summary["t_loss"]
