"""An analysis interrupted, run twice at once, or meeting a damaged checkpoint: what is recorded
is what was computed, the second process is refused, the damaged step is skipped and named."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, kind_runs, load_timeline
from mbc_interp.analysis.dynamics.weights import weight_records
from mbc_interp.analysis.lock import LOCK_FILE, analysis_lock
from mbc_interp.analysis.timeline import STEPS_DIR, analysed_steps, saved_config
from mbc_interp.cli import main
from mbc_interp.store.integrity import DamagedCheckpointWarning
from mbc_interp.store.run_store import RunLockedError

SMALL = AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos",))
CLI_SMALL = ["--n-pairs", "16", "--n-examples", "32", "--patch-kinds", "head_out_all_pos"]
STOP = 16


@pytest.fixture
def run(tmp_path, tiny_run):
    shutil.copytree(tiny_run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


def _steps(run) -> list[int]:
    return [s for s in run.steps if s <= STOP]


def _kind_steps(run, kind: str) -> set[int]:
    folder = run.path / "analysis" / STEPS_DIR
    found = set()
    for f in folder.iterdir():
        if any(r["analysis"] == kind for r in json.loads(f.read_text())["rows"]):
            found.add(int(f.name[4:12]))
    return found


def _fail_at_call(monkeypatch, name: str, n: int) -> None:
    """Make the kind's run function raise at its ``n``-th call (a process killed there)."""
    real, calls = getattr(kind_runs, name), []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(kind_runs, name, flaky)


# -- interrupted -------------------------------------------------------------------------------
def test_a_kind_interrupted_at_its_second_checkpoint_is_recomputed_by_a_rerun(run, monkeypatch):
    analyze(run, SMALL, stop=STOP, progress=False)
    _fail_at_call(monkeypatch, "weights", 2)
    assert main(["analyze", str(run.path), "--stop", str(STOP), "--kinds", "weights",
                 "--no-progress"]) == 130  # fmt: skip
    # its rows at the first checkpoint are written, but the kind is not recorded as done
    assert _kind_steps(run, "weights") == {_steps(run)[0]}
    assert saved_config(run).kinds == ()
    monkeypatch.undo()
    first = run.path / "analysis" / STEPS_DIR / f"step{_steps(run)[0]:08d}.json"
    kept = first.stat().st_mtime_ns
    assert main(["analyze", str(run.path), "--stop", str(STOP), "--kinds", "weights",
                 "--no-progress"]) == 0  # fmt: skip
    assert first.stat().st_mtime_ns == kept  # the step done already was not recomputed
    assert saved_config(run).kinds == ("weights",)
    table = load_timeline(run, saved_config(run))
    rows = table[table.analysis == "weights"]
    assert sorted(rows.step.unique()) == _steps(run)
    for step in _steps(run):
        expected = {(r["component"], r["metric"]): r["value"]
                    for r in weight_records(run.model(step))}  # fmt: skip
        got = rows[rows.step == step].set_index(["component", "metric"])["value"].to_dict()
        assert got == pytest.approx(expected)


def test_a_kind_interrupted_before_any_row_leaves_the_run_free_to_drop_or_change_it(
    run, monkeypatch
):
    analyze(run, SMALL, stop=STOP, progress=False)
    _fail_at_call(monkeypatch, "groups", 1)
    assert main(["analyze", str(run.path), "--stop", str(STOP), "--kinds", "groups",
                 "--kind-setting", "groups.n_groups=8", "--no-progress"]) == 130  # fmt: skip
    monkeypatch.undo()
    assert saved_config(run).kinds == () and not _kind_steps(run, "groups")
    # other settings for it are no conflict: no checkpoint was computed with the first ones
    assert main(["analyze", str(run.path), "--stop", str(STOP), "--kinds", "groups",
                 "--kind-setting", "groups.n_groups=4", "--no-progress"]) == 0  # fmt: skip
    assert saved_config(run).settings_of("groups").n_groups == 4
    assert _kind_steps(run, "groups") == set(_steps(run))


# -- concurrent --------------------------------------------------------------------------------
_HOLD = """
import sys
from pathlib import Path
from mbc_interp.analysis.lock import analysis_lock
with analysis_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_analysis_of_a_run_fails_at_once_naming_the_run_and_the_lock(run, capsys):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(run.path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = run.path / "analysis" / LOCK_FILE
        with pytest.raises(RunLockedError, match="another process is analysing") as e:
            analyze(run, SMALL, stop=2, progress=False)
        assert str(run.path) in str(e.value) and str(lock) in str(e.value)
        assert main(["analyze", str(run.path), "--stop", "2", *CLI_SMALL, "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert str(lock) in err and "Traceback" not in err
        assert not analysed_steps(run)  # nothing was computed
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    analyze(run, SMALL, stop=2, progress=False)  # released when the holder ended
    assert analysed_steps(run) == {s for s in run.steps if s <= 2}


def test_the_lock_is_held_during_the_analysis_and_reentrant_in_one_process(run, monkeypatch):
    seen = []

    def probe(model, task, settings, state=None):
        other = subprocess.run([sys.executable, "-c", _HOLD, str(run.path)], input="\n",
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        seen.append(other.returncode != 0 and "another process is analysing" in other.stderr)
        with analysis_lock(run.path):  # this process holds it: re-entered, not refused
            return []

    monkeypatch.setattr(kind_runs, "weights", probe)
    analyze(run, replace(SMALL, kinds=("weights",)), stop=0, progress=False)
    assert seen == [True]


# -- damaged -----------------------------------------------------------------------------------
def test_a_damaged_checkpoint_is_skipped_named_and_recorded(run, capsys):
    step = _steps(run)[3]
    file = run.path / run.manifest.entry(step).file
    file.write_bytes(file.read_bytes()[:-100])  # truncated: fails its checksum
    with pytest.warns(DamagedCheckpointWarning, match=rf"step {step}: {file}: checksum mismatch"):
        table, summary = analyze(run, SMALL, stop=STOP, progress=False)
    assert summary["skipped_steps"] == [step]
    assert json.loads((run.path / "analysis" / "summary.json").read_text())["skipped_steps"] == [
        step
    ]
    assert sorted(table.step.unique()) == [s for s in _steps(run) if s != step]
    assert analysed_steps(run) == set(_steps(run)) - {step}
    # the command line: one warning line naming step and file, the rest analysed as before
    assert main(["analyze", str(run.path), "--stop", str(STOP), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"mbc analyze: warning: step {step}: {file}: checksum mismatch" in captured.err
    assert f"skipped as damaged: steps {step}" in captured.out
    # repaired (dropped from the manifest): nothing is skipped any more
    assert main(["verify", str(run.path), "--drop-damaged"]) == 0
    _, summary = analyze(load_run(run.path), SMALL, stop=STOP, progress=False)
    assert summary["skipped_steps"] == []
