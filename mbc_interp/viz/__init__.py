"""Seeing a run: plotly figures, circuitsvis attention views and a self-contained HTML report.

- :mod:`~mbc_interp.viz.figures`: plotly figures drawn from what the analysis computed (metrics,
  summary, timeline, routing scores); nothing here computes.
- :mod:`~mbc_interp.viz.attention`: circuitsvis ``attention_heads`` views that work offline.
- :mod:`~mbc_interp.viz.report`: a page from a title and :class:`Section` s, every script inline
  once (reusable for any report); :mod:`~mbc_interp.viz.run_report`: the sections of one run.

Every name is imported from its module on first use (:mod:`mbc_interp.core.lazy`).
"""

from mbc_interp.core.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {
        ".attention": (
            "AttentionRow", "AttentionView", "attention_view", "attention_views",
            "save_attention_html"
        ),
        ".figures": (
            "head_heatmaps", "head_timelines", "hidden_progress", "logit_lens_heatmap",
            "loss_curve", "patching_grid", "patching_heatmaps", "site_timelines"
        ),
        ".report": ("HtmlBlock", "Section", "render_html_report", "write_html_report"),
        ".run_report": ("run_report", "write_run_report"),
    },
)
