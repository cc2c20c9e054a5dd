"""Gradient noise and the plateau: four questions (REPRODUCTION.md), answered over a sweep whose
runs were analysed with the ``gradients`` kind (``mbc fit SWEEP --noise``).

The rules were fixed in REPRODUCTION.md ("Gradient noise and the plateau") before the runs;
this module implements them as written:

- **Per run**, every number is the median over the analysed checkpoints inside the summary's
  plateau window (``t_plateau_start`` to ``t_plateau_end``), on the ``"all"`` parameter group;
  a run is *measurable* with at least :data:`MIN_CHECKPOINTS` of them. ``tr_sigma`` =
  B_simple |G|^2; with nu = B_simple / batch, ``t_adam`` = lr nu / (1 + nu) (the noise that
  an Adam update carries, per unit of lr; AdamW runs only) and ``t_sgd`` = lr tr_sigma / batch,
  lr being the scheduled learning rate of the update taken from that checkpoint (warm-up
  included).
- **Slices** hold every axis but one (and the seed) at the reference point: the most common
  value of each axis, ``eps``, ``optimizer`` and ``momentum`` included.
- (a) B_simple / batch > 1 in every measurable run: *yes*; < 1 in every one: *no*; else
  *mixed*. (b) Spearman between plateau |G| and duration over the D slice's measurable escaped
  runs, exact permutation p; predicted negative. (c) T_adam at the largest lr all above the
  smallest lr's, with a positive Spearman: *raised*; then the same rule on the duration in
  tokens decides *supports* / *against*. (d) t_loss at each eps against eps = 1e-8: ranges
  that do not overlap are *later* / *sooner* (a run that never escaped is later than any that
  did). Too few runs: *not tested*, with the reason.

The table is built from run directories (:func:`noise_table`) or read back from the
``runs.csv`` that ``mbc fit --noise`` wrote; the verdicts (:func:`noise_verdicts`) and their
text (:func:`verdict_table`, :func:`markdown_section`) only need the table.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jaxtyping import Float

from mbc_interp.store.layout import ANALYSIS_DIR, SUMMARY_FILE, TIMELINE_FILE, sweep_run_dir
from mbc_interp.store.run import load_run
from mbc_interp.store.sweep_runs import slice_of
from mbc_interp.sweep.fit import reference_point
from mbc_interp.sweep.results import collect

MIN_CHECKPOINTS = 3
"""Analysed checkpoints a plateau window must hold for its run to be measurable."""
ALPHA = 0.05
PERMUTATIONS = 20_000
"""Random orderings for the permutation p-value above 8 runs (all orderings up to 8)."""
REFERENCE_EPS = 1e-8
MEASURES = ("grad_norm", "b_simple", "tr_sigma", "b_ratio", "t_adam", "t_sgd", "coherence",
            "coherence_null", "group_ratio", "group_ratio_null", "eps_dominated_frac",
            "plateau_lr", "llc")  # fmt: skip
RUN_COLUMNS = ("name", "labels", "D", "K", "n_examples", "lr", "batch", "seed", "optimizer",
               "eps", "momentum", "direction", "target_len", "construction", "data_seed",
               "n_layers", "d_model", "n_heads", "selector_gap", "point_status", "status",
               "transition_signal", "t_plateau_start", "t_plateau_end", "t_loss",
               "duration_steps", "duration_tokens", "censored", "steps_run", "n_plateau_ckpts",
               *MEASURES)  # fmt: skip


# -- the per-run table ----------------------------------------------------------------------
def plateau_measures(run_dir: str | Path) -> dict[str, Any]:
    """The medians over a run's plateau checkpoints (see the module docstring); NaN where the
    run has no plateau, no gradient rows, or (``eps_dominated_frac``) no saved Adam states."""
    run_dir = Path(run_dir)
    out: dict[str, Any] = {"n_plateau_ckpts": 0, **dict.fromkeys(MEASURES, math.nan)}
    summary_file = run_dir / ANALYSIS_DIR / SUMMARY_FILE
    timeline_file = run_dir / ANALYSIS_DIR / TIMELINE_FILE
    if not (summary_file.is_file() and timeline_file.is_file()):
        return out
    summary = json.loads(summary_file.read_text())
    t0, t1 = summary.get("t_plateau_start"), summary.get("t_plateau_end")
    if t0 is None or t1 is None:
        return out
    train = load_run(run_dir).config.train
    tl = pd.read_csv(
        timeline_file, usecols=["step", "analysis", "kind", "component", "metric", "value"]
    )
    tl = tl[tl.analysis.isin(["gradients", "llc"]) & (tl.component == "all")]
    tl = tl[(tl.step >= t0) & (tl.step <= t1)]
    wide = tl.pivot_table(index="step", columns="metric", values="value", aggfunc="first")
    if "b_simple" not in wide or wide["b_simple"].notna().sum() < 1:
        return out
    wide = wide[wide["b_simple"].notna()]
    lr = pd.Series([train.lr_at(int(s) + 1) for s in wide.index], index=wide.index)
    nu = wide["b_simple"] / train.batch_size
    per_ckpt = {
        "grad_norm": wide["grad_norm"],
        "b_simple": wide["b_simple"],
        "tr_sigma": wide["b_simple"] * wide["grad_norm"] ** 2,
        "b_ratio": nu,
        "t_adam": lr * nu / (1 + nu) if train.optimizer == "adamw" else lr * math.nan,
        "t_sgd": lr * wide["b_simple"] * wide["grad_norm"] ** 2 / train.batch_size,
        "plateau_lr": lr,
    }
    for metric in (
        "coherence",
        "coherence_null",
        "group_ratio",
        "group_ratio_null",
        "eps_dominated_frac",
        "llc",
    ):
        if metric in wide:
            per_ckpt[metric] = wide[metric]
    out.update({k: float(v.median()) for k, v in per_ckpt.items()})
    out["n_plateau_ckpts"] = len(wide)
    return out


def noise_table(sweep: str | Path) -> pd.DataFrame:
    """One row per point of a sweep directory: its axes, loss times and plateau measures."""
    table = collect(sweep)  # the optimizer axes included (sweep.results.OPTIMIZER_AXES)
    rows = []
    for name, status in zip(table["name"], table["point_status"], strict=True):
        run_dir = sweep_run_dir(sweep, name)
        rows.append(plateau_measures(run_dir) if status == "done" else {})
    measures = pd.DataFrame(rows, index=table.index)
    table = pd.concat([table.drop(columns=[c for c in measures if c in table]), measures], axis=1)
    table["n_plateau_ckpts"] = table["n_plateau_ckpts"].fillna(0).astype(int)
    return table[[c for c in RUN_COLUMNS if c in table]]


# -- statistics ---------------------------------------------------------------------------------
def spearman(
    x: Float[np.ndarray, " n"], y: Float[np.ndarray, " n"], seed: int = 0
) -> tuple[float, float]:
    """Spearman's rho (average ranks for ties; +inf ranks last) and its two-sided permutation
    p-value: every ordering of y up to 8 values, else :data:`PERMUTATIONS` seeded ones."""
    rx = pd.Series(x, dtype=float).rank().to_numpy()
    ry = pd.Series(y, dtype=float).rank().to_numpy()
    if len(rx) < 3 or rx.std() == 0 or ry.std() == 0:
        return math.nan, math.nan
    rho = float(np.corrcoef(rx, ry)[0, 1])
    if len(ry) <= 8:
        perms = np.array(list(itertools.permutations(ry)))
    else:
        rng = np.random.default_rng(seed)
        perms = np.array([rng.permutation(ry) for _ in range(PERMUTATIONS)])
    rx_c = rx - rx.mean()
    rhos = (
        (perms - ry.mean())
        @ rx_c
        / (np.sqrt((rx_c**2).sum()) * np.sqrt(((ry - ry.mean()) ** 2).sum()))
    )
    return rho, float((np.abs(rhos) >= abs(rho) - 1e-12).mean())


def _separated(low: np.ndarray, high: np.ndarray) -> str:
    """``higher`` if every value of ``high`` exceeds every value of ``low``, ``lower`` in
    mirror, else ``overlap``."""
    if np.min(high) > np.max(low):
        return "higher"
    if np.max(high) < np.min(low):
        return "lower"
    return "overlap"


# -- the four questions --------------------------------------------------------------------------
def _measurable(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[(rows.point_status == "done") & (rows.n_plateau_ckpts >= MIN_CHECKPOINTS)]


def _escape(rows: pd.DataFrame, col: str) -> np.ndarray:
    """``col`` with runs that never escaped (a plateau, no drop) at +inf."""
    return np.where(rows["t_loss"].isna(), np.inf, rows[col].to_numpy(float))


def question_a(table: pd.DataFrame) -> dict[str, Any]:
    """Is B_simple larger than the batch during the plateau (every measurable run)?"""
    runs = _measurable(table[table.direction == "backward"])
    if runs.empty:
        return {"verdict": "not tested", "why": "no measurable run", "n_runs": 0}
    r = runs["b_ratio"].to_numpy(float)
    above = int((r > 1).sum())
    verdict = (
        "yes" if above == len(r) else "no" if above == 0 else f"mixed ({above} of {len(r)} above)"
    )
    return {
        "verdict": verdict,
        "n_runs": len(r),
        "n_above": above,
        "ratio_min": float(r.min()),
        "ratio_median": float(np.median(r)),
        "ratio_max": float(r.max()),
        "coherence_over_null": float((runs.coherence / runs.coherence_null).median()),
        "group_ratio_over_null": float((runs.group_ratio / runs.group_ratio_null).median()),
        "by_optimizer": {
            str(k): float(v) for k, v in runs.groupby("optimizer").b_ratio.median().items()
        },
    }


def _order(runs: pd.DataFrame, col: str, predicted: int) -> dict[str, Any]:
    rho, p = spearman(runs[col].to_numpy(float), runs["duration_steps"].to_numpy(float))
    if not math.isfinite(rho):
        return {"verdict": "not tested", "why": f"{col} or the duration does not vary"}
    ordered = p < ALPHA
    sign = "as predicted" if np.sign(rho) == predicted else "opposite sign"
    verdict = f"ordered, {sign}" if ordered else "not ordered"
    if ordered and sign == "as predicted":
        verdict = "ordered as predicted"
    return {"verdict": verdict, "rho": rho, "p": p, "predicted_sign": predicted}


def question_b(table: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """Does the plateau |G| (secondary: B_simple; the LLC where measured) order durations
    across D?"""
    rows = slice_of(table[table.direction == "backward"], "D", ref)
    runs = _measurable(rows)
    runs = runs[runs.t_loss.notna() & (runs.duration_steps > 0)]
    out: dict[str, Any] = {"n_runs": len(runs), "D_values": sorted(runs.D.unique().tolist())}
    if runs.D.nunique() < 3 or len(runs) < 5:
        why = f"{runs.D.nunique()} values of D and {len(runs)} measurable escaped runs (need 3, 5)"
        return {**out, "verdict": "not tested", "why": why}
    out.update(_order(runs, "grad_norm", -1))
    out["b_simple"] = _order(runs, "b_simple", +1)
    has_llc = runs["llc"].notna().all() if "llc" in runs else False
    out["llc"] = (
        _order(runs, "llc", -1)
        if has_llc
        else {"verdict": "not tested", "why": "the runs carry no llc kind"}
    )
    out["runs"] = runs[["name", "D", "grad_norm", "b_simple", "duration_steps"]].to_dict("records")
    return out


def _extremes(rows: pd.DataFrame, values: np.ndarray, axis: str) -> dict[str, Any]:
    levels = sorted(rows[axis].unique())
    lo, hi = rows[axis].to_numpy() == levels[0], rows[axis].to_numpy() == levels[-1]
    if len(levels) < 2 or lo.sum() < 2 or hi.sum() < 2:
        return {
            "verdict": "not tested",
            "why": f"fewer than 2 runs at the smallest or largest {axis}",
        }
    rho, _ = spearman(rows[axis].to_numpy(float), values)
    side = _separated(values[lo], values[hi])
    verdict = (
        "raised"
        if side == "higher" and rho > 0
        else "lowered"
        if side == "lower" and rho < 0
        else "no clear change"
    )
    ratio = float(np.median(values[hi]) / np.median(values[lo]))
    return {
        "verdict": verdict,
        "rho": rho,
        "ratio_largest_over_smallest": ratio,
        "levels": [float(v) for v in levels],
    }


def question_c(table: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """Does a larger lr raise the noise at the plateau (T_adam), and the duration with it?"""
    rows = slice_of(table[table.direction == "backward"], "lr", ref)
    runs = _measurable(rows)
    noise = (
        _extremes(runs, runs["t_adam"].to_numpy(float), "lr")
        if len(runs)
        else {"verdict": "not tested", "why": "no measurable run"}
    )
    timed = rows[(rows.point_status == "done") & rows.t_plateau_start.notna()]
    duration = (
        _extremes(timed, _escape(timed, "duration_tokens"), "lr")
        if len(timed)
        else {"verdict": "not tested", "why": "no run with a plateau"}
    )
    if noise["verdict"] == "raised":
        mechanism = (
            "supports the paper's reading"
            if duration["verdict"] == "raised"
            else ("against it" if duration["verdict"] != "not tested" else "not tested")
        )
    else:
        mechanism = "not tested"
    levels = {}
    for lr, g in runs.groupby("lr"):
        levels[f"{lr:g}"] = {
            "n": len(g),
            **{k: float(g[k].median()) for k in ("t_adam", "t_sgd", "tr_sigma", "b_simple")},
        }
    for lr, g in timed.groupby("lr"):
        levels.setdefault(f"{lr:g}", {"n": 0})["duration_tokens"] = float(
            np.median(_escape(g, "duration_tokens"))
        )
    return {
        "verdict": noise["verdict"],
        "noise": noise,
        "duration": duration,
        "mechanism": mechanism,
        "n_runs": len(runs),
        "levels": levels,
    }


def question_d(table: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """Does Adam's eps change the escape time (t_loss), beyond the seed spread?"""
    rows = slice_of(table[table.direction == "backward"], "eps", ref)
    rows = rows[(rows.optimizer == "adamw") & rows.t_plateau_start.notna()]
    t = _escape(rows, "t_loss")
    eps = rows["eps"].to_numpy(float)
    reference = np.isclose(eps, REFERENCE_EPS, rtol=1e-6)
    levels: dict[str, Any] = {}
    for value in sorted(set(eps[~reference].tolist())):
        at = np.isclose(eps, value, rtol=1e-6)
        entry: dict[str, Any] = {"n": int(at.sum()), "t_loss": t[at].tolist()}
        frac = rows.loc[at, "eps_dominated_frac"]
        entry["eps_dominated_frac"] = float(frac.median()) if frac.notna().any() else None
        if at.sum() < 2 or reference.sum() < 2:
            entry.update(verdict="not tested", why="fewer than 2 runs at this eps or at 1e-8")
        else:
            side = _separated(t[reference], t[at])
            entry["verdict"] = {"higher": "later", "lower": "sooner"}.get(
                side, "no change beyond the seed spread"
            )
            entry["ratio"] = float(np.median(t[at]) / np.median(t[reference]))
        levels[f"{value:g}"] = entry
    tested = [v["verdict"] for v in levels.values() if v["verdict"] != "not tested"]
    verdict = (
        "not tested"
        if not tested
        else "eps changes the escape time"
        if any(v in ("later", "sooner") for v in tested)
        else "no"
    )
    frac = rows.loc[reference, "eps_dominated_frac"]
    return {
        "verdict": verdict,
        "levels": levels,
        "n_runs": len(rows),
        "reference": {
            "eps": REFERENCE_EPS,
            "n": int(reference.sum()),
            "t_loss": t[reference].tolist(),
            "eps_dominated_frac": float(frac.median()) if frac.notna().any() else None,
        },
    }


def noise_verdicts(table: pd.DataFrame) -> dict[str, Any]:
    """The four questions on a noise table (see the module docstring for the rules)."""
    ref = reference_point(table)  # eps, optimizer and momentum among its axes
    return {
        "reference": ref,
        "n_runs": int((table.point_status == "done").sum()),
        "a": question_a(table),
        "b": question_b(table, ref),
        "c": question_c(table, ref),
        "d": question_d(table, ref),
    }
