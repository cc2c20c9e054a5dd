"""Scaling fits and comparisons over a sweep's run table, with intervals that hold at few seeds.

Every comparison holds the other axes at the sweep's *reference point* (the most common value
of each axis among its backward runs; ties to the value in the most grids) and varies one: D,
K, lr or batch. Durations are plateau waiting times in tokens seen (see
:mod:`mbc_interp.sweep.results`); runs that never dropped (right-censored) are left out and
counted.

Intervals are 95% Student t intervals on the log scale, whose coverage holds at the number of
seeds used (checked by simulation at 3 and 4 seeds per level in the tests); a percentile
bootstrap within levels of 2-4 seeds does not:

- a power law's exponent: least squares over every run, its interval from the fit to the
  levels' mean log duration (L - 2 degrees of freedom, so curvature widens it; with 2 levels,
  from the within-level spread, Welch);
- a ratio between two levels: of geometric means, Welch t on the log durations;
- a mean (the lead fraction): t with n - 1 degrees of freedom;
- the K exponent at a fixed number of examples: ordinary least squares over runs.

An interval is unbounded where no spread can be measured (one run on a side).

Verdicts follow fixed rules, written down before looking at the numbers (never tuned). A claim
is *underpowered* when its interval contains both the paper's value and the null, rather than a
verdict the data cannot carry:

1. plateau height: *reproduced* if every run's plateau loss is within 2% of log K.
   (Claims 1 and 5 use every run of the reference task family, any D, K, lr, batch.)
2. D: *reproduced* if the exponent's CI contains 1.19 and excludes 0; *underpowered* if it
   contains both; *partly* if it is above 0 but excludes 1.19; else *not reproduced*.
   K: the paper's value is 0 (no dependence) and the alternative a dependence as strong as
   half the paper's D exponent (|b| = 0.6): *reproduced* if the CI contains 0 and excludes
   both +-0.6; *underpowered* if it contains 0 and one of them; else *not reproduced*.
3. lr: ratio of durations (tokens) at the largest vs the smallest lr: *reproduced* if its CI
   contains the paper's 3.6, excludes 1 and the means grow with lr; *underpowered* if it
   contains both 3.6 and 1; *partly* if it is above 1 but excludes 3.6; else *not reproduced*.
4. batch: ratio of durations (tokens), smallest over largest batch: *reproduced* if its CI is
   above 1; *underpowered* if it contains 1 and a 1.5x delay; else *not reproduced*.
2c. K in the paper's units (D there is the total number of examples N): the K exponent ``b``
   of ``log duration = c + a log N + b log K`` on the size and K slices pooled, judged as K.
5. lead: mean lead fraction of the routing head's z-use onset (its patching effect leaving its
   noise floor, see :mod:`mbc_interp.analysis.timing.summary`): *reproduced* if its CI contains 0.5
   and excludes 0; *underpowered* if it contains both; *partly* if the CI is above 0 but
   excludes 0.5; else *not reproduced*. Onsets before the plateau started are not leads: they
   are counted and left out. The Δz onset's lead (``lead_fraction_z``) is reported beside it.
6-7. the circuit: :mod:`mbc_interp.sweep.circuit`. 8. marginal before conditional, with
   matched measures: :mod:`mbc_interp.sweep.order`.

Seeds: a verdict needs at least :data:`MIN_SEEDS` runs at every level it compares (each D or
K of a power law, both ends of a ratio, each (N, K) cell of 2c, each K of claim 1, the runs of
the lead's mean). With fewer, the claim is *underpowered* whatever its interval says, and the
rules' verdict is kept beside it (``verdict_by_interval``) with the smallest level's count.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.store.sweep_runs import main_runs, slice_of
from mbc_interp.sweep.circuit import circuit_verdicts
from mbc_interp.sweep.intervals import (  # noqa: F401  (re-exported: the fits' statistics)
    CI,
    MIN_SEEDS,
    UNBOUNDED,
    Mean,
    PowerLaw,
    Ratio,
    mean_ci,
    power_law,
    ratio_of_means,
    t_interval,
)
from mbc_interp.sweep.intervals import slope as _slope
from mbc_interp.sweep.order import order_verdicts

PAPER = {"D_exponent": 1.19, "lr_ratio": 3.6, "lead_fraction": 0.5, "lr_range": (3e-4, 2e-3)}
K_ALTERNATIVE = 0.6
"""The K claim's alternative: a dependence half as strong as the paper's D exponent."""
BATCH_DELAY = 1.5
"""The smallest batch delay of interest: an interval reaching it cannot rule it out."""
AXIS_COLUMNS = ("D", "n_examples", "K", "lr", "batch", "direction", "target_len",
                "construction", "data_seed", "n_layers", "d_model", "n_heads",
                "selector_gap", "optimizer", "eps", "momentum", "compile", "selectors",
                "distinct_first", "warmup_steps")  # fmt: skip


def reference_point(table: pd.DataFrame) -> dict[str, Any]:
    """The most common value of each axis among the backward runs; ties go to the value whose
    runs belong to the most grids (``labels``: the centre where a sweep's arms cross, which a
    sweep part-way through can hold no more often than its other levels), then the smallest."""
    back = table[table.direction == "backward"]
    grids = (back["labels"].fillna("").astype(str).str.split(",").str.len()
             if "labels" in back else pd.Series(1, index=back.index))  # fmt: skip
    out = {}
    for col in AXIS_COLUMNS:
        if col in back and back[col].notna().any():
            counts = back[col].value_counts()
            tied = counts[counts == counts.max()].index
            weight = grids.groupby(back[col]).sum()
            out[col] = sorted(tied, key=lambda v: (-weight[v], v))[0]
    return out


def fit_sweep(table: pd.DataFrame) -> dict[str, Any]:
    """The five claims, each with its numbers, the runs used and a verdict (see module doc)."""
    ref = reference_point(table)
    out: dict[str, Any] = {"reference": ref, "n_runs": int((table.point_status == "done").sum())}
    # a diverged run (NaN/inf) says nothing about the plateau: neither a duration nor censored
    out["n_diverged"] = int((table.point_status == "diverged").sum())
    out["plateau"] = _plateau(main_runs(table, ref))
    out["D"] = _scaling(table, "D", ref, target=PAPER["D_exponent"])
    out["K"] = _scaling(table, "K", ref, target=None)
    out["N"] = _examples(table, ref)
    out["K_paper"] = _k_at_fixed_examples(table, ref)
    out["lr"] = _ratio(table, "lr", ref, largest_over_smallest=True)
    out["batch"] = _ratio(table, "batch", ref, largest_over_smallest=False)
    out["lead"] = _lead(main_runs(table, ref))
    out["circuit"] = circuit_verdicts(main_runs(table, ref))
    out["order"] = order_verdicts(table, ref)
    return {**out, "control": _control(table)}


def _contains(ci: tuple[float, float], value: float) -> bool:
    return ci[0] <= value <= ci[1]


def verdict_for(ci: tuple[float, float], paper: float, null: float) -> str:
    """Rules 2, 3 and 5: the interval against the paper's value and the null (above it is the
    paper's direction)."""
    has_paper, has_null = _contains(ci, paper), _contains(ci, null)
    if has_paper and has_null:
        return "underpowered"
    if has_paper:
        return "reproduced"
    return "partly" if ci[0] > null else "not reproduced"


