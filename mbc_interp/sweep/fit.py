"""Scaling fits and comparisons over a sweep's run table, with bootstrap confidence intervals.

Every comparison holds the other axes at the sweep's *reference point* (the most common value
of each axis among its backward runs) and varies one: D, K, lr or batch. Durations are plateau
waiting times in tokens seen (see :mod:`mbc_interp.sweep.results`); runs that never dropped
(right-censored) are left out and counted. Intervals are 95% percentile bootstraps that
resample runs (seeds) with replacement within each level of the varied axis.

Verdicts follow fixed rules, written down before looking at the numbers (never tuned):

1. plateau height: *reproduced* if every run's plateau loss is within 2% of log K.
   (Claims 1 and 5 use every run of the reference task family, any D, K, lr, batch.)
2. D: *reproduced* if the exponent's CI contains 1.19; *partly* if the CI is above 0 but
   excludes 1.19; else *not reproduced*. K: *reproduced* if the CI of the K exponent
   contains 0 (no dependence), else *not reproduced*.
3. lr: ratio of mean durations (tokens) at the largest vs the smallest lr: *reproduced* if its
   CI contains the paper's 3.6 and the means grow with lr; *partly* if the CI is above 1 but
   excludes 3.6; else *not reproduced*.
4. batch: ratio of mean durations (tokens), smallest over largest batch: *reproduced* if its
   CI is above 1, else *not reproduced*.
2c. K in the paper's units (D there is the total number of examples N): the K exponent ``b``
   of ``log duration = c + a log N + b log K`` on the size and K slices pooled: *reproduced* if
   its CI contains 0.
5. lead: mean lead fraction of the routing head's z-use onset (its patching effect leaving its
   noise floor, see :mod:`mbc_interp.analysis.summary`): *reproduced* if its CI contains 0.5;
   *partly* if the CI is above 0 (the head leads) but excludes 0.5; else *not reproduced*.
   Onsets before the plateau started are not leads: they are counted and left out. The Δz
   onset's lead (``lead_fraction_z``) is reported beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.runtable import main_runs, slice_of

PAPER = {"D_exponent": 1.19, "lr_ratio": 3.6, "lead_fraction": 0.5, "lr_range": (3e-4, 2e-3)}
AXIS_COLUMNS = ("D", "n_examples", "K", "lr", "batch", "direction", "target_len",
                "construction", "data_seed", "n_layers", "d_model", "n_heads",
                "selector_gap", "optimizer", "eps", "momentum")  # fmt: skip

CI = 0.95


@dataclass(frozen=True)
class PowerLaw:
    """``y = prefactor * x ** exponent`` by least squares in log-log space."""

    exponent: float
    prefactor: float
    ci: tuple[float, float]
    r2: float
    n_runs: int
    levels: tuple[float, ...]
    p_zero: float
    """Two-sided bootstrap p-value for exponent = 0 (no dependence)."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.prefactor * np.asarray(x, dtype=float) ** self.exponent


@dataclass(frozen=True)
class Ratio:
    """``mean(a) / mean(b)`` with its bootstrap CI."""

    ratio: float
    ci: tuple[float, float]
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int


@dataclass(frozen=True)
class Mean:
    mean: float
    ci: tuple[float, float]
    median: float
    n: int


def _levels(x: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(x == v) for v in np.unique(x)]


