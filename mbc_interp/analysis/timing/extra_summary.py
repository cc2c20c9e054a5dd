"""What the summary reads from the extra kinds' rows, where they were analysed.

- ``essential``: the PCA of the projected output vectors across the analysed checkpoints and
  the trajectory's turn (:mod:`mbc_interp.analysis.dynamics.essential`): ``t_turn``, its angle, the
  components' variance shares, ``turn_minus_t_loss`` (steps) and the trajectory itself.
- ``ablation``: at the last analysed checkpoint, the head set of the ``set:`` / ``only:`` rows
  with the loss increase when it is ablated (necessity) and when every other head is
  (sufficiency), mean ablation; and the single head whose ablation costs most. The loss is the
  candidate loss where the task has candidates, else the answer loss (``metric`` says which).
  Where the rows have the first-token marginal: ``necessity_marginal``, the marginal's increase
  when the set is ablated (``costliest_head_marginal``: when the costliest head is), and
  ``marginal_gain``, the clean model's marginal gain over the layout-only model (how much of
  what it knows about B's candidates the set carries).
- ``ablation_z``: the same read from the ``ablation_z`` kind's rows (``z_resample``: an ablated
  head sees another selector of the same B), so its necessity and sufficiency are those of
  the use of z alone.
- ``weights``: the cosine between successive checkpoint-to-checkpoint updates at every analysed
  checkpoint from the third on, read from the ``param_sketch`` rows
  (:mod:`mbc_interp.analysis.dynamics.weights`), and its median.
- ``atp``: at the checkpoints where exact patching ran too, the Spearman correlation between
  the attribution estimates and the exact effects, its median and range: per head over all
  positions (``heads``, beside ``head_out_all_pos``) and per layer and position of the residual
  stream (``resid_pre``).

Each kind's summary function (``*_entry``, named in its declaration in
:mod:`mbc_interp.analysis.kinds`) takes the timeline and the summary so far.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.atp import rank_agreement
from mbc_interp.analysis.dynamics.essential import EssentialConfig, pca_trajectory, turn
from mbc_interp.analysis.dynamics.weights import update_cosines

ABLATION_METRICS = ("cand_loss_increase", "loss_increase")
"""What the ablation summary reads, the first the rows have: the candidate loss where the task
has candidates, else the answer loss."""


def essential_summary(table: pd.DataFrame, t_loss: float | None) -> dict[str, Any] | None:
    rows = table[(table.analysis == "essential") & (table.metric == "projection")]
    if rows.empty:
        return None
    wide = rows.pivot_table(index="step", columns="component", values="value").dropna()
    if len(wide) < 3:
        return None
    cfg = EssentialConfig()
    coords, share = pca_trajectory(wide.to_numpy(float), cfg.n_components)
    out = turn(wide.index.to_numpy(float), coords, cfg.window)
    t = out["t_turn"]
    return {"t_turn": t, "turn_angle": out["turn_angle"],
            "variance_share": [float(x) for x in share],
            "turn_minus_t_loss": None if t is None or t_loss is None else t - t_loss,
            "trajectory": {"step": [float(x) for x in wide.index],
                           **{f"pc{i + 1}": [float(x) for x in coords[:, i]]
                              for i in range(coords.shape[1])}}}  # fmt: skip


def ablation_summary(
    table: pd.DataFrame, analysis: str = "ablation", method: str = "mean"
) -> dict[str, Any] | None:
    """The ``ablation`` entry (see the module doc) from the rows of ``analysis`` under
    ``method`` (``ablation_z``: ``z_resample``)."""
    found = table[(table.analysis == analysis) & (table.kind == method)]
    metric = next((m for m in ABLATION_METRICS if (found.metric == m).any()), None)
    if metric is None:
        return None
    rows = found[found.metric == metric]
    last = _last_values(found, metric)
    sets = [c for c in last.index if c.startswith("set:")]
    heads = last[[c for c in last.index if c.startswith("L")]]
    out: dict[str, Any] = {"step": float(rows.step.max()), "metric": metric,
                           "costliest_head": str(heads.idxmax()) if len(heads) else None,
                           "costliest_head_increase": float(heads.max()) if len(heads) else None}
    if sets:
        label = sets[0][4:]
        out.update(heads=label.split("+"), necessity=float(last[f"set:{label}"]),
                   sufficiency=float(last[f"only:{label}"]))  # fmt: skip
        marg = _last_values(found, "marg_loss_increase")
        gain = _last_values(found, "marg_gain")
        if f"set:{label}" in marg and "clean" in gain:
            top = out["costliest_head"]
            out.update(necessity_marginal=float(marg[f"set:{label}"]),
                       costliest_head_marginal=float(marg[top]) if top in marg else None,
                       marginal_gain=float(gain["clean"]))  # fmt: skip
    return out


def _last_values(rows: pd.DataFrame, metric: str) -> pd.Series:
    """``metric``'s value per component at its last analysed step (empty where none)."""
    rows = rows[rows.metric == metric]
    return rows[rows.step == rows.step.max()].set_index("component")["value"]


