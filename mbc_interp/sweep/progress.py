"""Hidden progress over a sweep of any task: when each of the task's progress signals leaves
its noise floor, against the task's transition, run by run and per level of the swept axis.

The per-run times are the summary's under the current rules
(:mod:`mbc_interp.analysis.timing.signals`:
the transition's plateau start and drop, each signal's onset, phase and lead fraction),
recomputed from each run's metrics and analysis timeline.

Verdict for a signal at a level ("the signal moves before the transition", fixed before the
sweeps it reads were run): with ``n`` runs that transitioned,

- *leads*: at least :data:`~mbc_interp.sweep.intervals.MIN_SEEDS` of them have an onset on
  the plateau, they are more than half of ``n``, and the 95% t interval of their mean lead
  fraction lies above 0;
- *does not lead*: more than half of the ``n`` runs have no onset on the plateau (after the drop,
  or never);
- *underpowered* otherwise (too few runs, or an interval that reaches 0).

Runs that never transitioned are counted (``no_transition``) and left out of the verdicts.

Where the runs were analysed with ``--kinds groups`` (the task's groups: modular addition's
answers), the collective verdict of :mod:`mbc_interp.sweep.circuit` is given over all of them.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.store.run import load_run
from mbc_interp.sweep.circuit import collective_verdict, halfway_verdict
from mbc_interp.sweep.intervals import MIN_SEEDS, mean_ci
from mbc_interp.sweep.results import current_summary
from mbc_interp.sweep.runner import done_points

TIMES = ("t_plateau_start", "t_loss", "t_solved")
GROUP_FIELDS = ("collective_score", "collective", "solved_at_half", "n_groups", "n_solved_groups",
                "halfway_score", "halfway", "n_halfway_groups")
"""A run's groups summary (``--kinds groups``) in its row; None where not analysed."""


def progress_row(run_dir: str | Path) -> dict[str, Any]:
    """One run's transition times and every progress signal's onset, phase and lead."""
    run = load_run(run_dir)
    s = current_summary(run)
    row: dict[str, Any] = {
        "task": run.task.name, **run.config.task.to_dict(), "seed": run.config.train.seed,
        "status": s.get("status"), "transition_signal": s.get("transition_signal"),
        "loss_scale": s.get("loss_scale"), **{t: s.get(t) for t in TIMES},
        "steps_run": int(run.metrics.step.iloc[-1]), "primary": s.get("progress_signal"),
    }  # fmt: skip
    groups = s.get("groups") or {}
    row.update({k: groups.get(k) for k in GROUP_FIELDS})
    for name, p in (s.get("progress") or {}).items():
        row[f"t_{name}"] = p.get("t")
        row[f"phase_{name}"] = p.get("phase")
        row[f"lead_{name}"] = p.get("lead_fraction")
        row[f"reason_{name}"] = p.get("reason")
    return row


def collect_progress(sweep: str | Path) -> pd.DataFrame:
    """One row per finished point of a sweep (:func:`progress_row`), with its name and grid."""
    rows = []
    for point, run_dir in done_points(sweep):
        rows.append({"name": point["name"], "labels": "+".join(point.get("labels") or []),
                     **progress_row(run_dir)})  # fmt: skip
    if not rows:
        raise ValueError(f"{sweep}: no finished points yet (see `mbc sweep --status`)")
    return pd.DataFrame(rows)


def signals_of(table: pd.DataFrame) -> list[str]:
    """The progress signals with columns in ``table``, in the order they appear."""
    return [c[len("phase_"):] for c in table.columns if c.startswith("phase_")]


def swept_axis(table: pd.DataFrame) -> str | None:
    """The one task field that differs between runs (None when none does)."""
    fixed = {"name", "labels", "seed", "status", "primary", "steps_run", "transition_signal",
             *GROUP_FIELDS}
    skip = fixed | {c for c in table.columns if c.startswith(("t_", "phase_", "lead_", "reason_"))}
    varying = [c for c in table.columns
               if c not in skip and c not in TIMES and c != "loss_scale"
               and table[c].astype(str).nunique() > 1]  # fmt: skip
    return varying[0] if varying else None


def _mean(values: pd.Series) -> dict[str, Any] | None:
    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    return asdict(mean_ci(v)) if np.isfinite(v).any() else None


def signal_verdict(rows: pd.DataFrame, signal: str) -> dict[str, Any]:
    """The module's verdict for ``signal`` over ``rows`` (one level's runs)."""
    done = rows[rows.status == "transitioned"]
    n = len(done)
    phases = done[f"phase_{signal}"].fillna("none").value_counts().to_dict()
    on = done[done[f"phase_{signal}"] == "plateau"]
    leads = on[f"lead_{signal}"].to_numpy(float)
    leads = leads[np.isfinite(leads)]
    out: dict[str, Any] = {"n_transitioned": n, "n_runs": len(rows),
                           "phases": {str(k): int(v) for k, v in phases.items()},
                           "lead": asdict(mean_ci(leads)) if len(leads) else None}  # fmt: skip
    if n and 2 * (n - len(leads)) > n:
        out["verdict"] = "does not lead"
    elif len(leads) >= MIN_SEEDS and 2 * len(leads) > n and out["lead"]["ci"][0] > 0:
        out["verdict"] = "leads"
    else:
        out["verdict"] = "underpowered"
    return out


def progress_verdicts(table: pd.DataFrame) -> dict[str, Any]:
    """Per level of the swept axis (one level when nothing varies) and signal, the verdict;
    the levels' transition times beside them."""
    axis = swept_axis(table)
    groups = table.groupby(axis, sort=True) if axis else [("all", table)]
    levels = {}
    for level, rows in groups:
        done = rows[rows.status == "transitioned"]
        levels[f"{level}"] = {
            "n_runs": len(rows), "n_transitioned": len(done),
            "times": {t: _mean(done[t]) for t in TIMES},
            "signals": {s: signal_verdict(rows, s) for s in signals_of(table)},
        }  # fmt: skip
    return {"axis": axis, "n_runs": len(table), "levels": levels,
            "collective": collective_verdict(table),
            "collective_halfway": halfway_verdict(table),
            "primary": str(table.primary.dropna().iloc[0]) if table.primary.notna().any()
            else None}  # fmt: skip
