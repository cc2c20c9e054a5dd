"""When does the transition happen, what moves before it, and (on the wind tunnel) which heads
carry z? ``RUN/analysis/summary.json``.

Rules (also in the README; fixed before the sweeps that report them):

- **Loss times** (``t_plateau_start``, ``plateau_loss``, ``t_loss``, ``t_solved``) come from
  :func:`~mbc_interp.analysis.timing.transition.detect_loss_transition` on the logged raw loss
  (``transition_signal = "loss"``). When the raw loss never rests at log K (the paper's task:
  its A strings are random, and the raw loss rests at an alphabet-level value) and the run
  logged the candidate-normalised loss, they come from ``cand_loss`` instead
  (``transition_signal = "cand_loss"``) by
  :func:`~mbc_interp.analysis.timing.transition.detect_rest_transition`: the plateau starts where
  the raw per-token loss first rests (``t_first_rest``), the drop is the held crossing of
  0.5 log K after it, and no K level is lost because its candidate loss sits more than 5%
  above log K while z is ignored (it is >= log K, equal only when B's candidates are scored
  alike). ``rest_loss_tok`` then reports the raw per-token loss's median over the last quarter
  of the plateau.
- **The two stages, matched** (:mod:`mbc_interp.analysis.timing.stages`): ``t_marginal_seq`` /
  ``t_conditional_seq`` (and ``_first``), each a half-way crossing on the log scale from its
  chance value to 0 on the same rows, their sampling errors, each run's order; where the raw
  loss first rests (``first_rest_loss_tok``, ``t_first_rest``) and where it is just before the
  drop (``pre_drop_loss_tok``); the share of its gain that survives replacing z.
- **The raw loss's longest rest**: ``flat_loss_tok`` is the raw per-token loss's longest
  resting stretch (:func:`~mbc_interp.analysis.timing.stretches.flat_stretch`: >= 3 evaluations
  within 2% of its median, after the loss has fallen 5% from its initial value and before
  ``t_loss``), from ``t_flat_start`` to ``t_flat_end``, beside ``log_k`` and
  ``format_loss_tok``, the per-token loss of a model that knows the layout and nothing about
  which characters (string tasks: ``target_len log 36 / (target_len + 1)``).
  ``marginal_gap_at_drop`` is ``loss - cand_loss`` at ``t_loss`` (nats per example): ``-log``
  of the probability the model puts on B's K candidates when they are scored as whole
  sequences (an upper bound when only their first tokens are; it mixes the loss's rows with
  the candidate rows: the matched ``marg_loss`` measures the same on one set of rows).
- **Every task** (:mod:`mbc_interp.analysis.timing.signals`): the times above are read off the
  task's transition metric (``transition_signal``; ``loss_scale`` is its chance level,
  ``log_k`` its resting level, null where it has none); ``progress_signal`` names the task's
  primary hidden-progress signal and ``t_progress`` is its onset (``t_progress_reason`` says
  why where it is null); ``progress`` holds every signal's onset, phase and lead fraction.
  On the wind tunnel the primary signal is Δz and ``t_progress`` equals ``t_z``.
- **Hidden progress**: ``t_z`` is the onset of Δz (``dz``, loss with z deranged within each B
  group minus the clean loss) above 3 standard errors, held for 3 evaluations
  (:func:`~mbc_interp.analysis.timing.growth.growth_onset`); ``t_z_cand`` the same for the
  candidate version. ``z_doubling_steps`` (and ``_tokens``): Δz's doubling time, fitted from
  ``t_z`` (or the plateau start) to ``t_loss``
  (:func:`~mbc_interp.analysis.timing.growth.growth_rate`).
- **Collective or one by one** (where the ``groups`` kind ran): ``groups`` holds the rules of
  :mod:`mbc_interp.analysis.groups` applied to the analysed checkpoints: the solved fraction
  at the plateau's middle, the groups' 10-90% solve-time spread over the plateau's duration
  and its verdict.
- **The extra kinds** (where analysed): each kind declaring a summary function
  (:attr:`~mbc_interp.analysis.registry.ExtraKind.summary`) has an entry under its name:
  ``groups`` (above), ``essential`` (the output trajectory's turn against ``t_loss``),
  ``ablation`` (the head set's necessity and sufficiency at the last checkpoint), ``atp``
  (attribution patching's rank agreement with exact head patching), ``weights`` (the cosines
  of successive updates): :mod:`mbc_interp.analysis.timing.extra_summary`.
- **Routing heads**: each head's z-use at each analysed checkpoint is its total effect, the raw
  effect of patching its clean output into the corrupt run (logits, with a standard error) and,
  beside it, its direct z-effect (:mod:`mbc_interp.analysis.zuse`). A head's routing score is
  its total effect averaged over the window from ``t_plateau_start`` to ``t_loss`` (trapezoids
  over the checkpoints in it; the whole run when either is missing or the window holds fewer
  than 2 checkpoints): the head that carries z-use while it grows, not only at the end.
  ``routing_head`` is the top score (none if it is not > 0), ``routing_heads`` the heads within
  ``CIRCUIT_FRAC`` of it; ``routing_head_final`` is the top total effect at the last analysed
  checkpoint, shown beside it.
- ``t_route``: onset of the routing head's total effect above 3 standard errors, held for 2
  checkpoints; ``t_route_direct`` the same for its direct z-effect.
- ``lead_fraction = (t_loss - t_route) / (t_loss - t_plateau_start)`` and ``lead_fraction_z``
  from ``t_z``. An onset before the plateau starts is not a lead: the fraction is null, and
  ``route_phase`` / ``z_phase`` say ``before_plateau`` (``after_drop`` likewise).
- ``t_attn_to_z``: onset (half-way crossing) of the routing head's attention from the answer
  position to z. It times when z is moved next to the answer position, not when it is used;
  it is reported beside the leads and never used for one.
Every time is also given in tokens seen.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.analysis.registry import summary_kinds
from mbc_interp.analysis.timing.growth import growth_onset, growth_rate
from mbc_interp.analysis.timing.signals import progress_summary, transition_of
from mbc_interp.analysis.timing.stages import resting_levels, stage_times
from mbc_interp.analysis.timing.stretches import flat_stretch
from mbc_interp.analysis.timing.transition import (
    lead_fraction,
    onset,
    phase_of,
    steps_to_tokens,
)
from mbc_interp.core.files import write_if_changed
from mbc_interp.core.jsonsafe import json_safe
from mbc_interp.store.layout import ANALYSIS_DIR, SUMMARY_FILE
from mbc_interp.store.run import Run

CIRCUIT_FRAC = 0.5
"""A head joins the circuit when its routing score is at least this share of the top."""
ROUTE_SUSTAIN = 2
"""Checkpoints a head's effect must stay above its floor (checkpoints are sparser than evals)."""
Z_SUSTAIN = 3


