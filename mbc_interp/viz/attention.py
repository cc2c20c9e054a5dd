"""circuitsvis attention views that work offline: one checkpoint, one example, labelled tokens.

:func:`attention_view` turns :class:`~mbc_interp.analysis.patterns.AttentionPatterns` into a
circuitsvis ``attention_heads`` view; :func:`attention_views` puts the same example at several
checkpoints side by side (before the plateau, on it, after the transition).

Offline by construction: circuitsvis's own ``_repr_html_`` pings the internet and then loads its
JavaScript from a CDN, which fails on machines without one. Here ``to_html()`` and the notebook
display always use circuitsvis's ``local_src`` (its 1.3 MB bundle inline), and pages that hold
many views (``fragment()``, used by :mod:`mbc_interp.viz.report`) embed the bundle once and
render each view into its own ``<div>``.
"""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float

from mbc_interp.analysis.patterns import AttentionPatterns, attention_patterns
from mbc_interp.store.run import Run

ELEMENT = "AttentionHeads"
"""The circuitsvis React component (Python: ``circuitsvis.attention.attention_heads``)."""
SCRIPT = "circuitsvis"
ROW_CSS = (
    "<style>.mbc-attention-row{display:grid;gap:16px;"
    "grid-template-columns:repeat(auto-fit,minmax(380px,1fr))}"
    ".mbc-attention-cell{min-width:0;background:#fff;border:1px solid #e4e4e4;border-radius:4px;"
    "padding:8px}.mbc-attention h4{margin:4px 0}"
    # circuitsvis sizes its head thumbnails by the *window* width (1/12 of the row on a wide
    # screen), which squeezes them into each other in a narrow cell: four per row instead
    '.mbc-attention-cell h3+div>[style*="flex: 0 0 8.33"],'
    '.mbc-attention-cell h3+div>[style*="flex: 0 0 16.66"]'
    "{flex:0 0 25%!important;max-width:25%!important;width:25%!important}</style>"
)
"""Side by side on a grid; views narrower than the window keep readable head thumbnails."""


@cache
def circuitsvis_js() -> str:
    """The circuitsvis browser bundle (defines the global ``CircuitsVis``), safe to inline."""
    import circuitsvis

    path = Path(circuitsvis.__file__).parent / "dist" / "cdn" / "iife.js"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise RuntimeError(f"circuitsvis bundle not found at {path} ({e.strerror})") from None
    lines = [l for l in text.splitlines() if not l.startswith("//# sourceMappingURL=")]
    return "\n".join(lines).replace("</script", "<\\/script")


@dataclass(frozen=True)
class AttentionView:
    """A circuitsvis ``attention_heads`` view: several heads' patterns on one sequence."""

    attention: Float[np.ndarray, "head dest src"]
    tokens: tuple[str, ...]
    head_names: tuple[str, ...]
    title: str = ""

    def __repr__(self) -> str:
        return f"AttentionView({self.title!r}, heads={list(self.head_names)}, tokens={self.tokens})"

    def props(self) -> dict[str, Any]:
        """The component's properties, as ``circuitsvis.attention.attention_heads`` sends them."""
        return {
            "attention": np.round(np.asarray(self.attention, dtype=float), 4).tolist(),
            "tokens": list(self.tokens),
            "attentionHeadNames": list(self.head_names),
            "maskUpperTri": True,
        }

    def scripts(self) -> dict[str, str]:
        """Page-level scripts that :meth:`fragment` needs, by name (embedded once per page)."""
        return {SCRIPT: circuitsvis_js()}

    def fragment(self) -> str:
        """HTML that renders the view with the page's ``CircuitsVis`` (see :meth:`scripts`)."""
        div = f"circuits-vis-{uuid.uuid4().hex[:12]}"
        props = json.dumps(self.props()).replace("</", "<\\/")
        return (
            f'<div class="mbc-attention">{self._heading()}<div id="{div}" class="cv-root"></div>'
            f'<script>CircuitsVis.render("{div}", CircuitsVis.{ELEMENT}, {props});</script></div>'
        )

    def to_html(self) -> str:
        """Self-contained HTML (circuitsvis's ``local_src``: the bundle inline, no network)."""
        from circuitsvis.attention import attention_heads

        props = self.props()
        rendered = attention_heads(
            attention=props["attention"], tokens=props["tokens"],
            attention_head_names=props["attentionHeadNames"], mask_upper_tri=True,
        )  # fmt: skip
        # local_src opens a <div .../> that HTML does not close: the wrapper closes it
        return f'<div class="mbc-attention">{self._heading()}{rendered.local_src}</div>'

    def _repr_html_(self) -> str:
        return self.to_html()

    def _heading(self) -> str:
        return f"<h4>{html.escape(self.title)}</h4>" if self.title else ""


@dataclass(frozen=True)
class AttentionRow:
    """Views side by side (wrapping on narrow screens); the bundle is embedded once."""

    views: tuple[AttentionView, ...]

    def __repr__(self) -> str:
        return f"AttentionRow({[v.title for v in self.views]})"

    def scripts(self) -> dict[str, str]:
        return {SCRIPT: circuitsvis_js()}

    def fragment(self) -> str:
        cells = "".join(f'<div class="mbc-attention-cell">{v.fragment()}</div>' for v in self.views)
        return f'{ROW_CSS}<div class="mbc-attention-row">{cells}</div>'

    def to_html(self) -> str:
        """Self-contained: bundle inline once, then every view."""
        return f"<script>{circuitsvis_js()}</script>{self.fragment()}"

    def _repr_html_(self) -> str:
        return self.to_html()


def attention_view(
    patterns: AttentionPatterns, *, heads: Sequence[str] | None = None, title: str = ""
) -> AttentionView:
    """A view of ``heads`` (labels ``"L1H2"``, default all, in the order given) on one example;
    tokens are labelled ``b3``/``z2``/``SEP``/``a1`` (base symbol, selector, separator,
    target)."""
    attention, names = patterns.heads(heads)
    return AttentionView(
        attention=attention.numpy(), tokens=patterns.tokens, head_names=tuple(names), title=title
    )


def attention_views(
    run: Run,
    steps: Mapping[str, int],
    *,
    example: int = 0,
    heads: Sequence[str] | None = None,
    device: str = "cpu",
) -> AttentionRow:
    """The same example at each labelled checkpoint (label -> step, e.g. ``key_steps``),
    side by side; one model in memory at a time."""
    views = []
    for label, step in steps.items():
        patterns = attention_patterns(run.model(step, device=device), run.task, example)
        title = f"{label}: step {step:,} (example {example})"
        views.append(attention_view(patterns, heads=heads, title=title))
    return AttentionRow(tuple(views))


def save_attention_html(view: AttentionView | AttentionRow, path: str | Path) -> Path:
    """Write a view (or a row of views) as a standalone HTML page that opens offline."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>attention</title></head>'
        f"<body>{view.to_html()}</body></html>\n",
        encoding="utf-8",
    )
    return path
