"""The circuit's claims over a sweep: are the routing heads necessary and sufficient, and is the
transition collective? Read from each run's ``ablation`` and ``groups`` analyses (``mbc analyze
RUN --kinds ablation groups``); runs without them are left out and counted.

Per run (the summary's ``ablation`` and ``groups`` entries, see
:mod:`mbc_interp.analysis.timing.extra_summary` and :mod:`mbc_interp.analysis.groups`):

- ``necessity``: the first-token candidate loss's increase (nats, mean ablation, at the last
  analysed checkpoint) when the head set is ablated; the set is the heads whose single-head
  increase is at least half of the largest (:mod:`mbc_interp.analysis.ablation`).
  ``necessity_frac`` is it over log K, the candidate loss of a model that ignores z (an upper
  bound where candidates share a first token, so the fraction understates necessity there).
- ``sufficiency``: the same increase when every *other* head is ablated; ``sufficiency_frac``
  over log K (0: the set alone carries what z-use gained).
- ``single_frac``: the costliest single head's increase over log K.
- ``marginal_undone``: the first-token marginal's increase when the set is ablated
  (``necessity_marginal``) over the clean model's marginal gain (``marginal_gain``, see
  :mod:`mbc_interp.analysis.ablation`): 0 when the ablated model still knows B's candidates
  (the set routes z and nothing more), 1 when it is back to the layout (the set carries the
  reading of B too, so ``necessity_frac`` measures more than z-use);
  ``single_marginal_undone`` the same for the costliest single head.
- ``collective_score``: the 10-90% spread of the groups' solve times over the plateau's length;
  ``solved_at_half``: the share of groups solved at the plateau's middle; ``halfway_score``:
  the same spread of the groups' half-way times (``t_loss``'s criterion per group).

Verdicts (fixed before the sweeps' ablation and groups passes ran; each a 95% Student t
interval of the mean over runs, at least :data:`~mbc_interp.sweep.intervals.MIN_SEEDS` runs, else
*underpowered*):

- **necessary**: *reproduced* when the interval of ``necessity_frac`` lies above
  :data:`HALF` (ablating the set undoes at least half of what z-use gained), *not reproduced*
  when it lies below, else *underpowered*.
- **sufficient**: *reproduced* when the interval of ``sufficiency_frac`` lies below
  :data:`HALF` (the set alone keeps more than half), *not reproduced* when above, else
  *underpowered*.
- **collective** (the paper: "sharp and collective", no group solved at half the wait):
  *reproduced* when the interval of ``collective_score`` lies below
  :data:`~mbc_interp.analysis.groups.COLLECTIVE`, *not reproduced* when it lies at or above it,
  else *underpowered*; runs whose score is undetermined are counted and left out.
- **specific** (ours; fixed on 2026-12-07, after the necessity verdict had been read on 15
  runs and before any run's marginal was measured under ablation): the head set is
  *z-specific* when the interval of ``marginal_undone`` lies below :data:`HALF` (its ablation
  leaves most of what the model knows about B's candidates), *not z-specific* when it lies
  above, else *underpowered*. Only a z-specific set's necessity is the paper's claim that the
  routing heads carry the use of z.
- **necessary, z alone** and **sufficient, z alone** (ours; fixed on 2026-12-07, after the
  *specific* verdict said the mean-ablated set is not z-specific, and before any run's
  ``ablation_z`` was computed): the same two rules on ``necessity_z_frac`` and
  ``sufficiency_z_frac``, the ``ablation_z`` kind's increases over log K. There an ablated head
  sees another selector of the same B (:mod:`mbc_interp.analysis.ablation`, ``z_resample``):
  what it carries about B stays and only what it carries about z goes, so these are 6a and 6b
  as their names say; the set is chosen by the same rule under that ablation
  (``ablation_heads_z``). ``marginal_undone_z`` is its ``marginal_undone``, a check (no
  verdict): the heads keep what they read of B, so what it undoes comes from the mismatch
  between the z the set reads and the z the rest reads. For the same reason the z-alone
  sufficiency is stricter than "the set alone": the other heads carry another z, not none,
  and the set must outweigh them. Beside it, in how many runs the patching's routing head is
  in that set (the two methods agreeing on which heads carry z).
- **collective, half-way** (ours; fixed on 2026-12-08, after the *collective* verdict had been
  read on 13 runs and before any run's half-way times were computed): the *collective* rule on
  ``halfway_score``. A solve time is read in the drop's tail (each group's loss below 0.05 of
  chance), so its spread measures how the groups finish as much as when they escape; the
  half-way time is when each group escapes by the criterion ``t_loss`` times the drop with.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.groups import COLLECTIVE
from mbc_interp.sweep.intervals import MIN_SEEDS, mean_ci

HALF = 0.5
"""The share of z-use's gain (log K) the necessity and sufficiency verdicts are judged at."""

