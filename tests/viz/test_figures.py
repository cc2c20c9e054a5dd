"""Figures draw exactly what the analysis computed: traces per head, log K, the summary's times."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mbc_interp.analysis import key_steps, z_use_table
from mbc_interp.viz import (
    head_heatmaps,
    head_timelines,
    hidden_progress,
    logit_lens_heatmap,
    loss_curve,
    patching_grid,
    patching_heatmaps,
    site_timelines,
)
from mbc_interp.viz.figures import EVENTS, ROUTING_COLOR, head_rows

EVENT_KEYS = [key for key, _, _ in EVENTS]


@pytest.fixture(scope="module")
def data(analysed):
    run, table, summary = analysed
    scores = head_rows(z_use_table(table))
    return run, table, summary, scores


def _n_heads(run) -> int:
    return run.config.model.n_layers * run.config.model.n_heads


def _vlines(fig) -> list[float]:
    return sorted({float(s.x0) for s in fig.layout.shapes if s.x0 == s.x1})


def test_loss_curve_draws_loss_log_k_and_the_summary_times(data):
    run, _, summary, _ = data
    fig = loss_curve(run.metrics, summary)
    by_name = {t.name: t for t in fig.data}
    np.testing.assert_allclose(by_name["eval loss"].y, run.metrics["loss"])
    np.testing.assert_allclose(by_name["candidate-normalised loss"].y, run.metrics["cand_loss"])
    log_k = next(t for t in fig.data if t.name.startswith("log K"))
    assert list(log_k.y) == [pytest.approx(run.log_k)] * 2
    assert (log_k.x[0], log_k.x[1]) == (0, run.metrics["step"].max())
    present = [k for k in EVENT_KEYS if summary.get(k) is not None]
    assert {"t_plateau_start", "t_loss"} <= set(present)
    markers = {t.meta: t.x[0] for t in fig.data if t.meta in EVENT_KEYS}
    assert markers == {k: pytest.approx(summary[k]) for k in present}
    assert _vlines(fig) == pytest.approx(sorted(summary[k] for k in present))


def test_hidden_progress_draws_dz_its_floor_and_the_routing_heads(data):
    run, _, summary, scores = data
    fig = hidden_progress(run.metrics, summary, scores)
    by_name = {t.name: t for t in fig.data}
    dz = run.metrics["dz"].to_numpy(float)
    drawn = np.array(by_name["Δz (nats / example)"].y, dtype=float)
    np.testing.assert_allclose(drawn[dz > 0], dz[dz > 0])
    assert np.isnan(drawn[dz <= 0]).all()  # a log axis: values <= 0 are not drawn
    floor = np.array(by_name["Δz noise floor (3 SE)"].y, dtype=float)
    np.testing.assert_allclose(floor, 3 * run.metrics["dz_se"].to_numpy(float))
    assert fig.layout.yaxis.type == "log"
    heads = {t.legendgroup for t in fig.data if t.legendgroup}
    assert heads == set(summary["routing_heads"])


def test_hidden_progress_loss_axis_has_ticks_of_its_own(data):
    """The loss axis (over the log Δz axis) gets linear round ticks from 0, never plotly's
    synced ones (the Δz grid's positions: odd values and negative ones)."""
    run, _, summary, scores = data
    axis = hidden_progress(run.metrics, summary, scores).layout.yaxis2
    assert axis.overlaying == "y" and axis.type == "linear"
    assert axis.tickmode == "array"  # not "sync", plotly's default for an overlaying axis
    ticks = np.array(axis.tickvals, dtype=float)
    assert ticks[0] == 0 and (ticks >= 0).all() and 3 <= len(ticks) <= 8
    np.testing.assert_allclose(np.diff(ticks), ticks[1] - ticks[0])  # evenly spaced
    assert ticks[-1] >= run.metrics["loss"].max() > ticks[-2]
    assert tuple(axis.range) == (0, ticks[-1])


def test_loss_curve_in_tokens_and_log_scale(data):
    run, _, summary, _ = data
    fig = loss_curve(run.metrics, summary, x="tokens", log_x=True, log_y=True)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    markers = {t.meta: t.x[0] for t in fig.data if t.meta in EVENT_KEYS}
    present = [k for k in EVENT_KEYS if summary["tokens"].get(k) is not None]
    assert markers == {k: pytest.approx(summary["tokens"][k]) for k in present}


def test_loss_curve_without_times_marks_nothing(data):
    run, _, summary, _ = data
    bare = {"log_k": summary["log_k"], "tokens": {}}
    fig = loss_curve(run.metrics, bare)
    assert not [t for t in fig.data if t.meta in EVENT_KEYS] and not _vlines(fig)


def test_head_timelines_one_line_per_head_per_panel(data):
    run, _, summary, scores = data
    fig = head_timelines(scores, summary)
    assert len(fig.data) == 4 * _n_heads(run)
    routing = [t for t in fig.data if t.legendgroup == summary["routing_head"]]
    assert len(routing) == 4 and all(t.line.width == 4 for t in routing)
    curve = scores[scores.component == summary["routing_head"]]
    for trace, metric in zip(routing, ("total", "direct", "attn_to_z", "attn_prev"), strict=True):
        np.testing.assert_allclose(trace.y, curve[metric])
    assert sum(t.showlegend for t in fig.data) == _n_heads(run)


def test_head_heatmaps_slider_has_a_step_per_analysed_checkpoint(data):
    run, table, _, scores = data
    fig = head_heatmaps(scores)
    steps = sorted(table["step"].unique())
    slider = fig.layout.sliders[0]
    assert [s.label for s in slider.steps] == [str(s) for s in steps]
    assert slider.active == len(steps) - 1
    n_layers, n_heads = run.config.model.n_layers, run.config.model.n_heads
    assert len(fig.data) == 4
    for trace in fig.data:
        assert np.array(trace.z, dtype=float).shape == (n_layers, n_heads)
    middle = slider.steps[len(steps) // 2]
    total, _, attn, _ = (np.array(z, dtype=float) for z in middle.args[0]["z"])
    at = scores[scores.step == steps[len(steps) // 2]].set_index("component")
    assert attn[1, 0] == pytest.approx(at.loc["L1H0", "attn_to_z"])
    assert total[0, 1] == pytest.approx(at.loc["L0H1", "total"])
    assert fig.data[2].zmin == 0 and fig.data[2].zmax == 1  # fixed across the slider


def test_patching_heatmaps_at_three_moments(data):
    run, table, summary, _ = data
    moments = key_steps(summary, table["step"].unique())
    fig = patching_heatmaps(table, moments)
    assert len(fig.data) == 3
    n_pos = run.task.answer_pos + 1
    for trace, step in zip(fig.data, moments.values(), strict=True):
        z = np.array(trace.z, dtype=float)
        assert z.shape == (run.config.model.n_layers, n_pos)
        rows = table[(table.step == step) & (table.kind == "resid_pre")]
        rows = rows[(rows.metric == "patch_raw") & (rows.layer == 1)].sort_values("pos")
        np.testing.assert_allclose(z[1], rows["value"], atol=1e-12)
    assert list(fig.data[0].x)[run.task.selector_positions[0]].endswith(":z")
    assert {t.zmax for t in fig.data} == {fig.data[0].zmax}  # one colour scale


def test_patching_grid_of_one_result_and_missing_kind(data):
    _, table, _, _ = data
    last = table[table.step == table.step.max()]
    z, layers, positions = patching_grid(last)
    assert z.shape == (len(layers), len(positions)) and layers[0] == "resid_pre L0"
    with pytest.raises(ValueError, match=r"no attn_out / patch_raw patching rows"):
        patching_grid(last, kind="attn_out")


def test_logit_lens_heatmap_layer_by_checkpoint(data):
    run, table, summary, _ = data
    fig = logit_lens_heatmap(table, summary)
    n_steps = table["step"].nunique()
    assert [t.name for t in fig.data] == ["correct_prob", "candidate_mass"]
    for trace in fig.data:
        assert np.array(trace.z, dtype=float).shape == (run.config.model.n_layers + 1, n_steps)
        assert list(trace.y) == ["embed", "L0", "L1"]
    lens = table[(table.analysis == "logit_lens") & (table.metric == "correct_prob")]
    final = lens[(lens.component == "L1")].sort_values("step")["value"]
    np.testing.assert_allclose(np.array(fig.data[0].z, dtype=float)[2], final)


@pytest.mark.parametrize("n_layers", [2, 5])  # 10 sites, then 40: past any one palette
def test_site_timelines_give_every_site_its_own_colour(n_layers):
    positions = ["B1", "B2", "B3", "z", "SEP", "A1", "A2", "A3"][: 5 if n_layers == 2 else 8]
    frame = pd.DataFrame(
        {"step": step, "tokens": 10 * step, "kind": "resid_pre", "component": f"L{layer}",
         "pos": pos, "position": name, "metric": "patch_raw", "value": 0.1 * layer + pos}
        for step in (0, 10) for layer in range(n_layers) for pos, name in enumerate(positions)
    )  # fmt: skip
    fig = site_timelines(frame)
    colours = [t.line.color for t in fig.data]
    assert len(fig.data) == n_layers * len(positions)
    assert None not in colours and len(set(colours)) == len(colours)


def test_site_timelines_colour_heads_apart_and_the_routing_head_red(data):
    run, table, summary, _ = data
    heads = table[(table.kind == "head_out_all_pos") & (table.component != "baseline")]
    fig = site_timelines(heads, summary)
    colours = {t.name.split(" ")[0]: t.line.color for t in fig.data}
    assert len(set(colours.values())) == len(colours) == _n_heads(run)
    assert colours[summary["routing_head"]] == ROUTING_COLOR


def test_site_timelines_one_line_per_site(data):
    run, table, summary, _ = data
    heads = table[(table.kind == "head_out_all_pos") & (table.component != "baseline")]
    fig = site_timelines(heads, summary)
    assert len(fig.data) == _n_heads(run)
    resid = table[table.kind == "resid_pre"]
    fig = site_timelines(resid)
    assert len(fig.data) == run.config.model.n_layers * (run.task.answer_pos + 1)
    assert "L0@z" in {t.name for t in fig.data}


def test_group_times_draw_each_groups_escape_and_finish_in_half_way_order():
    import numpy as np

    from mbc_interp.analysis.groups import collective_summary
    from mbc_interp.viz.kinds import group_times_figure, groups_section

    steps = np.arange(0, 3001, 50.0)
    cross = np.array([1200.0, 1100.0, 1150.0])  # group 1 escapes first, group 2 never settles
    done = np.array([1500.0, 2600.0, np.inf])
    below = steps[:, None] >= cross
    g = collective_summary(steps, steps[:, None] >= done, 100.0, 1150.0, below)
    assert g["group_times"] == {"halfway": [1200.0, 1100.0, 1150.0],
                                "solved": [1500.0, 2600.0, None]}  # fmt: skip
    fig = group_times_figure(g["group_times"], 100.0, 1150.0)
    half, solved = fig.data
    assert list(half.x) == [1100.0, 1150.0, 1200.0] and list(half.y) == [1, 2, 3]
    assert list(solved.x) == [2600.0, None, 1500.0]  # the same groups, in the same rows
    assert [s.x0 for s in fig.layout.shapes] == [100.0, 1150.0]
    section = groups_section(None, pd.DataFrame(columns=["analysis", "metric", "component",
                                                         "step", "value"]),
                             {"groups": g, "t_plateau_start": 100.0, "t_loss": 1150.0})
    assert len(section.figures) == 2 and "half-way crossings" in section.text
