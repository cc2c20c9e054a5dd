"""The extrapolation's interval, calibrated on the backtests: how far the extrapolated drop
landed from the real one in runs already backtested, by how far along its plateau the forecast
believed the run to be.

The fit's own interval (draws of its parameters and of the target level) leaves out the error of
the extrapolation itself: Δz does not grow at one rate, so a single exponential is biased in a
way its standard errors do not show. Rules:

- **Error** of one backtest forecast: ``e = ln((t_loss - t0) / (prediction - t0))``, ``t0`` the
  plateau start the forecast saw: the plateau's real length over the forecast one (> 0: the
  drop came later than forecast).
- **Index**: the fraction of the plateau the forecast believes has passed,
  ``p = (as_of - t0) / (prediction - t0)`` in (0, 1], known when the forecast is made (the real
  fraction is not). Errors are pooled in the bins :data:`EDGES` of ``p``.
- **Interval** at coverage ``c`` in a bin of ``n`` errors: the forecast plateau length times
  ``exp(-q)`` to ``exp(q)``, ``q`` the ``ceil((n + 1) c)``-th smallest ``|e|`` of the bin (a
  split-conformal bound: it covers at least ``c`` of future forecasts drawn like the
  calibration ones), joined with the fit's own interval, never before ``as_of``.
- **No calibration applies** (fewer than :data:`MIN_ERRORS` errors in the bin, ``ceil((n + 1)
  c) > n``, or no calibration at all): the interval is open, ``as_of`` to no upper bound, never
  the fit's narrow one alone.
- **Source**: the ``extrapolation`` rows of a backtest table (``mbc backtest``: one per run and
  as-of fraction of every sweep), stored as ``results/forecast/calibration.json``; the backtest
  scores each sweep with the calibration of the *other* sweeps (held out).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

EDGES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
"""Bins of the believed plateau fraction ``p`` (the last one closed: ``p`` = 1 when the fit says
the drop is due now)."""
MIN_ERRORS = 8
"""Backtest errors a bin needs before its interval is used (else: open interval)."""
CALIBRATION_FILE = Path(__file__).resolve().parents[3] / "results" / "forecast" / "calibration.json"
"""The committed calibration ``mbc forecast`` uses (written by ``mbc backtest``)."""


@dataclass(frozen=True)
class Calibration:
    """Extrapolation errors of backtest forecasts: ``(p, e)`` pairs (see the module docstring)."""

    p: tuple[float, ...]
    e: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.p) != len(self.e):
            raise ValueError("calibration: p and e must have the same length")

    def half_width(self, p: float, coverage: float) -> tuple[float | None, int]:
        """``(q, n)``: the bin's conformal bound on ``|e|`` at ``coverage`` and the errors in
        the bin; ``q`` is ``None`` where no calibration applies."""
        lo, hi = _bin(p)
        e = np.abs([e for q, e in zip(self.p, self.e, strict=True) if _bin(q) == (lo, hi)])
        n = len(e)
        k = math.ceil((n + 1) * coverage)
        if n < MIN_ERRORS or k > n:
            return None, n
        return float(np.sort(e)[k - 1]), n

    def to_dict(self) -> dict[str, Any]:
        bins = []
        for lo, hi in itertools.pairwise(EDGES):
            q, n = self.half_width((lo + hi) / 2, 0.8)
            bins.append({"p_low": lo, "p_high": hi, "n": n, "half_width_80": q})
        return {"rule": "mbc_interp.analysis.timing.forecast_calibration", "source": self.source,
                "bins": bins, "p": list(self.p), "e": list(self.e)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        return cls(tuple(map(float, data["p"])), tuple(map(float, data["e"])),
                   str(data.get("source", "")))  # fmt: skip


def _bin(p: float) -> tuple[float, float]:
    i = int(np.clip(np.searchsorted(EDGES, p, side="right") - 1, 0, len(EDGES) - 2))
    return EDGES[i], EDGES[i + 1]


def calibrated_interval(
    prediction: float,
    as_of: float,
    t0: float | None,
    fit_bounds: tuple[float | None, float | None],
    calibration: Calibration | None,
    coverage: float,
) -> tuple[float, float | None, str]:
    """``(low, high, how)``: the extrapolation's interval by the module's rules (``high`` None:
    no upper bound) and a sentence saying how it was made."""
    p = _fraction(prediction, as_of, t0)
    q, n = (None, 0) if calibration is None or p is None else calibration.half_width(p, coverage)
    if q is None:
        why = (
            "no calibration"
            if calibration is None or p is None
            else f"{n} backtest errors at this point of the plateau, need {MIN_ERRORS}"
        )
        return as_of, None, f"open: no calibrated interval ({why})"
    length = prediction - t0  # type: ignore[operator]
    low, high = t0 + length * np.exp(-q), t0 + length * np.exp(q)  # type: ignore[operator]
    fit_low, fit_high = fit_bounds
    if fit_low is not None and np.isfinite(fit_low):
        low = min(low, fit_low)
    high = None if fit_high is None or not np.isfinite(fit_high) else max(high, fit_high)
    lo, hi = _bin(p)
    how = (f"{coverage:.0%} interval: the fit's error joined with the extrapolation's error in "
           f"{n} backtest forecasts made {lo:.0%}-{hi:.0%} into the forecast plateau "
           f"(x{np.exp(-q):.2f}-{np.exp(q):.2f} of its length)")  # fmt: skip
    return float(max(low, as_of)), (None if high is None else float(max(high, as_of))), how


def _fraction(prediction: float, as_of: float, t0: float | None) -> float | None:
    if t0 is None or not prediction > t0 or not as_of >= t0:
        return None
    return float(np.clip((as_of - t0) / (prediction - t0), 0.0, 1.0))


def extrapolation_errors(table: pd.DataFrame) -> pd.DataFrame:
    """``(sweep, run, fraction, p, e)`` of a backtest table's ``extrapolation`` rows with a
    prediction; ``t0`` is the plateau start the forecast saw (``plateau_start_as_of``), or the
    run's where a table does not record it."""
    t = table[(table.method == "extrapolation") & table.prediction.notna()]
    t0 = t["plateau_start_as_of"] if "plateau_start_as_of" in t else t["t_plateau_start"]
    t0 = t0.fillna(t["t_plateau_start"])
    length = t.prediction - t0
    out = pd.DataFrame({
        "sweep": t.get("sweep", ""), "run": t.run, "fraction": t.fraction,
        "p": ((t.as_of - t0) / length).clip(0, 1), "e": np.log((t.t_loss - t0) / length),
    })  # fmt: skip
    return out[np.isfinite(out.e) & (length > 0)].reset_index(drop=True)


