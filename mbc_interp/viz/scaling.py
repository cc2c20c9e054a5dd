"""Sweep figures: plateau duration against D, K, lr and batch, lead fractions, plateau heights,
the marginal/conditional order, and the forward/backward control. Each takes the run table of
:func:`mbc_interp.sweep.results.collect` and the fits of :func:`mbc_interp.sweep.fit.fit_sweep`
(or rows computed from them), and only draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mbc_interp.store.sweep_runs import main_runs, slice_of

_SEED_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
_FIT = dict(color="black", dash="dash")
_LAYOUT = dict(template="simple_white", width=640, height=440, margin=dict(l=70, r=20, t=90, b=60))


def _runs(fig: go.Figure, rows: pd.DataFrame, axis: str, y: str = "duration_tokens") -> None:
    """One marker per run (coloured by seed) and the level means as a line."""
    for i, (seed, g) in enumerate(rows.groupby("seed")):
        fig.add_trace(go.Scatter(
            x=g[axis], y=g[y], mode="markers", name=f"seed {seed}", legendgroup="seeds",
            marker=dict(color=_SEED_COLORS[i % len(_SEED_COLORS)], size=8, opacity=0.8),
            customdata=g[["name"]], hovertemplate="%{customdata[0]}<br>%{y:.3g}<extra></extra>",
        ))  # fmt: skip
    means = rows.groupby(axis)[y].mean()
    fig.add_trace(go.Scatter(x=means.index, y=means.values, mode="lines+markers", name="mean",
                             line=dict(color="grey"), marker=dict(symbol="diamond", size=10)))


def _slice_figure(table: pd.DataFrame, fits: dict[str, Any], axis: str) -> go.Figure:
    """The runs that vary ``axis`` about the reference point, drawn by :func:`_runs`."""
    rows = slice_of(table, axis, fits["reference"])
    fig = go.Figure()
    _runs(fig, rows[rows.duration_tokens.notna()], axis)
    return fig


def duration_figure(table: pd.DataFrame, fits: dict[str, Any], axis: str) -> go.Figure:
    """Plateau duration (tokens) against one axis on log-log axes, with the power-law fit."""
    res = fits[axis]
    fig = _slice_figure(table, fits, axis)
    title = f"Plateau duration vs {axis}"
    fit = res.get("fit")
    if fit is not None:
        xs = np.geomspace(min(fit["levels"]), max(fit["levels"]), 50)
        lo, hi = fit["ci"]
        fig.add_trace(go.Scatter(
            x=xs, y=fit["prefactor"] * xs ** fit["exponent"], mode="lines", line=_FIT,
            name=f"fit: exponent {fit['exponent']:.2f} [{lo:.2f}, {hi:.2f}]",
        ))  # fmt: skip
        title += f": exponent {fit['exponent']:.2f} (95% CI {lo:.2f} to {hi:.2f})"
    if axis == "D":
        rows = slice_of(table, axis, fits["reference"])
        _paper_slope(fig, rows.dropna(subset=["duration_tokens"]), 1.19)
    fig.update_xaxes(type="log", title=axis)
    fig.update_yaxes(type="log", title="plateau duration (tokens seen)")
    fig.update_layout(title=title + f"<br>verdict: {res['verdict']}", **_LAYOUT)
    return fig


def examples_figure(table: pd.DataFrame, fits: dict[str, Any]) -> go.Figure:
    """Plateau duration against the number of examples N = D K, D and K slices together."""
    ref, res = fits["reference"], fits["N"]
    rows = pd.concat([slice_of(table, "D", ref), slice_of(table, "K", ref)]).drop_duplicates("name")
    rows = rows[rows.duration_tokens.notna()]
    fig = go.Figure()
    at_ref = rows["K"].eq(ref["K"])
    groups = ((f"K = {ref['K']}, D varies", rows[at_ref], "circle"),
              (f"D = {ref['D']}, K varies", rows[~at_ref], "square"))  # fmt: skip
    for label, g, symbol in groups:
        fig.add_trace(go.Scatter(
            x=g.n_examples, y=g.duration_tokens, mode="markers", name=label,
            marker=dict(symbol=symbol, size=9, color=np.log2(g.K), colorscale="Viridis"),
            customdata=g[["name", "duration_epochs"]],
            hovertemplate="%{customdata[0]}<br>%{customdata[1]:.1f} epochs<extra></extra>",
        ))  # fmt: skip
    fit, e = res["fit"], res["epochs"]
    xs = np.geomspace(min(fit["levels"]), max(fit["levels"]), 50)
    fig.add_trace(go.Scatter(x=xs, y=fit["prefactor"] * xs ** fit["exponent"], mode="lines",
                             line=_FIT, name=f"fit: exponent {fit['exponent']:.2f}"))
    fig.update_xaxes(type="log", title="examples N = D K")
    fig.update_yaxes(type="log", title="plateau duration (tokens seen)")
    fig.update_layout(title=f"Plateau duration vs N = D K: exponent {fit['exponent']:.2f} "
                      f"[{fit['ci'][0]:.2f}, {fit['ci'][1]:.2f}]; {e['mean']:.1f} epochs",
                      **_LAYOUT)  # fmt: skip
    return fig


def _paper_slope(fig: go.Figure, rows: pd.DataFrame, exponent: float) -> None:
    """The paper's slope through the geometric mean of our runs, for the eye."""
    x, y = rows["D"].to_numpy(float), rows.duration_tokens.to_numpy(float)
    if len(x) < 2:
        return
    gx, gy = np.exp(np.log(x).mean()), np.exp(np.log(y).mean())
    xs = np.geomspace(x.min(), x.max(), 50)
    fig.add_trace(go.Scatter(x=xs, y=gy * (xs / gx) ** exponent, mode="lines",
                             line=dict(color="#999", dash="dot"), name=f"paper: D^{exponent}"))


