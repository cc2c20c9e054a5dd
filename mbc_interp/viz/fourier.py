"""The run report's section of the ``fourier`` kind (Nanda et al.'s progress measures) and the
embedding's spectrum over training: both draw the kind's timeline rows and compute nothing.
Declared in :mod:`mbc_interp.analysis.registry`."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from mbc_interp.viz.kinds import metric_lines
from mbc_interp.viz.report import Section
from mbc_interp.viz.style import TEMPLATE

_PER_FREQUENCY = {
    "embed_norm": "norm of the embedding in the frequency (cos and sin together)",
    "logit_share": "share of the answer logits' energy in the frequency",
}


def frequency_heatmap(
    table: pd.DataFrame, metric: str = "embed_norm", *, t_loss: float | None = None
) -> go.Figure:
    """A per-frequency metric of the ``fourier`` kind (``embed_norm`` or ``logit_share``) at
    every analysed checkpoint: frequencies k = 1..(p-1)/2 on the y axis, checkpoints on the x
    axis (evenly spaced, labelled by step). A grokked network's spectrum is sparse: a few
    bright rows, the key frequencies."""
    if metric not in _PER_FREQUENCY:
        raise ValueError(f"metric {metric!r}: one of {sorted(_PER_FREQUENCY)}")
    rows = table[(table.analysis == "fourier") & (table.metric == metric)]
    if rows.empty:
        raise ValueError(f"the timeline has no fourier {metric!r} rows: run the fourier kind")
    grid = rows.assign(k=rows.component.str.removeprefix("k").astype(int)).pivot_table(
        index="k", columns="step", values="value"
    )  # (frequency, step)
    steps = [int(s) for s in grid.columns]
    fig = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(float),
            x=[str(s) for s in steps],
            y=[f"k={k}" for k in grid.index],
            colorscale="Viridis",
            colorbar={"title": metric},
            hovertemplate="step %{x}, %{y}: %{z:.3g}<extra></extra>",
        )
    )
    if t_loss is not None and steps:
        after = int(np.searchsorted(steps, t_loss))  # the first checkpoint at or after the drop
        if after < len(steps):
            fig.add_vline(x=after - 0.5, line={"color": "white", "dash": "dash"})
            fig.add_annotation(x=after - 0.5, y=1.02, yref="paper", text="t_loss",
                               showarrow=False)  # fmt: skip
    fig.update_xaxes(title_text="checkpoint (step)", type="category")
    fig.update_yaxes(title_text="frequency", autorange="reversed")
    fig.update_layout(title={"text": _PER_FREQUENCY[metric].capitalize(), "x": 0.01},
                      template=TEMPLATE, height=140 + 22 * len(grid.index))  # fmt: skip
    return fig


def fourier_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    rows = table[table.analysis == "fourier"]
    last = rows[rows.step == rows.step.max()]
    freqs = sorted(int(v) for v in last[last.metric == "key_freq"].value)
    kind = ", ".join(sorted(set(rows.kind))) or "n/a"
    t = summary.get("t_loss")
    figs = [
        metric_lines(table, "fourier", m, title=title, t_loss=t)
        for m, title in (
            ("excluded_gain", "Excluded loss minus the clean training loss"),
            ("restricted_loss", "Restricted loss (key frequencies only, all pairs)"),
            ("gini", "Gini coefficient of the embedding's Fourier norms"),
            ("weight_norm", "Weight norm"),
        )
    ]
    if (rows.metric == "embed_norm").any():
        figs.append(frequency_heatmap(table, "embed_norm", t_loss=t))
    text = (f"Key frequencies ({kind}) at the last analysed checkpoint: {freqs}. The excluded "
            "gain grows as the network comes to rely on the key frequencies; the restricted "
            "loss falls as their directions alone come to solve the task; the embedding's "
            "spectrum turns sparse.")  # fmt: skip
    return Section("Fourier progress measures", text=text, figures=figs)
