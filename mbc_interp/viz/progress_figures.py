"""Figures of any task's transition and hidden-progress signals: they draw computed values
(the metrics, the summary, each signal's series) and compute nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mbc_interp.viz.style import TEMPLATE, XAxis

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
TIMES = (
    ("t_plateau_start", "plateau start", "#7f7f7f"),
    ("t_loss", "t_loss", "#1f77b4"),
    ("t_solved", "t_solved", "#2ca02c"),
)


def _x(frame: pd.DataFrame, x: XAxis, tokens_per_step: int) -> np.ndarray:
    steps = frame["step"].to_numpy(float)
    return steps * tokens_per_step if x == "tokens" else steps


def _times(fig: go.Figure, summary: Mapping[str, Any], x: XAxis, tps: int) -> None:
    for i, (key, label, colour) in enumerate(TIMES):
        t = summary.get(key)
        if t is None:
            continue
        t = t * tps if x == "tokens" else t
        fig.add_vline(x=t, line={"color": colour, "dash": "dot", "width": 1.5}, opacity=0.8)
        fig.add_annotation(
            x=t,
            y=1.0 - 0.05 * i,
            yref="paper",
            text=label,
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font={"color": colour, "size": 11},
            bgcolor="rgba(255,255,255,0.7)",
        )


def _layout(fig: go.Figure, title: str, x: XAxis, height: int = 460) -> go.Figure:
    fig.update_xaxes(title_text="tokens seen" if x == "tokens" else "training step")
    fig.update_layout(
        title={"text": title, "x": 0.01},
        template=TEMPLATE,
        height=height,
        margin={"l": 70, "r": 30, "t": 80, "b": 60},
        hovermode="x unified",
    )
    return fig


def metric_curves(
    metrics: pd.DataFrame,
    summary: Mapping[str, Any],
    columns: Mapping[str, str],
    *,
    x: XAxis = "step",
    log_y: bool = False,
) -> go.Figure:
    """The logged ``columns`` (column -> legend label) against training time, with the
    summary's plateau start, drop and solved times; the transition metric drawn thickest."""
    fig = go.Figure()
    tps = int(summary.get("tokens_per_step") or 1)
    xs = _x(metrics, x, tps)
    main = summary.get("transition_signal")
    for i, (col, label) in enumerate(columns.items()):
        if col not in metrics or metrics[col].isna().all():
            continue
        width = 2.5 if col == main else 1.5
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=metrics[col],
                name=label,
                mode="lines",
                line={"color": COLOURS[i % len(COLOURS)], "width": width},
            )
        )
    _times(fig, summary, x, tps)
    fig.update_yaxes(title_text="nats / example", type="log" if log_y else "linear")
    return _layout(fig, f"The transition: {main} against training time", x)


def progress_curves(
    series: Mapping[str, pd.DataFrame],
    summary: Mapping[str, Any],
    *,
    x: XAxis = "step",
) -> go.Figure:
    """Each hidden-progress signal on its own row (its values, a band of ±3 SE where it has
    one, and a diamond at its onset), over the summary's transition times."""
    names = [n for n, s in series.items() if s is not None and not s.empty]
    rows = max(len(names), 1)
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        subplot_titles=names or ["no progress signal measured"],
    )
    tps = int(summary.get("tokens_per_step") or 1)
    onsets = summary.get("progress", {})
    for i, name in enumerate(names, start=1):
        s = series[name]
        xs = _x(s, x, tps)
        colour = COLOURS[(i - 1) % len(COLOURS)]
        v, se = s["value"].to_numpy(float), s["se"].to_numpy(float)
        if np.isfinite(se).any():
            fig.add_trace(
                go.Scatter(
                    x=np.r_[xs, xs[::-1]],
                    y=np.r_[v + 3 * se, (v - 3 * se)[::-1]],
                    fill="toself",
                    line={"width": 0},
                    fillcolor=colour,
                    opacity=0.15,
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=i,
                col=1,
            )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=v,
                name=name,
                mode="lines+markers",
                marker={"size": 4},
                line={"color": colour},
            ),
            row=i,
            col=1,
        )
        t = (onsets.get(name) or {}).get("t")
        if t is not None:
            tx = t * tps if x == "tokens" else t
            fig.add_trace(
                go.Scatter(
                    x=[tx],
                    y=[float(np.interp(t, s["step"], v))],
                    name=f"{name} onset",
                    mode="markers",
                    marker={
                        "symbol": "diamond",
                        "size": 12,
                        "color": colour,
                        "line": {"color": "white", "width": 1},
                    },
                ),
                row=i,
                col=1,
            )
    _times(fig, summary, x, tps)
    return _layout(fig, "Hidden progress: what moves before the transition", x, 220 * rows + 120)