def _resample(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``[n_boot, n]`` row indices: each group resampled with replacement within itself."""
    cols = [g[rng.integers(0, len(g), size=(n_boot, len(g)))] for g in groups]
    return np.concatenate(cols, axis=1)


def _interval(samples: np.ndarray) -> tuple[float, float]:
    lo, hi = np.nanquantile(samples, [(1 - CI) / 2, 1 - (1 - CI) / 2])
    return float(lo), float(hi)


def _slope(lx: np.ndarray, ly: np.ndarray) -> tuple[Any, Any]:
    """Least-squares slope and intercept along the last axis (arrays, or scalars for 1-D)."""
    mx, my = lx.mean(-1, keepdims=True), ly.mean(-1, keepdims=True)
    var = ((lx - mx) ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        b = ((lx - mx) * (ly - my)).sum(-1) / var
    return b, my[..., 0] - b * mx[..., 0]


def power_law(x: np.ndarray, y: np.ndarray, *, n_boot: int = 4000, seed: int = 0) -> PowerLaw:
    """Fit ``y ~ x ** b``; the CI resamples runs within each x level (needs >= 2 levels)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} != {len(y)}")
    if np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("power-law fits need positive, finite x and y")
    groups = _levels(x)
    if len(groups) < 2:
        raise ValueError(f"need at least 2 distinct x values, got {len(groups)}")
    lx, ly = np.log(x), np.log(y)
    b, a = _slope(lx, ly)
    resid = ly - (a + b * lx)
    r2 = 1 - float((resid**2).sum() / ((ly - ly.mean()) ** 2).sum())
    idx = _resample(groups, n_boot, np.random.default_rng(seed))
    boot, _ = _slope(lx[idx], ly[idx])
    boot = boot[np.isfinite(boot)]
    p_zero = float(min(1.0, 2 * min((boot <= 0).mean(), (boot >= 0).mean())))
    return PowerLaw(
        exponent=float(b), prefactor=float(np.exp(a)), ci=_interval(boot), r2=r2,
        n_runs=len(x), levels=tuple(float(v) for v in np.unique(x)), p_zero=p_zero,
    )  # fmt: skip