def ratio_figure(table: pd.DataFrame, fits: dict[str, Any], axis: str) -> go.Figure:
    """Plateau duration (tokens) against lr or batch size, with the headline ratio."""
    res = fits[axis]
    fig = _slice_figure(table, fits, axis)
    title = f"Plateau duration vs {'learning rate' if axis == 'lr' else 'batch size'}"
    if "ratio" in res:
        lo, hi = res["ci"]
        title += (f": {res['numerator']:g} / {res['denominator']:g} = {res['ratio']:.2f}x "
                  f"[{lo:.2f}, {hi:.2f}]<br>verdict: {res['verdict']}")  # fmt: skip
    fig.update_xaxes(type="log", title=axis)
    fig.update_yaxes(title="plateau duration (tokens seen)", rangemode="tozero")
    fig.update_layout(title=title, **_LAYOUT)
    return fig


def lead_figure(table: pd.DataFrame, fits: dict[str, Any]) -> go.Figure:
    """Lead fractions of every analysed run: attention onset and causal (patching) onset."""
    rows = main_runs(table, fits["reference"])  # the runs the lead fraction's fit uses
    fig = go.Figure()
    for key, name in (("lead_fraction", "routing head z-use"), ("lead_fraction_z", "Δz")):
        v = rows[key].dropna() if key in rows else pd.Series(dtype=float)
        fig.add_trace(go.Box(
            y=v, name=name, boxpoints="all", jitter=0.4, pointpos=0,
            customdata=rows.loc[v.index, ["name"]],
            hovertemplate="%{customdata[0]}: %{y:.2f}<extra></extra>",
        ))  # fmt: skip
    fig.add_hline(y=0.5, line=dict(color="#555", dash="dash"), annotation_text="paper: 0.5")
    fig.add_hline(y=0.0, line=dict(color="black", width=1))
    m = fits["lead"].get("lead_fraction")
    title = "Lead of the routing head over the loss drop (fraction of the plateau)"
    if m:
        title += f"<br>mean {m['mean']:.2f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}], n = {m['n']}"
    fig.update_yaxes(title="(t_loss - t_route) / (t_loss - t_plateau_start)")
    fig.update_layout(title=title, showlegend=False, **_LAYOUT)
    return fig


