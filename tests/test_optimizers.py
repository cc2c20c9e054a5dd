"""The optimiser as a config axis: AdamW eps, SGD (+ momentum), lr schedules, exact resume."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
import torch

from mbc_interp import ConfigError, RunConfig, TrainConfig, resume, train
from mbc_interp.analysis.dynamics.gradients import GradientConfig, gradient_diagnostics
from mbc_interp.store.run_store import RunStore
from mbc_interp.training import make_optimizer

from .helpers import build_cfg

TIMING = {"wall_time", "checkpoint"}


def _rows(run):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in run.store.read_metrics()]


def test_schedules_after_warmup():
    cos = TrainConfig(lr=1.0, warmup_steps=10, steps=110, schedule="cosine")
    assert cos.lr_at(5) == pytest.approx(0.5) and cos.lr_at(10) == pytest.approx(1.0)
    assert cos.lr_at(60) == pytest.approx(0.5) and cos.lr_at(110) == pytest.approx(0.0, abs=1e-12)
    lin = TrainConfig(lr=1.0, steps=100, schedule="linear_decay")
    assert lin.lr_at(25) == pytest.approx(0.75) and lin.lr_at(100) == 0.0
    assert lin.lr_at(200) == 0.0  # resumed past the planned end: stays at 0
    assert TrainConfig(lr=1.0, steps=100).lr_at(100) == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optimizer": "adam"}, "field train.optimizer = 'adam'"),
        ({"eps": 0}, "train.eps = 0.0"),
        ({"momentum": 1.0}, "train.momentum = 1.0"),
        ({"schedule": "step"}, "field train.schedule = 'step'"),
    ],
)
def test_bad_optimizer_fields_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig.from_dict({"train": overrides})


def test_make_optimizer_builds_each_kind():
    sgd = build_cfg(optimizer="sgd", momentum=0.9, lr=0.1)
    from mbc_interp.model import build_model

    model = build_model(sgd.model, sgd.task.d_vocab, sgd.task.seq_len, seed=0)
    opt = make_optimizer(model, sgd)
    assert isinstance(opt, torch.optim.SGD) and opt.param_groups[0]["momentum"] == 0.9
    adam = make_optimizer(model, build_cfg(eps=1e-4))
    assert isinstance(adam, torch.optim.AdamW) and adam.param_groups[0]["eps"] == 1e-4


@pytest.mark.parametrize(
    "train_overrides",
    [
        {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05},
        {"optimizer": "sgd", "lr": 0.05, "schedule": "linear_decay"},
        {"eps": 1e-4, "schedule": "cosine", "warmup_steps": 10},
    ],
    ids=["sgd-momentum", "sgd-linear", "adamw-eps-cosine"],
)
def test_resume_is_exact_for_each_optimizer(tmp_path, train_overrides):
    cfg = build_cfg(steps=60, keep_optimizer="all", **train_overrides)
    full = train(cfg, tmp_path / "full", progress=False)
    # the same run cut at step 40: forget the later checkpoints, then resume
    cut = tmp_path / "cut"
    shutil.copytree(full.path, cut)
    store = RunStore(cut)
    m = store.read_manifest()
    kept = tuple(c for c in m.checkpoints if c.step <= 40)
    store.write_manifest(replace(m, checkpoints=kept, status="running", stop_reason=None))
    resumed = resume(cut, progress=False)
    assert resumed.steps == full.steps and _rows(resumed) == _rows(full)
    if train_overrides.get("schedule", "constant") == "constant":  # extending is exact too
        short = train(build_cfg(steps=40, **train_overrides), tmp_path / "short", progress=False)
        assert _rows(resume(short.path, steps=60, progress=False)) == _rows(full)


def test_optimizer_state_of_a_checkpoint(tiny_run):
    last = tiny_run.steps[-1]
    assert tiny_run.optimizer_state(tiny_run.steps[0]) is None  # pruned ("latest")
    state = tiny_run.optimizer_state(last)
    assert state.optimizer == "adamw" and state.step == last
    assert state.hyper["eps"] == 1e-8 and tuple(state.hyper["betas"]) == (0.9, 0.999)
    names = [n for n, _ in tiny_run.model(last).named_parameters()]
    assert list(state.buffers["exp_avg"]) == names and list(state.buffers["exp_avg_sq"]) == names
    w = tiny_run.state_dict(last)
    assert all(state.buffers["exp_avg"][n].shape == w[n].shape for n in names)
    rows = gradient_diagnostics(
        tiny_run.model(last), tiny_run.task, GradientConfig(sample_size=32), state
    ).to_records()
    adam = {r["metric"] for r in rows if r["kind"] == "adam"}
    assert adam == {"adam_ratio_q10", "adam_ratio_q50", "adam_ratio_q90", "adam_ratio_q99",
                    "eps_dominated_frac"}  # fmt: skip


def test_optimizer_state_of_sgd_with_momentum(tmp_path):
    run = train(build_cfg(steps=20, optimizer="sgd", momentum=0.5, lr=0.05), tmp_path / "s",
                progress=False)  # fmt: skip
    state = run.optimizer_state(20)
    assert state.optimizer == "sgd" and state.step == 20 and state.hyper["momentum"] == 0.5
    assert set(state.buffers) == {"momentum_buffer"}
    rows = gradient_diagnostics(
        run.model(20), run.task, GradientConfig(sample_size=16), state
    ).to_records()
    assert not [r for r in rows if r["kind"] == "adam"]
