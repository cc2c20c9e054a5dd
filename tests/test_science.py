"""Acceptance: the default run shows the phenomenon (about a minute on one CPU core)."""

from __future__ import annotations

import numpy as np
import pytest

from mbc_interp import RunConfig, train


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    return train(RunConfig(), tmp_path_factory.mktemp("science") / "default", progress=False)


@pytest.mark.slow
def test_default_run_plateaus_at_log_k_then_solves(default_run):
    m = default_run.metrics
    log_k = default_run.log_k
    loss = m["loss"].to_numpy()
    near = np.abs(loss - log_k) < 0.02 * log_k
    # a plateau: at least 8 consecutive evaluations within 2% of log K ...
    longest, cur = 0, 0
    for flag in near:
        cur = cur + 1 if flag else 0
        longest = max(longest, cur)
    assert longest >= 8, f"no plateau at log K: longest run within 2% is {longest} evaluations"
    # ... then the drop: the run ends solved, below 5% of log K
    assert loss[-1] < 0.05 * log_k
    assert default_run.status == "finished" and "solved" in default_run.manifest.stop_reason


@pytest.mark.slow
def test_transition_is_densely_checkpointed(default_run):
    m = default_run.metrics
    log_k = default_run.log_k
    plateau_end = m.loc[np.abs(m["loss"] - log_k) < 0.02 * log_k, "step"].max()
    solved = m.loc[(m["loss"] < 0.05 * log_k) & (m["step"] > plateau_end), "step"].min()
    between = [s for s in default_run.steps if plateau_end <= s <= solved]
    assert len(between) >= 20, f"only {len(between)} checkpoints in [{plateau_end}, {solved}]"


@pytest.mark.slow
def test_routing_head_forms_before_the_loss_drops(default_run):
    from mbc_interp.analysis import analyze

    _, s = analyze(default_run, progress=False)
    assert s["status"] == "transitioned"
    assert abs(s["plateau_loss"] - s["log_k"]) < 0.02 * s["log_k"]
    assert s["routing_head"] in s["routing_heads"]
    # hidden progress: Δz leaves its noise floor on the plateau, well before the drop, and
    # grows exponentially (its doubling time is a small fraction of the plateau)
    assert s["z_phase"] == "plateau" and s["t_plateau_start"] < s["t_z"] < s["t_loss"]
    assert 0 < s["z_doubling_steps"] < (s["t_loss"] - s["t_plateau_start"]) / 4
    assert 0 < s["lead_fraction_z"] < 1
    # the routing head's z-use leaves its own floor before the drop
    assert s["route_phase"] == "plateau" and s["t_route"] < s["t_loss"]
    assert 0 < s["lead_fraction"] < 1
    assert s["t_plateau_start"] < s["t_loss"] < s["t_solved"]