CIRCUIT_COLUMNS = (
    "ablation_step", "ablation_heads", "necessity", "sufficiency", "costliest_head",
    "costliest_head_increase", "necessity_frac", "sufficiency_frac", "single_frac",
    "collective_score", "collective", "solved_at_half", "n_groups", "n_solved_groups",
    "necessity_marginal", "marginal_gain", "marginal_undone", "single_marginal_undone",
    "ablation_heads_z", "necessity_z_frac", "sufficiency_z_frac", "single_z_frac",
    "marginal_undone_z", "halfway_score", "halfway", "n_halfway_groups",
)  # fmt: skip


def circuit_fields(summary: dict[str, Any], log_k: float | None) -> dict[str, Any]:
    """One run's :data:`CIRCUIT_COLUMNS` from its summary (None where not analysed)."""
    out: dict[str, Any] = dict.fromkeys(CIRCUIT_COLUMNS)
    a, g = summary.get("ablation") or {}, summary.get("groups") or {}
    frac = (lambda v: None if v is None or not log_k else v / log_k)  # noqa: E731
    if a:
        out.update(ablation_step=a.get("step"), necessity=a.get("necessity"),
                   sufficiency=a.get("sufficiency"), costliest_head=a.get("costliest_head"),
                   costliest_head_increase=a.get("costliest_head_increase"),
                   ablation_heads="+".join(a.get("heads") or []) or None)  # fmt: skip
        out.update(necessity_frac=frac(a.get("necessity")),
                   sufficiency_frac=frac(a.get("sufficiency")),
                   single_frac=frac(a.get("costliest_head_increase")))  # fmt: skip
        marg, gain = a.get("necessity_marginal"), a.get("marginal_gain")
        out.update(necessity_marginal=marg, marginal_gain=gain,
                   marginal_undone=_share(marg, gain),
                   single_marginal_undone=_share(a.get("costliest_head_marginal"), gain))
    z = summary.get("ablation_z") or {}
    if z:
        out.update(ablation_heads_z="+".join(z.get("heads") or []) or None,
                   necessity_z_frac=frac(z.get("necessity")),
                   sufficiency_z_frac=frac(z.get("sufficiency")),
                   single_z_frac=frac(z.get("costliest_head_increase")),
                   marginal_undone_z=_share(z.get("necessity_marginal"),
                                            z.get("marginal_gain")))  # fmt: skip
    if g:
        out.update({k: g.get(k) for k in ("collective_score", "collective", "solved_at_half",
                                          "n_groups", "n_solved_groups", "halfway_score",
                                          "halfway", "n_halfway_groups")})  # fmt: skip
    return out


def _share(value: float | None, gain: float | None) -> float | None:
    """``value`` over the marginal's ``gain`` (None where either is missing or the gain is 0)."""
    return value / gain if value is not None and gain else None


