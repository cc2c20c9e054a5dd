"""The run report's sections of the mechanistic kinds draw what the rows and the summary hold:
atp's residual-stream maps beside exact patching, the weights' update cosine, ablation on the
loss the task has, probes of the task's own labels."""

from __future__ import annotations

import pandas as pd
import pytest

from mbc_interp.analysis.ablation import AblationConfig, ablation_records
from mbc_interp.analysis.atp import atp_records
from mbc_interp.analysis.dynamics.weights import weight_records
from mbc_interp.analysis.patching import patch_sites
from mbc_interp.analysis.probes import ProbeConfig, probe_records
from mbc_interp.analysis.sites import HEAD_OUT_ALL_POS, RESID_PRE
from mbc_interp.analysis.timing.extra_summary import (
    ablation_summary,
    atp_summary,
    weights_summary,
)
from mbc_interp.viz.kinds import (
    ablation_section,
    atp_section,
    probes_section,
    weights_section,
)


def _table(step: int, analysis: str, rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"step": step, "analysis": analysis, **r} for r in rows])


def test_the_atp_section_maps_the_residual_stream_beside_exact_patching(trained, task):
    pairs = task.patching_pairs(32, 0)
    parts = [_table(10, "atp", atp_records(trained, task, pairs))]
    parts += [_table(10, "patching", patch_sites(trained, task, k, pairs).to_records())
              for k in (RESID_PRE, HEAD_OUT_ALL_POS)]  # fmt: skip
    table = pd.concat(parts, ignore_index=True)
    summary = {"atp": atp_summary(table), "t_loss": None}
    assert set(summary["atp"]) == {"heads", "resid_pre"}
    section = atp_section(None, table, summary)
    assert "over the residual sites: median" in section.text
    heads, resid = section.figures
    assert heads.layout.title.text == "Attribution patching per head"
    assert [t.type for t in resid.data] == ["heatmap", "heatmap"]  # estimate, exact
    est = resid.data[0]
    assert len(est.y) == trained.cfg.n_layers and len(est.x) == task.answer_pos + 1
    assert list(est.x) == task.position_labels[: task.answer_pos + 1]
    # without exact resid_pre patching at that step: the estimate's map alone
    no_exact = table[~((table.analysis == "patching") & (table.kind == "resid_pre"))]
    alone = atp_section(None, no_exact, {})
    assert [t.type for t in alone.figures[1].data] == ["heatmap"]


def test_the_weights_section_draws_the_update_cosine(random_model):
    table = pd.concat([_table(step, "weights", weight_records(random_model))
                       for step in (0, 10, 20)], ignore_index=True)  # fmt: skip
    section = weights_section(None, table, {"weights": weights_summary(table)})
    cosine = section.figures[-1]
    assert cosine.layout.title.text == "Cosine between successive updates"
    assert list(cosine.data[0].x) == [20.0]  # the same model three times: no update at all
    assert "median" not in section.text  # an undefined cosine (NaN) has no median


def test_ablation_and_probes_sections_follow_the_tasks_loss_and_labels(grok_model, grok_task):
    table = pd.concat([
        _table(5, "ablation", ablation_records(grok_model, grok_task,
                                               AblationConfig(n_examples=8, methods=("mean",)))),
        _table(5, "probes", probe_records(grok_model, grok_task, ProbeConfig(n_examples=12))),
    ], ignore_index=True)  # fmt: skip
    summary = {"ablation": ablation_summary(table)}
    section = ablation_section(None, table, summary)
    assert "answer loss" in section.text and summary["ablation"]["metric"] == "loss_increase"
    assert section.figures[0].data  # the per-head lines are drawn
    probes = probes_section(None, table, summary)
    assert [f.layout.title.text for f in probes.figures] == ["Probe of a", "Probe of b",
                                                             "Probe of c"]  # fmt: skip


@pytest.mark.parametrize("section", [atp_section, weights_section])
def test_a_section_without_its_rows_draws_no_empty_extra_figure(section):
    empty = pd.DataFrame(columns=["step", "analysis", "kind", "component", "metric", "value"])
    assert len(section(None, empty, {}).figures) == (1 if section is atp_section else 2)
