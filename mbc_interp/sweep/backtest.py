"""Backtest of the drop forecast over the runs of sweep directories, against naive baselines.

Rules (fixed before the backtest was first run; the extrapolation intervals' after it):

- Runs: every finished backward run of the sweep with a plateau and a drop (the transition
  signal's ``t_plateau_start`` and ``t_loss``, from the whole run); runs with no plateau or no
  drop cannot be scored and are counted apart.
- Forecast times: ``as_of = t_plateau_start + f (t_loss - t_plateau_start)`` for f in
  ``FRACTIONS``; the forecast reads only the evaluations up to ``as_of``
  (:func:`mbc_interp.analysis.timing.forecast.forecast`). Its Δz level is the median
  :func:`~mbc_interp.analysis.timing.forecast.drop_level` of the *other* scored runs of the sweep
  (leave-one-out; the default level when fewer than 2 others have one).
- Baselines, leave-one-out over the other scored runs, given the one fact known at ``as_of``
  (the drop has not happened: a prediction before ``as_of`` is moved to ``as_of``):
  ``epochs``: the median escape time of the others in epochs (passes over the run's examples);
  ``power_law``: ln(t_loss in tokens) on ln(number of examples) fitted by least squares on the
  others (needs 2 distinct sizes). Intervals are predictive intervals for one more run on the
  log scale (:func:`~mbc_interp.analysis.timing.forecast_fit.predictive_bounds`): ``epochs``
  SD of the others' ln epochs x sqrt(1 + 1/n), t with n - 1 degrees of freedom; ``power_law`` the
  regression's prediction SD (residual SD x sqrt(1 + 1/n + leverage)), t with n - 2. With too
  few others to measure a spread the interval is open (``low`` at ``as_of``, no ``high``).
- Extrapolation intervals (``via`` extrapolation, in either forecast method) are calibrated on
  the backtest itself, held out: each run's by the other runs' extrapolation errors
  (:func:`~mbc_interp.analysis.timing.forecast_calibration.held_out_intervals`; over several sweeps,
  by the other sweeps'), never by its own.
- Scores: relative error ``(prediction - t_loss) / t_loss`` (the headline measure), the same over
  the time still to wait ``(prediction - t_loss) / (t_loss - as_of)`` (harder: it does not
  shrink as as_of nears the drop), and coverage of the interval (low <= t_loss <= high; an
  open upper end covers anything above low). A method is compared with another on the runs
  where both gave a prediction; :func:`coverage_by_fraction` gives each method's coverage at
  each as-of fraction over all its predictions.
- Target: at 50% of the plateau a median absolute relative error <= 25% (:data:`TARGET_ERROR`),
  and lower than both baselines'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.timing.forecast import ForecastConfig, Reference, forecast
from mbc_interp.analysis.timing.forecast_calibration import held_out_intervals
from mbc_interp.analysis.timing.forecast_fit import predictive_bounds
from mbc_interp.analysis.timing.summary import transition_of
from mbc_interp.store.run import Run, load_run
from mbc_interp.sweep.runner import done_points

FRACTIONS = (0.25, 0.5, 0.75)
METHODS = ("forecast", "extrapolation", "epochs", "power_law")
"""``forecast``: what ``mbc forecast`` gives with the sweep's other runs as references (analog,
else extrapolation); ``extrapolation``: the fit alone, no reference; then the baselines."""
BASELINES = ("epochs", "power_law")
TARGET_ERROR = 0.25


def scored_runs(sweep: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(scored, skipped): one record per finished backward run of the sweep, with its metrics
    and loss times; skipped runs carry why."""
    scored, skipped = [], []
    for point, run_dir in done_points(sweep):
        run = load_run(run_dir)
        if not getattr(run.config.task, "has_selector", False):  # Δz: the wind tunnel's
            continue
        rec = {**_record(run), "blocks": "+".join(point.get("labels") or [])}
        (scored if rec["t_loss"] is not None else skipped).append(rec)
    return scored, skipped


