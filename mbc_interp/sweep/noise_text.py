"""The text of ``mbc fit --noise``: the noise verdicts and the per-run noise measurements as
tables (printed, and written into a results document by
:mod:`mbc_interp.studies.mbc.reproduction`)."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

QUESTIONS = {
    "a": "(a) B_simple > batch on the plateau",
    "b": "(b) plateau |G| orders durations across D (predicted: negative)",
    "c": "(c) a larger lr raises the plateau noise T_adam = lr ν/(1+ν)",
    "d": "(d) Adam's eps changes the escape time t_loss",
}


def _g(x: Any, fmt: str = ".3g") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return "inf" if x == math.inf else f"{x:{fmt}}"


def verdict_table(v: dict[str, Any]) -> pd.DataFrame:
    """One row per question: what was measured, the runs used, the verdict."""
    a, b, c, d = v["a"], v["b"], v["c"], v["d"]
    rows = []
    ours = a.get("why") or (
        f"B_simple / batch: median {_g(a['ratio_median'])} (range {_g(a['ratio_min'])} to "
        f"{_g(a['ratio_max'])}); coherence {_g(a['coherence_over_null'])}x its 1/n null, "
        f"within-B ratio {_g(a['group_ratio_over_null'])}x its null"
    )
    rows.append((QUESTIONS["a"], ours, a["n_runs"], a["verdict"]))
    if "rho" in b:
        ours = (
            f"ρ(|G|, duration) = {b['rho']:.2f}, p = {b['p']:.3f}; B_simple: "
            f"ρ = {_g(b['b_simple'].get('rho'), '.2f')}, p = {_g(b['b_simple'].get('p'))} "
            f"({b['b_simple']['verdict']}); LLC: {b['llc']['verdict']}"
        )
    else:
        ours = b.get("why", "")
    rows.append((QUESTIONS["b"], ours, b["n_runs"], b["verdict"]))
    n, dur = c["noise"], c["duration"]
    if "ratio_largest_over_smallest" in n:
        lo, hi = n["levels"][0], n["levels"][-1]
        ours = (
            f"T_adam {n['ratio_largest_over_smallest']:.2f}x from lr {lo:g} to {hi:g}; "
            f"duration (tokens) {_g(dur.get('ratio_largest_over_smallest'), '.2f')}x "
            f"({dur['verdict']}): {c['mechanism']}"
        )
    else:
        ours = n.get("why", "")
    rows.append((QUESTIONS["c"], ours, c["n_runs"], c["verdict"]))
    parts = [
        f"eps {k}: {_g(e.get('ratio'), '.2f')}x ({e['verdict']}; eps dominates "
        f"{_g(e['eps_dominated_frac'], '.1%')})"
        for k, e in d["levels"].items()
    ]
    ours = "; ".join(parts) or "no eps level besides 1e-8"
    rows.append((QUESTIONS["d"], ours, d["n_runs"], d["verdict"]))
    return pd.DataFrame(rows, columns=["question", "ours", "runs", "verdict"])


def run_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The per-run measurements, formatted for a document."""
    done = table[table.point_status == "done"]
    return pd.DataFrame(
        {
            "run": done["name"],
            "grids": done["labels"],
            "optimizer": done["optimizer"],
            "lr": done["lr"].map(lambda x: f"{x:g}"),
            "eps": [
                f"{e:g}" if o == "adamw" else "-"
                for e, o in zip(done.eps, done.optimizer, strict=True)
            ],
            "plateau ckpts": done["n_plateau_ckpts"],
            "‖G‖": done["grad_norm"].map(_g),
            "B_simple": done["b_simple"].map(lambda x: _g(x, ".0f")),
            "B_simple / batch": done["b_ratio"].map(lambda x: _g(x, ".1f")),
            "T_adam": done["t_adam"].map(_g),
            "T_sgd": done["t_sgd"].map(_g),
            "tr Σ": done["tr_sigma"].map(_g),
            "eps-dominated": done["eps_dominated_frac"].map(lambda x: _g(x, ".1%")),
            "duration (steps)": done["duration_steps"].map(lambda x: _g(x, ".0f")),
            "t_loss": done["t_loss"].map(lambda x: _g(x, ".0f")),
        }
    )


def format_verdicts(v: dict[str, Any]) -> str:
    """The verdict table as text (what ``mbc fit --noise`` prints)."""
    return verdict_table(v).to_string(index=False)


def lr_levels(v: dict[str, Any]) -> pd.DataFrame:
    """(c) by learning rate: medians over the measurable runs at each lr."""
    return pd.DataFrame(
        [(lr, m["n"], _g(m.get("t_adam")), _g(m.get("t_sgd")), _g(m.get("tr_sigma")),
          _g(m.get("b_simple"), ".0f"), _g(m.get("duration_tokens"), ",.0f"))
         for lr, m in v["c"]["levels"].items()],
        columns=["lr", "runs", "T_adam", "T_sgd", "tr Σ", "B_simple", "duration (tokens)"],
    )  # fmt: skip


def eps_levels(v: dict[str, Any]) -> pd.DataFrame:
    """(d) by eps: each run's escape time (inf: never escaped) and the eps-dominated share."""
    d = v["d"]
    levels = {f"{d['reference']['eps']:g} (reference)": d["reference"], **d["levels"]}
    return pd.DataFrame(
        [(eps, ", ".join("never" if t == math.inf else f"{t:.0f}" for t in e["t_loss"]),
          _g(e.get("eps_dominated_frac"), ".1%"),
          _g(e.get("ratio"), ".2f"), e.get("verdict", "-")) for eps, e in levels.items()],
        columns=["eps", "t_loss (steps)", "eps-dominated", "ratio of medians", "verdict"],
    )  # fmt: skip