def ratio_of_means(
    a: np.ndarray, b: np.ndarray, *, n_boot: int = 4000, seed: int = 0
) -> Ratio:
    """``mean(a) / mean(b)``; the CI resamples each group independently."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"ratio needs runs on both sides, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    ma = a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(1)
    mb = b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(1)
    return Ratio(float(a.mean() / b.mean()), _interval(ma / mb), float(a.mean()),
                 float(b.mean()), len(a), len(b))  # fmt: skip


def mean_ci(values: np.ndarray, *, n_boot: int = 4000, seed: int = 0) -> Mean:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        raise ValueError("no finite values")
    boot = v[np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))].mean(1)
    return Mean(float(v.mean()), _interval(boot), float(np.median(v)), len(v))


# -- over a sweep's table ---------------------------------------------------------------------
def reference_point(table: pd.DataFrame) -> dict[str, Any]:
    """The most common value of each axis among the backward runs (ties: the smallest)."""
    back = table[table.direction == "backward"]
    out = {}
    for col in AXIS_COLUMNS:
        if col in back and back[col].notna().any():
            counts = back[col].value_counts()
            out[col] = sorted(counts[counts == counts.max()].index)[0]
    return out


def fit_sweep(table: pd.DataFrame, *, n_boot: int = 4000, seed: int = 0) -> dict[str, Any]:
    """The five claims, each with its numbers, the runs used and a verdict (see module doc)."""
    ref = reference_point(table)
    out: dict[str, Any] = {"reference": ref, "n_runs": int((table.point_status == "done").sum())}
    # a diverged run (NaN/inf) says nothing about the plateau: neither a duration nor censored
    out["n_diverged"] = int((table.point_status == "diverged").sum())
    out["plateau"] = _plateau(main_runs(table, ref))
    out["D"] = _scaling(table, "D", ref, n_boot, seed, target=PAPER["D_exponent"])
    out["K"] = _scaling(table, "K", ref, n_boot, seed, target=None)
    out["N"] = _examples(table, ref, n_boot, seed)
    out["K_paper"] = _k_at_fixed_examples(table, ref, n_boot, seed)
    out["lr"] = _ratio(table, "lr", ref, n_boot, seed, largest_over_smallest=True)
    out["batch"] = _ratio(table, "batch", ref, n_boot, seed, largest_over_smallest=False)
    out["lead"] = _lead(main_runs(table, ref), n_boot, seed)
    out["control"] = _control(table)
    return out


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
    return {
        "per_K": per_k, "max_abs_deviation": float(dev.max()), "n_runs": len(rows),
        "n_without_plateau": n_all - len(rows),
        "verdict": "reproduced" if ok else "not reproduced",
    }  # fmt: skip


def _scaling(
    table: pd.DataFrame, axis: str, ref: dict, n_boot: int, seed: int, target: float | None
) -> dict[str, Any]:
    rows, censored = _usable(slice_of(table, axis, ref))
    res: dict[str, Any] = {"axis": axis, "n_censored": censored, "n_runs": len(rows)}
    if rows[axis].nunique() < 2:
        return {**res, "verdict": "not tested", "why": f"fewer than 2 values of {axis}"}
    fit = power_law(rows[axis].to_numpy(float), rows.duration_tokens.to_numpy(float),
                    n_boot=n_boot, seed=seed)  # fmt: skip
    lx, l_steps = np.log(rows[axis].to_numpy(float)), np.log(rows.duration_steps.to_numpy(float))
    steps, _ = _slope(lx, l_steps)
    res.update(fit=asdict(fit), exponent=fit.exponent, ci=fit.ci, exponent_steps=float(steps),
               means=_means(rows, axis))  # fmt: skip
    lo, hi = fit.ci
    if target is None:  # "no dependence"
        res["verdict"] = "reproduced" if lo <= 0 <= hi else "not reproduced"
    elif lo <= target <= hi:
        res["verdict"] = "reproduced"
    else:
        res["verdict"] = "partly" if lo > 0 else "not reproduced"
    return res


def _examples(table: pd.DataFrame, ref: dict, n_boot: int, seed: int) -> dict[str, Any]:
    """Not a claim of the paper: duration against the number of examples N = D K, pooling the
    D and K slices (tests whether the plateau lasts a fixed number of epochs)."""
    rows = pd.concat([slice_of(table, "D", ref), slice_of(table, "K", ref)]).drop_duplicates("name")
    rows, censored = _usable(rows)
    res: dict[str, Any] = {"axis": "N", "n_censored": censored, "n_runs": len(rows)}
    if rows.n_examples.nunique() < 2:
        return {**res, "why": "fewer than 2 values of N"}
    fit = power_law(rows.n_examples.to_numpy(float), rows.duration_tokens.to_numpy(float),
                    n_boot=n_boot, seed=seed)  # fmt: skip
    epochs = mean_ci(rows.duration_epochs.to_numpy(float), n_boot=n_boot, seed=seed)
    return {**res, "fit": asdict(fit), "exponent": fit.exponent, "ci": fit.ci,
            "epochs": asdict(epochs)}  # fmt: skip


def _k_at_fixed_examples(table: pd.DataFrame, ref: dict, n_boot: int, seed: int) -> dict:
    """The paper's K claim in its units: ``log duration = c + a log N + b log K`` fitted on the
    size and K slices pooled (N = total examples); ``b`` is the K exponent at a fixed number of
    examples, with a bootstrap CI over runs. *reproduced* if the CI contains 0."""
    rows = pd.concat([slice_of(table, "D", ref), slice_of(table, "K", ref)]).drop_duplicates("name")
    rows, censored = _usable(rows)
    res: dict[str, Any] = {"n_censored": censored, "n_runs": len(rows)}
    x = np.column_stack([np.ones(len(rows)), np.log(rows.n_examples.to_numpy(float)),
                         np.log(rows.K.to_numpy(float))]) if len(rows) else np.empty((0, 3))
    y = np.log(rows.duration_tokens.to_numpy(float)) if len(rows) else np.empty(0)
    if len(rows) < 4 or np.linalg.matrix_rank(x) < 3:
        return {**res, "verdict": "not tested", "why": "N and K do not vary independently"}
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if np.linalg.matrix_rank(x[i]) == 3:
            boot.append(np.linalg.lstsq(x[i], y[i], rcond=None)[0])
    lo, hi = _interval(np.array(boot)[:, 2])
    a_lo, a_hi = _interval(np.array(boot)[:, 1])
    return {**res, "n_exponent": float(coef[1]), "n_ci": (a_lo, a_hi),
            "k_exponent": float(coef[2]), "ci": (lo, hi),
            "verdict": "reproduced" if lo <= 0 <= hi else "not reproduced"}  # fmt: skip


def _means(rows: pd.DataFrame, axis: str) -> dict[str, dict[str, float]]:
    return {
        f"{v:g}": {"mean_tokens": float(g.duration_tokens.mean()),
                   "mean_steps": float(g.duration_steps.mean()),
                   "mean_epochs": float(g.duration_epochs.mean()),
                   "mean_t_plateau_start": float(g.t_plateau_start.mean()),
                   "mean_t_loss_tokens": float(g.t_loss_tokens.mean()),
                   "sd_tokens": float(g.duration_tokens.std(ddof=1)) if len(g) > 1 else 0.0,
                   "n": len(g)}
        for v, g in rows.groupby(axis)
    }  # fmt: skip


def _ratio(
    table: pd.DataFrame, axis: str, ref: dict, n_boot: int, seed: int, largest_over_smallest: bool
) -> dict[str, Any]:
    rows, censored = _usable(slice_of(table, axis, ref))
    res: dict[str, Any] = {"axis": axis, "n_censored": censored, "n_runs": len(rows)}
    values = sorted(rows[axis].unique())
    if len(values) < 2:
        return {**res, "verdict": "not tested", "why": f"fewer than 2 values of {axis}"}
    hi_v, lo_v = (values[-1], values[0]) if largest_over_smallest else (values[0], values[-1])
    r = ratio_of_means(rows[rows[axis] == hi_v].duration_tokens.to_numpy(float),
                       rows[rows[axis] == lo_v].duration_tokens.to_numpy(float),
                       n_boot=n_boot, seed=seed)  # fmt: skip
    means = _means(rows, axis)
    mono = bool(np.all(np.diff([means[f"{v:g}"]["mean_tokens"] for v in values]) > 0))
    res.update(numerator=float(hi_v), denominator=float(lo_v), ratio=r.ratio, ci=r.ci,
               means=means, monotone_increasing=mono,
               fit=asdict(power_law(rows[axis].to_numpy(float),
                                    rows.duration_tokens.to_numpy(float), n_boot=n_boot,
                                    seed=seed)))  # fmt: skip
    lo, hi = r.ci
    if axis == "lr":
        target = PAPER["lr_ratio"]
        if lo <= target <= hi and mono:
            res["verdict"] = "reproduced"
        else:
            res["verdict"] = "partly" if lo > 1 else "not reproduced"
    else:
        res["verdict"] = "reproduced" if lo > 1 else "not reproduced"
    return res


def _lead(rows: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    res: dict[str, Any] = {}
    for key in ("lead_fraction", "lead_fraction_z"):
        v = rows[key].to_numpy(float) if key in rows else np.array([])
        v = v[np.isfinite(v)]
        res[key] = asdict(mean_ci(v, n_boot=n_boot, seed=seed)) if len(v) else None
    for key in ("route_phase", "z_phase"):
        phases = rows[key].value_counts().to_dict() if key in rows else {}
        res[key] = {str(k): int(v) for k, v in phases.items()}
    heads = rows.routing_head.value_counts().to_dict() if "routing_head" in rows else {}
    res["routing_heads"] = {str(k): int(v) for k, v in heads.items()}
    m = res["lead_fraction"]
    if m is None:
        res["verdict"] = "not tested"
    else:
        lo, hi = m["ci"]
        target = PAPER["lead_fraction"]
        res["verdict"] = "reproduced" if lo <= target <= hi else ("partly" if lo > 0 else
                                                                   "not reproduced")  # fmt: skip
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
