"""The run report's sections of the mechanistic kinds (groups, weights, ablation, probes, atp,
llc_heads, essential): each draws the kind's timeline rows and the summary's reading of them.
Declared in :mod:`mbc_interp.analysis.registry`; they compute nothing."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from mbc_interp.viz.report import Section
from mbc_interp.viz.style import TEMPLATE


def metric_lines(
    table: pd.DataFrame,
    analysis: str,
    metric: str,
    *,
    kind: str | None = None,
    components: list[str] | None = None,
    title: str = "",
    y_title: str = "",
    t_loss: float | None = None,
    log_y: bool = False,
) -> go.Figure:
    """One line per component of ``analysis``/``metric`` over the analysed steps, with the
    loss drop as a dashed line."""
    rows = table[(table.analysis == analysis) & (table.metric == metric)]
    if kind is not None:
        rows = rows[rows.kind == kind]
    if components is not None:
        rows = rows[rows.component.isin(components)]
    fig = go.Figure()
    for component, g in rows.groupby("component", sort=False):
        g = g.sort_values("step")
        fig.add_trace(go.Scatter(x=g.step, y=g.value, mode="lines+markers", name=str(component)))
    if t_loss is not None:
        fig.add_vline(x=t_loss, line_dash="dash", annotation_text="t_loss")
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=y_title or metric,
                      template=TEMPLATE, height=380)  # fmt: skip
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def _t(summary: dict[str, Any]) -> float | None:
    return summary.get("t_loss")


def groups_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    g = summary.get("groups") or {}
    text = ("Share of the followed B groups solved at each checkpoint (every member's candidate "
            "right and the group's candidate loss below 0.05 log K).")  # fmt: skip
    if g:
        score = g.get("collective_score")
        shown = "n/a" if score is None else f"{score:.2f}"
        text += (f" Solved at the plateau's middle: {g.get('solved_at_half')}; 10-90% spread "
                 f"of the solve times over the plateau's duration: {shown} "
                 f"({g.get('collective')}).")  # fmt: skip
        if "halfway" in g:
            half = g.get("halfway_score")
            text += (" The same spread of the groups' half-way crossings (each group's loss "
                     "below half of chance, the drop's own criterion): "
                     f"{'n/a' if half is None else f'{half:.2f}'} ({g['halfway']}).")
    fig = metric_lines(table, "groups", "solved_fraction", title="Groups solved",
                       y_title="solved fraction", t_loss=_t(summary))  # fmt: skip
    figs = [fig]
    if g.get("group_times"):
        figs.append(group_times_figure(g["group_times"], summary.get("t_plateau_start"),
                                       _t(summary)))  # fmt: skip
    return Section("Groups solved over training", text=text, figures=figs)


def group_times_figure(
    times: dict[str, list[float | None]], t_plateau_start: float | None, t_loss: float | None
) -> go.Figure:
    """Each group's half-way crossing and solve time (the summary's ``group_times``), groups
    ordered by their half-way time: when each escapes against when it is done."""
    half, solved = times["halfway"], times["solved"]
    order = sorted(range(len(half)), key=lambda i: (half[i] is None, half[i] or 0.0))
    rank = list(range(1, len(order) + 1))
    fig = go.Figure()
    for name, values, symbol in (("half-way (t_loss's criterion)", half, "circle"),
                                 ("solved (0.05 of chance)", solved, "x")):
        fig.add_trace(go.Scatter(x=[values[i] for i in order], y=rank, mode="markers",
                                 name=name, marker={"symbol": symbol, "size": 6}))
    for t, label in ((t_plateau_start, "plateau start"), (t_loss, "t_loss")):
        if t is not None:
            fig.add_vline(x=t, line_dash="dash", annotation_text=label)
    fig.update_layout(title="Each group's escape and finish", xaxis_title="step",
                      yaxis_title="group (by half-way time)", template=TEMPLATE, height=380)
    return fig


def weights_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    from mbc_interp.analysis.dynamics.weights import SKETCH_SIZE
    from mbc_interp.analysis.timing.extra_summary import weights_summary

    figs = [metric_lines(table, "weights", "ov_rank", title="Effective rank of each head's OV "
                         "circuit", y_title="exp(entropy of singular values)", t_loss=_t(summary)),
            metric_lines(table, "weights", "norm", title="Weight norm by parameter group",
                         t_loss=_t(summary), log_y=True)]  # fmt: skip
    text = ("A head whose OV circuit's effective rank falls is specialising: it writes fewer "
            "directions.")
    w = summary.get("weights") or weights_summary(table) or {}
    if w:
        cos = w["update_cosine"]
        fig = go.Figure(go.Scatter(x=cos["step"], y=cos["value"], mode="lines+markers",
                                   name="update cosine"))  # fmt: skip
        if _t(summary) is not None:
            fig.add_vline(x=_t(summary), line_dash="dash", annotation_text="t_loss")
        fig.update_layout(title="Cosine between successive updates", xaxis_title="step",
                          yaxis_title="cosine", yaxis_range=[-1.05, 1.05],
                          template=TEMPLATE, height=380)  # fmt: skip
        figs.append(fig)
        median = w.get("update_cosine_median")
        text += (" The cosine between successive checkpoint-to-checkpoint updates (from a "
                 f"{SKETCH_SIZE}-bucket sketch of the weights, to within about "
                 f"{(1.5 / SKETCH_SIZE) ** 0.5:.2f}) is 1 where training "
                 "moves along a line and falls where its direction turns"
                 + (f"; median {median:.2f}." if median is not None else "."))
    return Section("Weights", text=text, figures=figs)


def ablation_section(
    run: Any, table: pd.DataFrame, summary: dict[str, Any], analysis: str = "ablation"
) -> Section:
    a = summary.get(analysis) or {}
    metric = a.get("metric", "cand_loss_increase")
    loss = "first-token candidate loss" if metric == "cand_loss_increase" else "answer loss"
    z_only = analysis == "ablation_z"
    by = ("its output on the same row with another selector of the same B" if z_only
          else "its mean over the rows")  # fmt: skip
    text = (f"Increase of the {loss} when a head's output is replaced by {by} "
            "(per head), when the head set is (necessity) and when every other head is "
            "(sufficiency).")  # fmt: skip
    if a.get("heads"):
        text += (f" At step {a['step']:.0f}, set {'+'.join(a['heads'])}: necessity "
                 f"{a['necessity']:.3f} nats, sufficiency {a['sufficiency']:.3f} nats.")
    if a.get("marginal_gain"):
        text += (f" Ablating the set raises the first-token marginal (-log of the mass on the "
                 f"candidates' first tokens) by {a['necessity_marginal']:.3f} nats, "
                 f"{a['necessity_marginal'] / a['marginal_gain']:.0%} of the "
                 f"{a['marginal_gain']:.3f} nats the model has gained on it over the layout.")
    kind, title = ("z_resample", "Ablation of z alone") if z_only else ("mean", "Mean ablation")
    fig = metric_lines(table, analysis, metric, kind=kind, title=title,
                       y_title=f"{loss} increase (nats)", t_loss=_t(summary))  # fmt: skip
    return Section("Ablation of z alone" if z_only else "Ablation", text=text, figures=[fig])


def ablation_z_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    return ablation_section(run, table, summary, "ablation_z")


def probes_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    rows = table[(table.analysis == "probes") & (table.metric == "probe_acc")]
    figs = [metric_lines(table, "probes", "probe_acc", kind=k, title=f"Probe of {k}",
                         y_title="held-out accuracy", t_loss=_t(summary))
            for k in rows.kind.drop_duplicates()]  # fmt: skip
    return Section("Linear probes", text="Ridge probes of the task's labels (the wind tunnel's "
                   "z and first target token; a, b and c of a + b mod p) on the residual stream "
                   "at the answer position, per layer (held-out accuracy).", figures=figs)


def atp_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    a = summary.get("atp") or {}
    text = ("Attribution-patching estimates of each head's z-use (logits, all positions) and of "
            "the residual stream before each layer at each position.")  # fmt: skip
    for key, what in (("heads", "heads"), ("resid_pre", "residual sites")):
        if key in a:
            text += (f" Rank agreement with exact patching over the {what}: median "
                     f"{a[key]['rank_agreement_median']:.2f} over {a[key]['n_checkpoints']} "
                     "checkpoints.")  # fmt: skip
    figs = [metric_lines(table, "atp", "atp_raw", kind="head_out_all_pos",
                         title="Attribution patching per head", y_title="logits",
                         t_loss=_t(summary))]  # fmt: skip
    resid = residual_maps(table)
    if resid is not None:
        figs.append(resid)
    return Section("Attribution patching", text=text, figures=figs)


def residual_maps(table: pd.DataFrame) -> go.Figure | None:
    """Layer x position maps of the residual stream at the last checkpoint with atp rows: the
    attribution estimate, beside the exact patching effect where that ran at the same step."""
    from plotly.subplots import make_subplots

    est = table[(table.analysis == "atp") & (table.kind == "resid_pre")
                & (table.metric == "atp_raw")]  # fmt: skip
    if est.empty:
        return None
    step = est.step.max()
    exact = table[(table.analysis == "patching") & (table.kind == "resid_pre")
                  & (table.metric == "patch_raw") & (table.step == step)]  # fmt: skip
    maps = [("attribution estimate", est[est.step == step])]
    if not exact.empty:
        maps.append(("exact patching", exact))
    fig = make_subplots(rows=1, cols=len(maps), subplot_titles=[m[0] for m in maps])
    for i, (_, rows) in enumerate(maps):
        grid = rows.pivot_table(index="layer", columns="pos", values="value")
        labels = rows.drop_duplicates("pos").set_index("pos")["position"]
        fig.add_trace(go.Heatmap(z=grid.to_numpy(), x=[labels.get(p, str(p)) for p in grid.columns],
                                 y=[f"L{l}" for l in grid.index], colorscale="RdBu", zmid=0,
                                 coloraxis="coloraxis"), row=1, col=i + 1)  # fmt: skip
    fig.update_layout(title=f"Residual stream before each layer, step {step:.0f} (logits)",
                      coloraxis={"colorscale": "RdBu", "cmid": 0}, template=TEMPLATE,
                      height=380)  # fmt: skip
    return fig


def llc_heads_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    fig = metric_lines(table, "llc_heads", "llc", title="LLC restricted to each head",
                       y_title="LLC", t_loss=_t(summary))  # fmt: skip
    return Section("LLC per head", text="The local learning coefficient over one head's weights "
                   "(the others frozen), same SGLD settings as the llc kind.", figures=[fig])


def essential_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    e = summary.get("essential") or {}
    text = "The model's outputs on a fixed probe set across checkpoints, reduced by PCA."
    if e.get("t_turn") is not None:
        text += (f" The trajectory turns most at step {e['t_turn']:.0f} "
                 f"({e['turn_angle']:.0f} degrees), {e['turn_minus_t_loss']:+.0f} steps from "
                 "t_loss." if e.get("turn_minus_t_loss") is not None else "")
    figs = []
    traj = e.get("trajectory")
    if traj and "pc2" in traj:
        fig = go.Figure(go.Scatter(
            x=traj["pc1"], y=traj["pc2"], mode="lines+markers", text=traj["step"],
            marker={"color": traj["step"], "colorscale": "Viridis", "showscale": True,
                    "colorbar": {"title": "step"}},
            hovertemplate="step %{text}<extra></extra>",
        ))  # fmt: skip
        fig.update_layout(title="Output trajectory (PC1, PC2)", xaxis_title="PC1",
                          yaxis_title="PC2", template=TEMPLATE, height=420)  # fmt: skip
        figs.append(fig)
    return Section("Essential dynamics", text=text, figures=figs)