def plateau_figure(table: pd.DataFrame) -> go.Figure:
    """Plateau loss against log K for every run (the diagonal is the claim)."""
    rows = table[(table.point_status == "done") & table.plateau_loss.notna()]
    fig = go.Figure(go.Scatter(
        x=rows.log_k, y=rows.plateau_loss, mode="markers", customdata=rows[["name"]],
        marker=dict(size=8, color=np.log2(rows.K), colorscale="Viridis", showscale=False),
        hovertemplate="%{customdata[0]}<br>plateau %{y:.4f}, log K %{x:.4f}<extra></extra>",
        name="runs",
    ))  # fmt: skip
    lim = [0, float(rows.log_k.max()) * 1.1 if len(rows) else 1]
    fig.add_trace(go.Scatter(x=lim, y=lim, mode="lines", line=_FIT, name="plateau = log K"))
    fig.update_xaxes(title="log K (nats)")
    fig.update_yaxes(title="plateau loss (nats / example)")
    fig.update_layout(title="Plateau height against log K", **_LAYOUT)
    return fig


def control_figure(curves: dict[str, pd.DataFrame], log_k: float) -> go.Figure:
    """Eval loss of forward (A -> B) and backward (B, z -> A) runs of the same pairs.

    ``curves`` maps a label starting with the direction (``"forward, seed 0"``) to the run's
    metrics (step, loss)."""
    fig = go.Figure()
    for name, m in curves.items():
        forward = name.startswith("forward")
        fig.add_trace(go.Scatter(
            x=m.step, y=m.loss, mode="lines", name=name, legendgroup=str(forward),
            line=dict(color="#d62728" if forward else "#1f77b4", width=1.5),
        ))  # fmt: skip
    last = max((float(m.step.max()) for m in curves.values()), default=1.0)
    fig.add_trace(go.Scatter(x=[0, last], y=[log_k, log_k], mode="lines", name="log K",
                             line=dict(color="#999", dash="dot")))  # fmt: skip
    fig.update_yaxes(type="log", title="eval loss (nats / example)")
    fig.update_xaxes(title="step")
    fig.update_layout(title="Directional asymmetry: A -> B (red) has no log K plateau",
                      **{**_LAYOUT, "width": 760})  # fmt: skip
    return fig


def order_figure(points: pd.DataFrame, order: dict[str, Any]) -> go.Figure:
    """Each run's relative lead of the marginal over the conditional (``points``: the rows of
    :func:`mbc_interp.sweep.order.lead_points`) against N, per version, with its sampling error,
    the band within which the two count as together, and the regime's interval (``order``: one
    family's entry of the fits' ``order``)."""
    fig = go.Figure()
    names = {"seq": "whole sequences", "first": "first tokens"}
    for i, (v, name) in enumerate(names.items()):
        rows = points[points.version == v]
        shift = 1.04 if i else 1 / 1.04  # side by side at each N
        fig.add_trace(go.Scatter(
            x=rows.n_examples * shift, y=100 * rows.relative_lead, mode="markers", name=name,
            error_y=dict(type="data", array=200 * rows.relative_lead_se, visible=True),
            marker=dict(size=8, color=_SEED_COLORS[i]), customdata=rows[["name"]],
            hovertemplate="%{customdata[0]}: %{y:+.1f}%<extra></extra>",
        ))  # fmt: skip
        res = order.get(v, {})
        if "relative_lead" in res:
            m = res["relative_lead"]
            lo = max(order["regime_n"], float(points.n_examples.min())) / 1.08
            hi = float(points.n_examples.max()) * 1.08
            fig.add_trace(go.Scatter(
                x=[lo, hi, hi, lo], y=[100 * m["ci"][0]] * 2 + [100 * m["ci"][1]] * 2,
                fill="toself", mode="lines", line=dict(width=0), opacity=0.2,
                fillcolor=_SEED_COLORS[i], name=f"{name}, N >= {order['regime_n']:,}",
                hoverinfo="skip",
            ))  # fmt: skip
    band = 100 * order["together"]
    fig.add_hrect(y0=-band, y1=band, fillcolor="#999", opacity=0.15, line_width=0)
    fig.add_hline(y=0, line=dict(color="black", width=1))
    fig.add_vline(x=order["regime_n"], line=dict(color="#555", dash="dot"))
    fig.update_xaxes(type="log", title="N (total examples)")
    fig.update_yaxes(title="(t_conditional - t_marginal) / t_conditional (%)")
    fig.update_layout(
        title=f"Marginal before conditional? Each run's lead<br>grey: together (±{band:g}%); "
        f"shaded: 95% CI over N >= {order['regime_n']:,}",
        **{**_LAYOUT, "height": 500}, legend=dict(orientation="h", y=-0.2),
    )
    return fig