def fit_calibration(table: pd.DataFrame, source: str = "") -> Calibration:
    """The calibration of a backtest table (all its extrapolation forecasts)."""
    err = extrapolation_errors(table)
    return Calibration(tuple(err.p.astype(float)), tuple(err.e.astype(float)), source)


def held_out_intervals(table: pd.DataFrame, coverage: float = 0.8) -> pd.DataFrame:
    """The backtest table with the interval of every forecast made by extrapolation (``via``)
    recomputed from ``fit_low``/``fit_high`` and the calibration of the other sweeps (of the
    other runs when the table holds one sweep), and ``covered`` rescored: coverage measured on
    forecasts the calibration never saw. A table without ``fit_low`` (one written before the
    column) holds the fit's own interval in ``low``/``high``."""
    t = table.copy()
    via = t.via == "extrapolation"
    if "fit_low" not in t:
        t["fit_low"] = t.low.where(via)
        t["fit_high"] = t.high.where(via)
    if "plateau_start_as_of" not in t:
        t["plateau_start_as_of"] = t.t_plateau_start.where(via)
    by = "sweep" if "sweep" in t and t["sweep"].nunique() > 1 else "run"
    for key in t.loc[via & t.prediction.notna(), by].unique():
        cal = fit_calibration(t[t[by] != key], source=f"{by}s other than {key}")
        rows = t.index[via & t.prediction.notna() & (t[by] == key)]
        for i in rows:
            r = t.loc[i]
            low, high, _ = calibrated_interval(
                r.prediction, r.as_of, r.plateau_start_as_of, (_num(r.fit_low), _num(r.fit_high)),
                cal, coverage,
            )  # fmt: skip
            t.loc[i, ["low", "high"]] = [low, np.nan if high is None else high]
            t.loc[i, "covered"] = bool(low <= r.t_loss and (high is None or r.t_loss <= high))
    return t


def _num(v: Any) -> float | None:
    return None if v is None or pd.isna(v) else float(v)


def write_calibration(calibration: Calibration, path: Path) -> Path:
    """``path`` as JSON (atomically)."""
    from mbc_interp.core.files import atomic_write

    atomic_write(path, (json.dumps(calibration.to_dict(), indent=1) + "\n").encode())
    return path


@lru_cache(maxsize=4)
def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration | None:
    """The calibration stored at ``path`` (``None`` when there is none: open intervals)."""
    if not path.is_file():
        return None
    return Calibration.from_dict(json.loads(path.read_text()))
