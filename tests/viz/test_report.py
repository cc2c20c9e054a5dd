"""Reports: one self-contained file, every script inline once; `mbc report` on a run."""

from __future__ import annotations

import json
import re

import pandas as pd
import plotly.graph_objects as go

from mbc_interp import load_run, train
from mbc_interp.analysis import AnalysisConfig, analyze, attention_patterns
from mbc_interp.analysis.timeline import analysed_steps
from mbc_interp.cli import main
from mbc_interp.viz import AttentionRow, Section, attention_view, run_report, write_html_report
from mbc_interp.viz.report import render_html_report

from ..helpers import build_cfg
from .conftest import SMALL, copy_run
from .test_attention import BUNDLE, external_scripts

PLOTLY = "* plotly.js v"  # plotly.js's licence header: once per copy of the library


def _fig(n: int) -> go.Figure:
    return go.Figure(go.Scatter(x=[0, 1], y=[n, n + 1]), layout={"height": 300})


def test_sections_render_with_each_library_once(analysed, tmp_path):
    run, _, _ = analysed
    view = attention_view(attention_patterns(run.model(0), run.task), title="v")
    sections = [
        Section("One <two>", text="a < b\n\nsecond paragraph", figures=[_fig(1), _fig(2)]),
        Section("Table", table=pd.DataFrame({"x": [1, None]})),
        Section("Views", blocks=["<p id='raw'>raw</p>", AttentionRow((view, view))]),
        Section("Table", blocks=[view]),  # same heading: its anchor gets a suffix
    ]
    path = write_html_report(tmp_path / "r" / "report.html", "Sweep <report>", sections)
    html = path.read_text()
    assert html.count(PLOTLY) == 1 and html.count(BUNDLE) == 1
    assert not external_scripts(html) and '<script src="http' not in html
    assert html.count('class="plotly-graph-div"') == 2
    assert html.count("CircuitsVis.render(") == 3
    assert "<title>Sweep &lt;report&gt;</title>" in html and "<p>a &lt; b</p>" in html
    assert 'id="table"' in html and 'id="table-2"' in html  # unique anchors
    assert "<td>n/a</td>" in html and "<p id='raw'>raw</p>" in html


def test_no_figures_no_plotly():
    html = render_html_report("t", [Section("only text", text="hi")])
    assert PLOTLY not in html and BUNDLE not in html and "<nav>" not in html


def test_mbc_report_analyses_the_rest_and_prints_its_path(transitioned_run, tmp_path, capsys):
    run = copy_run(transitioned_run, tmp_path / "run")
    (run.path / "analysis").mkdir()
    (run.path / "analysis" / "config.json").write_text(json.dumps(SMALL.to_dict()))
    assert main(["report", str(run.path), "--no-progress"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"{run.path}: analysing {len(run.steps)} of {len(run.steps)} checkpoints first"
    assert out[-1] == str(run.path / "report.html")
    assert analysed_steps(run) == set(run.steps)
    html = (run.path / "report.html").read_text()
    assert html.count(PLOTLY) == 1 and html.count(BUNDLE) == 1
    assert not re.search(r"<script[^>]*src=[\"']?https?:", html) and not external_scripts(html)
    assert html.count('class="plotly-graph-div"') == 7  # six figures and the drop forecast
    assert "Forecast of the drop" in html and "Now: " in html
    assert html.count('class="mbc-attention-cell"') == 3
    assert "Not available" not in html
    for moment in ("before plateau", "on plateau", "after transition"):
        assert f"{moment}: step" in html
    assert main(["report", str(run.path), "--out", str(tmp_path / "x.html"), "--x", "tokens"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "x.html")  # nothing left to analyse


def test_report_without_analysis_says_what_to_run(transitioned_run, tmp_path, capsys):
    run = copy_run(transitioned_run, tmp_path / "run")
    assert main(["report", str(run.path), "--no-analyze"]) == 2
    assert f"run `mbc analyze {run.path}`" in capsys.readouterr().err


def test_a_part_without_data_becomes_a_note(transitioned_run, tmp_path):
    run = copy_run(transitioned_run, tmp_path / "run")
    analyze(run, AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos",)),
            stop=40, progress=False)  # fmt: skip
    sections = {s.heading: s for s in run_report(run)}
    assert sections["Residual-stream patching"].text.startswith("Not available")
    assert sections["Loss"].figures and sections["Hidden progress"].figures


def test_forward_run_report_shows_the_loss(tmp_path):
    cfg = build_cfg(
        task={"direction": "forward", "D": 8, "target_len": 2, "n_target_symbols": 8}, steps=20
    )
    run = train(cfg, tmp_path / "fwd", progress=False)
    assert main(["report", str(run.path)]) == 0
    html = (run.path / "report.html").read_text()
    assert html.count('class="plotly-graph-div"') == 1 and "forward-direction run" in html
    done = load_run(run.path)
    assert done.status == "finished" and done.manifest.stop_reason == "max_steps"
    assert "status finished" in html  # the report says how the run ended


def test_patching_heatmaps_use_checkpoints_that_have_the_maps(transitioned_run, tmp_path):
    """With ``detail_every`` the position-resolved maps exist at some checkpoints only: the
    report's three moments for them are chosen among those."""
    from mbc_interp.analysis.timeline import detail_steps

    run = copy_run(transitioned_run, tmp_path / "run")
    config = AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos",
                            "resid_pre"), detail_every=4)  # fmt: skip
    analyze(run, config, progress=False)
    sections = {s.heading: s for s in run_report(run)}
    (fig,) = sections["Residual-stream patching"].figures
    shown = [int(re.search(r"step ([\d,]+)", a.text).group(1).replace(",", ""))
             for a in fig.layout.annotations if "step" in a.text]  # fmt: skip
    assert len(shown) >= 2
    assert set(shown) <= set(detail_steps(run.steps, run.steps, 4))


def _damage(run, step: int):
    file = run.path / run.manifest.entry(step).file
    file.write_bytes(file.read_bytes()[:-100])
    return file


def test_report_skips_a_damaged_view_checkpoint_for_the_nearest_intact_one(
    analysed, tmp_path, capsys
):
    from mbc_interp.analysis import key_steps

    run = copy_run(analysed[0], tmp_path / "run")
    moments = key_steps(analysed[2], run.steps)
    on = moments["on plateau"]
    file = _damage(run, on)
    assert main(["report", str(run.path), "--no-analyze"]) == 0
    err = capsys.readouterr().err
    assert f"mbc report: warning: step {on}: {file} (weights): checksum mismatch" in err
    others = [s for s in run.steps if s != on]
    nearest = min(others, key=lambda s: (abs(s - on), s))
    assert f"'on plateau' shows step {nearest} instead of the damaged step {on}" in err
    html = (run.path / "report.html").read_text()
    assert html.count('class="mbc-attention-cell"') == 3
    assert f"on plateau: step {nearest:,}" in html and f"instead of {on:,}" in html


def test_report_leaves_a_damaged_checkpoint_out_of_its_analysis(transitioned_run, tmp_path,
                                                                capsys):  # fmt: skip
    run = copy_run(transitioned_run, tmp_path / "run")
    (run.path / "analysis").mkdir()
    (run.path / "analysis" / "config.json").write_text(json.dumps(SMALL.to_dict()))
    step = run.steps[len(run.steps) // 2]
    file = _damage(run, step)
    assert main(["report", str(run.path), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert f"step {step}: {file} (weights): checksum mismatch" in captured.err
    assert f"analysing {len(run.steps) - 1} of {len(run.steps)}" in captured.out
    assert analysed_steps(run) == set(run.steps) - {step}
