"""The mechanistic kinds through the whole pipeline: added to an analysed run, each writes its
rows at every checkpoint, the summary reads them and the run report shows them."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, load_timeline
from mbc_interp.analysis.plan import cost_parts
from mbc_interp.cli import main

SMALL = AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos", "resid_pre"))
NEW = ("ablation", "atp", "groups", "weights", "probes", "llc_heads", "essential")
SETTINGS = {
    "ablation": {"n_examples": 32, "methods": ["mean"]}, "atp": {"n_pairs": 16},
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
    assert {"essential", "ablation", "atp", "groups"} <= set(summary)
    assert summary["ablation"]["heads"] and summary["ablation"]["metric"] == "cand_loss_increase"
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
    for heading in ("Groups solved over training", "Weights", "Ablation", "Linear probes",
                    "Attribution patching", "LLC per head", "Essential dynamics"):
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
