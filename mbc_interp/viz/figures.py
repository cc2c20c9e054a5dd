"""Plotly figures of a run: each function draws data the analysis layer already computed.

Inputs are the tables of :mod:`mbc_interp.analysis` and nothing else: ``run.metrics`` (the eval
loss), the summary dict (``summary.json``: log K and the transition times), the tidy timeline
(:func:`~mbc_interp.analysis.load_timeline`) and the per-head z-use derived from it
(:func:`~mbc_interp.analysis.z_use_table`). Nothing here runs a model, so a figure can be
redrawn from the files in ``RUN/analysis/`` alone.

Every time axis takes ``x="step"`` or ``x="tokens"`` (tokens seen); the summary's times are drawn
on it as dotted vertical lines: ``t_plateau_start``, ``t_z`` (Δz leaves its noise floor),
``t_route`` (the routing head's z-use leaves its noise floor) and ``t_loss`` (the loss drop).
Heads are lines of one colour each; the routing head is the
thick red one, the other heads of the circuit are solid and the rest faint.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mbc_interp.analysis.heads import parse_head_label
from mbc_interp.viz.style import (  # some re-exported: the figures' look
    EVENTS,  # noqa: F401
    ROUTING_COLOR,  # noqa: F401
    TEMPLATE,  # noqa: F401
    XAxis,
    distinct_colors,
    event_times,
    head_style,
    json_grid,
    layout,
    lead_band,
    mark_events,
    x_title,
)

_LABELS = {
    "attn_to_z": "attention SEP → z",
    "attn_prev": "attention to the previous position (elsewhere)",
    "total": "z-use: total effect (head patching, logits)",
    "direct": "z-use: direct effect (logits)",
    "patch_raw": "patching effect (logits)",
    "patch_norm": "patching effect (0 = corrupt, 1 = clean)",
    "correct_prob": "P(correct target)",
    "candidate_mass": "P(one of the K candidates)",
}


# -- the loss and the heads over training ----------------------------------------------------
def loss_curve(
    metrics: pd.DataFrame,
    summary: Mapping[str, Any],
    *,
    x: XAxis = "step",
    log_x: bool = False,
    log_y: bool = False,
) -> go.Figure:
    """Eval loss and the candidate-normalised loss with the log K line and the transition
    times; the shaded band is the routing head's lead over the drop (when its onset is on the
    plateau). ``log_x`` drops step 0 (a log axis has no zero)."""
    fig = go.Figure()
    xs = metrics[x].to_numpy(float)
    loss = metrics["loss"].to_numpy(float)
    fig.add_trace(go.Scatter(x=xs, y=loss, name="eval loss", mode="lines",
                             line={"color": "black", "width": 2.5}))  # fmt: skip
    if "cand_loss" in metrics and metrics["cand_loss"].notna().any():
        fig.add_trace(go.Scatter(x=xs, y=metrics["cand_loss"], name="candidate-normalised loss",
                                 mode="lines", line={"color": "#ff7f0e", "width": 2}))  # fmt: skip
    if "train_loss" in metrics and metrics["train_loss"].notna().any():
        fig.add_trace(go.Scatter(x=xs, y=metrics["train_loss"], name="train loss", mode="lines",
                                 line={"color": "#7f7f7f", "width": 1, "dash": "dot"}))  # fmt: skip
    log_k = float(summary["log_k"])
    fig.add_trace(go.Scatter(x=[xs.min(), xs.max()], y=[log_k, log_k], name=f"log K = {log_k:.4f}",
                             mode="lines", line={"color": "#2ca02c", "dash": "dash", "width": 1.5}))
    signal = metrics[summary.get("transition_signal") or "loss"].to_numpy(float)
    for key, label, color, t in event_times(summary, x):
        fig.add_trace(
            go.Scatter(x=[t], y=[float(np.interp(t, xs, signal))], name=label, mode="markers",
                       marker={"color": color, "size": 11, "symbol": "diamond",
                               "line": {"color": "white", "width": 1}},
                       meta=key, hovertemplate=f"{label}: %{{x:,.0f}}<extra></extra>"),
        )  # fmt: skip
    lead_band(fig, summary, x)
    fig.update_yaxes(title_text="loss (nats / example)", type="log" if log_y else "linear")
    mark_events(fig, summary, x)
    fig.update_xaxes(title_text=x_title(x), type="log" if log_x else "linear")
    return layout(fig, "Loss: the plateau at log K, then the drop", 480)


def hidden_progress(
    metrics: pd.DataFrame,
    summary: Mapping[str, Any],
    z_use: pd.DataFrame | None = None,
    *,
    x: XAxis = "step",
) -> go.Figure:
    """Δz (the loss with z deranged within each B group minus the clean loss) on a log axis,
    with its noise floor (3 standard errors) and the loss; with ``z_use``, the routing heads'
    total z-effect and its floor. Values at or below 0 are not drawn (log axis)."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    xs = metrics[x].to_numpy(float)

    def positive(v: Any) -> np.ndarray:
        a = np.asarray(v, dtype=float)
        return np.where(a > 0, a, np.nan)

    fig.add_trace(go.Scatter(x=xs, y=positive(metrics["dz"]), name="Δz (nats / example)",
                             mode="lines+markers", marker={"size": 3},
                             line={"color": "#9467bd", "width": 2.5}))  # fmt: skip
    fig.add_trace(go.Scatter(x=xs, y=positive(3 * metrics["dz_se"]), name="Δz noise floor (3 SE)",
                             mode="lines", line={"color": "#9467bd", "dash": "dot", "width": 1}))
    if z_use is not None:
        heads = summary.get("routing_heads") or []
        for i, (head, curve) in enumerate(_by_head(z_use[z_use.component.isin(heads)])):
            style = head_style(head, summary, i)
            fig.add_trace(go.Scatter(x=curve[x], y=positive(curve["total"]), mode="lines+markers",
                                     marker={"size": 4}, legendgroup=head, **style))
            floor = {**style, "name": f"{head} floor (3 SE)",
                     "line": {**style["line"], "dash": "dot", "width": 1}}
            fig.add_trace(go.Scatter(x=curve[x], y=positive(3 * curve["total_se"]), mode="lines",
                                     legendgroup=head, **floor))  # fmt: skip
    fig.add_trace(go.Scatter(x=xs, y=metrics["loss"], name="eval loss", mode="lines",
                             line={"color": "black", "width": 1.5}), secondary_y=True)
    fig.update_yaxes(title_text="Δz / head z-use (log)", type="log", secondary_y=False)
    # ticks of its own: an overlaying axis otherwise takes plotly's "sync" ticks, placed at the
    # log axis's gridlines (odd values, negative ones below the data)
    ticks = _linear_ticks(float(np.nanmax(metrics["loss"], initial=0.0)))
    fig.update_yaxes(title_text="loss (nats / example)", secondary_y=True, showgrid=False,
                     type="linear", range=[0.0, ticks[-1]], tickmode="array", tickvals=ticks,
                     rangemode="tozero")  # fmt: skip
    mark_events(fig, summary, x)
    fig.update_xaxes(title_text=x_title(x))
    return layout(fig, "Hidden progress: z-dependence grows on the plateau, before the drop", 520)