def weights_summary(table: pd.DataFrame) -> dict[str, Any] | None:
    import torch

    rows = table[(table.analysis == "weights") & (table.metric == "param_sketch")]
    if rows.empty:
        return None
    wide = rows.pivot_table(index="step", columns="component", values="value").dropna()
    if len(wide) < 3:
        return None
    sketches = [{"sketch": torch.tensor(v)} for v in wide.to_numpy(float)]
    cosines = update_cosines(sketches)
    finite = [c for c in cosines if np.isfinite(c)]
    return {"update_cosine": {"step": [float(s) for s in wide.index[2:]], "value": cosines},
            "update_cosine_median": float(np.median(finite)) if finite else None}  # fmt: skip


ZERO = 1e-6
"""A site whose estimate and exact effect are both below this share of the largest is one no
patch can change (its clean and corrupt activations agree)."""
ATP_SITES: dict[str, tuple[str, list[str]]] = {
    "heads": ("head_out_all_pos", ["component"]),
    "resid_pre": ("resid_pre", ["layer", "pos"]),
}
"""What the atp summary compares with exact patching: its key, the site kind of both tables'
rows and the columns naming a site in both (a residual site's label differs between them)."""


def atp_summary(table: pd.DataFrame) -> dict[str, Any] | None:
    out = {name: found for name, (kind, keys) in ATP_SITES.items()
           if (found := _atp_agreement(table, kind, keys)) is not None}  # fmt: skip
    return out or None


def _atp_agreement(table: pd.DataFrame, kind: str, keys: list[str]) -> dict[str, Any] | None:
    """Spearman's rho between the atp estimates and exact patching of one site kind at each
    checkpoint where both ran; the sites where both are 0 (below :data:`ZERO` of the largest:
    positions before the corruption, which no patch changes) are left out, so that their tie
    does not inflate it."""
    est = table[(table.analysis == "atp") & (table.kind == kind) & (table.metric == "atp_raw")]
    exact = table[(table.analysis == "patching") & (table.kind == kind)
                  & (table.metric == "patch_raw")]  # fmt: skip
    rhos = []
    for step, e in est.groupby("step"):
        x = exact[exact.step == step]
        if x.empty:
            continue
        both = e.set_index(keys)["value"].to_frame("est").join(
            x.set_index(keys)["value"].to_frame("exact"), how="inner")
        size = both.abs().max(axis=1)
        both = both[size > ZERO * max(float(size.max()), 1e-300)]
        rhos.append(rank_agreement(both["est"].to_numpy(), both["exact"].to_numpy()))
    rhos = [r for r in rhos if np.isfinite(r)]
    if not rhos:
        return None
    return {"n_checkpoints": len(rhos), "rank_agreement_median": float(np.median(rhos)),
            "rank_agreement_min": float(min(rhos)), "rank_agreement_max": float(max(rhos))}


# -- the kinds' summary functions: (timeline, summary so far) -> entry ------------------------
def essential_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    return essential_summary(table, summary["t_loss"])


def ablation_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    return ablation_summary(table)


def ablation_z_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    return ablation_summary(table, "ablation_z", "z_resample")


def weights_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    return weights_summary(table)


def atp_entry(table: pd.DataFrame, summary: Mapping[str, Any]) -> dict[str, Any] | None:
    return atp_summary(table)
