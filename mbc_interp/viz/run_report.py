"""The report of one run: the summary table, every figure, attention at three moments.

:func:`run_report` turns an analysed run into :class:`~mbc_interp.viz.report.Section` s;
:func:`write_run_report` writes them to ``RUN/report.html``. Every number comes from the run's
files (metrics, ``RUN/analysis/``); the only models loaded are the three checkpoints whose
attention is shown. A part whose data was not computed (say ``resid_pre`` left out of
``patch_kinds``) becomes a note saying so instead of failing the whole report.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from mbc_interp.analysis.config_record import CORE
from mbc_interp.analysis.heads import parse_head_label
from mbc_interp.analysis.registry import extra_kinds
from mbc_interp.analysis.timeline import load_timeline
from mbc_interp.analysis.timing.forecast import forecast_path
from mbc_interp.analysis.timing.forecast_runs import forecast_run, sweep_references
from mbc_interp.analysis.timing.moments import key_steps
from mbc_interp.analysis.timing.summary import summarize, z_use_table
from mbc_interp.store.integrity import DamagedCheckpointWarning, check_entry
from mbc_interp.store.layout import REPORT_FILE
from mbc_interp.store.run import Run
from mbc_interp.tasks.registry import entry
from mbc_interp.viz.attention import attention_views
from mbc_interp.viz.figures import (
    XAxis,
    head_heatmaps,
    head_rows,
    head_timelines,
    hidden_progress,
    logit_lens_heatmap,
    loss_curve,
    patching_heatmaps,
)
from mbc_interp.viz.forecast import forecast_path_figure
from mbc_interp.viz.progress_figures import metric_curves
from mbc_interp.viz.report import Section, write_html_report
from mbc_interp.viz.task_report import task_report

_TIMES = (
    ("t_plateau_start", "first step of >= 3 evaluations within 5% of log K"),
    ("t_z", "Δz (loss with z deranged - clean) above 3 SE for 3 evaluations: z starts to be used"),
    ("t_route", "the routing head's z-use (patching effect) above 3 SE for 2 checkpoints"),
    ("t_route_direct", "the same for its direct z-effect"),
    (
        "t_attn_to_z",
        "half-way onset of its attention to z: when z is moved next to the answer "
        "position, not when it is used",
    ),
    ("t_loss", "loss below 0.5 log K (held, interpolated)"),
    ("t_solved", "loss below 0.05 log K (held, interpolated)"),
)


def run_report(run: Run, *, example: int = 0, x: XAxis = "step") -> list[Section]:
    """The sections of a run's report, by what its task declares: the routing circuit's
    (heads, patching, logit lens, attention) where the task's analyses are the routing core; its
    transition and hidden-progress signals where it has analyses or signals of its own; else
    (a forward-direction run, with no selector to route) its loss curve only. The routing
    report needs analysed checkpoints."""
    table = load_timeline(run)
    task = run.task
    if CORE not in task.default_kinds:
        if not task.default_kinds and not task.progress_signals:
            return _loss_report(run, x)
        summary = summarize(run, table)
        kinds = _kind_sections(run, table, summary) if not table.empty else []
        return task_report(run, table, kinds, Section("Run", table=run_table(run, table)), x)
    if table.empty:
        raise ValueError(f"{run.path}: no analysed checkpoint; run `mbc analyze {run.path}`")
    summary = summarize(run, table)
    scores = head_rows(z_use_table(table))
    moments = key_steps(summary, sorted(int(s) for s in table["step"].unique()))
    views = intact_moments(run, moments)
    heads = _heads_routing_first(scores, summary)
    return [
        Section("Summary", text=headline(summary), table=summary_table(summary)),
        _guarded("Loss", lambda: Section(
            "Loss",
            text="Eval loss and the candidate-normalised loss (renormalised over the K targets "
            "of each B: log K exactly while z is ignored) with the transition times. The shaded "
            "band is the routing head's lead: its z-use leaves its noise floor before the drop.",
            figures=[loss_curve(run.metrics, summary, x=x)],
        )),
        _guarded("Hidden progress", lambda: Section(
            "Hidden progress",
            text="Δz, the loss with z replaced by another selector of the same B minus the "
            "clean loss, on a log axis with its noise floor, and the routing heads' z-use: "
            "both grow on the plateau, long before the loss moves.",
            figures=[hidden_progress(run.metrics, summary, scores, x=x)],
        )),
        _guarded("Forecast of the drop", lambda: forecast_section(run, summary)),
        _guarded("Heads over training", lambda: Section(
            "Heads over training",
            text="Per head: its z-use (the raw effect of patching its clean output into the "
            "corrupt run, and its direct effect on logit(clean answer) - logit(corrupt answer)), "
            "its attention from the answer position to z, and its attention to the previous "
            "position elsewhere: a generic previous-token head attends to z whenever z sits "
            "right before the answer position. The heatmaps show every head at one checkpoint; "
            "move the slider through training.",
            figures=[head_timelines(scores, summary, x=x), head_heatmaps(scores)],
        )),
        _guarded("Residual-stream patching", lambda: Section(
            "Residual-stream patching",
            text="Patching the clean residual stream (before each block, at each position) "
            "into the corrupt run, at three moments. While the model ignores z no patch moves "
            "the answer; once it reads z, the heatmap shows where the information about z "
            "travels: from the z position, through the layers, to SEP.",
            figures=[patching_heatmaps(table, _detail_moments(table, summary))],
        )),
        _guarded("Logit lens", lambda: Section(
            "Logit lens",
            text="The residual stream after the embedding and after each block, read through "
            "the final LayerNorm and the unembedding: probability on the correct target "
            "(conditional) and on the K candidates of the example's B (marginal).",
            figures=[logit_lens_heatmap(table, summary, x=x)],
        )),
        _guarded("Attention before, on and after the plateau", lambda: Section(
            "Attention before, on and after the plateau",
            text=f"circuitsvis attention patterns of example {example}: "
            f"{', '.join(f'{k} (step {v:,})' for k, v in views.items())}. Tokens: b = base "
            "symbol, z = selector, SEP = answer position, a = target. Hover a head to enlarge "
            "it; the routing head comes first." + _substituted(moments, views),
            blocks=[attention_views(run, views, example=example, heads=heads)],
        )),
        *_kind_sections(run, table, summary),
        Section("Run", table=run_table(run, table)),
    ]  # fmt: skip


def forecast_section(run: Run, summary: dict[str, Any]) -> Section:
    """The forecast ``mbc forecast`` gives now, and the one it would have given at every
    evaluation (calibrated on the other runs of the run's sweep, if any)."""
    refs, _ = sweep_references(run.path, None)
    m = run.metrics
    now = forecast_run(run, references=refs, metrics=m)
    path = forecast_path(m, run.log_k, references=refs)
    calib = (f"calibrated on {len(refs)} other runs of its sweep" if refs
             else "no reference runs: the extrapolation of Δz alone")  # fmt: skip
    return Section(
        "Forecast of the drop",
        text=f"Now: {now.describe()}. Each point is the forecast of t_loss that `mbc forecast` "
        f"(and the progress line of `mbc train`) would have shown at that step, from the "
        f"evaluations up to it only ({calib}); the band is its 80% interval.",
        figures=[forecast_path_figure(path, t_loss=summary.get("t_loss"),
                                      t_plateau_start=summary.get("t_plateau_start"))],
    )  # fmt: skip


def _kind_sections(run: Run, table: pd.DataFrame, summary: dict[str, Any]) -> list[Section]:
    """The report section of every extra kind (:mod:`mbc_interp.analysis.registry`) whose rows
    the timeline has (``mbc analyze --kinds ...`` computed them)."""
    out = []
    for kind in extra_kinds().values():
        if kind.report is None or not (table.analysis == kind.name).any():
            continue
        build = kind.report_function()
        section = _guarded(kind.title or kind.name, lambda b=build: b(run, table, summary))
        if section is not None:
            out.append(section)
    return out


def write_run_report(
    run: Run, out: str | Path | None = None, *, example: int = 0, x: XAxis = "step"
) -> Path:
    """Write the run's report (default ``RUN/report.html``); returns its path."""
    path = Path(out) if out is not None else run.path / REPORT_FILE
    c = run.config
    task = entry(run.task.name)
    return write_html_report(
        path,
        f"{task.title or task.name}: {run.path.name}",
        run_report(run, example=example, x=x),
        subtitle=f"{run.path} | {c.task.describe()}, {c.model.n_layers} layers x "
        f"{c.model.n_heads} heads, lr {c.train.lr:g}, seed {c.train.seed} | status {run.status}",
        footer=f"mbc_interp {run.versions.get('mbc_interp', '')}.",
    )


def _loss_report(run: Run, x: XAxis) -> list[Section]:
    """A run whose task declares no analysis and no hidden-progress signal: its loss."""
    summary = summarize(run, load_timeline(run).iloc[0:0])
    if summary.get("log_k") is not None:
        loss = loss_curve(run.metrics, summary, x=x)
    else:
        tr = run.task.transition
        loss = metric_curves(run.metrics, summary, {"loss": "loss", tr.metric: tr.metric}, x=x)
    return [
        Section("Summary", text="Its task declares no analysis and no hidden-progress signal "
                "(a forward-direction run, A SEP B, has no selector to route), so the report is "
                "its loss, with the task's resting level as the reference line where it has one.",
                table=summary_table(summary)),
        Section("Loss", figures=[loss]),
        Section("Run", table=run_table(run, load_timeline(run))),
    ]  # fmt: skip


def headline(summary: dict[str, Any]) -> str:
    """One sentence: when the routing head formed relative to the loss drop."""
    head, route, drop = summary.get("routing_head"), summary.get("t_route"), summary.get("t_loss")
    tz = summary.get("t_z")
    if summary.get("status") != "transitioned" or None in (head, route, drop):
        reason = summary.get("routing_reason") or summary.get("reason") or ""
        return f"Status: {summary.get('status')}. {reason}".strip()
    z = (
        ""
        if tz is None
        else f"Δz leaves its noise floor at step {tz:,.0f} ({summary['z_phase']}). "
    )
    lead = summary.get("lead_fraction")
    where = (
        f"a lead of {lead:.0%} of the plateau"
        if lead is not None
        else f"not a lead: {summary.get('route_phase', '').replace('_', ' ')}"
    )
    return (
        f"{z}The routing head {head}'s z-use leaves its noise floor at step {route:,.0f}, "
        f"{drop - route:,.0f} steps before the loss drops at step {drop:,.0f}: {where}. "
        f"Circuit: {', '.join(summary.get('routing_heads') or [])}."
    )  # fmt: skip


def summary_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The transition summary as rows of (quantity, step, tokens seen, meaning)."""
    tokens = summary.get("tokens", {})

    def row(name: str, value: Any, meaning: str, tok: Any = "") -> dict[str, Any]:
        return {"quantity": name, "value (times: step)": value, "tokens seen": tok,
                "meaning": meaning}  # fmt: skip

    rows = [
        row("status", summary.get("status"), summary.get("reason") or ""),
        row("log K", _f(summary.get("log_k")), "the marginal baseline (nats / example)"),
        row("plateau loss", _f(summary.get("plateau_loss")), "median loss on the plateau"),
    ]
    for key, meaning in _TIMES:
        rows.append(row(key, _t(summary.get(key)), meaning, _t(tokens.get(key))))
    rows += [
        row("transition signal", summary.get("transition_signal"),
            "the curve the loss times are read from (loss, or cand_loss when the raw loss "
            "never rests at log K)"),
        row("Δz doubling", _t(summary.get("z_doubling_steps")),
            "doubling time of Δz from t_z to t_loss (steps)", _t(summary.get("z_doubling_tokens"))),
        row("lead_fraction", _f(summary.get("lead_fraction")),
            "(t_loss - t_route) / (t_loss - t_plateau_start); null when t_route is not on the "
            f"plateau ({summary.get('route_phase') or 'no onset'})"),
        row("lead_fraction_z", _f(summary.get("lead_fraction_z")),
            f"the same with t_z ({summary.get('z_phase') or 'no onset'})"),
        row("routing head", summary.get("routing_head"), summary.get("routing_reason")
            or "largest patching effect averaged over the plateau to the drop"),
        row("circuit", ", ".join(summary.get("routing_heads") or []),
            "heads >= 0.5 x the top score"),
        row("top head at the end", summary.get("routing_head_final"),
            "largest patching effect at the last analysed checkpoint"),
    ]  # fmt: skip
    return pd.DataFrame(rows)


def run_table(run: Run, table: pd.DataFrame) -> pd.DataFrame:
    """Task, model, training and analysis facts of the run, as (field, value) rows."""
    c, m = run.config, run.metrics
    facts = {
        "task": repr(run.task),
        "model": f"{c.model.n_layers} layers, d_model {c.model.d_model}, {c.model.n_heads} heads, "
        f"d_mlp {c.model.d_mlp}",
        "training": f"lr {c.train.lr:g}, batch {c.train.batch_size}, seed {c.train.seed}, "
        f"{c.tokens_per_step} tokens / step",
        "status": f"{run.status} ({run.manifest.stop_reason or '-'})",
        "checkpoints": f"{len(run.steps)} (analysed: {table['step'].nunique()})",
        "last evaluation": f"step {int(m['step'].iloc[-1]):,}, loss {m['loss'].iloc[-1]:.4f}"
        if len(m) else "none",
        "versions": ", ".join(f"{k} {v}" for k, v in run.versions.items() if v),
    }  # fmt: skip
    return pd.DataFrame({"field": list(facts), "value": list(facts.values())})


def _detail_moments(table: pd.DataFrame, summary: dict[str, Any]) -> dict[str, int]:
    """The key moments among the checkpoints that have resid_pre patching (``detail_every``
    can leave it out of some)."""
    rows = table[(table["analysis"] == "patching") & (table["kind"] == "resid_pre")]
    if rows.empty:
        raise ValueError("no resid_pre patching rows (is 'resid_pre' in patch_kinds?)")
    return key_steps(summary, sorted(int(s) for s in rows["step"].unique()))


def intact_moments(run: Run, moments: Mapping[str, int]) -> dict[str, int]:
    """``moments`` with each checkpoint whose weights are damaged or missing (checked against
    the manifest's sha256) replaced by the nearest intact one not shown already, with a
    :class:`~mbc_interp.store.integrity.DamagedCheckpointWarning` naming both; a moment with no
    intact checkpoint left is dropped. The attention views load these checkpoints."""
    entries = {c.step: c for c in run.checkpoints}
    bad: set[int] = set()
    out: dict[str, int] = {}
    for label, step in moments.items():
        for s in sorted(entries, key=lambda s: (abs(s - step), s)):
            if s in bad or s in out.values():
                continue
            problems = [p for p in check_entry(run.store, entries[s]) if p.kind == "weights"]
            if not problems:
                out[label] = s
                break
            bad.add(s)
            warnings.warn(f"{problems[0].describe(run.path)}; skipped", DamagedCheckpointWarning,
                          stacklevel=2)  # fmt: skip
        if out.get(label, step) != step:
            note = f"the attention view {label!r} shows step {out[label]} instead of the damaged "
            warnings.warn(f"{note}step {step}", DamagedCheckpointWarning, stacklevel=2)
    return out


def _substituted(moments: Mapping[str, int], views: Mapping[str, int]) -> str:
    changed = [f"{k}: step {views[k]:,} instead of {v:,}" for k, v in moments.items()
               if views.get(k) != v and k in views]  # fmt: skip
    gone = [k for k in moments if k not in views]
    notes = ([f"Damaged checkpoints replaced by the nearest intact ones ({'; '.join(changed)})."]
             if changed else []) + ([f"No intact checkpoint for: {', '.join(gone)}."] if gone
                                    else [])  # fmt: skip
    return "".join(" " + n for n in notes)


def _heads_routing_first(scores: pd.DataFrame, summary: dict[str, Any]) -> list[str]:
    heads = sorted(scores["component"].unique(), key=parse_head_label)
    first = [h for h in [summary.get("routing_head"), *(summary.get("routing_heads") or [])] if h]
    return list(dict.fromkeys([*first, *heads]))


def _guarded(heading: str, build: Callable[[], Section | None]) -> Section | None:
    try:
        return build()
    except (ValueError, KeyError) as e:
        return Section(heading, text=f"Not available for this run: {e}")


def _f(v: float | None) -> str | None:
    return None if v is None else f"{v:.4f}"


def _t(v: float | None) -> str | None:
    return None if v is None else f"{v:,.0f}"
