"""Groups solved at a checkpoint, against predictors whose answers are known, and the
collective score on solve-time patterns whose spread is known."""

from __future__ import annotations

import numpy as np
import pytest

from mbc_interp.analysis.groups import (
    GroupsConfig,
    collective_summary,
    group_records,
    solve_times,
)
from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask

from ..test_evaluation import TASKS, Reference


@pytest.mark.parametrize("name", ["proxy", "paper"])
def test_perfect_predictor_solves_every_group_and_the_marginal_none(name):
    task = WindTunnelTask(TASKS[name])
    n_groups = len(task) // task.K
    for marginal, want in ((False, 1.0), (True, 0.0)):
        rows = group_records(Reference(task, marginal), task, GroupsConfig(n_groups=8))
        frac = [r["value"] for r in rows if r["metric"] == "solved_fraction"]
        assert frac == [want]
        solved = [r for r in rows if r["metric"] == "group_solved"]
        assert len(solved) == min(8, n_groups)
        assert all(r["value"] == want for r in solved)
    loss = [r["value"] for r in group_records(Reference(task, True), task)
            if r["metric"] == "group_cand_loss"]  # fmt: skip
    assert np.allclose(loss, np.log(task.K), atol=1e-3)  # z ignored: log K in every group


def test_solve_times_need_the_flag_to_hold():
    steps = np.array([0, 10, 20, 30, 40])
    solved = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [1, 1]])
    assert solve_times(steps, solved).tolist() == [30.0, 20.0]


def test_collective_score_separates_a_snap_from_one_by_one():
    steps = np.arange(0, 2001, 20.0)
    start, t_loss = 200.0, 1200.0
    snap = np.stack([steps >= 1190 + 2 * j for j in range(20)], 1)
    out = collective_summary(steps, snap, start, t_loss)
    assert out["collective"] == "collective" and out["collective_score"] < 0.1
    assert out["solved_at_half"] == 0.0 and out["n_solved_groups"] == 20
    spread = np.stack([steps >= 250 + 50 * j for j in range(20)], 1)
    out = collective_summary(steps, spread, start, t_loss)
    assert out["collective"] == "staggered" and out["collective_score"] > 0.5
    assert 0.3 < out["solved_at_half"] < 0.7
    few = np.zeros_like(snap)
    few[-5:, :3] = True
    assert collective_summary(steps, few, start, t_loss)["collective"] == "undetermined"
    assert collective_summary(steps, snap, None, None)["collective"] == "undetermined"
