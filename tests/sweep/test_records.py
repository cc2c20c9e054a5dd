"""Records: a sweep outlives its directory. Finished runs are kept without their weights,
restored as done on a fresh machine, refit there exactly; passes add kinds before the record."""

from __future__ import annotations

import json
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from mbc_interp.config import ConfigError
from mbc_interp.store.records import (
    ARCHIVE_FILE,
    OUTCOME_FILE,
    read_record_outcome,
    record_files,
    restore_record,
    write_record,
)
from mbc_interp.store.run_store import RunStoreError
from mbc_interp.sweep.grid import AnalysisPass, SweepSpec
from mbc_interp.sweep.results import carry_over, collect
from mbc_interp.sweep.runner import POINTS_DIR, RUNS_DIR, run_sweep

from ..helpers import tiny_spec


def _timeline_kinds(run_dir: Path) -> set[str]:
    table = pd.read_csv(run_dir / "analysis" / "timeline.csv")
    return set(table["analysis"].dropna())


def test_a_record_keeps_everything_but_the_weights(short_sweep, tmp_path):
    name = sorted(p.name for p in (short_sweep / RUNS_DIR).iterdir())[0]
    run_dir = short_sweep / RUNS_DIR / name
    outcome = json.loads((short_sweep / POINTS_DIR / f"{name}.json").read_text())
    dest = tmp_path / "records" / name
    assert write_record(run_dir, outcome, dest)
    assert sorted(p.name for p in dest.iterdir()) == [OUTCOME_FILE, ARCHIVE_FILE]
    with tarfile.open(dest / ARCHIVE_FILE) as tar:
        kept = set(tar.getnames())
    assert {"config.json", "metrics.jsonl", "manifest.json"} <= kept
    assert "analysis/summary.json" in kept and "analysis/timeline.csv" not in kept  # derived
    assert any(p.startswith("analysis/steps/") for p in kept)
    assert not any(p.startswith("checkpoints/") or p.endswith(".lock") for p in kept)
    assert kept == {str(p) for p in record_files(run_dir)}
    assert read_record_outcome(dest) == outcome
    # unchanged run: nothing is rewritten (committed records stay byte-identical)
    mtimes = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    assert not write_record(run_dir, outcome, dest)
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == mtimes
    again = tmp_path / "again"
    write_record(run_dir, outcome, again)  # the same files give the same bytes
    assert (again / ARCHIVE_FILE).read_bytes() == (dest / ARCHIVE_FILE).read_bytes()
    restored = restore_record(dest, tmp_path / "run")
    assert restored == outcome
    for rel in record_files(run_dir):
        assert (tmp_path / "run" / rel).read_bytes() == (run_dir / rel).read_bytes()


def test_a_cut_record_is_refused_by_name(tmp_path):
    (tmp_path / "rec").mkdir()
    (tmp_path / "rec" / ARCHIVE_FILE).write_bytes(b"not xz")
    with pytest.raises(RunStoreError, match=r"point\.json is missing"):
        restore_record(tmp_path / "rec", tmp_path / "run")
    (tmp_path / "rec" / OUTCOME_FILE).write_text('{"status": "done"}')
    with pytest.raises(RunStoreError, match=r"run\.tar\.xz: not a readable record"):
        restore_record(tmp_path / "rec", tmp_path / "run")
    with pytest.raises(RunStoreError, match="not a run directory"):
        write_record(tmp_path / "nothing", {"status": "done"}, tmp_path / "x")


def test_a_sweep_resumes_from_records_on_a_machine_without_its_directory(short_sweep, tmp_path):
    spec = tiny_spec(steps=40)
    records = tmp_path / "records"
    first = Path(shutil.copytree(short_sweep, tmp_path / "first"))
    assert run_sweep(spec, first, workers=1, progress=False, records=records) == []
    assert sorted(p.name for p in records.iterdir()) == sorted(p.name for p in spec.points)
    fresh = tmp_path / "fresh"  # the sweep directory is lost: only the records remain
    outcomes = run_sweep(spec, fresh, workers=1, progress=False, records=records)
    assert outcomes == []  # nothing trained again
    for p in spec.points:
        outcome = json.loads((fresh / POINTS_DIR / f"{p.name}.json").read_text())
        assert outcome["status"] == "done" and outcome["restored_from"].endswith(p.name)
        timeline = Path(RUNS_DIR) / p.name / "analysis" / "timeline.csv"  # rebuilt, the same
        assert (fresh / timeline).read_bytes() == (first / timeline).read_bytes()
    kept = {p: (records / p / OUTCOME_FILE).read_bytes() for p in (x.name for x in spec.points)}
    run_sweep(spec, fresh, workers=1, progress=False, records=records)  # in sync: unchanged
    assert {p: (records / p / OUTCOME_FILE).read_bytes() for p in kept} == kept
    cols = ["name", "status", "t_plateau_start", "t_loss", "plateau_loss", "final_loss"]
    pd.testing.assert_frame_equal(collect(first)[cols], collect(fresh)[cols])


