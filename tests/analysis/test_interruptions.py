"""An analysis interrupted: what is recorded is what was computed, and a rerun completes it."""

from __future__ import annotations

import json
import shutil

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, kind_runs, load_timeline
from mbc_interp.analysis.timeline import STEPS_DIR, saved_config
from mbc_interp.analysis.weights import weight_records
from mbc_interp.cli import main

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