def _record(run: Run) -> dict[str, Any]:
    m, c = run.metrics, run.config
    times, signal = transition_of(m, run.task.transition)
    ok = times["t_plateau_start"] is not None and times["t_loss"] is not None
    ref = Reference.from_metrics(m, run.log_k) if ok else None
    return {
        "run": run.path.name, "metrics": m, "log_k": run.log_k, "signal": signal,
        "K": c.task.K, "n_examples": c.task.n_total, "batch": c.train.batch_size,
        "lr": c.train.lr, "seed": c.train.seed, "tokens_per_step": c.tokens_per_step,
        "t_plateau_start": times["t_plateau_start"], "t_loss": times["t_loss"] if ok else None,
        "status": times["status"], "reason": times["reason"],
        "level": ref.drop_level() if ref is not None else None,
        "reference": ref,
    }  # fmt: skip


def backtest(
    records: list[dict[str, Any]],
    fractions: tuple[float, ...] = FRACTIONS,
    config: ForecastConfig | None = None,
) -> pd.DataFrame:
    """One row per (run, fraction, method): the prediction, its interval and its errors."""
    config = config or ForecastConfig()
    rows = []
    for i, rec in enumerate(records):
        others = records[:i] + records[i + 1 :]
        levels = [o["level"] for o in others if o["level"] is not None]
        cfg = config
        if len(levels) >= 2:
            cfg = ForecastConfig(**{**config.__dict__, "level": float(np.median(levels))})
        refs = [o["reference"] for o in others if o["reference"] is not None]
        base = _baselines(rec, others, config.coverage)
        t0, t1 = rec["t_plateau_start"], rec["t_loss"]
        for f in fractions:
            as_of = t0 + f * (t1 - t0)
            preds, fits = {}, {}
            for method, use in (("forecast", refs), ("extrapolation", ())):
                fc = forecast(rec["metrics"], rec["log_k"], as_of=as_of, references=use,
                              config=cfg, calibration=None)  # fmt: skip
                preds[method] = (fc.status, fc.method, fc.t_loss_forecast, fc.low, fc.high)
                fits[method] = {"fit_low": fc.fit_low, "fit_high": fc.fit_high,
                                "plateau_start_as_of": fc.t_plateau_start}  # fmt: skip
            now = fc.as_of_step if fc.as_of_step is not None else as_of
            for name, (pred, low, high) in base.items():
                preds[name] = ("baseline", None, *_not_before(now, pred, low, high))
            for method, (status, via, pred, low, high) in preds.items():
                rows.append({
                    "run": rec["run"], "blocks": rec.get("blocks", ""),
                    "signal": rec["signal"], "K": rec["K"],
                    "n_examples": rec["n_examples"], "batch": rec["batch"], "lr": rec["lr"],
                    "seed": rec["seed"], "fraction": f, "as_of": now,
                    "t_plateau_start": t0, "t_loss": t1, "method": method, "status": status,
                    "via": via, "prediction": pred, "low": low, "high": high,
                    "level": cfg.level if method == "extrapolation" else None,
                    **fits.get(method, {"fit_low": None, "fit_high": None,
                                        "plateau_start_as_of": None}),
                    **_scores(pred, low, high, t1, now),
                })  # fmt: skip
    return held_out_intervals(pd.DataFrame(rows), config.coverage)