def z_use_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (step, head): ``total`` / ``total_se`` (raw head patching effect, logits),
    ``direct`` / ``direct_se`` (direct z-effect), ``attn_to_z`` and ``attn_prev``."""
    heads = table[table["head"].notna()]
    keep = (
        ((heads.analysis == "patching") & (heads.kind == "head_out_all_pos")
         & heads.metric.isin(["patch_raw", "patch_raw_se"]))
        | ((heads.analysis == "attribution") & heads.metric.isin(["attn_to_z", "attn_prev"]))
        | (heads.analysis == "zuse")
    )  # fmt: skip
    wide = heads[keep].pivot_table(
        index=["step", "tokens", "component"], columns="metric", values="value"
    )
    if "patch_raw" not in wide:
        raise ValueError("the timeline has no head_out_all_pos patching: add it to patch_kinds")
    wide = wide.rename(
        columns={"patch_raw": "total", "patch_raw_se": "total_se", "zuse_direct": "direct",
                 "zuse_direct_se": "direct_se"}
    ).reset_index()  # fmt: skip
    return wide.sort_values(["component", "step"]).reset_index(drop=True)


def routing_scores(z_use: pd.DataFrame, start: float | None, stop: float | None) -> pd.Series:
    """Each head's total effect averaged over ``[start, stop]`` (see the module docstring)."""
    steps = np.sort(z_use.step.unique())
    inside = steps[(steps >= (start if start is not None else -np.inf))
                   & (steps <= (stop if stop is not None else np.inf))]  # fmt: skip
    if start is None or stop is None or len(inside) < 2:
        inside = steps
    out = {}
    for head, curve in z_use[z_use.step.isin(inside)].groupby("component"):
        x, y = curve.step.to_numpy(float), curve.total.to_numpy(float)
        out[head] = float(np.trapezoid(y, x) / (x[-1] - x[0])) if len(x) > 1 else float(y[0])
    return pd.Series(out, dtype=float)


