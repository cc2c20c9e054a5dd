"""The report of one run: the summary table, every figure, attention at three moments.

:func:`run_report` turns an analysed run into :class:`~mbc_interp.viz.report.Section` s;
:func:`write_run_report` writes them to ``RUN/report.html``. Every number comes from the run's
files (metrics, ``RUN/analysis/``); the only models loaded are the three checkpoints whose
attention is shown. A part whose data was not computed (say ``resid_pre`` left out of
``patch_kinds``) becomes a note saying so instead of failing the whole report.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from mbc_interp.analysis.moments import key_steps
from mbc_interp.analysis.summary import routing_scores, summarize
from mbc_interp.analysis.timeline import load_timeline
from mbc_interp.run import Run
from mbc_interp.viz.attention import attention_views
from mbc_interp.viz.figures import (
    XAxis,
    head_heatmaps,
    head_rows,
    head_timelines,
    logit_lens_heatmap,
    loss_curve,
    patching_heatmaps,
)
from mbc_interp.viz.report import Section, write_html_report

REPORT_FILE = "report.html"
_TIMES = (
    ("t_plateau_start", "first step of >= 3 evaluations within 5% of log K"),
    ("t_route", "onset of the routing head's attention to z"),
    ("t_route_patch", "onset of its patching effect (logits)"),
    ("t_circuit", "onset of the circuit's mean attention to z"),
    ("t_circuit_patch", "onset of the circuit's summed patching effect"),
    ("t_loss", "loss below 0.5 log K (held, interpolated)"),
    ("t_solved", "loss below 0.05 log K (held, interpolated)"),
)


def run_report(run: Run, *, example: int = 0, x: XAxis = "step") -> list[Section]:
    """The sections of a run's report; the run must have analysed checkpoints (a forward run,
    which has no selector to route, gets its loss curve only)."""
    table = load_timeline(run)
    if not run.config.task.has_selector:
        return _forward_report(run, x)
    if table.empty:
        raise ValueError(f"{run.path}: no analysed checkpoint; run `mbc analyze {run.path}`")
    summary = summarize(run, table)
    scores = head_rows(routing_scores(table))
    moments = key_steps(summary, sorted(int(s) for s in table["step"].unique()))
    heads = _heads_routing_first(scores, summary)
    return [
        Section("Summary", text=headline(summary), table=summary_table(summary)),
        _guarded("Loss and routing", lambda: Section(
            "Loss and routing",
            text="Eval loss with the log K line and the transition times; every head's "
            "attention from SEP to the selector z on the right axis (the routing head in thick "
            "red). The shaded band is the lead: the routing head reads z before the loss drops.",
            figures=[loss_curve(run.metrics, summary, scores, x=x)],
        )),
        _guarded("Heads over training", lambda: Section(
            "Heads over training",
            text="Per head: attention from SEP to z, and how much patching the head's clean "
            "output into the corrupt run restores of the clean answer (logit(clean answer) - "
            "logit(corrupt answer), raw, in logits). The heatmaps show every head at one "
            "checkpoint; move the slider through training.",
            figures=[head_timelines(scores, summary, x=x), head_heatmaps(scores)],
        )),
        _guarded("Residual-stream patching", lambda: Section(
            "Residual-stream patching",
            text="Patching the clean residual stream (before each block, at each position) "
            "into the corrupt run, at three moments. While the model ignores z no patch moves "
            "the answer; once it reads z, the heatmap shows where the information about z "
            "travels: from the z position, through the layers, to SEP.",
            figures=[patching_heatmaps(table, moments)],
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
            f"{', '.join(f'{k} (step {v:,})' for k, v in moments.items())}. Tokens: b = base "
            "symbol, z = selector, SEP = answer position, a = target. Hover a head to enlarge "
            "it; the routing head comes first.",
            blocks=[attention_views(run, moments, example=example, heads=heads)],
        )),
        Section("Run", table=run_table(run, table)),
    ]  # fmt: skip


def write_run_report(
    run: Run, out: str | Path | None = None, *, example: int = 0, x: XAxis = "step"
) -> Path:
    """Write the run's report (default ``RUN/report.html``); returns its path."""
    path = Path(out) if out is not None else run.path / REPORT_FILE
    c = run.config
    return write_html_report(
        path,
        f"Marginals before conditionals: {run.path.name}",
        run_report(run, example=example, x=x),
        subtitle=f"{run.path} | D={c.task.D}, K={c.task.K}, {c.model.n_layers} layers x "
        f"{c.model.n_heads} heads, lr {c.train.lr:g}, seed {c.train.seed} | status {run.status}",
        footer=f"mbc_interp {run.versions.get('mbc_interp', '')}.",
    )


def _forward_report(run: Run, x: XAxis) -> list[Section]:
    summary = summarize(run, load_timeline(run).iloc[0:0])
    return [
        Section("Summary", text="A forward-direction run (A SEP B): there is no selector, so no "
                "routing analysis; log K is drawn as the shared reference line.",
                table=summary_table(summary)),
        Section("Loss", figures=[loss_curve(run.metrics, summary, x=x)]),
        Section("Run", table=run_table(run, load_timeline(run))),
    ]  # fmt: skip


def headline(summary: dict[str, Any]) -> str:
    """One sentence: when the routing head formed relative to the loss drop."""
    head, route, drop = summary.get("routing_head"), summary.get("t_route"), summary.get("t_loss")
    lead = summary.get("lead_fraction")
    if summary.get("status") != "transitioned" or None in (head, route, drop, lead):
        reason = summary.get("routing_reason") or summary.get("reason") or ""
        return f"Status: {summary.get('status')}. {reason}".strip()
    return (
        f"The routing head {head} starts reading z at step {route:,.0f}, "
        f"{drop - route:,.0f} steps before the loss drops at step {drop:,.0f}: a lead of "
        f"{lead:.0%} of the plateau. Circuit: {', '.join(summary.get('routing_heads') or [])}."
    )


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
        row("lead_fraction", _f(summary.get("lead_fraction")),
            "(t_loss - t_route) / (t_loss - t_plateau_start)"),
        row("lead_fraction_patch", _f(summary.get("lead_fraction_patch")),
            "the same with t_route_patch"),
        row("routing head", summary.get("routing_head"), summary.get("routing_reason")
            or "largest attention-to-z x patching share at the last checkpoint"),
        row("circuit", ", ".join(summary.get("routing_heads") or []),
            "heads >= 0.5 x the top score"),
    ]  # fmt: skip
    for stage, t in (summary.get("t_lens") or {}).items():
        rows.append(row(f"t_lens {stage}", _t(t), "logit-lens P(correct) onset after this stage",
                        _t((tokens.get("t_lens") or {}).get(stage))))  # fmt: skip
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


def _heads_routing_first(scores: pd.DataFrame, summary: dict[str, Any]) -> list[str]:
    heads = sorted(scores["component"].unique(), key=lambda h: tuple(map(int, h[1:].split("H"))))
    first = [h for h in [summary.get("routing_head"), *(summary.get("routing_heads") or [])] if h]
    return list(dict.fromkeys([*first, *heads]))


def _guarded(heading: str, build: Callable[[], Section]) -> Section:
    try:
        return build()
    except (ValueError, KeyError) as e:
        return Section(heading, text=f"Not available for this run: {e}")


def _f(v: float | None) -> str | None:
    return None if v is None else f"{v:.4f}"


def _t(v: float | None) -> str | None:
    return None if v is None else f"{v:,.0f}"
