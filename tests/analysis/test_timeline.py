"""Integration: the analyses over a real tiny run's checkpoints, the table on disk, the summary."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, load_timeline, select_steps
from mbc_interp.analysis.timeline import COLUMNS, STEPS_DIR
from mbc_interp.cli import main
from mbc_interp.store.run_store import RunStoreError

SMALL = AnalysisConfig(n_pairs=32, n_examples=64, patch_kinds=("head_out_all_pos", "resid_pre"))


@pytest.fixture
def run(tmp_path, tiny_run):
    shutil.copytree(tiny_run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


def _mtimes(run):
    return {f.name: f.stat().st_mtime_ns for f in (run.path / "analysis" / STEPS_DIR).iterdir()}


def test_select_steps():
    steps = [0, 1, 2, 4, 8, 16, 40, 80, 120]
    assert select_steps(steps) == steps
    assert select_steps(steps, every=3) == [0, 4, 40, 120]
    assert select_steps(steps, start=4, stop=80, every=2) == [4, 16, 80]
    with pytest.raises(ValueError, match="every = 0"):
        select_steps(steps, every=0)


def test_table_covers_every_checkpoint(run):
    table, summary = analyze(run, SMALL, progress=False)
    assert list(table.columns) == list(COLUMNS)
    assert sorted(table["step"].unique()) == run.steps
    assert (table["tokens"] == table["step"] * run.config.tokens_per_step).all()
    n_heads = run.config.model.n_layers * run.config.model.n_heads
    attn = table[table.metric == "attn_to_z"]
    assert len(attn) == len(run.steps) * n_heads
    assert attn["value"].between(0, 1).all()
    resid = table[(table.kind == "resid_pre") & (table.metric == "patch_raw")]
    assert len(resid) == len(run.steps) * run.config.model.n_layers * (run.task.answer_pos + 1)
    lens = table[(table.analysis == "logit_lens") & (table.metric == "loss")]
    final = lens[lens.component == f"L{run.config.model.n_layers - 1}"].set_index("step")["value"]
    logged = run.metrics.set_index("step")["loss"]
    # the last logit-lens stage is the model itself: its loss is the logged eval loss (on a subset)
    assert final.loc[0] == pytest.approx(logged.loc[0], rel=0.05)
    on_disk = load_timeline(run)
    assert len(on_disk) == len(table)
    assert (run.path / "analysis" / "timeline.csv").is_file()
    assert json.loads((run.path / "analysis" / "summary.json").read_text()) == summary


def test_incremental_and_partial_runs(run):
    first, _ = analyze(run, SMALL, stop=16, progress=False)
    assert sorted(first["step"].unique()) == [s for s in run.steps if s <= 16]
    before = _mtimes(run)
    table, _ = analyze(run, SMALL, progress=False)  # only the rest is computed
    after = _mtimes(run)
    assert all(after[name] == t for name, t in before.items())
    assert len(after) == len(run.steps) and sorted(table["step"].unique()) == run.steps
    with pytest.raises(ValueError, match=r"analysis/config\.json: earlier checkpoints"):
        analyze(run, AnalysisConfig(n_pairs=16), progress=False)
    analyze(
        run,
        AnalysisConfig(n_pairs=16, patch_kinds=("head_out_all_pos",)),
        force=True,
        progress=False,
    )
    assert all(_mtimes(run)[name] != t for name, t in after.items())


def test_analysing_an_analysed_run_again_writes_nothing(run):
    """Nothing new to compute: config.json, timeline.csv and summary.json are not rewritten
    (same bytes, same modification times), so reading notebooks leave a run as it was."""
    table, summary = analyze(run, SMALL, stop=16, progress=False)
    files = sorted(f for f in run.path.rglob("*") if f.is_file())
    before = {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    again, summary_again = analyze(run, SMALL, stop=16, progress=False)
    assert {f: (f.stat().st_mtime_ns, f.read_bytes()) for f in files} == before
    assert sorted(f for f in run.path.rglob("*") if f.is_file()) == files
    assert again.equals(table) and summary_again == summary
    analyze(run, SMALL, progress=False)  # new checkpoints: the tables are rewritten
    assert (run.path / "analysis" / "timeline.csv").read_bytes() != before[
        run.path / "analysis" / "timeline.csv"
    ][1]


def test_run_without_transition_says_so(run):
    # the tiny run stops at step 120, on the plateau: no made-up times
    _, summary = analyze(run, SMALL, progress=False)
    assert summary["status"] == "no_transition"
    assert "never fell below" in summary["reason"]
    assert summary["t_loss"] is None and summary["lead_fraction"] is None
    assert summary["t_plateau_start"] is not None
    assert summary["plateau_loss"] == pytest.approx(run.log_k, rel=0.05)
    assert summary["tokens"]["t_loss"] is None
    # the raw per-token loss rests too (the proxy: where the per-example loss rests at log K)
    m = run.metrics
    rest = m[(m.step >= summary["t_flat_start"]) & (m.step <= summary["t_flat_end"])]
    assert len(rest) >= 3 and summary["flat_loss_tok"] == pytest.approx(rest.loss_tok.median())
    assert summary["format_loss_tok"] is None and summary["marginal_gap_at_drop"] is None


def test_cli_analyze(run, capsys):
    assert (
        main(
            [
                "analyze",
                str(run.path),
                "--n-pairs",
                "16",
                "--n-examples",
                "32",
                "--patch-kinds",
                "head_out_all_pos",
                "--every",
                "2",
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "log K" in out and "status           no_transition" in out
    assert main(["analyze", str(run.path), "--n-pairs", "8", "--no-progress"]) == 2
    assert "force" in capsys.readouterr().err


# -- strict settings ---------------------------------------------------------------------------
def test_each_step_file_records_its_settings_and_a_timeline_never_mixes_them(run):
    analyze(run, SMALL, stop=16, progress=False)
    folder = run.path / "analysis" / STEPS_DIR
    assert all(json.loads(f.read_text())["settings"] == SMALL.to_dict() for f in folder.iterdir())
    other = AnalysisConfig(n_pairs=16, patch_kinds=("head_out_all_pos",))
    (run.path / "analysis" / "config.json").unlink()  # the guard on config.json is gone...
    with pytest.raises(RunStoreError, match=r"step00000016\.json: computed with settings"):
        analyze(run, other, stop=8, progress=False)  # ...the per-file settings still refuse
    with pytest.raises(RunStoreError, match="files computed with different settings"):
        load_timeline(run)
    table, _ = analyze(run, other, progress=False)  # every step: all recomputed, one setting
    assert sorted(table["step"].unique()) == run.steps
    assert {json.dumps(json.loads(f.read_text())["settings"]) for f in folder.iterdir()} == {
        json.dumps(other.to_dict())
    }


def test_files_from_before_settings_were_recorded_are_recomputed(run):
    analyze(run, SMALL, stop=4, progress=False)
    folder = run.path / "analysis" / STEPS_DIR
    for f in folder.iterdir():  # the old format: a bare list of rows
        f.write_text(json.dumps(json.loads(f.read_text())["rows"]))
    assert len(load_timeline(run)) > 0  # readable alone
    before = _mtimes(run)
    analyze(run, SMALL, stop=4, progress=False)
    assert all(_mtimes(run)[name] != t for name, t in before.items())


def test_an_older_analysis_version_is_recomputed_and_settings_given_are_the_current_one(run):
    """A ``config.json`` or step file without a version was written before the field existed
    (version 1); settings given without one (a sweep file's ``[analysis]``) are the current
    version. An analysis of an older version is recomputed in full, never mixed with the new."""
    from mbc_interp.analysis.analysis_config import ANALYSIS_VERSION
    from mbc_interp.analysis.config_record import read_config
    from mbc_interp.sweep.grid import SweepSpec

    given = {"n_pairs": 32, "n_examples": 64, "patch_kinds": ["head_out_all_pos", "resid_pre"]}
    spec = SweepSpec.from_dict({"analysis": given, "grid": [{"train": {"seed": [0]}}]})
    assert spec.analysis.version == ANALYSIS_VERSION == SMALL.version > 1
    analyze(run, SMALL, stop=4, progress=False)
    folder, config = run.path / "analysis" / STEPS_DIR, run.path / "analysis" / "config.json"
    for f in [*folder.iterdir(), config]:  # as version 1 wrote them: no version, a stale value
        data = json.loads(f.read_text())
        settings = data.get("settings", data)
        del settings["version"]
        for r in data.get("rows", []):
            r["value"] = 12345.0
        f.write_text(json.dumps(data))
    assert read_config(config).version == 1
    table, _ = analyze(run, SMALL, stop=4, progress=False)
    assert not (table.value == 12345.0).any()  # every row recomputed
    assert read_config(config).version == ANALYSIS_VERSION
    assert all(json.loads(f.read_text())["settings"]["version"] == ANALYSIS_VERSION
               for f in folder.iterdir())  # fmt: skip


@pytest.mark.parametrize(
    ("settings", "named"),
    [({"n_pairs": 8, "n_pair": 3}, "'n_pair'"), ({"n_pairs": "8"}, "n_pairs = '8'"),
     ({"patch_kinds": ["nope"]}, "'nope'"), ({"n_examples": 2.5}, "n_examples = 2.5")],
)  # fmt: skip
def test_unknown_or_mistyped_analysis_settings_are_named(run, settings, named, capsys):
    from mbc_interp.config import ConfigError
    from mbc_interp.sweep.grid import SweepSpec

    with pytest.raises(ConfigError, match=rf"s\.toml: \[analysis\]: .*{named}"):
        SweepSpec.from_dict({"analysis": settings, "grid": [{"task": {"D": 8}}]}, "s.toml")
    (run.path / "analysis").mkdir()
    (run.path / "analysis" / "config.json").write_text(json.dumps(settings))
    assert main(["report", str(run.path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "analysis/config.json" in err and named in err and "Traceback" not in err
    assert sorted(p.name for p in (run.path / "analysis").iterdir()) == ["config.json"]


def test_patch_kinds_without_what_the_summary_needs_fail_before_analysing(run, capsys):
    argv = ["analyze", str(run.path), "--patch-kinds", "resid_pre", "--no-progress"]
    assert main(argv) == 2
    assert "head_out_all_pos" in capsys.readouterr().err
    assert not (run.path / "analysis").exists()


def test_a_stray_file_in_the_steps_folder_is_named(run, capsys):
    analyze(run, SMALL, stop=2, progress=False)
    stray = run.path / "analysis" / STEPS_DIR / "notes.json"
    stray.write_text("{}")
    before = {p: p.stat().st_mtime_ns for p in (run.path / "analysis").rglob("*")}
    assert main(["analyze", str(run.path), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "notes.json: unexpected" in err and "Traceback" not in err
    assert {p: p.stat().st_mtime_ns for p in (run.path / "analysis").rglob("*")} == before


# -- adding a kind -----------------------------------------------------------------------------
def _step_files(run) -> dict[str, dict]:
    folder = run.path / "analysis" / STEPS_DIR
    return {f.name: json.loads(f.read_text()) for f in sorted(folder.iterdir())}


def test_a_kind_is_added_to_an_analysed_run_without_recomputing_the_others(run, monkeypatch):
    from mbc_interp.analysis import timeline

    analyze(run, SMALL, progress=False)
    before = _step_files(run)
    assert not any(r["analysis"] == "gradients" for d in before.values() for r in d["rows"])

    def not_again(*args, **kwargs):
        raise AssertionError("a core analysis was recomputed")

    for name in ("patch_sites", "head_attribution", "head_z_use", "logit_lens"):
        monkeypatch.setattr(timeline, name, not_again)
    assert main(["analyze", str(run.path), "--kinds", "gradients", "--no-progress"]) == 0
    after = _step_files(run)
    assert after.keys() == before.keys() and len(after) == len(run.steps)
    for name, data in after.items():
        old = before[name]["rows"]
        assert data["rows"][: len(old)] == old  # the rows already there, untouched
        added = data["rows"][len(old) :]
        assert added and {r["analysis"] for r in added} == {"gradients"}
        assert data["settings"] == {**SMALL.to_dict(), "kinds": ["gradients"]}
        assert "sample_size" in data["kind_settings"]["gradients"]
    table = load_timeline(run)
    assert sorted(table[table.analysis == "gradients"].step.unique()) == run.steps
    # asked again: nothing left to compute, nothing rewritten
    mtimes = _mtimes(run)
    from mbc_interp.analysis.dynamics import gradients

    monkeypatch.setattr(gradients, "gradient_diagnostics", not_again)
    assert main(["analyze", str(run.path), "--kinds", "gradients", "--no-progress"]) == 0
    assert _mtimes(run) == mtimes


def test_a_settings_conflict_names_the_kind_and_both_values(run, capsys):
    analyze(run, SMALL, stop=8, progress=False)
    args = ["analyze", str(run.path), "--kinds", "gradients", "--n-pairs", "16", "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "core analyses" in err and "n_pairs was 32, now 16" in err and "force" in err
    # an extra kind's own settings, recorded in the step files
    analyze(run, replace(SMALL, kinds=("gradients",)), stop=8, progress=False)
    file = run.path / "analysis" / STEPS_DIR / "step00000000.json"
    data = json.loads(file.read_text())
    data["kind_settings"]["gradients"]["sample_size"] = 64
    file.write_text(json.dumps(data))
    assert main(["analyze", str(run.path), "--stop", "8", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "step00000000.json" in err and "gradients: sample_size was 64, now 512" in err


def test_step_files_from_before_kind_settings_still_load_and_take_a_kind(run):
    analyze(run, SMALL, stop=8, progress=False)
    folder = run.path / "analysis" / STEPS_DIR
    for f in folder.iterdir():  # the format before kind_settings: settings and rows only
        data = json.loads(f.read_text())
        f.write_text(json.dumps({"settings": data["settings"], "rows": data["rows"]}))
    n = len(load_timeline(run, SMALL))
    table = analyze_run_kinds(run, ("gradients",))
    assert len(table) > n and (table.analysis == "gradients").any()


def analyze_run_kinds(run, kinds):
    from mbc_interp.analysis.timeline import analyze_run

    steps = [s for s in run.steps if s <= 8]
    return analyze_run(run, replace(SMALL, kinds=kinds), steps=steps, progress=False)
