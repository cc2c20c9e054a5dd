"""The look every run figure shares: the template, the times marked on a time axis, head line
styles and colours, the layout. Only drawing helpers; the figures are in
:mod:`~mbc_interp.viz.figures`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative, sample_colorscale

XAxis = Literal["step", "tokens"]
EVENTS: tuple[tuple[str, str, str], ...] = (
    ("t_plateau_start", "plateau start", "#7f7f7f"),
    ("t_z", "t_z", "#9467bd"),
    ("t_route", "t_route", "#d62728"),
    ("t_loss", "t_loss", "#1f77b4"),
)
"""(summary key, label, colour) of the times marked on every time axis."""
ROUTING_COLOR = "#d62728"
TEMPLATE = "plotly_white"
_REDS = ("rgb(204, 102, 119)", "rgb(136, 34, 85)", "rgb(102, 17, 0)")  # the routing head is red
PALETTE = [c for c in qualitative.Safe + qualitative.Pastel if c not in _REDS]


def event_times(summary: Mapping[str, Any], x: XAxis = "step") -> list[tuple[str, str, str, float]]:
    """``(key, label, colour, time)`` of the summary's marked times that exist, on axis ``x``."""
    source = summary.get("tokens", {}) if x == "tokens" else summary
    return [(k, label, c, float(source[k])) for k, label, c in EVENTS if source.get(k) is not None]


def mark_events(fig: go.Figure, summary: Mapping[str, Any], x: XAxis) -> None:
    for i, (_, label, color, t) in enumerate(event_times(summary, x)):
        fig.add_vline(x=t, line={"color": color, "dash": "dot", "width": 1.5}, opacity=0.8)
        fig.add_annotation(x=t, y=1.0 - 0.05 * i, yref="paper", text=label, showarrow=False,
                           xanchor="left", yanchor="top", font={"color": color, "size": 11},
                           bgcolor="rgba(255,255,255,0.7)")  # fmt: skip


def lead_band(fig: go.Figure, summary: Mapping[str, Any], x: XAxis) -> None:
    times = {k: t for k, _, _, t in event_times(summary, x)}
    if "t_route" in times and "t_loss" in times and times["t_route"] < times["t_loss"]:
        lead = summary.get("lead_fraction")
        text = "lead" + (f": {lead:.0%} of the plateau" if lead is not None else "")
        fig.add_vrect(x0=times["t_route"], x1=times["t_loss"], fillcolor=ROUTING_COLOR,
                      opacity=0.07, line_width=0, annotation_text=text,
                      annotation_position="bottom left")  # fmt: skip


def distinct_colors(n: int) -> list[str]:
    """``n`` different colours, none the routing head's red: the qualitative palette while it
    lasts, else ``n`` evenly spaced samples of a continuous rainbow (so no two lines share one,
    however many sites a patching kind has)."""
    if n <= len(PALETTE):
        return PALETTE[:n]
    return sample_colorscale("Turbo", [i / (n - 1) for i in range(n)])


def head_style(
    head: str, summary: Mapping[str, Any], index: int, color: str | None = None
) -> dict[str, Any]:
    """Line style of the ``index``-th head (in ``color``, default the palette's ``index``-th):
    the routing head thick red, the circuit solid, the rest faint."""
    color = color or PALETTE[index % len(PALETTE)]
    if head == summary.get("routing_head"):
        return {"name": f"{head} (routing head)", "line": {"color": ROUTING_COLOR, "width": 4}}
    if head in (summary.get("routing_heads") or []):
        return {"name": f"{head} (circuit)", "line": {"color": color, "width": 2.2}}
    return {"name": head, "line": {"color": color, "width": 1.2}, "opacity": 0.55}


def json_grid(values: np.ndarray) -> list[list[float | None]]:
    """Nested lists with NaN as None (null in JSON: a blank cell in plotly)."""
    return [[None if not np.isfinite(v) else float(v) for v in row] for row in np.asarray(values)]


def x_title(x: XAxis) -> str:
    return "tokens seen" if x == "tokens" else "training step"


def layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01}, template=TEMPLATE, height=height,
        margin={"l": 70, "r": 30, "t": 80, "b": 60}, hovermode="closest",
        legend={"groupclick": "toggleitem"},
    )  # fmt: skip
    return fig
