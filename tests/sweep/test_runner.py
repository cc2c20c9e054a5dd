"""Running sweeps: every point a real run, done points skipped, failures recorded, resumable."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mbc_interp import load_run, train
from mbc_interp.cli import main
from mbc_interp.sweep.results import collect
from mbc_interp.sweep.runner import POINTS_DIR, RUNS_DIR, SweepProgress, run_sweep, sweep_status

from ..helpers import build_cfg, tiny_spec


def _metrics(out: Path) -> dict[str, pd.DataFrame]:
    return {
        d.name: load_run(d).metrics.drop(columns=["wall_time"])
        for d in sorted((out / RUNS_DIR).iterdir())
    }


def test_every_point_is_an_ordinary_analysed_run(short_sweep):
    runs = sorted(p.name for p in (short_sweep / RUNS_DIR).iterdir())
    assert runs == sorted(
        f"D{d}_K4_lr0.003_b32_s{s}" for d in (24, 32) for s in (0, 1)
    )
    for name in runs:
        run = load_run(short_sweep / RUNS_DIR / name)
        assert run.status == "finished"
        assert (run.path / "analysis" / "summary.json").exists()
        outcome = json.loads((short_sweep / POINTS_DIR / f"{name}.json").read_text())
        assert outcome["status"] == "done" and outcome["train_seconds"] > 0
    spec = json.loads((short_sweep / "sweep.json").read_text())
    assert len(spec["points"]) == 4 and spec["analysis"]["patch_kinds"] == ["head_out_all_pos"]


def test_points_equal_a_plain_run_with_the_same_config(short_sweep, tmp_path):
    name = "D32_K4_lr0.003_b32_s1"
    cfg = load_run(short_sweep / RUNS_DIR / name).config
    plain = train(cfg, tmp_path / "plain", progress=False)
    swept = load_run(short_sweep / RUNS_DIR / name)
    cols = ["step", "loss", "acc", "train_loss"]
    pd.testing.assert_frame_equal(plain.metrics[cols], swept.metrics[cols])


def test_status_shows_where_a_started_point_is(short_sweep, tmp_path, capsys):
    out = Path(shutil.copytree(short_sweep, tmp_path / "copy"))
    analysing, training = "D24_K4_lr0.003_b32_s0", "D32_K4_lr0.003_b32_s1"
    for name in (analysing, training):  # no outcome yet: started, not done
        (out / POINTS_DIR / f"{name}.json").unlink()
    run_dir = out / RUNS_DIR / training  # interrupted mid-training, mid-write
    manifest = json.loads((run_dir / "manifest.json").read_text())
    (run_dir / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    (run_dir / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n" + lines[3][:40])
    rows = {r["name"]: r for r in sweep_status(out)}
    last = json.loads((out / RUNS_DIR / analysing / "metrics.jsonl").read_text().splitlines()[-1])
    assert rows[analysing] | {"labels": None} == {
        "name": analysing, "labels": None, "state": "started", "error": None, "seconds": None,
        "step": last["step"], "steps": 40, "trained": True}  # fmt: skip
    assert rows[training]["step"] == json.loads(lines[2])["step"] < 40
    assert rows[training]["trained"] is False
    assert {r["step"] for r in rows.values() if r["state"] == "done"} == {None}
    assert main(["sweep", "--out", str(out), "--status"]) == 0
    printed = capsys.readouterr().out
    assert f"{analysing}  trained, analysing" in printed
    assert f"{training}  step {json.loads(lines[2])['step']:,} of 40" in printed
    assert printed.rstrip().endswith("2 done, 2 started")


@pytest.mark.slow
def test_rerun_skips_done_points_and_runs_only_new_ones(local_sweep, tmp_path):
    local_sweep = Path(shutil.copytree(local_sweep, tmp_path / "copy"))
    before = {p.name: p.stat().st_mtime_ns for p in (local_sweep / POINTS_DIR).iterdir()}
    grids = ({"task": {"D": [24, 32]}, "train": {"seed": [0, 1, 2]}},)
    outcomes = run_sweep(tiny_spec(grids), local_sweep, workers=2, progress=False)
    assert [o["name"] for o in outcomes] == ["D24_K4_lr0.003_b32_s2", "D32_K4_lr0.003_b32_s2"]
    after = {p.name: p.stat().st_mtime_ns for p in (local_sweep / POINTS_DIR).iterdir()}
    assert all(after[k] == v for k, v in before.items())
    assert {r["state"] for r in sweep_status(local_sweep)} == {"done"}
    assert len(sweep_status(local_sweep)) == 6


@pytest.mark.slow
def test_a_failing_point_is_recorded_and_the_others_finish(tmp_path):
    out = tmp_path / "sw"
    spec = tiny_spec(analysis=False)
    bad = spec.points[1]
    # a run directory with another config where this point's run should go: it must fail
    train(build_cfg(steps=10), out / RUNS_DIR / bad.name, progress=False)
    outcomes = run_sweep(spec, out, workers=2, progress=False)
    by_name = {o["name"]: o for o in outcomes}
    assert by_name[bad.name]["status"] == "failed"
    assert "different config" in by_name[bad.name]["error"]
    assert "Traceback" in by_name[bad.name]["traceback"]
    assert sum(o["status"] == "done" for o in outcomes) == 3
    states = {r["name"]: r for r in sweep_status(out)}
    assert states[bad.name]["state"] == "failed" and "different config" in states[bad.name]["error"]


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_without_redoing_finished_points(tmp_path):
    out = tmp_path / "sw"
    cmd = [sys.executable, "-m", "mbc_interp.cli", "sweep", "--out", str(out), "--workers", "1",
           "--no-analysis", "--D", "32", "48", "64", "--steps", "600", "--lr", "3e-3",
           "--batch-size", "32", "--eval-every", "10", "--base-len", "3", "--n-base-symbols", "8",
           "--n-target-symbols", "8", "--d-model", "32", "--n-heads", "2", "--d-mlp", "64",
           "--device", "cpu", "--ckpt-every", "20", "--stop-after-solved", "none"]  # fmt: skip
    proc = subprocess.Popen(cmd, start_new_session=True, stderr=subprocess.PIPE, text=True)
    points, runs = out / POINTS_DIR, out / RUNS_DIR
    deadline = time.time() + 180
    victim = None
    while time.time() < deadline and victim is None:  # a point past its first checkpoints
        for run_dir in runs.glob("*") if runs.exists() else ():
            manifest = _manifest(run_dir)
            if (manifest and manifest["status"] == "running" and len(manifest["checkpoints"]) > 3
                    and not (points / f"{run_dir.name}.json").exists()):  # fmt: skip
                victim = run_dir.name
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # no clean-up at all: workers die mid-write
    proc.wait()
    assert victim is not None, "no point was seen mid-training"
    interrupted = _manifest(runs / victim)
    assert interrupted["status"] == "running"  # really interrupted, not finished
    assert interrupted["checkpoints"][-1]["step"] < 600
    done = {p.name: p.stat().st_mtime_ns for p in points.iterdir()}
    assert len(done) < 3 and f"{victim}.json" not in done
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "3 points" in result.stdout
    assert {p.name: p.stat().st_mtime_ns for p in points.iterdir() if p.name in done} == done
    assert {r["state"] for r in sweep_status(out)} == {"done"}
    outcome = json.loads((points / f"{victim}.json").read_text())
    assert outcome["resumed"] is True and outcome["run_status"] == "finished"
    assert "done" in result.stderr and "to go" in result.stderr  # the progress view
    for name, metrics in _metrics(out).items():
        assert metrics.step.is_monotonic_increasing and metrics.step.iloc[-1] == 600, name
        assert metrics.step.is_unique, name


def _manifest(run_dir):
    try:
        return json.loads((run_dir / "manifest.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_a_diverged_point_is_its_own_outcome_and_is_not_rerun(tmp_path):
    out = tmp_path / "sw"
    spec = tiny_spec(grids=({"train": {"lr": [3e-3, 1e30]}},), analysis=False, steps=60)
    outcomes = {o["name"]: o for o in run_sweep(spec, out, workers=1, progress=False)}
    ok, bad = (p.name for p in spec.points)
    assert outcomes[ok]["status"] == "done"
    assert outcomes[bad]["status"] == "diverged" and outcomes[bad]["run_status"] == "diverged"
    assert "non-finite" in outcomes[bad]["error"] and "step 1" in outcomes[bad]["error"]
    states = {r["name"]: r["state"] for r in sweep_status(out)}
    assert states == {ok: "done", bad: "diverged"}
    assert run_sweep(spec, out, workers=1, progress=False) == []  # deterministic: not re-run
    table = collect(out).set_index("name")
    assert table.loc[bad, "point_status"] == "diverged"
    assert pd.isna(table.loc[bad, "censored"])  # not a censored plateau either


def test_progress_line_counts_and_eta():
    p = SweepProgress(total=10, skipped=2, workers=2, started=time.time() - 65)
    assert p.eta() is None
    p.done, p.failed, p.running, p.seconds = 3, 1, 2, 40.0
    assert p.remaining == 4 and p.eta() == pytest.approx(40.0 / 4 * 4 / 2)
    line = p.line()
    assert "5/10 done (2 earlier), 2 running, 1 failed, 4 to go" in line
    assert "elapsed 1m05s" in line and "ETA 0m20s" in line


@pytest.mark.slow
def test_ray_backend_matches_the_local_backend(local_sweep, tmp_path):
    ray = pytest.importorskip("ray", reason="optional extra: pip install 'mbc-interp[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcomes = run_sweep(tiny_spec(), tmp_path / "ray", backend="ray", progress=False)
    finally:
        ray.shutdown()
    assert [o["status"] for o in outcomes] == ["done"] * 4
    local, remote = _metrics(local_sweep), _metrics(tmp_path / "ray")
    for name, metrics in remote.items():
        pd.testing.assert_frame_equal(metrics, local[name])
        summary = f"{RUNS_DIR}/{name}/analysis/summary.json"
        s_ray = json.loads((tmp_path / "ray" / summary).read_text())
        assert s_ray == json.loads((local_sweep / summary).read_text())


def test_cli_dry_run_status_and_errors(short_sweep, capsys):
    from mbc_interp.cli import main

    assert main(["sweep", "--out", "x", "--dry-run", "--D", "100", "200", "--seed", "0", "1"]) == 0
    out = capsys.readouterr().out
    assert "D200_K4_lr0.0003_b128_s1  [grid0]" in out and "4 points" in out
    assert main(["sweep", "--out", str(short_sweep), "--status"]) == 0
    assert "4 done" in capsys.readouterr().out
    assert main(["sweep", "--out", "x"]) == 2
    assert "give a grid" in capsys.readouterr().err
    assert main(["sweep", "--out", "x", "--status"]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    assert main(["sweep", "--out", "x", "--K", "2", "99", "--dry-run"]) == 2
    assert "task.K = 99" in capsys.readouterr().err