def _baselines(
    rec: dict[str, Any], others: list[dict[str, Any]], coverage: float
) -> dict[str, tuple]:
    """Leave-one-out baseline predictions of ``rec``'s t_loss (steps): (pred, low, high)."""
    out: dict[str, tuple] = {}
    epochs = np.array([o["t_loss"] * o["batch"] / o["n_examples"] for o in others])
    n = len(epochs)
    if n >= 1:
        centre = float(np.log(np.median(epochs) * rec["n_examples"] / rec["batch"]))
        sd = float(np.log(epochs).std(ddof=1)) * np.sqrt(1 + 1 / n) if n >= 2 else np.inf
        out["epochs"] = _exp_triple(centre, predictive_bounds(centre, sd, n - 1, coverage))
    sizes = np.log([o["n_examples"] for o in others])
    if len(np.unique(sizes)) >= 2:
        y = np.log([o["t_loss"] * o["tokens_per_step"] for o in others])
        slope, intercept = np.polyfit(sizes, y, 1)
        resid = y - (intercept + slope * sizes)
        x = np.log(rec["n_examples"])
        leverage = (x - sizes.mean()) ** 2 / np.sum((sizes - sizes.mean()) ** 2)
        sd = float(np.sqrt(np.sum(resid**2) / max(n - 2, 1) * (1 + 1 / n + leverage)))
        centre = intercept + slope * x - np.log(rec["tokens_per_step"])
        out["power_law"] = _exp_triple(centre, predictive_bounds(centre, sd, n - 2, coverage))
    return out


def _exp_triple(centre: float, bounds: tuple[float, float]) -> tuple[float, float, float | None]:
    """(prediction, low, high) in steps from log-scale values; no ``high`` when unbounded."""
    high = float(np.exp(bounds[1])) if np.isfinite(bounds[1]) else None
    return float(np.exp(centre)), float(np.exp(bounds[0])), high


def _not_before(now: float, pred: float, low: float, high: float | None) -> tuple:
    return max(pred, now), max(low, now), (None if high is None else max(high, now))


def _scores(pred, low, high, t_loss, as_of) -> dict[str, Any]:
    if pred is None:
        return {"rel_err": None, "rel_err_remaining": None, "covered": None}
    wait = t_loss - as_of
    return {
        "rel_err": (pred - t_loss) / t_loss,
        "rel_err_remaining": (pred - t_loss) / wait if wait > 0 else None,
        "covered": bool(low <= t_loss and (high is None or t_loss <= high)),
    }


def summarize_backtest(table: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, fraction, method): runs, predictions, median |relative error| (of t_loss and
    of the wait), median signed error and interval coverage, on the runs where the forecast gave
    a prediction (``*_all`` columns: every run the method predicted)."""
    group = ["sweep", "fraction"] if "sweep" in table else ["fraction"]
    rows = []
    for key, t in table.groupby(group):
        key = key if isinstance(key, tuple) else (key,)
        compared = _compared(t)
        for method in METHODS:
            mt = t[t.method == method]
            if mt.empty:
                continue
            both = compared[method]
            every = mt[mt.prediction.notna()]
            rows.append({
                **dict(zip(group, key, strict=True)), "method": method, "runs": len(mt),
                "predicted": len(every), "compared": len(both),
                "median_abs_rel_err": _med(both.rel_err.abs()),
                "median_rel_err": _med(both.rel_err),
                "median_abs_rel_err_wait": _med(both.rel_err_remaining.abs()),
                "coverage": _mean(both.covered),
                "median_abs_rel_err_all": _med(every.rel_err.abs()),
                "coverage_all": _mean(every.covered),
            })  # fmt: skip
    return pd.DataFrame(rows)


def block_summary(table: pd.DataFrame, fraction: float = 0.5) -> pd.DataFrame:
    """Per (sweep, grid block) at ``fraction`` of the plateau, on the runs the forecast predicted:
    each method's median |relative error| and the forecast's coverage. A block is a ``[[grid]]``
    table of the sweep file (its ``label``); a run in several blocks (the reference point)
    counts in each. Blocks that vary lr, eps or the optimizer are where a constant number of
    epochs is wrong by design; there the question is whether Δz carries what the epoch count
    does not. Empty without a ``blocks`` column (a table from before it)."""
    if "blocks" not in table:
        return pd.DataFrame()
    t = table[table.fraction == fraction].copy()
    t["block"] = t.blocks.fillna("").astype(str).str.split("+")
    t = t.explode("block")
    t = t[t.block != ""]
    group = ["sweep", "block"] if "sweep" in t else ["block"]
    rows = []
    for key, g in t.groupby(group, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        compared = _compared(g)
        row: dict[str, Any] = {**dict(zip(group, key, strict=True)), "runs": g.run.nunique(),
                               "compared": len(compared["forecast"])}  # fmt: skip
        for method in METHODS:
            row[method] = _med(compared[method].rel_err.abs())
        row["forecast_coverage"] = _mean(compared["forecast"].covered)
        rows.append(row)
    return pd.DataFrame(rows)


def coverage_by_fraction(table: pd.DataFrame) -> pd.DataFrame:
    """Per (sweep, method, fraction), and over all sweeps (sweep ``all``): the predictions made,
    how many the interval covered, and the coverage (their ratio)."""
    t = table[table.prediction.notna()].copy()
    if "sweep" not in t:
        t["sweep"] = ""
    t["covered"] = t.covered.astype(float)
    pooled = t.assign(sweep="all")
    both = pd.concat([t, pooled]) if t["sweep"].nunique() > 1 else t
    g = both.groupby(["sweep", "method", "fraction"], sort=False).covered
    out = pd.DataFrame({"predicted": g.size(), "covered": g.sum().astype(int)}).reset_index()
    out["coverage"] = out.covered / out.predicted
    order = {m: i for i, m in enumerate(METHODS)}
    key = lambda c: c.map(order) if c.name == "method" else c  # noqa: E731
    out = out.sort_values(["sweep", "method", "fraction"], key=key, kind="stable")
    return out.reset_index(drop=True)


def _compared(t: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each method's predictions in ``t`` on the runs where the forecast gave one: the runs
    the methods are compared on."""
    made = t[(t.method == "forecast") & t.prediction.notna()].run
    return {m: t[(t.method == m) & t.run.isin(made) & t.prediction.notna()] for m in METHODS}


