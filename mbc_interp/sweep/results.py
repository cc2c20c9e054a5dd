"""One row per run of a sweep: its axes, loss times, plateau duration and routing lead.

Definitions (the same as ``mbc analyze``; see :mod:`mbc_interp.analysis.timing.summary`):

- ``duration`` = ``t_loss - t_plateau_start``: the waiting time on the plateau, from entering
  the log K band to the loss falling below log K / 2; in steps and in tokens seen
  (``steps x batch x seq_len``) and in epochs (passes over the N = D K examples). ``t_loss``
  itself (escape time from step 0) is reported too.
- A run without a drop is right-censored: ``censored = True`` and its durations are NaN (the
  fits leave it out and count it); ``status``/``reason`` say what happened.
- ``plateau_acc``: mean exact-match accuracy over the plateau's evaluations (1/K when z is
  ignored and the marginal is learnt).
- Every time comes from the run's summary, recomputed under the current rules from its metrics
  and analysed checkpoints (a run analysed by older code is read with today's rules).
- ``lead_fraction`` (onset of the routing head's z-use above its noise floor) and
  ``lead_fraction_z`` (onset of Δz) come from that summary; an onset
  before the plateau has no lead fraction and ``route_phase`` / ``z_phase`` say so.
- ``t_loss_cum_lr``: the learning rate summed over the steps to ``t_loss`` (a warm-up makes
  steps and learning rate disagree about how far training has gone).
- The matched stage times and resting levels of :mod:`mbc_interp.analysis.timing.stages` are copied
  from the summary (``t_marginal_seq``, ``t_conditional_seq``, ``order_seq``, ...).
- ``D`` is the number of base strings, ``n_examples`` the total number of examples (K x D, the
  paper's D); ``selector_gap`` the filler tokens between z and the answer position.

Forward-direction runs (A -> B control) have no selector and no plateau at log K by design;
their rows carry the loss times only, measured with the same detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mbc_interp.analysis.step_files import load_timeline
from mbc_interp.analysis.timing.summary import SUMMARY_FILE, summarize
from mbc_interp.config import RunConfig, TrainConfig
from mbc_interp.store.layout import point_file
from mbc_interp.store.run import Run, load_run
from mbc_interp.store.run_store import ANALYSIS_DIR
from mbc_interp.sweep.circuit import circuit_fields
from mbc_interp.sweep.grid import flatten
from mbc_interp.sweep.runner import iter_points, read_outcome

AXES = {
    "task.D": "D", "task.K": "K", "train.lr": "lr", "train.batch_size": "batch",
    "train.seed": "seed", "task.direction": "direction", "task.target_len": "target_len",
    "task.construction": "construction", "task.seed": "data_seed", "model.n_layers": "n_layers",
    "model.d_model": "d_model", "model.n_heads": "n_heads", "task.selector_gap": "selector_gap",
    "task.selectors": "selectors", "task.distinct_first": "distinct_first",
    "train.warmup_steps": "warmup_steps",
}  # fmt: skip
"""Config fields copied into the table, under short column names."""
OPTIMIZER_AXES = {"train.optimizer": "optimizer", "train.eps": "eps", "train.momentum": "momentum"}
"""Optimizer fields, copied with their defaults filled in (a point that does not set eps ran
at the default eps): a slice over any axis holds these at the reference, so a sweep with an eps
or optimizer block does not mix those runs into its size, K, lr or batch fits."""
MODE_AXES = {"train.compile": "compile"}
"""How the training step ran (eager or through torch.compile), its default filled in likewise:
the modes' numerics differ in rounding, so the fits never mix them in one slice."""
_DEFAULTS = flatten(RunConfig().to_dict())

TIMES = ("t_plateau_start", "t_plateau_end", "t_loss", "t_solved", "t_z", "t_route",
         "t_route_direct", "t_attn_to_z", "t_marginal", "t_first_rest", "t_marginal_seq",
         "t_conditional_seq", "t_marginal_first", "t_conditional_first")
SUMMARY_FIELDS = ("transition_signal", "lead_fraction", "lead_fraction_z", "route_phase",
                  "z_phase", "z_doubling_steps", "z_doubling_tokens", "routing_head",
                  "routing_head_final", "rest_loss_tok", "flat_loss_tok", "format_loss_tok",
                  "marginal_gap_at_drop", "first_rest_loss_tok", "pre_drop_loss_tok",
                  "zfree_gain_frac_at_marginal", "t_marginal_seq_se", "t_conditional_seq_se",
                  "t_marginal_first_se", "t_conditional_first_se", "marginal_lead_seq",
                  "marginal_lead_seq_se", "order_seq", "marginal_lead_first",
                  "marginal_lead_first_se", "order_first")


