"""Self-contained HTML reports: a title and a list of sections, one file that opens offline.

A :class:`Section` holds a heading, text, an optional table, plotly figures and raw HTML blocks
(strings, or objects such as circuitsvis views that need a page-level script).
:func:`write_html_report` lays them out with a table of contents and embeds every script the page
needs exactly once, inline: plotly.js if any section has a figure, and each block's scripts
(``block.scripts() -> {name: js}``, deduplicated by name). No ``<script src>``, no CDN: the file
works on a machine without internet, which is where these runs live.

This module knows nothing about runs: :mod:`mbc_interp.viz.run_report` builds the sections of a
run's report; a sweep report builds its own and calls the same :func:`write_html_report`.

>>> from mbc_interp.viz.report import Section, write_html_report
>>> write_html_report("out.html", "My sweep", [Section("Loss", figures=[fig])])  # doctest: +SKIP
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd
import plotly.graph_objects as go

from mbc_interp.core.files import atomic_write

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"scale": 2}}
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;
 background:#fafafa;line-height:1.45}
main{max-width:1280px;margin:0 auto;padding:24px 32px 64px}
h1{margin:0 0 4px}h2{margin-top:40px;border-bottom:1px solid #ddd;padding-bottom:4px}
.subtitle{color:#555;margin:0 0 16px}
nav ol{columns:2;margin:8px 0 0}nav a{text-decoration:none}
.text p{max-width:900px}
table.mbc-table{border-collapse:collapse;font-size:14px;margin:12px 0;background:#fff}
table.mbc-table th,table.mbc-table td{border:1px solid #ddd;padding:4px 10px;text-align:left}
table.mbc-table th{background:#f0f0f0}
.mbc-figure{background:#fff;border:1px solid #e4e4e4;border-radius:4px;margin:16px 0;padding:4px}
.mbc-block{margin:16px 0}
footer{color:#777;font-size:13px;margin-top:48px}
"""


@runtime_checkable
class HtmlBlock(Protocol):
    """A block that renders into the page and may need page-level scripts (embedded once)."""

    def fragment(self) -> str: ...

    def scripts(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Section:
    """One section of a report, rendered in this order: text, table, figures, blocks."""

    heading: str
    text: str = ""
    """Plain text (escaped); blank lines separate paragraphs."""
    table: pd.DataFrame | str | None = None
    """A DataFrame (rendered without its index) or trusted HTML."""
    figures: Sequence[go.Figure] = ()
    blocks: Sequence[str | HtmlBlock] = ()
    """Trusted raw HTML strings, or :class:`HtmlBlock` objects (circuitsvis views...)."""

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-") or "section"


@cache
def plotly_js() -> str:
    """plotly.js as shipped with the plotly package, safe to inline."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().replace("</script", "<\\/script")


def render_html_report(
    title: str, sections: Sequence[Section], *, subtitle: str = "", footer: str = ""
) -> str:
    """The whole page as one string (see the module doc)."""
    scripts: dict[str, str] = {}
    if any(s.figures for s in sections):
        scripts["plotly"] = plotly_js()
    for section in sections:
        for block in section.blocks:
            if not isinstance(block, str):
                for name, js in block.scripts().items():
                    scripts.setdefault(name, js)
    anchors = _unique_anchors(sections)
    body = [f"<h1>{html.escape(title)}</h1>"]
    if subtitle:
        body.append(f'<p class="subtitle">{html.escape(subtitle)}</p>')
    if len(sections) > 1:
        items = "".join(
            f'<li><a href="#{a}">{html.escape(s.heading)}</a></li>'
            for s, a in zip(sections, anchors, strict=True)
        )
        body.append(f"<nav><ol>{items}</ol></nav>")
    n_figure = 0
    for section, anchor in zip(sections, anchors, strict=True):
        parts = [f'<section id="{anchor}"><h2>{html.escape(section.heading)}</h2>']
        if section.text:
            paras = [p.strip() for p in section.text.split("\n\n") if p.strip()]
            parts.append(
                '<div class="text">' + "".join(f"<p>{html.escape(p)}</p>" for p in paras) + "</div>"
            )
        if section.table is not None:
            parts.append(table_html(section.table))
        for fig in section.figures:
            n_figure += 1
            parts.append(f'<div class="mbc-figure">{figure_html(fig, f"figure-{n_figure}")}</div>')
        for block in section.blocks:
            inner = block if isinstance(block, str) else block.fragment()
            parts.append(f'<div class="mbc-block">{inner}</div>')
        parts.append("</section>")
        body.append("".join(parts))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body.append(f"<footer>{html.escape(footer)} Generated {stamp}; works offline.</footer>")
    head_scripts = "".join(
        f'<script data-library="{html.escape(name)}">{js}</script>' for name, js in scripts.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style>{head_scripts}</head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )


def write_html_report(
    path: str | Path,
    title: str,
    sections: Sequence[Section],
    *,
    subtitle: str = "",
    footer: str = "",
) -> Path:
    """Render the report and write it atomically to ``path``; returns the path."""
    path = Path(path)
    page = render_html_report(title, sections, subtitle=subtitle, footer=footer)
    atomic_write(path, page.encode("utf-8"))
    return path


def figure_html(fig: go.Figure, div_id: str) -> str:
    """A figure's ``<div>`` and its ``Plotly.newPlot`` call (plotly.js is on the page)."""
    return fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG,
        default_width="100%", default_height=f"{fig.layout.height or 450}px",
    )  # fmt: skip


def table_html(table: pd.DataFrame | str) -> str:
    """A DataFrame as an HTML table (values escaped, no index), or trusted HTML as is."""
    if isinstance(table, str):
        return table
    return table.to_html(index=False, classes="mbc-table", border=0, na_rep="n/a", escape=True)


def _unique_anchors(sections: Sequence[Section]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for s in sections:
        n = seen.get(s.anchor, 0)
        seen[s.anchor] = n + 1
        out.append(s.anchor if n == 0 else f"{s.anchor}-{n + 1}")
    return out