def _hidden_progress(m: pd.DataFrame, out: dict[str, Any]) -> None:
    if "dz" not in m or m["dz"].isna().all():
        out["t_z_reason"] = "the run logged no Δz (trained before it existed)"
        return
    steps = m["step"].to_numpy(float)
    z = growth_onset(steps, m["dz"], m["dz_se"], sustain=Z_SUSTAIN)
    out["t_z"], out["t_z_reason"] = z.t, z.reason
    out["t_z_cand"] = growth_onset(steps, m["dz_cand"], m["dz_cand_se"], sustain=Z_SUSTAIN).t
    start = z.t if z.t is not None else out["t_plateau_start"]
    g = growth_rate(steps, m["dz"], m["dz_se"], start, out["t_loss"])
    out["z_doubling_steps"], out["z_growth_fit"] = g.doubling, g.to_dict()
    out["z_phase"] = phase_of(z.t, out["t_plateau_start"], out["t_loss"])
    if out["z_phase"] == "plateau":
        out["lead_fraction_z"] = lead_fraction(z.t, out["t_loss"], out["t_plateau_start"])
    if out["transition_signal"] == "cand_loss" and out["t_plateau_end"] is not None:
        window = m[(m.step >= out["t_plateau_start"]) & (m.step <= out["t_plateau_end"])]
        late = window.tail(max(1, len(window) // 4))
        out["rest_loss_tok"] = float(late["loss_tok"].median()) if "loss_tok" in late else None


def _marginal_stage(m: pd.DataFrame, format_loss_tok: float | None, out: dict[str, Any]) -> None:
    """Where the raw per-token loss rests, and how much the model knows of the marginal
    P(A|B) when the drop happens (see the module docstring)."""
    out["format_loss_tok"] = format_loss_tok
    if "loss_tok" in m and m["loss_tok"].notna().any():
        flat = flat_stretch(m["step"], m["loss_tok"], stop=out["t_loss"])
        out["flat_loss_tok"], out["t_flat_start"], out["t_flat_end"] = (
            flat.level, flat.start, flat.end
        )  # fmt: skip
    if "cand_loss" not in m or m["cand_loss"].isna().all():
        return
    out.update(stage_times(m, out["log_k"]))
    out.update(resting_levels(m, out["transition_signal"], out["log_k"], out["t_loss"],
                              format_loss_tok, out.get("t_marginal_seq")))  # fmt: skip
    c = m[m["cand_loss"].notna()]
    t = out["t_loss"]
    if t is not None:
        gap = np.interp(t, m["step"], m["loss"]) - np.interp(t, c["step"], c["cand_loss"])
        out["marginal_gap_at_drop"] = float(gap)


def _routing(table: pd.DataFrame, out: dict[str, Any]) -> None:
    z_use = z_use_table(table)
    scores = routing_scores(z_use, out["t_plateau_start"], out["t_loss"])
    last = z_use[z_use.step == z_use.step.max()].set_index("component")
    out["routing_scores"] = {h: float(v) for h, v in scores.items()}
    out["routing_head_final"] = str(last["total"].idxmax()) if last["total"].max() > 0 else None
    top = scores.max() if len(scores) else float("nan")
    if not top > 0:
        out["routing_reason"] = (
            "no head's output carries z-use into the answer over the window (every head's mean "
            "patching effect is <= 0)"
        )
        return
    head = str(scores.idxmax())
    out["routing_head"] = head
    out["routing_heads"] = sorted(h for h, v in scores.items() if v >= CIRCUIT_FRAC * top)
    curve = z_use[z_use.component == head]
    steps = curve["step"].to_numpy(float)
    route = growth_onset(steps, curve["total"], curve["total_se"], sustain=ROUTE_SUSTAIN)
    out["t_route"], out["t_route_reason"] = route.t, route.reason
    if "direct" in curve:
        out["t_route_direct"] = growth_onset(
            steps, curve["direct"], curve["direct_se"], sustain=ROUTE_SUSTAIN
        ).t
    out["t_attn_to_z"] = onset(steps, curve["attn_to_z"].to_numpy(float))
    out["route_phase"] = phase_of(route.t, out["t_plateau_start"], out["t_loss"])
    if out["route_phase"] == "plateau":
        out["lead_fraction"] = lead_fraction(route.t, out["t_loss"], out["t_plateau_start"])


def _kind_entries(table: pd.DataFrame, out: dict[str, Any]) -> None:
    """Each extra kind's entry (its :attr:`~mbc_interp.analysis.registry.ExtraKind.summary`),
    under its name, where the timeline has its rows and the kind gives one, in the registry's
    summary order. Each reads the summary's entries before the kinds', read-only."""
    view = MappingProxyType(dict(out))
    for kind in summary_kinds():
        if not (table.analysis == kind.name).any():
            continue
        if kind.name in out:
            raise ValueError(f"analysis kind {kind.name!r}: its summary entry would replace the "
                             f"summary's own {kind.name!r}")  # fmt: skip
        entry = kind.summary_function()(table, view)
        if entry is not None:
            out[kind.name] = entry


def summarize(run: Run, table: pd.DataFrame) -> dict[str, Any]:
    """The transition summary of a run from its metrics and analysis timeline."""
    metrics = run.metrics  # read once: the file is read fresh on every access
    task = run.task
    transition, signal = transition_of(metrics, task.transition)
    out: dict[str, Any] = {"transition_signal": signal, **transition,
                           "log_k": task.transition.rest_level,
                           "loss_scale": task.transition.scale}  # fmt: skip
    out.update(
        t_z=None, t_z_cand=None, z_doubling_steps=None, z_phase=None, lead_fraction_z=None,
        routing_head=None, routing_heads=[], routing_head_final=None, routing_scores={},
        t_route=None, t_route_direct=None, t_attn_to_z=None, route_phase=None,
        lead_fraction=None, flat_loss_tok=None, t_flat_start=None, t_flat_end=None,
        marginal_gap_at_drop=None,
    )  # fmt: skip
    _hidden_progress(metrics, out)
    out.update(progress_summary(task.progress_signals, metrics, table, out["t_plateau_start"],
                                out["t_loss"]))  # fmt: skip
    _marginal_stage(metrics, getattr(run.config.task, "format_loss_tok", None), out)
    if table.empty:
        out["routing_reason"] = "no checkpoint analysed"
    else:
        if (table.analysis == "patching").any():  # the routing core ran (a task with a selector)
            _routing(table, out)
        else:
            out["routing_reason"] = "no routing analysis: the task has no selector to route"
        _kind_entries(table, out)
        out["n_checkpoints_analysed"] = int(table["step"].nunique())
    return _with_tokens(out, run.config.tokens_per_step)


def _with_tokens(out: dict[str, Any], tokens_per_step: int) -> dict[str, Any]:
    keys = [k for k, v in out.items() if k.startswith("t_") and not isinstance(v, dict | str)]
    out["tokens"] = {k: steps_to_tokens(out[k], tokens_per_step) for k in keys}
    out["z_doubling_tokens"] = steps_to_tokens(out["z_doubling_steps"], tokens_per_step)
    out["tokens_per_step"] = tokens_per_step
    return json_safe(out)


def write_summary(run: Run, summary: dict[str, Any]) -> None:
    path = run.path / ANALYSIS_DIR / SUMMARY_FILE
    write_if_changed(path, (json.dumps(summary, indent=1) + "\n").encode())


def format_summary(summary: dict[str, Any]) -> str:
    """A short human-readable summary (what ``mbc analyze`` prints)."""

    def t(key: str) -> str:
        v, tok = summary.get(key), summary["tokens"].get(key)
        return "n/a" if v is None else f"step {v:,.0f} ({tok:,.0f} tokens)"

    def phase(key: str) -> str:
        p = summary.get(key)
        return "" if p in (None, "plateau") else f"  <- {p.replace('_', ' ')}, not a lead"

    if summary.get("log_k") is None:  # a task without a log K plateau: its own signals
        return _format_task_summary(summary, t)
    lines = [
        f"log K            {summary['log_k']:.4f}   (timed on {summary['transition_signal']})",
        f"plateau loss     {_fmt(summary.get('plateau_loss'))}",
        f"status           {summary['status']}"
        + (f" ({summary['reason']})" if summary.get("reason") else ""),
        f"t_plateau_start  {t('t_plateau_start')}",
        f"t_z (Δz onset)   {t('t_z')}{phase('z_phase')}",
        f"Δz doubling      {_fmt(summary.get('z_doubling_steps'), '.0f')} steps",
        f"t_route          {t('t_route')}{phase('route_phase')}"
        f"   [direct effect: {t('t_route_direct')}]",
        f"t_loss           {t('t_loss')}",
        f"t_solved         {t('t_solved')}",
        f"lead fraction    {_fmt(summary.get('lead_fraction'))} (routing head)"
        f"   {_fmt(summary.get('lead_fraction_z'))} (Δz)",
        f"routing head     {summary.get('routing_head') or 'none'}"
        f"   circuit: {', '.join(summary.get('routing_heads') or []) or 'none'}"
        f"   (top at the end: {summary.get('routing_head_final') or 'none'})",
    ]
    for key in ("t_z_reason", "routing_reason"):
        if summary.get(key) and (key != "t_z_reason" or summary.get("t_z") is None):
            lines.append(f"                 ({summary[key]})")
    return "\n".join(lines + _extra_lines(summary))


def _extra_lines(summary: dict[str, Any]) -> list[str]:
    """The extra kinds' headline numbers, where they were analysed."""
    out = []
    a = summary.get("ablation")
    if a and a.get("heads"):
        out.append(f"ablation         set {'+'.join(a['heads'])} at step {a['step']:,.0f}: "
                   f"necessity +{a['necessity']:.2f} nats, sufficiency +{a['sufficiency']:.2f} "
                   f"nats; costliest head {a['costliest_head']} "
                   f"+{a['costliest_head_increase']:.2f}")  # fmt: skip
    g = summary.get("groups")
    if g:
        score = g.get("collective_score")
        half = g.get("solved_at_half")
        out.append(f"groups           {g['n_solved_groups']} of {g['n_groups']} solved; "
                   f"collective score {_fmt(score, '.2f')} ({g.get('collective')}); solved at "
                   f"half the plateau {_fmt(half, '.2f')}")  # fmt: skip
    return out


def _format_task_summary(summary: dict[str, Any], t: Any) -> str:
    lines = [
        f"transition       {summary['transition_signal']} (scale {summary['loss_scale']:.4f})",
        f"status           {summary['status']}"
        + (f" ({summary['reason']})" if summary.get("reason") else ""),
        f"t_plateau_start  {t('t_plateau_start')}",
        f"t_loss           {t('t_loss')}",
        f"t_solved         {t('t_solved')}",
    ]
    for name, row in (summary.get("progress") or {}).items():
        primary = " (primary)" if name == summary.get("progress_signal") else ""
        when = "n/a" if row.get("t") is None else f"step {row['t']:,.0f}"
        lead = row.get("lead_fraction")
        where = f", lead {lead:.0%} of the plateau" if lead is not None else ""
        lines.append(f"{name + primary:<16} onset {when}{where}   ({row.get('reason', '')})")
    return "\n".join(lines)


def _fmt(v: float | None, spec: str = ".4f") -> str:
    return "n/a" if v is None else format(v, spec)
