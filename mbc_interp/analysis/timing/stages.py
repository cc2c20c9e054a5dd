"""Marginal before conditional? The two stages timed with matched criteria, and where the raw
loss rests.

Rules (fixed before the paper-regime sweep, ``sweeps/paper_regime.toml``, ran):

- **Matched crossings.** Both stages are read from one evaluation's candidate rows, on the
  same scale (nats, a ``-log`` probability) and with the same kind of crossing: the first
  downward crossing of the half-way level between the measure's chance value and its solved
  value 0, held for :data:`HOLD` evaluations and linearly interpolated (the crossing rule of
  :mod:`mbc_interp.analysis.timing.transition`).

  - ``t_marginal_seq``: ``marg_loss`` (``-log`` of the mass on B's K candidates) below half of
    ``marg_chance`` (the layout-only model's value);
  - ``t_conditional_seq``: ``cand_loss`` below half of log K (the least a model that ignores z
    can score; it sits above log K while B's candidates are scored unequally, so crossing half
    of it needs z);
  - ``t_marginal_first`` / ``t_conditional_first``: the first-token versions, ``marg_first_loss``
    below half of ``marg_first_chance`` and ``cand_first_loss`` below half of
    ``cand_first_floor``.

  Where the candidates differ at their first token, ``_seq`` and ``_first`` coincide.
- **Sampling error of a time** (``*_se``, steps): the measure's standard error over the rows at
  the crossing divided by the curve's slope there (from the two evaluations around it).
- **Order, per run**: ``marginal_lead_seq = t_conditional_seq - t_marginal_seq`` (steps; > 0:
  the marginal first), with ``marginal_lead_seq_se`` the two errors in quadrature; ``order_seq``
  is ``marginal_first`` when the lead exceeds :data:`ORDER_Z` standard errors,
  ``conditional_first`` when it is below minus that, ``together`` otherwise, and null when
  either time is missing. The same with ``_first``.
- **Where the raw loss rests** (nats per target token): ``first_rest_loss_tok`` and
  ``t_first_rest`` are the *first* stretch of >= 3 evaluations within 2% of their median after
  the loss has fallen 5% below its first value (where the model first stops improving:
  on the paper's task, once it knows the layout); ``pre_drop_loss_tok`` is the raw per-token
  loss at the last evaluation before ``t_loss`` at which the transition signal is still at or
  above :data:`PRE_DROP_FRAC` log K (just before the drop).
- **What the model knows without z**: ``zfree_gain_frac_at_marginal`` is the share of the raw
  loss's gain over the layout-only model that survives replacing z, at ``t_marginal_seq``:
  ``(format - loss_zswap) / (format - loss)`` with ``format = format_loss_tok x n_targets``
  (null for the proxy tasks, which have no layout-only value).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.timing.curves import Curve, Step
from mbc_interp.analysis.timing.stretches import first_stretch

HOLD = 2
"""Evaluations a crossing must hold for (as ``t_loss``)."""
ORDER_Z = 2.0
"""Standard errors by which one stage must lead the other for a run's order to be called."""
PRE_DROP_FRAC = 0.9
"""The signal's share of log K above which the drop has not started."""

PAIRS = {
    "seq": (("marg_loss", "marg_chance"), ("cand_loss", None)),
    "first": (("marg_first_loss", "marg_first_chance"), ("cand_first_loss", "cand_first_floor")),
}
"""For each version: (measure, chance column) of the marginal and of the conditional
(``None``: log K)."""


def half_crossing(
    steps: Curve, values: Curve, se: Curve | None, chance: float, hold: int = HOLD
) -> tuple[float | None, float | None]:
    """The held downward crossing of ``chance / 2`` (interpolated) and its sampling error in
    steps (``se`` at the crossing over the slope there); ``(None, None)`` without one."""
    s = np.asarray(steps, float)
    v = np.asarray(values, float)
    e = np.full_like(v, np.nan) if se is None else np.asarray(se, float)
    keep = np.isfinite(v)
    s, v, e = s[keep], v[keep], e[keep]
    level = chance / 2
    below = v < level
    for i in range(1, len(v) - hold + 1):
        if below[i] and not below[i - 1] and below[i : i + hold].all():
            v0, v1 = v[i - 1], v[i]
            frac = (level - v0) / (v1 - v0)
            t = float(s[i - 1] + frac * (s[i] - s[i - 1]))
            slope = abs(v1 - v0) / (s[i] - s[i - 1])
            err = float(np.nanmean(e[i - 1 : i + 1]) / slope) if slope > 0 else None
            return t, err if err is not None and np.isfinite(err) else None
    return None, None


def stage_times(m: pd.DataFrame, log_k: float) -> dict[str, Any]:
    """The matched crossings and each run's order (see the module docstring)."""
    out: dict[str, Any] = {}
    steps = m["step"].to_numpy(float)
    for version, pair in PAIRS.items():
        times = {}
        for stage, (col, chance_col) in zip(("marginal", "conditional"), pair, strict=True):
            key = f"t_{stage}_{version}"
            out[key] = out[f"{key}_se"] = None
            if col not in m or m[col].isna().all():
                continue
            chance = log_k if chance_col is None else float(m[chance_col].dropna().median())
            se = m.get(f"{col}_se")
            out[key], out[f"{key}_se"] = half_crossing(steps, m[col], se, chance)
            times[stage] = (out[key], out[f"{key}_se"])
        lead = order = err = None
        tm, tc = times.get("marginal", (None, None)), times.get("conditional", (None, None))
        if tm[0] is not None and tc[0] is not None:
            lead = tc[0] - tm[0]
            err = float(np.hypot(tm[1] or 0.0, tc[1] or 0.0))
            order = ("marginal_first" if lead > ORDER_Z * err
                     else "conditional_first" if lead < -ORDER_Z * err else "together")  # fmt: skip
        out[f"marginal_lead_{version}"], out[f"marginal_lead_{version}_se"] = lead, err
        out[f"order_{version}"] = order
    return out


def resting_levels(
    m: pd.DataFrame,
    signal: str,
    log_k: float,
    t_loss: Step | None,
    format_loss_tok: float | None,
    t_marginal: Step | None,
) -> dict[str, Any]:
    """Where the raw loss first rests and where it is just before the drop, and the share of
    its gain that survives replacing z (see the module docstring)."""
    out: dict[str, Any] = dict.fromkeys(
        ("first_rest_loss_tok", "t_first_rest", "pre_drop_loss_tok", "zfree_gain_frac_at_marginal")
    )
    if "loss_tok" not in m or m["loss_tok"].isna().all():
        return out
    rest = first_stretch(m["step"], m["loss_tok"], stop=t_loss)
    out["first_rest_loss_tok"], out["t_first_rest"] = rest.level, rest.start
    if t_loss is not None and signal in m:
        before = m[(m["step"] < t_loss) & (m[signal] >= PRE_DROP_FRAC * log_k)]
        if len(before):
            out["pre_drop_loss_tok"] = float(before["loss_tok"].iloc[-1])
    if format_loss_tok is not None and t_marginal is not None and "loss_zswap" in m:
        n_targets = float((m["loss"] / m["loss_tok"]).median())
        fmt = format_loss_tok * n_targets
        loss = float(np.interp(t_marginal, m["step"], m["loss"]))
        swapped = float(np.interp(t_marginal, m["step"], m["loss_zswap"]))
        if fmt - loss > 0:
            out["zfree_gain_frac_at_marginal"] = (fmt - swapped) / (fmt - loss)
    return out
