from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mbc_interp import load_run
from mbc_interp.cli import COMMANDS, build_parser, main, resolve_config

from .helpers import build_cfg


@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--help"])
    assert exit_.value.code == 0
    assert "usage: mbc" in capsys.readouterr().out


def test_console_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "mbc_interp.cli", "train", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--resume" in out and "--D" in out and "--lr" in out


def test_flags_override_file_which_overrides_defaults(tmp_path):
    cfg_file = tmp_path / "c.toml"
    cfg_file.write_text("[task]\nD = 300\nK = 8\n[train]\nlr = 1e-3\n")
    args = build_parser().parse_args(
        [
            "train",
            "--config",
            str(cfg_file),
            "--K",
            "2",
            "--betas",
            "0.8",
            "0.95",
            "--d-mlp",
            "none",
            "--stop-after-solved",
            "none",
            "--data-seed",
            "7",
            "--seed",
            "3",
            "--ckpt-every",
            "50",
        ]
    )
    cfg = resolve_config(args)
    assert (cfg.task.D, cfg.task.K, cfg.task.seed) == (300, 2, 7)
    assert cfg.train.lr == 1e-3 and cfg.train.betas == (0.8, 0.95) and cfg.train.seed == 3
    assert cfg.model.attn_only and cfg.train.stop_after_solved is None
    assert cfg.train.checkpoints.every == 50


def test_bad_flag_value_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--K", "40", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "task.K = 40" in err and "n_target_symbols = 16" in err
    assert not (tmp_path / "r").exists()  # nothing was created


def _tiny_flags(cfg) -> list[str]:
    t, m, tr = cfg.task, cfg.model, cfg.train
    return [
        "--D",
        str(t.D),
        "--base-len",
        str(t.base_len),
        "--n-base-symbols",
        str(t.n_base_symbols),
        "--n-target-symbols",
        str(t.n_target_symbols),
        "--d-model",
        str(m.d_model),
        "--n-heads",
        str(m.n_heads),
        "--d-mlp",
        str(m.d_mlp),
        "--steps",
        "30",
        "--eval-every",
        "10",
        "--batch-size",
        str(tr.batch_size),
        "--device",
        "cpu",
        "--no-progress",
    ]


def test_train_info_resume_and_exist_ok(tmp_path, capsys):
    out = tmp_path / "run"
    flags = _tiny_flags(build_cfg())
    assert main(["train", "--out", str(out), *flags]) == 0
    assert "status     finished" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["config"]["train"]["steps"] == 30

    assert main(["train", "--out", str(out), *flags]) == 2  # never overwrites
    assert "already holds a run" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--exist-ok", *flags]) == 0
    assert "already trained" in capsys.readouterr().out
    assert main(["train", "--out", str(out), "--exist-ok", *flags, "--lr", "0.1"]) == 2
    assert "different config" in capsys.readouterr().err

    assert main(["train", "--resume", str(out), "--steps", "50", "--no-progress"]) == 0
    assert load_run(out).steps[-1] == 50
    assert main(["train", "--resume", str(out), "--lr", "1.0"]) == 2
    assert main(["info", str(out)]) == 0
    assert "last eval  step 50" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "nope")]) == 2


def test_direction_flag_and_forward_runs_refuse_analysis(tmp_path, capsys):
    args = build_parser().parse_args(["train", "--direction", "forward", "--target-len", "4"])
    assert resolve_config(args).task.direction == "forward"
    assert resolve_config(build_parser().parse_args(["train"])).task.direction == "backward"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--direction", "sideways"])
    assert main(["train", "--direction", "forward", "--out", str(tmp_path / "bad")]) == 2
    assert "every A to name one B" in capsys.readouterr().err  # the default L_A = 1

    out = tmp_path / "fwd"
    flags = [*_tiny_flags(build_cfg()), "--direction", "forward", "--target-len", "3"]
    assert main(["train", "--out", str(out), *flags]) == 0
    assert "direction='forward'" in capsys.readouterr().out
    assert main(["analyze", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "no selector" in err and "backward runs" in err


def test_a_reader_that_leaves_early_stops_the_command_quietly(tiny_run):
    """`mbc info RUN | head -1`: no traceback, the exit status of a closed pipe. The reader
    here (`true`) has left before the command's first write, so the write always fails."""
    import os
    import subprocess
    import sys

    cmd = f"{sys.executable} -m mbc_interp.cli info {tiny_run.path} | true; echo ${{PIPESTATUS[0]}}"
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    assert "Traceback" not in out.stderr and out.stdout.strip() == "141", out


def test_info_sees_a_truncated_checkpoint_and_verify_drops_it(tiny_run, tmp_path, capsys):
    import shutil

    out = tmp_path / "run"
    shutil.copytree(tiny_run.path, out)
    assert main(["info", str(out)]) == 0
    assert f"files complete by size; `mbc verify {out}`" in capsys.readouterr().out
    assert main(["verify", str(out)]) == 0
    assert "12 checkpoints, all intact" in capsys.readouterr().out
    step = tiny_run.steps[6]
    file = out / tiny_run.manifest.entry(step).file
    file.write_bytes(file.read_bytes()[:-10])
    assert main(["info", str(out)]) == 0
    assert f"1 damaged checkpoint(s): steps {step} " in capsys.readouterr().out
    assert main(["verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"1 of 12 checkpoints damaged: steps {step}" in text and str(file) in text
    assert load_run(out).steps == tiny_run.steps  # verifying alone changes nothing
    assert main(["verify", str(out), "--drop-damaged"]) == 0
    text = capsys.readouterr().out
    assert f"dropped from the manifest: steps {step}" in text
    assert (out / "damaged" / tiny_run.manifest.entry(step).file).is_file()
    assert step not in load_run(out).steps
    assert main(["verify", str(out)]) == 0