def no_dependence_verdict(ci: tuple[float, float]) -> str:
    """Rule 2 for K: 0 is the paper's value, +-:data:`K_ALTERNATIVE` the alternative."""
    if not _contains(ci, 0.0):
        return "not reproduced"
    if _contains(ci, K_ALTERNATIVE) or _contains(ci, -K_ALTERNATIVE):
        return "underpowered"
    return "reproduced"


def seed_rule(res: dict[str, Any], counts: Any) -> dict[str, Any]:
    """Apply the seed rule to a claim's result ``res`` (in place, and returned): ``counts``
    are the runs at each level the claim compares."""
    counts = [int(c) for c in counts]
    if not counts or res.get("verdict") in (None, "not tested"):
        return res
    n = min(counts)
    res["min_seeds_per_level"] = n
    if n < MIN_SEEDS:
        res["verdict_by_interval"] = res["verdict"]
        res["verdict"] = "underpowered"
        res["seed_note"] = f"{n} run(s) at a level, fewer than the {MIN_SEEDS} a verdict needs"
    return res


def _usable(rows: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    ok = rows["duration_tokens"].notna() & (rows["duration_tokens"] > 0)
    return rows[ok], int((~ok).sum())


def _plateau(runs: pd.DataFrame) -> dict[str, Any]:
    rows = runs[runs.plateau_ratio.notna()]
    if rows.empty:
        return {"verdict": "not reproduced", "why": "no run reached a plateau", "n_runs": 0}
    dev = (rows.plateau_ratio - 1).abs()
    per_k = {
        int(k): {"mean_ratio": float(g.plateau_ratio.mean()), "n": len(g),
                 "mean_plateau_loss": float(g.plateau_loss.mean()), "log_k": float(g.log_k.iloc[0]),
                 "mean_plateau_acc": float(g.plateau_acc.mean()) if "plateau_acc" in g else None}
        for k, g in rows.groupby("K")
    }  # fmt: skip
    n_all = len(runs)
    ok = bool(dev.max() <= 0.02) and len(rows) == n_all
    res = {
        "per_K": per_k, "max_abs_deviation": float(dev.max()), "n_runs": len(rows),
        "n_without_plateau": n_all - len(rows),
        "verdict": "reproduced" if ok else "not reproduced",
    }  # fmt: skip
    return seed_rule(res, runs.groupby("K").size())


def _scaling(table: pd.DataFrame, axis: str, ref: dict, target: float | None) -> dict[str, Any]:
    rows, censored = _usable(slice_of(table, axis, ref))
    res: dict[str, Any] = {"axis": axis, "n_censored": censored, "n_runs": len(rows)}
    if rows[axis].nunique() < 2:
        return {**res, "verdict": "not tested", "why": f"fewer than 2 values of {axis}"}
    fit = power_law(rows[axis].to_numpy(float), rows.duration_tokens.to_numpy(float))
    lx, l_steps = np.log(rows[axis].to_numpy(float)), np.log(rows.duration_steps.to_numpy(float))
    steps, _ = _slope(lx, l_steps)
    res.update(fit=asdict(fit), exponent=fit.exponent, ci=fit.ci, exponent_steps=float(steps),
               means=_means(rows, axis), local=_local_exponents(rows, axis))  # fmt: skip
    res["verdict"] = (no_dependence_verdict(fit.ci) if target is None
                      else verdict_for(fit.ci, target, 0.0))  # fmt: skip
    return seed_rule(res, rows.groupby(axis).size())


def _local_exponents(rows: pd.DataFrame, axis: str) -> dict[str, dict[str, Any]]:
    """Descriptive, not a claim: the power law between each pair of adjacent levels (keyed by
    the lower), each with its Welch interval (unbounded where a side has one run), so a bend
    the single exponent averages over is seen where it is."""
    levels = sorted(rows[axis].unique())
    out = {}
    for lo, hi in itertools.pairwise(levels):
        pair = rows[rows[axis].isin([lo, hi])]
        fit = power_law(pair[axis].to_numpy(float), pair.duration_tokens.to_numpy(float))
        out[f"{lo:g}"] = {"to": float(hi), "exponent": fit.exponent, "ci": fit.ci,
                          "dof": fit.dof}  # fmt: skip
    return out


def _examples(table: pd.DataFrame, ref: dict) -> dict[str, Any]:
    """Not a claim of the paper: duration against the number of examples N = D K, pooling the
    D and K slices (tests whether the plateau lasts a fixed number of epochs). Beside the
    exponent in tokens of plateau, the same in steps to the drop, steps of plateau and the
    learning rate summed to the drop (``t_loss_cum_lr``): a warm-up shapes each differently."""
    rows = pd.concat([slice_of(table, "D", ref), slice_of(table, "K", ref)]).drop_duplicates("name")
    rows, censored = _usable(rows)
    res: dict[str, Any] = {"axis": "N", "n_censored": censored, "n_runs": len(rows)}
    if rows.n_examples.nunique() < 2:
        return {**res, "why": "fewer than 2 values of N"}
    n = rows.n_examples.to_numpy(float)
    fit = power_law(n, rows.duration_tokens.to_numpy(float))
    units = {}
    for col in ("t_loss", "duration_steps", "t_loss_cum_lr"):
        if col in rows and rows[col].notna().all() and (rows[col] > 0).all():
            units[col] = asdict(power_law(n, rows[col].to_numpy(float)))
    epochs = mean_ci(rows.duration_epochs.to_numpy(float))
    return {**res, "fit": asdict(fit), "exponent": fit.exponent, "ci": fit.ci,
            "epochs": asdict(epochs), "other_units": units}  # fmt: skip


def _k_at_fixed_examples(table: pd.DataFrame, ref: dict) -> dict:
    """The paper's K claim in its units: ``log duration = c + a log N + b log K`` fitted on the
    size and K slices pooled (N = total examples); ``b`` is the K exponent at a fixed number of
    examples, with an ordinary least-squares t-interval over runs, judged as the K claim."""
    rows = pd.concat([slice_of(table, "D", ref), slice_of(table, "K", ref)]).drop_duplicates("name")
    rows, censored = _usable(rows)
    res: dict[str, Any] = {"n_censored": censored, "n_runs": len(rows)}
    x = (
        np.column_stack(
            [
                np.ones(len(rows)),
                np.log(rows.n_examples.to_numpy(float)),
                np.log(rows.K.to_numpy(float)),
            ]
        )
        if len(rows)
        else np.empty((0, 3))
    )
    y = np.log(rows.duration_tokens.to_numpy(float)) if len(rows) else np.empty(0)
    if len(rows) < 4 or np.linalg.matrix_rank(x) < 3:
        return {**res, "verdict": "not tested", "why": "N and K do not vary independently"}
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    dof = len(y) - 3
    sigma2 = float(((y - x @ coef) ** 2).sum()) / dof
    cov = sigma2 * np.linalg.inv(x.T @ x)
    ci = t_interval(float(coef[2]), math.sqrt(cov[2, 2]), dof)
    res = {**res, "n_exponent": float(coef[1]),
            "n_ci": t_interval(float(coef[1]), math.sqrt(cov[1, 1]), dof),
            "k_exponent": float(coef[2]), "ci": ci, "dof": dof,
            "verdict": no_dependence_verdict(ci)}  # fmt: skip
    return seed_rule(res, rows.groupby(["n_examples", "K"]).size())


def _means(rows: pd.DataFrame, axis: str) -> dict[str, dict[str, float]]:
    return {
        f"{v:g}": {"mean_tokens": float(g.duration_tokens.mean()),
                   "mean_steps": float(g.duration_steps.mean()),
                   "mean_epochs": float(g.duration_epochs.mean()),
                   "mean_t_plateau_start": float(g.t_plateau_start.mean()),
                   "mean_t_loss_tokens": float(g.t_loss_tokens.mean()),
                   "sd_tokens": float(g.duration_tokens.std(ddof=1)) if len(g) > 1 else 0.0,
                   "n_examples": sorted(int(n) for n in g.n_examples.unique()),
                   "n": len(g)}
        for v, g in rows.groupby(axis)
    }  # fmt: skip


def _ratio(
    table: pd.DataFrame, axis: str, ref: dict, largest_over_smallest: bool
) -> dict[str, Any]:
    rows, censored = _usable(slice_of(table, axis, ref))
    res: dict[str, Any] = {"axis": axis, "n_censored": censored, "n_runs": len(rows)}
    values = sorted(rows[axis].unique())
    if len(values) < 2:
        return {**res, "verdict": "not tested", "why": f"fewer than 2 values of {axis}"}
    hi_v, lo_v = (values[-1], values[0]) if largest_over_smallest else (values[0], values[-1])
    r = ratio_of_means(rows[rows[axis] == hi_v].duration_tokens.to_numpy(float),
                       rows[rows[axis] == lo_v].duration_tokens.to_numpy(float))  # fmt: skip
    means = _means(rows, axis)
    mono = bool(np.all(np.diff([means[f"{v:g}"]["mean_tokens"] for v in values]) > 0))
    res.update(numerator=float(hi_v), denominator=float(lo_v), ratio=r.ratio, ci=r.ci,
               dof=r.dof, means=means, monotone_increasing=mono,
               fit=asdict(power_law(rows[axis].to_numpy(float),
                                    rows.duration_tokens.to_numpy(float))))  # fmt: skip
    if axis == "lr":
        v = verdict_for(r.ci, PAPER["lr_ratio"], 1.0)
        res["verdict"] = "partly" if v == "reproduced" and not mono else v
    elif r.ci[0] > 1:
        res["verdict"] = "reproduced"
    else:
        has_delay = _contains(r.ci, 1.0) and r.ci[1] >= BATCH_DELAY
        res["verdict"] = "underpowered" if has_delay else "not reproduced"
    ends = rows[rows[axis].isin([hi_v, lo_v])]
    return seed_rule(res, ends.groupby(axis).size())


def _lead(rows: pd.DataFrame) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for key in ("lead_fraction", "lead_fraction_z"):
        v = rows[key].to_numpy(float) if key in rows else np.array([])
        v = v[np.isfinite(v)]
        res[key] = asdict(mean_ci(v)) if len(v) else None
    for key in ("route_phase", "z_phase"):
        phases = rows[key].value_counts().to_dict() if key in rows else {}
        res[key] = {str(k): int(v) for k, v in phases.items()}
    heads = rows.routing_head.value_counts().to_dict() if "routing_head" in rows else {}
    res["routing_heads"] = {str(k): int(v) for k, v in heads.items()}
    m = res["lead_fraction"]
    if m is None:
        res["verdict"] = "not tested"
    else:
        res["verdict"] = verdict_for(tuple(m["ci"]), PAPER["lead_fraction"], 0.0)
        seed_rule(res, [m["n"]])
    return res


def control_twins(table: pd.DataFrame) -> pd.DataFrame:
    """Finished forward (A -> B) runs and the backward runs with the same task and settings."""
    fwd = table[(table.direction == "forward") & (table.point_status == "done")]
    keys = [c for c in (*AXIS_COLUMNS, "seed") if c != "direction" and c in table]
    twins = table.merge(fwd[keys].drop_duplicates(), on=keys)
    return twins[twins.point_status == "done"]


def _control(table: pd.DataFrame) -> dict[str, Any]:
    """Forward (A -> B) runs against backward runs of the same task and settings."""
    twins = control_twins(table)
    if not (twins.direction == "forward").any():
        return {"verdict": "not tested"}
    out: dict[str, Any] = {}
    for direction, rows in twins.groupby("direction"):
        out[str(direction)] = {
            "n": len(rows),
            "with_log_k_plateau": int(rows.t_plateau_start.notna().sum()),
            "mean_t_solved_steps": float(rows.t_solved.mean()),
            "mean_duration_steps": float(rows.duration_steps.mean()),
            "status": rows.status.value_counts().to_dict(),
        }
    f, b = out.get("forward", {}), out.get("backward", {})
    asym = f.get("with_log_k_plateau") == 0 and b.get("with_log_k_plateau", 0) == b.get("n", -1)
    out["verdict"] = "asymmetric" if asym else "not asymmetric"
    return out
