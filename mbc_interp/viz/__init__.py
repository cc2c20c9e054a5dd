"""Seeing a run: plotly figures, circuitsvis attention views and a self-contained HTML report.

- :mod:`~mbc_interp.viz.figures`: plotly figures drawn from what the analysis computed (metrics,
  summary, timeline, routing scores); nothing here computes.
- :mod:`~mbc_interp.viz.attention`: circuitsvis ``attention_heads`` views that work offline.
- :mod:`~mbc_interp.viz.report`: a page from a title and :class:`Section` s, every script inline
  once (reusable for any report); :mod:`~mbc_interp.viz.run_report`: the sections of one run.
- :mod:`~mbc_interp.viz.commands`: ``mbc report RUN``.
"""

from mbc_interp.viz.attention import (
    AttentionRow,
    AttentionView,
    attention_view,
    attention_views,
    save_attention_html,
)
from mbc_interp.viz.figures import (
    head_heatmaps,
    head_timelines,
    hidden_progress,
    logit_lens_heatmap,
    loss_curve,
    patching_grid,
    patching_heatmaps,
    site_timelines,
)
from mbc_interp.viz.report import HtmlBlock, Section, render_html_report, write_html_report
from mbc_interp.viz.run_report import run_report, write_run_report

__all__ = [
    "AttentionRow",
    "AttentionView",
    "HtmlBlock",
    "Section",
    "attention_view",
    "attention_views",
    "head_heatmaps",
    "head_timelines",
    "hidden_progress",
    "logit_lens_heatmap",
    "loss_curve",
    "patching_grid",
    "patching_heatmaps",
    "render_html_report",
    "run_report",
    "save_attention_html",
    "site_timelines",
    "write_html_report",
    "write_run_report",
]
