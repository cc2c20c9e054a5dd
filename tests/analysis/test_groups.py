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


def _tail_spread(steps):
    """20 groups whose loss leaves log K together (half-way at 1160-1200) and settles at very
    different speeds (solved between ~1250 and ~2500)."""
    log_k = np.log(20)
    rate = np.geomspace(1 / 40, 1 / 600, 20)  # per step, after the escape
    t0 = 1150 + 2 * np.arange(20)
    loss = np.where(steps[:, None] < t0, log_k,  # a sharp fall to 0.45 log K, then each its own
                    0.45 * log_k * np.exp(-np.maximum(steps[:, None] - t0, 0) * rate))  # fmt: skip
    return loss, log_k


def test_the_half_way_score_times_the_escape_and_not_the_tail():
    steps = np.arange(0, 4001, 20.0)
    loss, log_k = _tail_spread(steps)
    out = collective_summary(steps, loss < 0.05 * log_k, 200.0, 1200.0, loss < 0.5 * log_k)
    assert out["collective"] == "staggered" and out["collective_score"] > 0.5
    assert out["halfway"] == "collective" and out["halfway_score"] < 0.25
    assert out["n_halfway_groups"] == 20 and out["halfway_time_p10"] < out["solve_time_p10"]
    # groups that escape one by one are staggered by both
    spread = np.stack([steps >= 250 + 50 * j for j in range(20)], 1)
    both = collective_summary(steps, spread, 200.0, 1200.0, spread)
    assert both["halfway"] == both["collective"] == "staggered"
    assert "halfway" not in collective_summary(steps, spread, 200.0, 1200.0)


def test_the_summary_entry_reads_half_way_against_the_transition_scale():
    import pandas as pd

    from mbc_interp.analysis.groups import summary_entry
    from mbc_interp.tasks.modular_addition.config import ModularAdditionConfig
    from mbc_interp.tasks.modular_addition.task import ModularAdditionTask

    steps = np.arange(0, 4001, 20.0)
    loss, log_k = _tail_spread(steps)
    rows = [{"analysis": "groups", "step": s, "component": f"g{j:02d}", "metric": m, "value": v}
            for i, s in enumerate(steps) for j in range(20)
            for m, v in (("group_cand_loss", loss[i, j]),
                         ("group_solved", float(loss[i, j] < 0.05 * log_k)))]  # fmt: skip
    summary = {"t_plateau_start": 200.0, "t_loss": 1200.0, "loss_scale": log_k}
    entry = summary_entry(pd.DataFrame(rows), summary)
    want = collective_summary(steps, loss < 0.05 * log_k, 200.0, 1200.0, loss < 0.5 * log_k)
    assert entry == want
    # the scale it reads is the groups' own on every task that has groups
    for task in (WindTunnelTask(TASKS["paper"]),
                 ModularAdditionTask(ModularAdditionConfig(p=7, train_frac=0.5))):  # fmt: skip
        assert task.group_loss_scale == task.transition.scale