def _linear_ticks(top: float, n: int = 5) -> list[float]:
    """About ``n`` round ticks ``0, d, 2d, ...`` from 0 up to the first at or above ``top``, with
    ``d`` 1, 2, 2.5 or 5 times a power of ten (``top <= 0`` or not finite: ``[0, 1]``)."""
    if not (math.isfinite(top) and top > 0):
        return [0.0, 1.0]
    raw = top / n
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * (1 - 1e-9))
    count = math.ceil(top / step * (1 - 1e-9))
    return [round(i * step, 12) for i in range(max(count, 1) + 1)]


def head_timelines(
    z_use: pd.DataFrame,
    summary: Mapping[str, Any] | None = None,
    *,
    x: XAxis = "step",
    metrics: Sequence[str] = ("total", "direct", "attn_to_z", "attn_prev"),
    log_x: bool = False,
) -> go.Figure:
    """Per head over checkpoints (one panel per column of ``z_use_table``): its z-use
    (total and direct effect, logits), attention from the answer position to z, and attention to
    the previous position elsewhere (a generic previous-token head has it high); one line per
    head, the routing head highlighted."""
    summary = summary or {}
    metrics = [m for m in metrics if m in z_use]
    fig = make_subplots(rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[_LABELS.get(m, m) for m in metrics])  # fmt: skip
    for i, (head, curve) in enumerate(_by_head(z_use)):
        style = head_style(head, summary, i)
        for row, metric in enumerate(metrics, start=1):
            fig.add_trace(
                go.Scatter(x=curve[x], y=curve[metric], mode="lines+markers", legendgroup=head,
                           showlegend=row == 1, marker={"size": 4}, **style),
                row=row, col=1,
            )  # fmt: skip
    for row, metric in enumerate(metrics, start=1):
        attention = metric.startswith("attn")
        fig.update_yaxes(title_text="attention" if attention else "logits", row=row, col=1,
                         **({"range": [0, 1.02]} if attention else {}))  # fmt: skip
    fig.update_xaxes(title_text=x_title(x), row=len(metrics), col=1)
    fig.update_xaxes(type="log" if log_x else "linear")
    mark_events(fig, summary, x)
    return layout(fig, "Heads over training: z-use and attention", 260 * len(metrics) + 80)


