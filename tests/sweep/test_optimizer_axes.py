"""The optimiser fields (eps, sgd, momentum, schedule) as sweep axes."""

from __future__ import annotations

import pytest

from mbc_interp import load_run
from mbc_interp.sweep.grid import SweepSpec
from mbc_interp.sweep.results import collect
from mbc_interp.sweep.runner import RUNS_DIR, run_sweep

from ..helpers import build_cfg


def test_cli_grid_over_eps_and_optimizer(capsys):
    from mbc_interp.cli import main

    args = ["sweep", "--out", "x", "--dry-run", "--eps", "1e-8", "1e-4", "--optimizer", "adamw",
            "sgd", "--schedule", "cosine"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 points" in out
    assert "D1000_K4_lr0.0003_b128_s0_optimizer-sgd_eps0.0001_schedule-cosine" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--out", "x", "--dry-run", "--optimizer", "adam"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'adam'" in capsys.readouterr().err


@pytest.mark.slow  # a real 3-point sweep (~20 s)
def test_a_tiny_sweep_with_an_eps_axis_and_an_sgd_point_runs(tmp_path):
    base = build_cfg(steps=60).to_dict()
    grids = (
        {"label": "eps", "train": {"eps": [1e-8, 1e-2]}},
        {"label": "sgd", "train": {"optimizer": "sgd", "momentum": [0.9], "lr": 0.05}},
    )
    spec = SweepSpec(grids=grids, base=base, analysis=None)
    outcomes = run_sweep(spec, tmp_path / "sw", workers=2, progress=False)
    assert [o["status"] for o in outcomes] == ["done"] * 3, outcomes
    runs = {p.name: load_run(tmp_path / "sw" / RUNS_DIR / p.name) for p in spec.points}
    trains = {name: r.config.train for name, r in runs.items()}
    assert sorted(t.eps for t in trains.values() if t.optimizer == "adamw") == [1e-8, 1e-2]
    sgd = next(n for n, t in trains.items() if t.optimizer == "sgd")
    assert trains[sgd].momentum == 0.9 and runs[sgd].status == "finished"
    state = runs[sgd].optimizer_state(runs[sgd].steps[-1])
    assert set(state.buffers) == {"momentum_buffer"}
    # eps really reaches the optimiser: a large eps trains differently
    losses = {t.eps: runs[n].metrics["loss"].iloc[-1] for n, t in trains.items() if n != sgd}
    assert losses[1e-8] != losses[1e-2]
    # the run table carries the optimizer axes, defaults filled in (the SGD point set no eps)
    table = collect(tmp_path / "sw").set_index("name")
    assert table.loc[sgd, "eps"] == 1e-8 and table.loc[sgd, "optimizer"] == "sgd"
    assert sorted(table.eps) == [1e-8, 1e-8, 1e-2]