def _mean_of(values: pd.Series) -> dict[str, Any] | None:
    """The mean and t interval of the finite ``values`` (None where there are none)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    return asdict(mean_ci(v.to_numpy(float))) if len(v) else None


def _judge(values: pd.Series, threshold: float, above_is_paper: bool) -> dict[str, Any]:
    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    v = v[np.isfinite(v)]
    res: dict[str, Any] = {"n_runs": len(v), "threshold": threshold}
    if len(v) == 0:
        return {**res, "verdict": "not tested", "why": "no run analysed for it"}
    m = mean_ci(v)
    res["mean"] = asdict(m)
    lo, hi = m.ci
    if len(v) < MIN_SEEDS or not (math.isfinite(lo) and math.isfinite(hi)):
        res["verdict"] = "underpowered"
        res["why"] = f"{len(v)} run(s), fewer than the {MIN_SEEDS} a verdict needs"
        return res
    paper_side = lo > threshold if above_is_paper else hi < threshold
    other_side = hi < threshold if above_is_paper else lo >= threshold
    res["verdict"] = ("reproduced" if paper_side else "not reproduced" if other_side
                      else "underpowered")  # fmt: skip
    return res


def _with_columns(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.assign(**{c: None for c in CIRCUIT_COLUMNS if c not in runs})


def collective_verdict(runs: pd.DataFrame) -> dict[str, Any]:
    """The collective verdict of the module's rule over ``runs`` (rows with the groups'
    :data:`CIRCUIT_COLUMNS`, of any task), with the runs' kinds and the share of groups
    solved at the plateau's middle."""
    runs = _with_columns(runs)
    out = _judge(runs.collective_score, COLLECTIVE, above_is_paper=False)
    kinds = runs.collective.dropna().value_counts().to_dict()
    out["by_run"] = {str(k): int(v) for k, v in kinds.items()}
    out["solved_at_half"] = _mean_of(runs.solved_at_half)
    return out


def halfway_verdict(runs: pd.DataFrame) -> dict[str, Any]:
    """The collective rule on the groups' half-way scores (the *collective, half-way* verdict
    of the module docstring), with the runs' kinds."""
    runs = _with_columns(runs)
    out = _judge(runs.halfway_score, COLLECTIVE, above_is_paper=False)
    out["by_run"] = {str(k): int(v) for k, v in runs.halfway.dropna().value_counts().items()}
    return out


def circuit_verdicts(runs: pd.DataFrame) -> dict[str, Any]:
    """The three verdicts of the module's rules over ``runs`` (rows with
    :data:`CIRCUIT_COLUMNS`), with what they rest on."""
    runs = _with_columns(runs)
    out = {
        "necessary": _judge(runs.necessity_frac, HALF, above_is_paper=True),
        "sufficient": _judge(runs.sufficiency_frac, HALF, above_is_paper=False),
        "collective": collective_verdict(runs),
        "collective_halfway": halfway_verdict(runs),
    }
    out["single_head"] = _judge(runs.single_frac, HALF, above_is_paper=True)
    specific = _judge(runs.marginal_undone, HALF, above_is_paper=False)
    words = {"reproduced": "z-specific", "not reproduced": "not z-specific"}
    out["specific"] = {**specific, "verdict": words.get(specific["verdict"], specific["verdict"])}
    out["specific"]["single"] = _mean_of(runs.single_marginal_undone)
    heads = runs.ablation_heads.dropna().value_counts().to_dict()
    out["necessary"]["head_sets"] = {str(k): int(v) for k, v in heads.items()}
    out["necessary_z"] = _judge(runs.necessity_z_frac, HALF, above_is_paper=True)
    out["sufficient_z"] = _judge(runs.sufficiency_z_frac, HALF, above_is_paper=False)
    heads_z = runs.ablation_heads_z.dropna().value_counts().to_dict()
    out["necessary_z"]["head_sets"] = {str(k): int(v) for k, v in heads_z.items()}
    out["necessary_z"]["single"] = _mean_of(runs.single_z_frac)
    out["necessary_z"]["marginal_undone"] = _mean_of(runs.marginal_undone_z)
    out["necessary_z"]["routing_head_in_set"] = _routing_head_in_set(runs)
    return out


def _routing_head_in_set(runs: pd.DataFrame) -> dict[str, int] | None:
    """In how many runs with both the patching's routing head (the summary's ``routing_head``)
    is in the z-alone set: two methods' agreement on which heads carry z."""
    if "routing_head" not in runs:
        return None
    both = runs[runs.ablation_heads_z.notna() & runs.routing_head.notna()]
    if both.empty:
        return None
    inside = sum(str(r.routing_head) in str(r.ablation_heads_z).split("+")
                 for r in both.itertuples())  # fmt: skip
    return {"n": int(inside), "of": len(both)}