def head_heatmaps(
    scores: pd.DataFrame, metrics: Sequence[str] = ("total", "direct", "attn_to_z", "attn_prev")
) -> go.Figure:
    """Layer x head heatmaps of ``metrics``, one panel each, with a slider over checkpoints
    (one slider step per analysed checkpoint; it starts at the last). Colour scales are fixed
    across checkpoints, so moving the slider compares like with like."""
    heads = head_rows(scores)
    steps = sorted(int(s) for s in heads["step"].unique())
    layer_heads = [_layer_head(str(c)) for c in heads["component"].unique()]
    n_layers, n_heads = (max(v) + 1 for v in zip(*layer_heads, strict=True))
    cubes = {m: _layer_head_cube(heads, m, steps, n_layers, n_heads) for m in metrics}
    fig = make_subplots(rows=1, cols=len(metrics), horizontal_spacing=0.08,
                        subplot_titles=[_LABELS.get(m, m) for m in metrics])  # fmt: skip
    for col, metric in enumerate(metrics, start=1):
        cube = cubes[metric]
        if metric.startswith("attn"):
            scale: dict[str, Any] = {"colorscale": "Blues", "zmin": 0.0, "zmax": 1.0}
        else:
            top = float(np.nanmax(np.abs(cube))) if np.isfinite(cube).any() else 1.0
            scale = {"colorscale": "RdBu", "reversescale": True, "zmin": -top, "zmax": top}
        domain = fig.layout[f"xaxis{'' if col == 1 else col}"].domain
        fig.add_trace(
            go.Heatmap(z=json_grid(cube[-1]), x=[f"H{h}" for h in range(n_heads)],
                       y=[f"L{l}" for l in range(n_layers)], texttemplate="%{z:.2f}",
                       colorbar={"x": domain[1] + 0.01, "len": 0.8, "thickness": 12},
                       hovertemplate="%{y}%{x}: %{z:.3f}<extra></extra>", name=metric, **scale),
            row=1, col=col,
        )  # fmt: skip
    slider_steps = [
        {"method": "restyle", "label": str(step),
         "args": [{"z": [json_grid(cubes[m][i]) for m in metrics]}, list(range(len(metrics)))]}
        for i, step in enumerate(steps)
    ]  # fmt: skip
    fig.update_layout(
        sliders=[{"active": len(steps) - 1, "steps": slider_steps, "pad": {"t": 40},
                  "currentvalue": {"prefix": "checkpoint: step "}}],
    )  # fmt: skip
    fig.update_yaxes(autorange="reversed", title_text="layer")
    fig.update_xaxes(title_text="head")
    return layout(fig, "Every head at one checkpoint (slide through training)", 430)


