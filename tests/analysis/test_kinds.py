"""The mechanistic kinds through the whole pipeline: added to an analysed run, each writes its
rows at every checkpoint, the summary reads them and the run report shows them."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pandas as pd
import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, load_timeline
from mbc_interp.analysis.plan import cost_parts
from mbc_interp.cli import main

SMALL = AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos", "resid_pre"))
NEW = ("ablation", "ablation_z", "atp", "groups", "weights", "probes", "llc_heads", "essential")
SETTINGS = {
    "ablation": {"n_examples": 32, "methods": ["mean"]}, "ablation_z": {"n_examples": 32},
    "atp": {"n_pairs": 16},
    "groups": {"n_groups": 8}, "probes": {"n_examples": 64},
    "llc_heads": {"heads": ["L0H0", "L1H1"], "chains": 1, "draws": 4, "burn_in": 0,
                  "batch_size": 16},
    "essential": {"n_examples": 8, "n_projections": 16},
}  # fmt: skip


@pytest.fixture
def run(tmp_path, tiny_run):
    shutil.copytree(tiny_run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


@pytest.mark.slow  # every new kind on the tiny run's first checkpoints (~40 s)
def test_every_new_kind_adds_to_an_analysed_run_and_reaches_summary_and_report(run, tmp_path):
    steps = [s for s in run.steps if s <= 16]
    analyze(run, SMALL, stop=16, progress=False)
    before = load_timeline(run)
    config = replace(SMALL, kinds=NEW, extra_settings=SETTINGS)
    table, summary = analyze(run, config, stop=16, progress=False)
    core = table[table.analysis.isin(before.analysis.unique())]
    assert len(core) == len(before)  # the core rows were kept, not recomputed
    for kind in NEW:
        assert set(table[table.analysis == kind].step) == set(steps), kind
    assert {"essential", "ablation", "ablation_z", "atp", "groups"} <= set(summary)
    assert summary["ablation"]["heads"] and summary["ablation"]["metric"] == "cand_loss_increase"
    assert summary["ablation_z"]["heads"] and set(table[table.analysis == "ablation_z"].kind) == {
        "z_resample"}  # fmt: skip
    for sites in ("heads", "resid_pre"):  # atp against exact patching, where both ran
        assert summary["atp"][sites]["n_checkpoints"] == len(steps), sites
    from mbc_interp.analysis.timing.summary import format_summary

    text = format_summary(summary)  # what `mbc analyze` prints: the headline numbers too
    a, g = summary["ablation"], summary["groups"]
    assert f"necessity +{a['necessity']:.2f} nats" in text
    assert f"{g['n_solved_groups']} of {g['n_groups']} solved" in text
    parts = cost_parts(config, run.config.model, run.task)
    assert all(parts.get(kind, 0) > 0 for kind in NEW)
    out = tmp_path / "report.html"
    assert main(["report", str(run.path), "--no-analyze", "--out", str(out)]) == 0
    html = out.read_text()
    for heading in ("Groups solved over training", "Weights", "Ablation", "Ablation of z alone",
                    "Linear probes", "Attribution patching", "LLC per head", "Essential dynamics"):
        assert heading in html, heading


def test_llc_heads_defaults_to_the_routing_heads_and_a_control(run, capsys):
    import json

    assert main(["analyze", str(run.path), "--stop", "8", "--n-pairs", "16", "--n-examples",
                 "32", "--patch-kinds", "head_out_all_pos", "--no-progress"]) == 0  # fmt: skip
    summary = json.loads((run.path / "analysis" / "summary.json").read_text())
    assert main(["analyze", str(run.path), "--stop", "8", "--kinds", "llc_heads",
                 "--kind-setting", "llc_heads.chains=1", "--kind-setting", "llc_heads.draws=2",
                 "--kind-setting", "llc_heads.burn_in=0", "--no-progress"]) == 0  # fmt: skip
    heads = set(load_timeline(run).query("analysis == 'llc_heads'").component)
    scores = summary["routing_scores"]
    control = min((h for h in scores if h not in summary["routing_heads"]), key=scores.get)
    assert heads == {*summary["routing_heads"], control}


@pytest.mark.slow  # every new kind through `mbc analyze` on the tiny run's first checkpoints
def test_the_command_line_adds_every_new_kind_to_an_analysed_run_without_recomputing(run, capsys):
    import json

    base = ["analyze", str(run.path), "--stop", "8", "--no-progress"]
    assert main([*base, "--n-pairs", "16", "--n-examples", "32",
                 "--patch-kinds", "head_out_all_pos"]) == 0  # fmt: skip
    steps_dir = run.path / "analysis" / "steps"
    files = sorted(steps_dir.iterdir())
    # a sentinel in every core row: a recomputed row would lose it
    for f in files:
        data = json.loads(f.read_text())
        for r in data["rows"]:
            if r["analysis"] == "patching" and r["metric"] == "patch_raw":
                r["value"] = 12345.0
        f.write_text(json.dumps(data))
    before = load_timeline(run)
    flags = [f"{kind}.{name}={json.dumps(value)}" for kind, given in SETTINGS.items()
             for name, value in given.items() if name != "heads"]  # fmt: skip
    args = [*base, "--kinds", *NEW, *(x for f in flags for x in ("--kind-setting", f))]
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "extra kinds: ablation" in out and " s (per checkpoint, one core)" in out
    table = load_timeline(run)
    core = table[table.analysis.isin(before.analysis.unique())]
    pd.testing.assert_frame_equal(core.reset_index(drop=True), before.reset_index(drop=True))
    assert (table[(table.analysis == "patching") & (table.metric == "patch_raw")].value
            == 12345.0).all()  # fmt: skip
    steps = sorted(before.step.unique())
    for kind in NEW:
        assert sorted(table[table.analysis == kind].step.unique()) == steps, kind
    saved = json.loads((run.path / "analysis" / "config.json").read_text())
    assert set(NEW) <= set(saved["kinds"])
    # a second call has nothing left to do: the files stay as they are
    mtimes = {f.name: f.stat().st_mtime_ns for f in steps_dir.iterdir()}
    assert main(base) == 0
    assert {f.name: f.stat().st_mtime_ns for f in steps_dir.iterdir()} == mtimes


def test_redo_recomputes_one_kind_and_keeps_every_other_row(run, capsys):
    """`mbc analyze --redo KIND` recomputes that kind where it was analysed (after its code has
    changed) and keeps every other row; a kind the analysis does not have is a named error that
    writes nothing."""
    import json

    base = ["analyze", str(run.path), "--stop", "4", "--no-progress"]
    assert main([*base, "--n-pairs", "16", "--n-examples", "32", "--patch-kinds",
                 "head_out_all_pos", "--kinds", "ablation", "--kind-setting",
                 "ablation.n_examples=32", "--kind-setting", 'ablation.methods=["mean"]']) == 0
    files = sorted((run.path / "analysis" / "steps").iterdir())
    for f in files:  # sentinels: a recomputed row loses its own
        data = json.loads(f.read_text())
        for r in data["rows"]:
            if r["analysis"] in ("patching", "ablation"):
                r["value"] = 12345.0
        f.write_text(json.dumps(data))
    before = load_timeline(run)
    assert main([*base, "--redo", "ablation"]) == 0
    table = load_timeline(run)
    patching = table[table.analysis == "patching"]
    assert (patching.value == 12345.0).all()
    assert len(patching) == (before.analysis == "patching").sum()
    ablation = table[table.analysis == "ablation"]
    assert len(ablation) == (before.analysis == "ablation").sum()
    assert not (ablation.value == 12345.0).any()  # recomputed, at every analysed step
    assert set(ablation.step) == set(before[before.analysis == "ablation"].step)
    capsys.readouterr()
    assert main([*base, "--redo", "groups"]) == 2
    assert "redo 'groups': not an extra kind" in capsys.readouterr().err
    pd.testing.assert_frame_equal(load_timeline(run), table)
