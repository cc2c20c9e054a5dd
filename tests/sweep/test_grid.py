"""Sweep specs: grids expand to named, validated, de-duplicated points."""

from __future__ import annotations

import json

import pytest

from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.sweep.grid import SWEEP_ANALYSIS, SweepSpec, flatten, point_name, unflatten


def test_grid_is_the_product_of_its_axes_and_grids_are_unioned():
    spec = SweepSpec(
        grids=(
            {"label": "D", "task": {"D": [250, 500]}, "train": {"seed": [0, 1, 2]}},
            {"label": "lr", "task": {"D": 500}, "train": {"lr": [3e-4, 1e-3], "seed": [0]}},
        )
    )
    names = [p.name for p in spec.points]
    assert len(names) == 6 + 1  # D500 lr3e-4 seed0 is in both grids: run once
    assert len(set(names)) == len(names)
    shared = next(p for p in spec.points if p.name == "D500_K4_lr0.0003_b128_s0")
    assert shared.labels == ("D", "lr")
    assert {p.config.task.D for p in spec.points} == {250, 500}
    assert next(p for p in spec.points if p.config.train.lr == 1e-3).labels == ("lr",)


def test_names_add_fields_that_differ_from_the_base_and_stay_stable_when_grids_are_added():
    one = SweepSpec(grids=({"task": {"D": [100]}},), base={"train": {"steps": 50}})
    two = SweepSpec(
        grids=({"task": {"D": [100]}}, {"model": {"d_model": [32, 64]}, "task": {"D": 100}}),
        base={"train": {"steps": 50}},
    )
    assert [p.name for p in one.points] == ["D100_K4_lr0.0003_b128_s0"]
    assert [p.name for p in two.points] == [
        "D100_K4_lr0.0003_b128_s0",
        "D100_K4_lr0.0003_b128_s0_d_model32",
    ]
    cfg = RunConfig.from_dict({"task": {"direction": "forward", "target_len": 3, "D": 100}})
    assert point_name(cfg) == "D100_K4_lr0.0003_b128_s0_forward_target_len3"


def test_tuple_fields_are_values_unless_given_as_a_list_of_lists():
    single = SweepSpec(grids=({"train": {"betas": [0.9, 0.95]}},))
    assert [p.config.train.betas for p in single.points] == [(0.9, 0.95)]
    axis = SweepSpec(grids=({"train": {"betas": [[0.9, 0.95], [0.9, 0.999]]}},))
    assert [p.config.train.betas for p in axis.points] == [(0.9, 0.95), (0.9, 0.999)]


def test_a_bad_value_names_the_grid_point_and_field():
    with pytest.raises(ConfigError, match=r"grid 'bad'.*task\.K = 99"):
        SweepSpec(grids=({"label": "bad", "task": {"K": [2, 99]}},))
    with pytest.raises(ConfigError, match="no \\[\\[grid\\]\\]"):
        SweepSpec(grids=())
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['grids'\]"):
        SweepSpec.from_dict({"grids": []}, "x.toml")


def test_sweep_files_round_trip_and_flags_override_every_grid(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[base.train]\nsteps = 40\n[analysis]\nn_pairs = 16\n'
        '[[grid]]\nlabel = "a"\ntask = { D = [40, 80] }\n'
        '[[grid]]\nlabel = "b"\ntrain = { lr = [1e-3] }\n'
    )
    spec = SweepSpec.from_file(path)
    assert spec.analysis is not None and spec.analysis.n_pairs == 16
    assert all(p.config.train.steps == 40 for p in spec.points)
    again = SweepSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.points == spec.points
    flagged = spec.with_grid_overrides({"train": {"seed": [0, 1]}})
    assert len(flagged.points) == 2 * len(spec.points)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[grid]\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: not valid toml"):
        SweepSpec.from_file(bad)


def test_defaults_and_flatten():
    assert SweepSpec(grids=({"task": {"D": [10]}},)).analysis == SWEEP_ANALYSIS
    nested = {"train": {"lr": 1.0, "checkpoints": {"every": 5}}}
    assert flatten(nested) == {"train.lr": 1.0, "train.checkpoints.every": 5}
    assert unflatten(flatten(nested)) == nested


def test_repo_sweep_files_are_valid():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "sweeps"
    files = sorted(root.glob("*.toml"))
    assert files, "no sweep files in sweeps/"
    for f in files:
        assert SweepSpec.from_file(f).points


def test_the_paper_regime_sweep_holds_the_design_it_promises():
    """sweeps/paper_regime.toml as issue 18 asks for it: the paper's construction at N from 1,000
    to 50,000 at K = 20 (>= 4 seeds to 20,000, >= 2 at 50,000, a 60,000-step cap), the
    variant at 3 sizes, lr x batch and K at N = 10,000, a short warm-up arm, 3 seeds each."""
    from collections import Counter
    from pathlib import Path

    spec = SweepSpec.from_file(Path(__file__).resolve().parents[2] / "sweeps/paper_regime.toml")
    rows = [flatten(p.config.to_dict()) for p in spec.points]
    assert all(r["train.steps"] == 60000 for r in rows)
    assert {r["task.construction"] for r in rows} == {"random_strings"}  # --preset paper

    def seeds(**where):
        return Counter(r["task.n_examples"] for r in rows
                       if all(r[k] == v for k, v in where.items()))  # fmt: skip

    base = {"task.K": 20, "train.lr": 1e-3, "train.batch_size": 128, "task.selectors": "shared",
            "train.warmup_steps": 500}  # fmt: skip
    main = seeds(**base)
    assert all(main[n] >= 4 for n in (1000, 2000, 3000, 5000, 10000, 20000)) and main[50000] >= 2
    variant = seeds(**{**base, "task.selectors": "per_base", "task.distinct_first": True})
    assert variant == {3000: 3, 10000: 3, 20000: 3}
    arms = Counter((r["train.lr"], r["train.batch_size"]) for r in rows
                   if r["task.n_examples"] == 10000 and r["task.K"] == 20
                   and r["task.selectors"] == "shared" and r["train.warmup_steps"] == 500)
    assert {k: v >= 3 for k, v in arms.items()} == {
        (lr, b): True for lr in (3e-4, 1e-3, 2e-3) for b in (64, 128)}  # fmt: skip
    ks = Counter(r["task.K"] for r in rows if r["task.n_examples"] == 10000
                 and r["train.lr"] == 1e-3 and r["train.batch_size"] == 128
                 and r["task.selectors"] == "shared" and r["train.warmup_steps"] == 500)
    assert all(ks[k] >= 3 for k in (5, 10, 20, 40))
    assert seeds(**{**base, "train.warmup_steps": 50}) == {3000: 3, 10000: 3}
