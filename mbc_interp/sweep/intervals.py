"""The statistics behind the sweep's fits: power laws, ratios and means, each with a 95% Student
t interval whose coverage holds at the number of seeds used (the module docstring of
:mod:`mbc_interp.sweep.fit` says which interval each claim gets)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

MIN_SEEDS = 3
"""Runs a level needs before its claim can carry a verdict (the rules of
:mod:`mbc_interp.sweep.fit`)."""

CI = 0.95


@dataclass(frozen=True)
class PowerLaw:
    """``y = prefactor * x ** exponent`` by least squares in log-log space over every run; the
    interval is a t-interval from the fit to the x levels' mean log y (see the module doc)."""

    exponent: float
    prefactor: float
    ci: tuple[float, float]
    r2: float
    n_runs: int
    levels: tuple[float, ...]
    p_zero: float
    """Two-sided p-value of the t-test for exponent = 0 (no dependence)."""
    dof: float
    """Degrees of freedom of the interval (0: it is unbounded)."""


@dataclass(frozen=True)
class Ratio:
    """The ratio of geometric means ``exp(mean log a - mean log b)`` with its Welch
    t-interval on the log scale; the arithmetic means beside it."""

    ratio: float
    ci: tuple[float, float]
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    dof: float


@dataclass(frozen=True)
class Mean:
    mean: float
    ci: tuple[float, float]
    median: float
    n: int


UNBOUNDED = (-math.inf, math.inf)


def t_interval(estimate: float, se: float, dof: float | int) -> tuple[float, float]:
    """``estimate -/+ t(dof) se`` at :data:`CI`; unbounded without degrees of freedom."""
    if not (dof > 0 and np.isfinite(se)):
        return UNBOUNDED
    q = float(stats.t.ppf(1 - (1 - CI) / 2, dof))
    return float(estimate - q * se), float(estimate + q * se)


def slope(lx: np.ndarray, ly: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept."""
    mx, my = lx.mean(), ly.mean()
    b = float(((lx - mx) * (ly - my)).sum() / ((lx - mx) ** 2).sum())
    return b, float(my - b * mx)


def _level_slope_se(lx: np.ndarray, ly: np.ndarray) -> tuple[float, float]:
    """The standard error of the slope and its degrees of freedom, from the levels' mean log y.

    With >= 3 levels: the ordinary least-squares SE of the slope through the level means
    (L - 2 degrees of freedom; curvature and seed noise both enter the residuals). With 2: the
    two means' within-level variances (Welch), the only spread there is."""
    levels = np.unique(lx)
    means = np.array([ly[lx == v].mean() for v in levels])
    if len(levels) >= 3:
        b, a = slope(levels, means)
        resid = means - (a + b * levels)
        dof = float(len(levels) - 2)
        se = math.sqrt(float((resid**2).sum()) / dof / float(((levels - levels.mean()) ** 2).sum()))
        return se, dof
    groups = [ly[lx == v] for v in levels]
    se_diff, dof = _welch(groups[1], groups[0])
    return se_diff / float(levels[1] - levels[0]), dof


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """SE of ``mean(a) - mean(b)`` and the Welch-Satterthwaite degrees of freedom (0 when a
    side has a single run: no spread is measured)."""
    if len(a) < 2 or len(b) < 2:
        return math.nan, 0.0
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return 0.0, float(len(a) + len(b) - 2)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    return se, float(dof)


def power_law(x: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Fit ``y ~ x ** b`` (needs >= 2 levels of x); the interval as in the module doc."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} != {len(y)}")
    if np.any(x <= 0) or np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise ValueError("power-law fits need positive, finite x and y")
    if len(np.unique(x)) < 2:
        raise ValueError(f"need at least 2 distinct x values, got {len(np.unique(x))}")
    lx, ly = np.log(x), np.log(y)
    b, a = slope(lx, ly)
    resid = ly - (a + b * lx)
    total = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1 - float((resid**2).sum()) / total if total > 0 else math.nan  # constant y: undefined
    se, dof = _level_slope_se(lx, ly)
    ci = t_interval(b, se, dof)
    p_zero = float(2 * stats.t.sf(abs(b) / se, dof)) if dof > 0 and se > 0 else math.nan
    return PowerLaw(
        exponent=b, prefactor=math.exp(a), ci=ci, r2=r2, n_runs=len(x),
        levels=tuple(float(v) for v in np.unique(x)), p_zero=p_zero, dof=float(dof),
    )  # fmt: skip


def ratio_of_means(a: np.ndarray, b: np.ndarray) -> Ratio:
    """``a`` over ``b`` as a ratio of geometric means, with a Welch t-interval on the log
    scale (unbounded when a side has one run)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"ratio needs runs on both sides, got {len(a)} and {len(b)}")
    la, lb = np.log(a), np.log(b)
    diff = float(la.mean() - lb.mean())
    se, dof = _welch(la, lb)
    lo, hi = t_interval(diff, se, dof)
    return Ratio(math.exp(diff), (math.exp(lo), math.exp(hi)), float(a.mean()), float(b.mean()),
                 len(a), len(b), float(dof))  # fmt: skip


def mean_ci(values: np.ndarray) -> Mean:
    """The mean of the finite values with its t-interval (n - 1 degrees of freedom)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        raise ValueError("no finite values")
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else math.nan
    return Mean(float(v.mean()), t_interval(float(v.mean()), se, len(v) - 1),
                float(np.median(v)), len(v))  # fmt: skip
