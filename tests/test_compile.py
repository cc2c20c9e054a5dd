"""``train.compile``: the training step through torch.compile, as a config field, a flag, a
sweep axis and a run mode that resumes exactly."""

from __future__ import annotations

import pytest
import torch

from mbc_interp import ConfigError, RunConfig, load_run, resume, train
from mbc_interp.model import build_model
from mbc_interp.sweep.grid import SweepSpec
from mbc_interp.sweep.results import collect
from mbc_interp.sweep.runner import prepare
from mbc_interp.training import TrainingError, training_forward

from .helpers import build_cfg


def _rows(run, ignore=frozenset()):
    drop = {"wall_time"} | ignore
    return [{k: v for k, v in r.items() if k not in drop} for r in run.store.read_metrics()]


def test_compile_is_off_by_default_and_a_flag_with_its_docstring_as_help(capsys):
    from mbc_interp.cli import build_parser
    from mbc_interp.cli.flags import resolve_config

    assert RunConfig().train.compile is False
    parser = build_parser()
    args = parser.parse_args(["train", "--compile"])
    assert resolve_config(args).train.compile is True
    args = parser.parse_args(["train", "--compile", "--no-compile"])
    assert resolve_config(args).train.compile is False
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--compile, --no-compile Run the training step's forward and backward through " \
        "torch.compile" in help_text
    assert "(train.compile; default: False)" in help_text
    with pytest.raises(ConfigError, match="does not match type bool"):
        RunConfig.from_dict({"train": {"compile": "yes"}})


def test_the_compiled_forward_wraps_the_module_without_changing_it():
    cfg = build_cfg()
    model = build_model(cfg.model, cfg.task.d_vocab, cfg.task.seq_len, seed=0)
    keys = list(model.state_dict())
    assert training_forward(model, False) is model
    compiled = training_forward(model, True)  # lazy: nothing is compiled until it is called
    assert compiled is not model and compiled._orig_mod is model
    assert list(model.state_dict()) == keys and not any("_orig_mod" in k for k in keys)


def test_resume_keeps_the_saved_mode_and_refuses_to_change_it(tiny_run, capsys):
    from mbc_interp.cli import main

    assert main(["train", "--resume", str(tiny_run.path), "--compile", "--no-progress"]) == 2
    assert "only --steps may change" in capsys.readouterr().err
    assert load_run(tiny_run.path).config.train.compile is False


def test_without_a_compiler_training_stops_before_writing_and_names_the_flag(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", ("no-such-c++-compiler",))
    torch._dynamo.reset()  # a probe compiled earlier in this process would not compile again
    with pytest.raises(TrainingError, match=r"train\.compile \(--compile\).*without --compile"):
        train(build_cfg(compile=True), tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()
    torch._dynamo.reset()


def test_the_sweep_table_carries_compile_with_the_default_filled_in(tmp_path, capsys):
    from mbc_interp.cli import main

    assert main(["sweep", "--out", "x", "--dry-run", "--compile", "false", "true"]) == 0
    out = capsys.readouterr().out
    assert "2 points" in out and "D1000_K4_lr0.0003_b128_s0_compile-True" in out
    base = build_cfg().to_dict()
    del base["train"]["compile"]  # a base that never mentions the mode (an older sweep file)
    grids = ({"label": "a", "train": {"seed": [0, 1]}},
             {"label": "c", "train": {"seed": 0, "compile": True}})  # fmt: skip
    prepare(SweepSpec(grids=grids, base=base, analysis=None), tmp_path / "sw")
    table = collect(tmp_path / "sw")
    assert sorted(zip(table.seed, table["compile"], strict=True)) == [
        (0, False), (0, True), (1, False)]  # fmt: skip
    assert set(table.point_status) == {"pending"}


@pytest.mark.slow  # torch.compile of the tiny model: ~80 s with a cold inductor cache
def test_a_compiled_run_resumed_compiled_equals_the_uninterrupted_compiled_run(tmp_path):
    long = train(build_cfg(steps=100, compile=True), tmp_path / "long", progress=False)
    short = train(build_cfg(steps=60, compile=True), tmp_path / "short", progress=False)
    resumed = resume(short.path, steps=100, progress=False)
    assert resumed.config.train.compile is True
    # the short run also checkpointed its last step (60), so only that flag may differ
    assert _rows(resumed, {"checkpoint"}) == _rows(long, {"checkpoint"})
    assert resumed.steps == long.steps
    final_long, final_resumed = long.state_dict(100), resumed.state_dict(100)
    assert all(torch.equal(final_long[k], final_resumed[k]) for k in final_long)
    # checkpoints in the eager format: the same parameter names, shapes and dtypes
    eager = train(build_cfg(steps=1), tmp_path / "eager", progress=False).state_dict(1)
    assert {k: (v.shape, v.dtype) for k, v in final_long.items()} == {
        k: (v.shape, v.dtype) for k, v in eager.items()}  # fmt: skip
    assert load_run(long.path).model(100) is not None  # loads (and evaluates) eagerly