def site_timelines(
    frame: pd.DataFrame,
    summary: Mapping[str, Any] | None = None,
    *,
    metric: str = "patch_raw",
    x: XAxis = "step",
    title: str = "Activation patching over checkpoints",
) -> go.Figure:
    """One line per patch site (``component``, plus ``@position`` for per-position kinds) of a
    tidy patching table over checkpoints; heads of the summary's circuit highlighted."""
    rows = frame[frame["metric"] == metric]
    by_pos = rows["pos"].notna() if "pos" in rows else pd.Series(False, index=rows.index)
    site = rows["component"].astype(str).where(~by_pos, rows["component"] + "@" + rows["position"])
    fig = go.Figure()
    sites = list(rows.assign(site=site).groupby("site", sort=False))
    colors = distinct_colors(len(sites))
    for i, (name, curve) in enumerate(sites):
        head = str(name).split("@")[0]
        if str(name) == head and "H" in head:
            style = head_style(head, summary or {}, i, colors[i])
        else:
            style = {"line": {"color": colors[i]}}
        fig.add_trace(go.Scatter(x=curve[x], y=curve["value"], mode="lines+markers",
                                 marker={"size": 4}, **{"name": str(name), **style}))  # fmt: skip
    fig.update_xaxes(title_text=x_title(x))
    fig.update_yaxes(title_text=_LABELS.get(metric, metric))
    mark_events(fig, summary or {}, x)
    return layout(fig, title, 480)


# -- per-checkpoint heatmaps -----------------------------------------------------------------
def patching_heatmaps(
    table: pd.DataFrame,
    steps: Mapping[str, int] | Sequence[int],
    *,
    kind: str = "resid_pre",
    metric: Literal["patch_raw", "patch_norm"] = "patch_raw",
) -> go.Figure:
    """Layer x position activation-patching heatmaps of site ``kind`` at chosen checkpoints
    (label -> step, e.g. :func:`~mbc_interp.analysis.timing.moments.key_steps`), side by side on one
    colour scale. ``patch_norm`` is blank where undefined (the plateau: no clean/corrupt gap)."""
    named = dict(steps) if isinstance(steps, Mapping) else {f"step {s}": int(s) for s in steps}
    sites = table[(table["kind"] == kind) & (table["metric"] == metric)]
    grids = {
        label: patching_grid(sites[sites["step"] == s], kind, metric) for label, s in named.items()
    }
    finite = [np.abs(g[0])[np.isfinite(g[0])] for g in grids.values()]
    top = max((float(f.max()) for f in finite if f.size), default=1.0) or 1.0
    titles = [f"{label} (step {step:,})" for label, step in named.items()]
    fig = make_subplots(rows=1, cols=len(named), horizontal_spacing=0.04, shared_yaxes=True,
                        subplot_titles=titles)  # fmt: skip
    for col, (z, layers, positions) in enumerate(grids.values(), start=1):
        fig.add_trace(
            go.Heatmap(z=json_grid(z), x=positions, y=layers, zmin=-top, zmax=top, zmid=0,
                       colorscale="RdBu", reversescale=True, texttemplate="%{z:.2f}",
                       showscale=col == len(named), colorbar={"title": {"text": _unit(metric)}},
                       hovertemplate="%{y} @ %{x}: %{z:.3f}<extra></extra>"),
            row=1, col=col,
        )  # fmt: skip
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="position", type="category")
    title = f"Activation patching ({kind}, {_LABELS[metric]}), clean z into corrupt"
    return layout(fig, title, 380)