def _med(s: pd.Series) -> float | None:
    s = pd.to_numeric(s, errors="coerce").dropna()
    return float(s.median()) if len(s) else None


def _mean(s: pd.Series) -> float | None:
    s = s.dropna()
    return float(s.astype(float).mean()) if len(s) else None


def verdict(summary: pd.DataFrame, fraction: float = 0.5) -> list[str]:
    """One sentence per sweep on the target at ``fraction`` of the plateau: a median absolute
    relative error of at most :data:`TARGET_ERROR`, below both baselines'."""
    lines = []
    group = summary.groupby("sweep") if "sweep" in summary else [("", summary)]
    for sweep, s in group:
        at = s[s.fraction == fraction].set_index("method")
        if "forecast" not in at.index or at.loc["forecast", "compared"] == 0:
            lines.append(f"{sweep}: no forecast at {fraction:.0%} of the plateau")
            continue
        ours = at.loc["forecast", "median_abs_rel_err"]
        beats = {m: ours < at.loc[m, "median_abs_rel_err"] for m in BASELINES if m in at.index}
        met = ours <= TARGET_ERROR and all(beats.values()) and len(beats) == 2
        vs = ", ".join(f"{m} {at.loc[m, 'median_abs_rel_err']:.0%}" for m in beats)
        if "extrapolation" in at.index:
            vs += f" (extrapolation alone: {at.loc['extrapolation', 'median_abs_rel_err']:.0%})"
        lines.append(
            f"{sweep}: at {fraction:.0%} of the plateau the forecast's median |error| is "
            f"{ours:.0%} over {int(at.loc['forecast', 'compared'])} of "
            f"{int(at.loc['forecast', 'runs'])} runs (coverage "
            f"{at.loc['forecast', 'coverage']:.0%}); baselines on the same runs: {vs or 'none'}. "
            f"Target (<= {TARGET_ERROR:.0%} and better than both): "
            f"{'met' if met else 'not met'}."
        )
    return lines
