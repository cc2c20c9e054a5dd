"""When did the routing circuit form, relative to the loss drop? ``RUN/analysis/summary.json``.

Definitions (also in the README):

- Loss times (``t_plateau_start``, ``plateau_loss``, ``t_loss``, ``t_solved``) come from the
  logged eval loss, see :func:`mbc_interp.analysis.transition.detect_loss_transition`.
- Routing score of a head (chooses the head; at the last analysed checkpoint):
  ``attn_to_z x clip(patch_norm, 0, 1)``: attention from SEP to z times the share of the
  clean - corrupt logit difference that patching the head's output (all positions) restores.
  Attention alone can be a sink; the causal factor keeps only heads whose reading of z moves
  the answer. It is scale-free, but undefined on the plateau (no gap to restore), so it selects
  heads at the end and does not time them.
- ``routing_head``: the largest routing score. ``routing_heads`` (the circuit): the heads whose
  score is >= ``CIRCUIT_FRAC`` of the top one.
- ``t_route``: onset of the routing head's attention to z: the first sustained crossing of half
  way from its start to its final value, interpolated
  (:func:`~mbc_interp.analysis.transition.onset`); this is when the head starts to read z.
  ``t_route_patch``: onset of its raw patching effect (logits), when what it reads starts to
  move the output; the raw effect keeps growing as the output sharpens, so it lags by nature.
  ``t_circuit`` / ``t_circuit_patch``: the same for the circuit's mean attention / summed
  effect; ``t_lens``: onset of the logit lens's probability of the correct target per layer.
- ``lead_fraction = (t_loss - t_route) / (t_loss - t_plateau_start)``: 1 = the head forms as the
  plateau starts, 0 = together with the drop, < 0 = after it. ``lead_fraction_patch`` uses
  ``t_route_patch``. Every time is also given in tokens seen.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.transition import (
    detect_loss_transition,
    lead_fraction,
    onset,
    steps_to_tokens,
)
from mbc_interp.run import Run
from mbc_interp.store import ANALYSIS_DIR, atomic_write

SUMMARY_FILE = "summary.json"
CIRCUIT_FRAC = 0.5
"""A head joins the circuit when its final routing score is at least this share of the top."""


def routing_scores(table: pd.DataFrame) -> pd.DataFrame:
    """Per (step, head): ``attn_to_z``, ``patch_raw``, ``patch_norm`` and ``score``
    (NaN where the normalised patching effect is undefined)."""
    attn = table[(table.analysis == "attribution") & (table.metric == "attn_to_z")]
    patch = table[
        (table.analysis == "patching")
        & (table.kind == "head_out_all_pos")
        & (table.component != "baseline")  # the clean / corrupt reference rows
    ]
    wide = (
        pd.concat([attn, patch])
        .pivot_table(index=["step", "tokens", "component"], columns="metric", values="value")
        .reset_index()
    )
    if "patch_raw" not in wide:
        raise ValueError("the timeline has no head_out_all_pos patching: add it to patch_kinds")
    norm = wide["patch_norm"] if "patch_norm" in wide else float("nan")
    wide["score"] = wide["attn_to_z"] * pd.Series(norm, index=wide.index).clip(0.0, 1.0)
    return wide.sort_values(["component", "step"]).reset_index(drop=True)


def summarize(run: Run, table: pd.DataFrame) -> dict[str, Any]:
    """The transition summary of a run from its metrics and analysis timeline."""
    metrics = run.metrics
    per_step = run.config.tokens_per_step
    lt = detect_loss_transition(
        metrics["step"].to_numpy(float), metrics["loss"].to_numpy(float), run.log_k
    )
    out: dict[str, Any] = {"log_k": run.log_k, **lt.to_dict()}
    out.update(
        routing_head=None, routing_heads=[], final_scores={}, t_route=None, t_route_patch=None,
        t_circuit=None, t_circuit_patch=None, t_lens={}, lead_fraction=None,
        lead_fraction_patch=None,
    )  # fmt: skip
    if table.empty:
        out["routing_reason"] = "no checkpoint analysed"
        return _with_tokens(out, per_step)

    scores = routing_scores(table)
    last = scores[scores.step == scores.step.max()].set_index("component")
    top = last["score"].max()
    out["final_scores"] = {h: _num(v) for h, v in last["score"].items()}
    if not top > 0:  # NaN (no clean - corrupt gap: z is not read) or no positive effect
        out["routing_reason"] = (
            "no head routes z at the last analysed checkpoint: the normalised patching effect is "
            "undefined (clean and corrupt answers barely differ) or no head restores any of it"
        )
    else:
        head = str(last["score"].idxmax())
        circuit = sorted(h for h, v in last["score"].items() if v >= CIRCUIT_FRAC * top)
        curve = scores[scores.component == head]
        steps = curve["step"].to_numpy(float)
        out["routing_head"], out["routing_heads"] = head, circuit
        out["t_route"] = onset(steps, curve["attn_to_z"].to_numpy(float))
        out["t_route_patch"] = onset(steps, curve["patch_raw"].to_numpy(float))
        members = scores[scores.component.isin(circuit)].groupby("step")
        attn, effect = members["attn_to_z"].mean(), members["patch_raw"].sum()
        out["t_circuit"] = onset(attn.index.to_numpy(float), attn.to_numpy(float))
        out["t_circuit_patch"] = onset(effect.index.to_numpy(float), effect.to_numpy(float))
    lens = table[(table.analysis == "logit_lens") & (table.metric == "correct_prob")]
    for stage, curve in lens.groupby("component", sort=False):
        curve = curve.sort_values("step")
        out["t_lens"][str(stage)] = onset(
            curve["step"].to_numpy(float), curve["value"].to_numpy(float)
        )
    out["lead_fraction"] = lead_fraction(out["t_route"], lt.t_loss, lt.t_plateau_start)
    out["lead_fraction_patch"] = lead_fraction(out["t_route_patch"], lt.t_loss, lt.t_plateau_start)
    out["n_checkpoints_analysed"] = int(table["step"].nunique())
    return _with_tokens(out, per_step)


def _with_tokens(out: dict[str, Any], tokens_per_step: int) -> dict[str, Any]:
    keys = [k for k, v in out.items() if k.startswith("t_") and not isinstance(v, dict)]
    out["tokens"] = {k: steps_to_tokens(out[k], tokens_per_step) for k in keys}
    out["tokens"]["t_lens"] = {
        k: steps_to_tokens(v, tokens_per_step) for k, v in out["t_lens"].items()
    }
    out["tokens_per_step"] = tokens_per_step
    return {k: _num(v) for k, v in out.items()}


def _num(v: Any) -> Any:
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(v, dict):
        return {k: _num(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_num(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_summary(run: Run, summary: dict[str, Any]) -> None:
    path = run.path / ANALYSIS_DIR / SUMMARY_FILE
    atomic_write(path, (json.dumps(summary, indent=1) + "\n").encode())


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable summary (what ``mbc analyze`` prints)."""

    def t(key: str) -> str:
        v, tok = summary.get(key), summary["tokens"].get(key)
        return "n/a" if v is None else f"step {v:,.0f} ({tok:,.0f} tokens)"

    lines = [
        f"log K            {summary['log_k']:.4f}",
        f"plateau loss     {_fmt(summary.get('plateau_loss'))}",
        f"status           {summary['status']}"
        + (f" ({summary['reason']})" if summary.get("reason") else ""),
        f"t_plateau_start  {t('t_plateau_start')}",
        f"t_route          {t('t_route')}   [its patching effect: {t('t_route_patch')}]",
        f"t_loss           {t('t_loss')}",
        f"t_solved         {t('t_solved')}",
        f"lead fraction    {_fmt(summary.get('lead_fraction'))}"
        f"   [by patching effect: {_fmt(summary.get('lead_fraction_patch'))}]",
        f"routing head     {summary.get('routing_head') or 'none'}"
        f"   circuit: {', '.join(summary.get('routing_heads') or []) or 'none'}",
    ]
    if summary.get("routing_reason"):
        lines.append(f"                 ({summary['routing_reason']})")
    return "\n".join(lines)


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