def patching_grid(
    frame: pd.DataFrame, kind: str = "resid_pre", metric: str = "patch_raw"
) -> tuple[np.ndarray, list[str], list[str]]:
    """``(values [layer, pos], layer labels, position labels)`` of one checkpoint's layer x
    position sites; takes the timeline at one step or ``PatchingResult.to_frame()``."""
    rows = frame[(frame["kind"] == kind) & (frame["metric"] == metric) & frame["pos"].notna()]
    if rows.empty:
        raise ValueError(f"no {kind} / {metric} patching rows (is {kind!r} in patch_kinds?)")
    grid = rows.pivot_table(index="layer", columns="pos", values="value", dropna=False)
    names = rows.drop_duplicates("pos").set_index("pos")["position"]
    positions = [f"{int(p)}:{names[p]}" for p in grid.columns]
    return grid.to_numpy(float), [f"{kind} L{int(l)}" for l in grid.index], positions


def logit_lens_heatmap(
    table: pd.DataFrame, summary: Mapping[str, Any] | None = None, *, x: XAxis = "step"
) -> go.Figure:
    """Logit lens, stage (embedding, after each block) x checkpoint: the probability of the
    correct target (conditional knowledge, top) and the mass on the K candidates (marginal
    knowledge, bottom). The marginal appears early in every layer; the conditional late."""
    lens = table[table["analysis"] == "logit_lens"]
    metrics = ("correct_prob", "candidate_mass")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.1,
                        subplot_titles=[_LABELS[m] for m in metrics])  # fmt: skip
    for row, metric in enumerate(metrics, start=1):
        rows = lens[lens["metric"] == metric]
        grid = rows.pivot_table(index="layer", columns=x, values="value")
        stages = rows.drop_duplicates("layer").set_index("layer")["component"]
        fig.add_trace(
            go.Heatmap(z=json_grid(grid.to_numpy(float)), x=grid.columns.to_numpy(float),
                       y=[str(stages[l]) for l in grid.index], zmin=0, zmax=1,
                       colorscale="Viridis", showscale=row == 1, name=metric,
                       colorbar={"title": {"text": "probability"}},
                       hovertemplate=f"%{{y}}, {x} %{{x:,}}: %{{z:.3f}}<extra></extra>"),
            row=row, col=1,
        )  # fmt: skip
        fig.update_yaxes(title_text="residual after", row=row, col=1)
    fig.update_xaxes(title_text=x_title(x), row=2, col=1)
    mark_events(fig, summary or {}, x)
    return layout(fig, "Logit lens over training: marginal before conditional", 520)


# -- helpers ---------------------------------------------------------------------------------
def head_rows(scores: pd.DataFrame) -> pd.DataFrame:
    """The per-head rows of a routing-score table (drops non-head rows such as ``baseline``)."""
    return scores[scores["component"].astype(str).str.fullmatch(r"L\d+H\d+")]


def _by_head(scores: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Per-head curves in layer, head order (``L2H0`` before ``L10H0``), sorted by step."""
    groups = [(str(h), c.sort_values("step")) for h, c in head_rows(scores).groupby("component")]
    return sorted(groups, key=lambda g: _layer_head(g[0]))


def _layer_head(head: str) -> tuple[int, int]:
    return parse_head_label(head)


def _layer_head_cube(
    heads: pd.DataFrame, metric: str, steps: list[int], n_layers: int, n_heads: int
) -> np.ndarray:
    cube = np.full((len(steps), n_layers, n_heads), np.nan)
    index = {s: i for i, s in enumerate(steps)}
    for step, head, value in heads[["step", "component", metric]].itertuples(index=False):
        l, h = _layer_head(str(head))
        cube[index[int(step)], l, h] = value
    return cube


def _unit(metric: str) -> str:
    return "logits" if metric == "patch_raw" else "share"