def test_a_record_with_another_config_is_an_error_naming_it(short_sweep, tmp_path):
    records = tmp_path / "records"
    run_sweep(tiny_spec(steps=40), Path(shutil.copytree(short_sweep, tmp_path / "a")),
              workers=1, progress=False, records=records)  # fmt: skip
    name = tiny_spec(steps=40).points[0].name
    run_dir = tmp_path / "a" / RUNS_DIR / name
    config = json.loads((run_dir / "config.json").read_text())
    config["config"]["train"]["lr"] = 0.5
    (run_dir / "config.json").write_text(json.dumps(config))
    write_record(run_dir, read_record_outcome(records / name), records / name)
    with pytest.raises(ConfigError, match=f"{name}.*different config"):
        run_sweep(tiny_spec(steps=40), tmp_path / "b", workers=1, progress=False,
                  records=records)  # fmt: skip


def test_earlier_rows_are_carried_until_their_point_runs_again(short_sweep, tmp_path):
    table = collect(short_sweep)
    earlier = table.assign(final_loss=123.0).drop(columns=["compile"])  # an older table
    earlier.to_csv(tmp_path / "runs.csv", index=False)
    one = table.name.iloc[0]
    partial = table.assign(point_status=["pending" if n != one else "done" for n in table.name])
    out = carry_over(partial, tmp_path / "runs.csv")
    assert list(out.name) == list(table.name)  # the sweep's order
    assert out.set_index("name").loc[one, "source"] == "run"
    assert out.set_index("name").loc[one, "final_loss"] != 123.0
    carried = out[out.name != one]
    assert set(carried.source) == {"earlier table"} and set(carried.final_loss) == {123.0}
    assert (out.point_status == "done").all()
    assert (out["compile"] == table["compile"]).all()  # an axis the older table lacked
    assert carry_over(table, tmp_path / "runs.csv") is table  # nothing to carry


def test_passes_add_kinds_after_the_analysis_every_or_last(tmp_path):
    spec = replace(tiny_spec(steps=40, grids=({"task": {"D": 24}},)), passes=(
        AnalysisPass(("groups",)), AnalysisPass(("weights",), at="last")))  # fmt: skip
    out = tmp_path / "sw"
    [outcome] = run_sweep(spec, out, workers=1, progress=False)
    assert outcome["status"] == "done", outcome
    run_dir = out / RUNS_DIR / spec.points[0].name
    table = pd.read_csv(run_dir / "analysis" / "timeline.csv")
    steps = sorted(table.step.unique())
    assert {"groups", "weights"} <= _timeline_kinds(run_dir)
    assert sorted(table.loc[table.analysis == "groups", "step"].unique()) == steps
    assert sorted(table.loc[table.analysis == "weights", "step"].unique()) == [steps[-1]]


def test_passes_parse_strictly_and_round_trip():
    grid = {"task": {"D": 24}}
    spec = SweepSpec.from_dict({"grid": [grid], "passes": [
        {"kinds": ["groups"]}, {"kinds": ["llc"], "every": 5, "llc": {"draws": 20}},
        {"kinds": ["ablation"], "at": "last"}]})  # fmt: skip
    assert SweepSpec.from_dict(spec.to_dict()) == spec
    assert spec.passes[1].config(spec.analysis).settings_of("llc").draws == 20
    for bad, match in [({"kinds": ["nope"]}, "registered kinds"),
                       ({"kinds": ["groups"], "at": "first"}, "at = 'first'"),
                       ({"kinds": ["groups"], "every": 0}, "every = 0"),
                       ({"kinds": ["groups"], "llc": {"draws": 2}}, "does not compute"),
                       ({"kinds": "groups"}, "must be a list")]:  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            SweepSpec.from_dict({"grid": [grid], "passes": [bad]})
    with pytest.raises(ConfigError, match="need the runs' \\[analysis\\]"):
        SweepSpec.from_dict({"grid": [grid], "analysis": None, "passes": [{"kinds": ["groups"]}]})
