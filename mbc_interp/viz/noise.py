"""Gradient-noise and LLC figures over training, drawn from computed tables only.

Inputs: tidy timeline rows with ``step`` (the records of
:func:`mbc_interp.analysis.dynamics.gradients.gradient_diagnostics` and
:func:`mbc_interp.analysis.dynamics.llc.estimate_llc`, analyses ``"gradients"`` and ``"llc"``) and
``run.metrics`` (``step``, ``loss``). Every panel shares the step axis; ``t_loss`` (a number or
``None``) is marked as a dotted vertical line on each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from mbc_interp.viz.report import Section
from mbc_interp.viz.style import TEMPLATE

if TYPE_CHECKING:
    from mbc_interp.store.run import Run

ALL_COLOR = "#222222"
NULL_COLOR = "#7f7f7f"
T_LOSS_COLOR = "#1f77b4"


def _series(timeline: pd.DataFrame, analysis: str, metric: str, component: str = "all"):
    rows = timeline[
        (timeline["analysis"] == analysis)
        & (timeline["metric"] == metric)
        & (timeline["component"] == component)
        & (timeline["kind"].fillna("") == "")
    ].sort_values("step")
    return rows["step"].to_numpy(float), rows["value"].to_numpy(float)


def noise_timelines(
    timeline: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    t_loss: float | None = None,
    batch_size: int | None = None,
    components: bool = True,
) -> go.Figure:
    """Five stacked panels on one step axis: the eval loss; |G| (``"all"`` thick, each
    parameter group thin when ``components``); B_simple with the training batch size; the
    coherence with its 1/n null; the within-B group ratio with its 1/sqrt(K-1) null."""
    titles = (
        "eval loss (nats)",
        "|G| (full-batch gradient norm)",
        "B_simple = tr Σ / |G|²",
        "coherence |mean g|² / mean |g|²",
        "within-B ratio rms(B mean) / rms(deviation)",
    )
    fig = make_subplots(
        rows=5, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.05
    )
    m = metrics.sort_values("step")
    fig.add_trace(
        go.Scatter(x=m["step"], y=m["loss"], name="loss", line={"color": ALL_COLOR}), row=1, col=1
    )
    grads = timeline[timeline["analysis"] == "gradients"]
    if components:
        comps = [c for c in dict.fromkeys(grads["component"]) if c != "all"]
        for i, comp in enumerate(comps):
            xs, ys = _series(grads, "gradients", "grad_norm", comp)
            if len(xs):
                color = qualitative.Safe[i % len(qualitative.Safe)]
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        name=f"|G| {comp}",
                        mode="lines",
                        line={"width": 1, "color": color},
                    ),
                    row=2,
                    col=1,
                )
    for row, metric, name in (
        (2, "grad_norm", "|G|"),
        (3, "b_simple", "B_simple"),
        (4, "coherence", "coherence"),
        (5, "group_ratio", "group ratio"),
    ):
        xs, ys = _series(grads, "gradients", metric)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, name=name, mode="lines+markers", line={"width": 2.5, "color": ALL_COLOR}
            ),
            row=row,
            col=1,
        )
    for row, metric, name in (
        (4, "coherence_null", "null 1/n"),
        (5, "group_ratio_null", "null 1/sqrt(K-1)"),
    ):
        xs, ys = _series(grads, "gradients", metric)
        fig.add_trace(
            go.Scatter(
                x=xs, y=ys, name=name, mode="lines", line={"dash": "dash", "color": NULL_COLOR}
            ),
            row=row,
            col=1,
        )
    if batch_size is not None:
        xs, _ = _series(grads, "gradients", "b_simple")
        if len(xs):
            fig.add_trace(
                go.Scatter(
                    x=[xs.min(), xs.max()],
                    y=[batch_size] * 2,
                    name=f"batch size {batch_size}",
                    mode="lines",
                    line={"dash": "dash", "color": NULL_COLOR},
                ),
                row=3,
                col=1,
            )
    for row in (2, 3, 4):
        fig.update_yaxes(type="log", row=row, col=1)
    _mark_t_loss(fig, t_loss, rows=5)
    fig.update_xaxes(title_text="step", row=5, col=1)
    fig.update_layout(template=TEMPLATE, height=1100, title="Gradient noise over training")
    return fig


def llc_curve(
    timeline: pd.DataFrame, metrics: pd.DataFrame, *, t_loss: float | None = None
) -> go.Figure:
    """The LLC per checkpoint (error bars: spread over chains) over the eval loss."""
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("eval loss (nats)", "local learning coefficient"),
    )
    m = metrics.sort_values("step")
    fig.add_trace(
        go.Scatter(x=m["step"], y=m["loss"], name="loss", line={"color": ALL_COLOR}), row=1, col=1
    )
    xs, ys = _series(timeline, "llc", "llc")
    _, sd = _series(timeline, "llc", "llc_std")
    error = {"type": "data", "array": sd, "visible": True} if len(sd) == len(ys) else None
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            name="LLC",
            mode="lines+markers",
            error_y=error,
            line={"width": 2.5, "color": "#d62728"},
        ),
        row=2,
        col=1,
    )
    _mark_t_loss(fig, t_loss, rows=2)
    fig.update_xaxes(title_text="step", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=600, title="Local learning coefficient")
    return fig


def _mark_t_loss(fig: go.Figure, t_loss: float | None, rows: int) -> None:
    if t_loss is None:
        return
    for row in range(1, rows + 1):
        label = {"annotation_text": "t_loss"} if row == 1 else {}  # None draws "new text"
        fig.add_vline(
            x=t_loss, line={"dash": "dot", "color": T_LOSS_COLOR}, row=row, col=1, **label
        )


def gradient_section(run: Run, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    """The run report's section of the ``gradients`` kind (its declaration in
    :mod:`mbc_interp.analysis.registry` names it)."""
    return Section(
        "Gradient noise",
        text="Full-batch gradient norm |G|, simple noise scale B_simple = tr(Σ)/|G|² (the "
        "batch size as a line), coherence of per-example gradients (1/n null) and the "
        "within-B group ratio (its independent-vectors null), on the loss's time axis.",
        figures=[noise_timelines(table, run.metrics, t_loss=summary.get("t_loss"),
                                 batch_size=run.config.train.batch_size)],
    )  # fmt: skip


def llc_section(run: Run, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    """The run report's section of the ``llc`` kind."""
    return Section(
        "Local learning coefficient",
        text="LLC per checkpoint by localised SGLD on the answer-token loss.",
        figures=[llc_curve(table, run.metrics, t_loss=summary.get("t_loss"))],
    )
