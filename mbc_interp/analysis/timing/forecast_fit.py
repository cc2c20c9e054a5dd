"""The exponential the drop forecast extrapolates (:mod:`mbc_interp.analysis.timing.forecast`):
its weighted fit, where it crosses a level and with what spread, and the predictive interval
for one more run."""

from __future__ import annotations

from typing import Any

import numpy as np


def predictive_bounds(centre: float, sd: float, dof: int, coverage: float) -> tuple[float, float]:
    """The central ``coverage`` range of ``centre`` + ``sd`` x Student t(``dof``): a predictive
    interval for one more draw when ``sd`` includes the spread of the draws and the error of
    their centre; (-inf, inf) with no degree of freedom (one draw says nothing of the spread)."""
    from scipy.stats import t as student_t  # ~0.5 s to import: not for every `mbc` command

    if dof < 1 or not np.isfinite(sd):
        return -np.inf, np.inf
    q = float(student_t.ppf(0.5 + coverage / 2, dof)) * sd
    return centre - q, centre + q


def value_at(fit: dict[str, Any], t: float) -> float:
    """The fitted exponential's value at step ``t``."""
    a, b = fit["coef"]
    return float(np.exp(a + b * (t - fit["x0"])))


def time_at(steps: np.ndarray, v: np.ndarray, level: float, sustain: int = 2) -> float | None:
    """The step a positive curve reaches ``level`` and stays for ``sustain`` evaluations,
    interpolated on the log scale; ``None`` if never, or if it starts there."""
    above = v >= level
    for i in range(len(v) - sustain + 1):
        if above[i : i + sustain].all():
            if i == 0:  # above from the first evaluation: not timed
                return None
            if not v[i - 1] > 0:
                return float(steps[i])
            a, b = np.log(v[i - 1]), np.log(v[i])
            frac = 1.0 if b == a else float(np.clip((np.log(level) - a) / (b - a), 0, 1))
            return float(steps[i - 1] + frac * (steps[i] - steps[i - 1]))
    return None


def exp_fit(x: np.ndarray, v: np.ndarray, se: np.ndarray) -> dict[str, Any]:
    """v ~ exp(a + b (x - x0)) by weighted least squares on the linear scale (weights 1/SE²,
    so no evaluation is dropped for being small or negative: no selection bias), by
    Gauss-Newton from the log-linear fit of the evaluations above 2 SE; the covariance of
    (a, b) scaled up by the reduced chi-square when it exceeds 1."""
    up = v > 2 * se
    y, w = np.log(v[up]), (v[up] / se[up]) ** 2
    x0 = float(np.average(x[up], weights=w))
    design = np.stack([np.ones(up.sum()), x[up] - x0], axis=1)
    coef = np.linalg.solve(design.T @ (design * w[:, None]), design.T @ (w * y))
    dx = x - x0
    for _ in range(50):
        f = np.exp(np.clip(coef[0] + coef[1] * dx, -50, 50))
        jac = np.stack([f, f * dx], axis=1) / se[:, None]
        r = (v - f) / se
        step, *_ = np.linalg.lstsq(jac, r, rcond=None)
        coef = coef + step
        if np.all(np.abs(step) <= 1e-10 + 1e-8 * np.abs(coef)):
            break
    f = np.exp(np.clip(coef[0] + coef[1] * dx, -50, 50))
    jac = np.stack([f, f * dx], axis=1) / se[:, None]
    chi2 = float(np.sum(((v - f) / se) ** 2))
    scale = max(1.0, chi2 / max(len(x) - 2, 1))
    return {"coef": coef, "cov": np.linalg.pinv(jac.T @ jac) * scale, "x0": x0}


def line_crossing(fit: dict[str, Any], target: float | np.ndarray, coef: np.ndarray) -> Any:
    """Step where intercept + slope (x - x0) reaches ``target`` (inf where slope <= 0)."""
    a, b = coef[..., 0], coef[..., 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = fit["x0"] + (target - a) / b
    return np.where(b > 0, t, np.inf)


def crossing_interval(
    fit: dict[str, Any], target: float, now: float, *, seed: int, draws: int, level_sd: float,
    coverage: float,
) -> tuple[float, float | None]:
    """The central ``coverage`` range of the step the fitted line reaches ``target``, over
    ``draws`` draws of its parameters and of the target (normal, ``level_sd``), never before
    ``now``; the upper end ``None`` where it is unbounded."""
    rng = np.random.default_rng(seed)
    coef = rng.multivariate_normal(fit["coef"], fit["cov"], size=draws)
    targets = target + level_sd * rng.standard_normal(draws)
    t = np.maximum(line_crossing(fit, targets, coef), now)
    tail = (1 - coverage) / 2
    low, high = np.quantile(t, [tail, 1 - tail])
    return float(low), (float(high) if np.isfinite(high) else None)