def collect(sweep: str | Path) -> pd.DataFrame:
    """The run table of a sweep directory (points not trained yet are listed as pending)."""
    rows = []
    for point, run_dir in iter_points(sweep):
        outcome = read_outcome(point_file(sweep, point["name"])) or {}
        row: dict[str, Any] = {"name": point["name"], "labels": ",".join(point["labels"])}
        flat = flatten(point["config"])
        row.update({col: flat.get(key) for key, col in AXES.items()})
        filled = {**OPTIMIZER_AXES, **MODE_AXES}
        row.update({col: flat.get(key, _DEFAULTS[key]) for key, col in filled.items()})
        row["direction"] = row["direction"] or "backward"
        row["selector_gap"] = row["selector_gap"] or 0
        row["point_status"] = outcome.get("status", "pending")
        row["error"] = outcome.get("error")
        if run_dir.exists() and row["point_status"] == "done":
            row.update(run_row(run_dir))
        rows.append(row)
    table = pd.DataFrame(rows)
    for col in ("duration_steps", "duration_tokens", "duration_epochs", *TIMES):
        if col not in table:
            table[col] = float("nan")
    return table


def carry_over(table: pd.DataFrame, previous: str | Path) -> pd.DataFrame:
    """``table`` (a sweep's runs, :func:`collect`) with the finished rows of an earlier fit's
    ``runs.csv`` for points not finished in it: runs whose directories and records are both
    gone (trained before records were kept), kept as they were last measured rather than lost
    from the fits. Such rows say so in ``source`` (``"earlier table"``; the others ``"run"``)
    and go once their point is run again. Without such rows ``table`` is returned as it is."""
    previous = Path(previous)
    if not previous.is_file():
        return table
    old = pd.read_csv(previous)
    if "point_status" not in old or "name" not in old:
        raise ValueError(f"{previous}: not a sweep's run table (no name/point_status columns)")
    here = set(table.loc[table.point_status == "done", "name"])
    listed = set(table["name"])
    keep = old[(old.point_status == "done") & ~old["name"].isin(here) & old["name"].isin(listed)]
    if keep.empty:
        return table
    keep = keep.assign(source=keep.get("source", "earlier table"))
    # the point's config columns the earlier table did not hold (an axis added since), from here
    fill = table.set_index("name").loc[keep["name"]]
    keep = keep.set_index("name").combine_first(fill).reset_index()
    rest = table[~table["name"].isin(set(keep["name"]))].assign(source="run")
    order = {n: i for i, n in enumerate(table["name"])}
    out = pd.concat([rest, keep], ignore_index=True)
    return out.sort_values("name", key=lambda c: c.map(order), kind="stable", ignore_index=True)


def cumulative_lr(train: TrainConfig, t: float) -> float:
    """The learning rate summed over the steps up to ``t`` (interpolated within a step): the
    distance an optimizer can have moved, which a warm-up shrinks early on."""
    whole = int(t)
    total = float(sum(train.lr_at(s) for s in range(1, whole + 1)))
    return total + (t - whole) * train.lr_at(whole + 1)


def current_summary(run: Run) -> dict[str, Any]:
    """A run's summary under the current rules, from its metrics and analysed checkpoints (not
    analysed: a forward control or a train-only sweep, what the metrics give)."""
    analysed = (run.path / ANALYSIS_DIR / SUMMARY_FILE).exists()
    return summarize(run, load_timeline(run) if analysed else pd.DataFrame())


def run_row(run_dir: str | Path) -> dict[str, Any]:
    """Loss times, durations and routing lead of one run directory."""
    run = load_run(run_dir)
    metrics = run.metrics
    per_step = run.config.tokens_per_step
    summary = current_summary(run)
    t0, t1 = summary.get("t_plateau_start"), summary.get("t_loss")
    duration = None if t0 is None or t1 is None else t1 - t0
    last = metrics.iloc[-1]
    t_end = summary.get("t_plateau_end")
    on = metrics[(metrics.step >= (t0 or 0)) & (metrics.step <= (t_end or -1))]
    row: dict[str, Any] = {
        "log_k": run.log_k,
        "plateau_loss": summary.get("plateau_loss"),
        "plateau_ratio": None
        if summary.get("plateau_loss") is None
        else summary["plateau_loss"] / run.log_k,
        "plateau_acc": float(on.acc.mean()) if len(on) else None,
        "status": summary.get("status"),
        "reason": summary.get("reason"),
        **{t: summary.get(t) for t in TIMES},
        "duration_steps": duration,
        "duration_tokens": None if duration is None else duration * per_step,
        "t_loss_tokens": None if t1 is None else t1 * per_step,
        "t_loss_cum_lr": None if t1 is None else cumulative_lr(run.config.train, t1),
        "D": run.task.config.n_bases,
        "n_examples": run.task.config.n_total,
        "duration_epochs": None
        if duration is None
        else duration * run.config.train.batch_size / run.task.config.n_total,
        "censored": t1 is None,
        **{k: summary.get(k) for k in SUMMARY_FIELDS},
        "tokens_per_step": per_step,
        "steps_run": int(last.step),
        "final_loss": float(last.loss),
        "min_loss": float(metrics["loss"].min()),
        **circuit_fields(summary, run.log_k),
    }
    return row
