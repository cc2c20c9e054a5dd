"""Marginal before conditional, over a sweep: does the model learn P(A|B) before it reads z?

Per run, the two stages are timed with matched criteria and each run's order is called by the
rules of :mod:`mbc_interp.analysis.timing.stages` (``order_seq``/``order_first``: the lead
against its sampling error). Over runs (rules fixed on 2026-12-07, when 3 runs at
N >= :data:`REGIME_N` had finished and before the sweep's other runs there):

- **Relative lead**, per run and version (``seq``: whole sequences, ``first``: first tokens):
  ``marginal_lead / t_conditional``, the conditional's lag behind the marginal as a share of
  its own time (> 0: the marginal first), so runs of different sizes pool.
- **Answer in the paper's regime**: over the runs with N >= :data:`REGIME_N` (where drops come
  well after the warm-up), a 95% Student t interval of the mean relative lead. The order is

  - *together* when the interval lies within +-:data:`TOGETHER` (neither leads by more than
    5% of the conditional's time, whatever the sign);
  - *marginal first* when it lies above 0, *conditional first* when below 0;
  - *underpowered* otherwise, or with fewer than :data:`~mbc_interp.sweep.intervals.MIN_SEEDS`
    runs (the order the interval would give is kept beside it).

  The paper's claim (claim 8) is *reproduced* when the order is *marginal first*, *not
  reproduced* when it is *together* or *conditional first*, and else *underpowered*.
- **Counts**: how many runs put each order, over every size and over the regime.

Families are kept apart: the claim is judged on the reference family's runs (any N, K, lr and
batch, everything else at the sweep's reference point, :func:`main_runs`); each other family
(the follow-up's variant, the warm-up arm) gets the same reading of its own runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.store.sweep_runs import main_runs
from mbc_interp.sweep.intervals import MIN_SEEDS, mean_ci

REGIME_N = 10_000
"""The smallest number of examples counted as the paper's regime."""
TOGETHER = 0.05
"""The relative lead within which the two stages count as arriving together."""
ORDERS = ("marginal_first", "together", "conditional_first")
VERSIONS = {"seq": "whole sequences", "first": "first tokens"}
FAMILY_COLUMNS = ("selectors", "distinct_first", "warmup_steps")
"""Task and schedule axes that make a different family of runs."""


def relative_leads(runs: pd.DataFrame, version: str) -> pd.Series:
    """Each run's ``marginal_lead / t_conditional`` (NaN where either is missing)."""
    lead, t = (_numeric(runs, f"{c}_{version}") for c in ("marginal_lead", "t_conditional"))
    return lead / t.where(t > 0)


def _numeric(runs: pd.DataFrame, col: str) -> pd.Series:
    """A column as numbers; all NaN where the table has no such column (an untimed table)."""
    if col not in runs:
        return pd.Series(np.nan, index=runs.index, dtype=float)
    return pd.to_numeric(runs[col], errors="coerce")


def lead_points(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run and version with both times: ``name, n_examples, version, relative_lead,
    relative_lead_se`` (the lead's sampling error over the conditional's time): what the order
    figure draws."""
    frames = []
    for v in VERSIONS:
        rel = relative_leads(runs, v)
        se, t = (_numeric(runs, c) for c in (f"marginal_lead_{v}_se", f"t_conditional_{v}"))
        frame = pd.DataFrame({"name": runs.name, "n_examples": runs.n_examples, "version": v,
                              "relative_lead": rel, "relative_lead_se": se / t})  # fmt: skip
        frames.append(frame.dropna(subset=["relative_lead"]))
    return pd.concat(frames, ignore_index=True)


def order_of(ci: tuple[float, float]) -> str:
    """The order an interval of the mean relative lead gives (the module's rule)."""
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "underpowered"
    if lo >= -TOGETHER and hi <= TOGETHER:
        return "together"
    if lo > 0:
        return "marginal_first"
    if hi < 0:
        return "conditional_first"
    return "underpowered"


def counts_by_order(runs: pd.DataFrame, version: str) -> dict[str, int]:
    """How many of ``runs`` each order has on ``version``, and ``n``: the runs with an order."""
    col = runs.get(f"order_{version}", pd.Series(dtype=object))
    return {o: int((col == o).sum()) for o in ORDERS} | {"n": int(col.notna().sum())}


def _version(runs: pd.DataFrame, version: str) -> dict[str, Any]:
    regime = runs[runs.n_examples >= REGIME_N]
    rel = relative_leads(regime, version).dropna()
    res: dict[str, Any] = {
        "counts": counts_by_order(runs, version),
        "regime_counts": counts_by_order(regime, version),
        "n_runs": len(rel),
    }
    if len(rel) == 0:
        return {
            **res,
            "order": "not tested",
            "verdict": "not tested",
            "why": f"no run at N >= {REGIME_N:,} with both times",
        }
    m = mean_ci(rel.to_numpy(float))
    res["relative_lead"] = asdict(m)
    order = order_of(m.ci)
    if len(rel) < MIN_SEEDS:
        res.update(
            order="underpowered",
            order_by_interval=order,
            why=f"{len(rel)} run(s), fewer than the {MIN_SEEDS} a verdict needs",
        )
    else:
        res["order"] = order
    res["verdict"] = {
        "marginal_first": "reproduced",
        "together": "not reproduced",
        "conditional_first": "not reproduced",
    }.get(res["order"], "underpowered")
    return res


def order_claim(runs: pd.DataFrame) -> dict[str, Any]:
    """Claim 8 over ``runs`` (finished runs of one family, with the stage columns): per version,
    the counts, the relative lead in the regime with its interval, the order and the verdict;
    the sizes the runs cover."""
    if "order_seq" not in runs or runs["order_seq"].isna().all():
        return {"verdict": "not tested", "why": "no run has the matched stage times"}
    timed = runs[runs.order_seq.notna() | runs.get("order_first", runs.order_seq).notna()]
    sizes = sorted(int(n) for n in timed.n_examples.unique())
    largest = int((timed.n_examples == sizes[-1]).sum())
    out: dict[str, Any] = {
        "sizes": sizes,
        "n_runs": len(timed),
        "runs_at_largest": largest,
        "regime_n": REGIME_N,
        "together": TOGETHER,
    }
    out.update({v: _version(timed, v) for v in VERSIONS})
    return out


def order_verdicts(table: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """Claim 8 on the reference family, and the same reading of every other family of finished
    runs (keyed ``"selectors=per_base, distinct_first=True"``...)."""
    out = {"reference": order_claim(main_runs(table, ref))}
    cols = [c for c in FAMILY_COLUMNS if c in table and c in ref]
    done = table[table.point_status == "done"]
    for values, _ in done.groupby(cols) if cols else []:
        values = values if isinstance(values, tuple) else (values,)
        family = dict(zip(cols, values, strict=True))
        if all(ref[c] == v for c, v in family.items()):  # (groupby leaves NaN groups out)
            continue
        key = ", ".join(f"{c}={v}" for c, v in family.items() if ref[c] != v)
        out[key] = order_claim(main_runs(table, {**ref, **family}))
    return out

