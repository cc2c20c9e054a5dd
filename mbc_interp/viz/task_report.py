"""The report of a run of any task but the wind tunnel: its transition, its hidden-progress
signals against it, and the sections of the analysis kinds it ran; read through the task
protocol only (the wind tunnel's own report, with its routing heads, is
:mod:`mbc_interp.viz.run_report`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mbc_interp.analysis.timing.signals import signal_series
from mbc_interp.analysis.timing.summary import summarize
from mbc_interp.viz.progress_figures import metric_curves, progress_curves
from mbc_interp.viz.report import Section


def task_report(run: Any, table: pd.DataFrame, kind_sections: list[Section],
                run_section: Section, x: str = "step") -> list[Section]:  # fmt: skip
    """The sections: summary, transition, hidden progress, the kinds' own, the run."""
    summary = summarize(run, table)
    task = run.task
    tr = task.transition
    series = {s.name: signal_series(s, run.metrics, table) for s in task.progress_signals}
    columns = {"loss": "training loss (evaluated)", tr.metric: f"{tr.metric} (the transition)",
               "train_loss": "training loss (batches)"}  # fmt: skip
    return [
        Section("Summary", text=task_headline(summary), table=progress_table(summary)),
        Section(
            "Transition",
            text=f"The transition is the drop of {tr.metric} (scale {tr.scale:.4f} nats: its "
            f"chance level). The plateau starts where {tr.rest_from or 'the loss'} is first held "
            "solved; t_loss is the held crossing of half the scale after it.",
            figures=[metric_curves(run.metrics, summary, columns, x=x)],  # type: ignore[arg-type]
        ),
        Section(
            "Hidden progress",
            text="Each hidden-progress signal the task declares, with its onset (diamond) by "
            "the rules of mbc_interp.analysis.timing.signals, against the transition times. "
            + " ".join(f"{s.name}: {s.description}." for s in task.progress_signals),
            figures=[progress_curves(series, summary, x=x)],  # type: ignore[arg-type]
        ),
        *kind_sections,
        run_section,
    ]


def task_headline(summary: dict[str, Any]) -> str:
    """One paragraph: the transition and when the primary signal moved relative to it."""
    if summary.get("t_loss") is None:
        return f"Status: {summary.get('status')}. {summary.get('reason', '')}".strip()
    text = (f"{summary['transition_signal']} drops at step {summary['t_loss']:,.0f} "
            f"(plateau from step {summary['t_plateau_start']:,.0f}).")  # fmt: skip
    name, t = summary.get("progress_signal"), summary.get("t_progress")
    if name is None:
        return text
    if t is None:
        return f"{text} {name}: no onset ({summary.get('t_progress_reason')})."
    lead = (summary.get("progress", {}).get(name) or {}).get("lead_fraction")
    where = f"a lead of {lead:.0%} of the plateau" if lead is not None else "not on the plateau"
    return (f"{text} {name} leaves its noise floor at step {t:,.0f}, "
            f"{summary['t_loss'] - t:,.0f} steps before the drop: {where}.")  # fmt: skip


def progress_table(summary: dict[str, Any]) -> pd.DataFrame:
    """Rows of (quantity, step, phase, lead fraction, rule or reason)."""
    rows = [{"quantity": k, "step": summary.get(k), "phase": "", "lead fraction": None,
             "rule or reason": summary.get("reason", "") if k == "t_loss" else ""}
            for k in ("t_plateau_start", "t_loss", "t_solved")]  # fmt: skip
    for name, r in (summary.get("progress") or {}).items():
        rows.append({"quantity": f"onset of {name}", "step": r.get("t"),
                     "phase": r.get("phase") or "", "lead fraction": r.get("lead_fraction"),
                     "rule or reason": r.get("reason", "")})  # fmt: skip
    return pd.DataFrame(rows)
