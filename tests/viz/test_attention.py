"""Attention patterns with readable labels, and circuitsvis views that need no network."""

from __future__ import annotations

import re

import pytest
import torch

from mbc_interp.analysis import attention_patterns
from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask
from mbc_interp.viz import AttentionRow, attention_view, attention_views, save_attention_html
from mbc_interp.viz.attention import circuitsvis_js

BUNDLE = "var CircuitsVis="  # the start of circuitsvis's browser bundle


def external_scripts(html: str) -> list[str]:
    return re.findall(r"<script[^>]*\bsrc\s*=", html, flags=re.IGNORECASE)


@pytest.fixture(scope="module")
def patterns(analysed):
    run, _, _ = analysed
    return attention_patterns(run.model(run.steps[-1]), run.task, example=5)


def test_patterns_are_causal_distributions_with_labels(analysed, patterns):
    run, _, _ = analysed
    cfg, task = run.config, run.task
    seq = cfg.task.seq_len
    assert patterns.pattern.shape == (cfg.model.n_layers, cfg.model.n_heads, seq, seq)
    torch.testing.assert_close(patterns.pattern.sum(-1), torch.ones(2, 2, seq))
    assert torch.all(patterns.pattern.triu(1) == 0)
    assert patterns.tokens == tuple(task.labels(task.tokens[5]))
    assert patterns.tokens[task.selector_positions[0]].startswith("z")
    assert patterns.tokens[WindTunnelTask(cfg.task).answer_pos] == "SEP"
    assert patterns.positions[task.selector_positions[0]] == "z"
    with pytest.raises(ValueError, match="example = 9999"):
        attention_patterns(run.model(0), task, example=9999)


def test_view_selects_and_orders_heads(patterns):
    view = attention_view(patterns, heads=["L1H1", "L0H0"], title="t")
    assert view.head_names == ("L1H1", "L0H0")
    torch.testing.assert_close(torch.as_tensor(view.attention[0]), patterns.pattern[1, 1])
    assert attention_view(patterns).head_names == ("L0H0", "L0H1", "L1H0", "L1H1")
    with pytest.raises(ValueError, match="unknown head 'L7H0'"):
        attention_view(patterns, heads=["L7H0"])


def test_view_html_is_offline(patterns):
    view = attention_view(patterns, title="last <checkpoint>")
    html = view.to_html()
    assert html.count(BUNDLE) == 1 and "CircuitsVis.render" in html
    assert not external_scripts(html) and "unpkg.com" not in html
    assert "last &lt;checkpoint&gt;" in html
    assert '"SEP"' in html  # the token labels travel in the props
    assert view._repr_html_().count(BUNDLE) == 1  # notebooks get the offline HTML too
    fragment = view.fragment()
    assert BUNDLE not in fragment and "CircuitsVis.AttentionHeads" in fragment


def test_row_embeds_the_bundle_once(analysed, tmp_path):
    run, _, _ = analysed
    row = attention_views(run, {"first": 0, "last": run.steps[-1]}, example=3)
    assert isinstance(row, AttentionRow) and len(row.views) == 2
    assert row.views[1].title == f"last: step {run.steps[-1]:,} (example 3)"
    html = row.to_html()
    assert html.count(BUNDLE) == 1 and html.count("CircuitsVis.render(") == 2
    assert not external_scripts(html)
    path = save_attention_html(row, tmp_path / "a" / "attention.html")
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count(BUNDLE) == 1
    assert "sourceMappingURL" not in circuitsvis_js()
