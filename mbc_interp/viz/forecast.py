"""Figures of the drop forecast, drawn from computed tables only.

- :func:`forecast_path_figure`: the forecast a run would have shown live at each evaluation
  (rows of :func:`mbc_interp.analysis.timing.forecast.forecast_path`), with its interval, against
  the time it was made, and the observed drop.
- :func:`backtest_figure`: forecast against actual ``t_loss`` for every run of a backtest
  (:func:`mbc_interp.sweep.backtest.backtest`), one panel per forecast time, each method in its
  colour, the diagonal a perfect forecast.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from mbc_interp.viz.style import TEMPLATE

COLORS = {"forecast": "#d62728", "extrapolation": "#ff9896", "epochs": "#1f77b4",
          "power_law": "#2ca02c"}  # fmt: skip
ACTUAL_COLOR = "#222222"


def forecast_path_figure(
    path: pd.DataFrame, *, t_loss: float | None = None, t_plateau_start: float | None = None
) -> go.Figure:
    """Forecast of t_loss (with its interval) against the step it was made at; the diagonal is
    "now" (a forecast cannot be earlier), the dashed line the observed drop."""
    made = path[path["status"] == "forecast"].sort_values("as_of_step")
    fig = go.Figure()
    if made.empty:
        fig.add_annotation(text="no forecast yet: not enough signal on the plateau",
                           showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")  # fmt: skip
    else:
        x = made["as_of_step"].to_numpy(float)
        high = made["high"].astype(float).to_numpy()
        fig.add_trace(go.Scatter(
            x=np.concatenate([x, x[::-1]]),
            y=np.concatenate([made["low"].astype(float).to_numpy(), high[::-1]]),
            fill="toself", fillcolor="rgba(214,39,40,0.15)", line={"width": 0},
            name="interval", hoverinfo="skip",
        ))  # fmt: skip
        for method, dash in (("analog", "solid"), ("extrapolation", "dot")):
            part = made[made["method"] == method]
            if len(part):
                fig.add_trace(go.Scatter(
                    x=part["as_of_step"], y=part["t_loss_forecast"], mode="lines+markers",
                    name=f"forecast ({method})", marker={"size": 5},
                    line={"color": COLORS["forecast"], "dash": dash},
                ))  # fmt: skip
        lo, hi = float(x.min()), float(x.max())
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="now",
                                 line={"color": "#bbbbbb", "width": 1}))  # fmt: skip
    if t_loss is not None:
        fig.add_hline(y=t_loss, line={"color": ACTUAL_COLOR, "dash": "dash"},
                      annotation_text=f"t_loss = {t_loss:,.0f}")  # fmt: skip
    if t_plateau_start is not None:
        fig.add_vline(x=t_plateau_start, line={"color": "#7f7f7f", "dash": "dot"},
                      annotation_text="plateau start")  # fmt: skip
    fig.update_layout(template=TEMPLATE, height=420, title="Forecast of the loss drop over time",
                      xaxis_title="step the forecast was made at",
                      yaxis_title="forecast t_loss (step)")  # fmt: skip
    return fig


def backtest_figure(table: pd.DataFrame) -> go.Figure:
    """Predicted against actual t_loss (log axes), one panel per forecast fraction."""
    fractions = sorted(table["fraction"].unique())
    fig = make_subplots(
        rows=1, cols=len(fractions), shared_yaxes=True,
        subplot_titles=[f"made at {f:.0%} of the plateau" for f in fractions],
    )  # fmt: skip
    made = table[table["prediction"].notna()]
    for col, f in enumerate(fractions, start=1):
        at = made[made["fraction"] == f]
        for method, color in COLORS.items():
            rows = at[at["method"] == method]
            if rows.empty:
                continue
            high = rows["high"].astype(float).fillna(rows["prediction"].astype(float) * 10)
            fig.add_trace(go.Scatter(
                x=rows["t_loss"], y=rows["prediction"], mode="markers", name=method,
                legendgroup=method, showlegend=col == 1, marker={"color": color, "size": 7},
                error_y={"type": "data", "symmetric": False,
                         "array": high - rows["prediction"],
                         "arrayminus": rows["prediction"] - rows["low"], "thickness": 1},
                text=rows["run"], hovertemplate="%{text}<br>actual %{x:.0f}, "
                "predicted %{y:.0f}<extra>" + method + "</extra>",
            ), row=1, col=col)  # fmt: skip
        span = [made["t_loss"].min() * 0.8, made["t_loss"].max() * 1.25] if len(made) else [1, 2]
        fig.add_trace(go.Scatter(x=span, y=span, mode="lines", showlegend=False,
                                 line={"color": "#bbbbbb"}), row=1, col=col)  # fmt: skip
        fig.update_xaxes(type="log", title_text="actual t_loss (step)", row=1, col=col)
    fig.update_yaxes(type="log", title_text="predicted t_loss (step)", row=1, col=1)
    fig.update_layout(template=TEMPLATE, height=420, width=380 * len(fractions),
                      title="Backtest: forecasts of the drop against what happened")  # fmt: skip
    return fig
