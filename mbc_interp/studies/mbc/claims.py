"""The paper's claims as tables: the run table's columns, one row per claim with its verdict,
the per-level means, where the raw loss rests, the marginal/conditional stages, and the
markdown section of a results document built from them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mbc_interp.store.layout import FITS_FILE, RUNS_TABLE
from mbc_interp.studies.mbc.documents import ci, fmt, md_table, paragraph
from mbc_interp.studies.mbc.findings import order_findings, order_rows
from mbc_interp.sweep.circuit import CIRCUIT_COLUMNS
from mbc_interp.sweep.fit import PAPER
from mbc_interp.sweep.order import counts_by_order

RUN_COLUMNS = (
    "name", "labels", "direction", "D", "K", "lr", "batch", "seed", "optimizer", "eps",
    "momentum", "target_len", "construction",
    "selector_gap", "transition_signal", "rest_loss_tok", "flat_loss_tok", "format_loss_tok",
    "marginal_gap_at_drop", "t_marginal", "selectors", "distinct_first", "warmup_steps", "compile",
    "t_loss_cum_lr", "t_first_rest", "first_rest_loss_tok", "pre_drop_loss_tok",
    "zfree_gain_frac_at_marginal", "t_marginal_seq", "t_marginal_seq_se", "t_conditional_seq",
    "t_conditional_seq_se", "marginal_lead_seq", "marginal_lead_seq_se", "order_seq",
    "t_marginal_first", "t_marginal_first_se", "t_conditional_first", "t_conditional_first_se",
    "marginal_lead_first", "marginal_lead_first_se", "order_first",
    "data_seed", "n_layers", "d_model", "n_heads", "point_status", "status", "plateau_loss",
    "plateau_ratio", "plateau_acc", "log_k", "censored", "t_plateau_start", "t_z", "t_route",
    "t_route_direct", "t_loss",
    "t_solved", "duration_steps", "duration_tokens", "duration_epochs", "n_examples",
    "t_loss_tokens", "lead_fraction",
    "lead_fraction_z", "route_phase", "z_phase", "z_doubling_steps", "routing_head", "final_loss",
    "steps_run", "tokens_per_step", "error", "t_attn_to_z", "lead_fraction_attention",
    "t_route_patch", "lead_fraction_patch", *CIRCUIT_COLUMNS, "source",
)  # fmt: skip
CLAIMS = {
    "plateau": "1. Plateau height = log K",
    "D": "2a. Plateau duration grows with D (power law)",
    "K": "2b. ... and does not depend on K",
    "K_paper": "2c. ... K at a fixed number of examples (the paper's units)",
    "lr": "3. Larger lr delays escape (tokens; ours: largest vs smallest lr of the sweep)",
    "batch": "4. Smaller batch delays escape (tokens)",
    "lead": "5. Routing head leads the drop by ~50% of the plateau",
}


def _verdict(r: dict[str, Any]) -> str:
    """The verdict, with the seed rule's note where it made a claim underpowered."""
    if "seed_note" not in r:
        return r["verdict"]
    return f"{r['verdict']} ({r['seed_note']}; by its interval: {r['verdict_by_interval']})"


def claims_table(fits: dict[str, Any]) -> pd.DataFrame:
    """One row per claim: the paper's number, ours with its 95% CI, runs used, verdict."""
    rows = []
    p = fits["plateau"]
    dev = p.get("max_abs_deviation", float("nan"))
    ours = f"max |plateau / log K - 1| = {dev:.3f}"
    rows.append((CLAIMS["plateau"], "plateau = log K", ours, p["n_runs"], _verdict(p)))
    for key, paper in (("D", f"D^{PAPER['D_exponent']}"), ("K", "no dependence (exponent 0)")):
        r = fits[key]
        ours = f"exponent {r['exponent']:.2f} {ci(r['ci'])}" if "exponent" in r else r["why"]
        rows.append((CLAIMS[key], paper, ours, r["n_runs"], _verdict(r)))
    lo_lr, hi_lr = PAPER["lr_range"]
    for key, paper in (("lr", f"{PAPER['lr_ratio']}x over {lo_lr:g} -> {hi_lr:g}"),
                       ("batch", "> 1x")):  # fmt: skip
        r = fits[key]
        if "ratio" in r:
            ours = (f"{r['numerator']:g} vs {r['denominator']:g}: {r['ratio']:.2f}x "
                    f"{ci(r['ci'])}")  # fmt: skip
        else:
            ours = r["why"]
        rows.append((CLAIMS[key], paper, ours, r["n_runs"], _verdict(r)))
    kp = fits.get("K_paper", {})
    if "k_exponent" in kp:
        ours = f"K exponent at fixed N: {kp['k_exponent']:.2f} {ci(kp['ci'])}"
        rows.append((CLAIMS["K_paper"], "exponent 0", ours, kp["n_runs"], _verdict(kp)))
    m = fits["lead"].get("lead_fraction")
    mz = fits["lead"].get("lead_fraction_z")
    ours = "n/a" if m is None else f"{m['mean']:.2f} {ci(m['ci'])}"
    before = fits["lead"].get("route_phase", {}).get("before_plateau", 0)
    if before:
        ours += f"; {before} run(s) with the onset before the plateau, left out"
    if mz is not None:
        ours += f" (Δz onset: {mz['mean']:.2f} {ci(mz['ci'])})"
    rows.append((CLAIMS["lead"], "0.5", ours, 0 if m is None else m["n"], _verdict(fits["lead"])))
    rows += _circuit_rows(fits.get("circuit", {}))
    rows += order_rows(fits)
    n = fits.get("N", {})
    if "exponent" in n:
        e = n["epochs"]
        ours = (f"exponent {n['exponent']:.2f} {ci(n['ci'])}; {e['mean']:.1f} epochs "
                f"{ci(e['ci'], '.1f')}")  # fmt: skip
        names = {"t_loss": "steps to the drop", "duration_steps": "steps of plateau",
                 "t_loss_cum_lr": "lr summed to the drop"}  # fmt: skip
        for col, f in n.get("other_units", {}).items():
            ours += f"; in {names[col]}: {f['exponent']:.2f} {ci(f['ci'])}"
        rows.append(("(ours) duration vs N = D K examples", "-", ours, n["n_runs"], "-"))
    return pd.DataFrame(rows, columns=["claim", "paper", "ours (95% CI)", "runs", "verdict"])


def _circuit_rows(c: dict[str, Any]) -> list[tuple]:
    """The circuit's claims (:mod:`mbc_interp.sweep.circuit`), where the sweep's runs were
    analysed for them (none: no row, so older tables read as they did)."""
    out = []
    claims = (
        ("necessary", "6a. Ablating the routing head set undoes z-use (mean ablation; "
         "increase / log K)",
         "+3.65 nats (zero ablation)", "> 0.5"),
        ("specific", "(ours) 6a's set is z-specific (the first-token marginal's increase when "
         "it is ablated / the marginal's gain)", "-", "< 0.5"),
        ("sufficient", "6b. The head set alone keeps it (every other head ablated; increase / "
         "log K)",
         "-", "< 0.5"),
        ("single_head", "(ours) the costliest single head's ablation, / log K", "-", "> 0.5"),
        ("necessary_z", "(ours) 6a with z alone removed (the set's heads see another z of the "
         "same B; increase / log K)", "-", "> 0.5"),
        ("sufficient_z", "(ours) 6b with z alone removed (every other head sees another z of "
         "the same B; increase / log K)", "-", "< 0.5"),
        ("collective", "7. The transition is collective (groups' 10-90% solve spread / plateau)",
         "sharp and collective; none solved at half the wait", "< 0.25"),
        ("collective_halfway", "(ours) 7 timed by the drop's own criterion (groups' 10-90% "
         "spread of half-way crossings / plateau)", "-", "< 0.25"),
    )  # fmt: skip
    for key, claim, paper, rule in claims:
        r = c.get(key)
        if not r or r["verdict"] == "not tested":
            continue
        m = r["mean"]
        ours = f"{m['mean']:.2f} {ci(m['ci'])} (rule: {rule})"
        if key == "specific" and r.get("single"):
            one = r["single"]
            ours += f"; the costliest single head's: {one['mean']:.2f} {ci(one['ci'])}"
        if key == "necessary_z":
            for part, what in (("single", "the costliest single head's"),
                               ("marginal_undone", "the marginal's gain undone")):
                if r.get(part):
                    ours += f"; {what}: {r[part]['mean']:.2f} {ci(r[part]['ci'])}"
            if r.get("routing_head_in_set"):
                inside = r["routing_head_in_set"]
                ours += f"; the patching's routing head in the set: {inside['n']} of {inside['of']}"
        if key == "collective" and r.get("solved_at_half"):
            ours += f"; solved at half the plateau: {r['solved_at_half']['mean']:.2f}"
        verdict = r["verdict"] if key != "single_head" else "-"
        rows_used = r["n_runs"]
        out.append((claim, paper, ours, rows_used, verdict))
    return out


def level_table(fits: dict[str, Any], axis: str) -> pd.DataFrame | None:
    """Per level of ``axis``: runs and mean plateau start, duration and drop; for the size D,
    also the total examples N = D K it stands for (the paper's D)."""
    means = fits[axis].get("means")
    if not means:
        return None
    table = pd.DataFrame(
        [(lvl, m["n"], f"{m['mean_t_plateau_start']:.0f}", f"{m['mean_steps']:.0f}",
          f"{m['mean_tokens']:,.0f}", f"{m['sd_tokens']:,.0f}" if m["n"] > 1 else "n/a",
          f"{m['mean_epochs']:.1f}",
          f"{m['mean_t_loss_tokens']:,.0f}") for lvl, m in means.items()],
        columns=[axis, "runs", "plateau start (step)", "duration (steps)", "duration (tokens)",
                 "sd (tokens)", "duration (epochs)", "t_loss (tokens)"],
    )  # fmt: skip
    if axis == "D" and all("n_examples" in m for m in means.values()):
        sizes = [", ".join(f"{n:,}" for n in m["n_examples"]) for m in means.values()]
        table.insert(1, "N = D K", sizes)
    local = fits[axis].get("local")
    if local is not None:  # fits written before the local exponents have none
        table[f"exponent to the next {axis} (tokens)"] = [
            f"{local[lvl]['exponent']:.2f} {ci(local[lvl]['ci'])}" if lvl in local else "-"
            for lvl in means
        ]
    return table


def resting_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """Per K: where the raw per-token loss rests beside log K and the layout-only value (string
    tasks), and the mass on B's K candidates at the drop."""
    if "flat_loss_tok" not in table or table["flat_loss_tok"].isna().all():
        return None
    rows = []
    done = table[table.point_status == "done"] if "point_status" in table else table
    for k, g in done.groupby("K"):
        flat = g["flat_loss_tok"].dropna()
        gap = g["marginal_gap_at_drop"].dropna()
        layout = g["format_loss_tok"].dropna()
        both = g[g["t_marginal"].notna() & g["t_loss"].notna()]
        first = int((both["t_marginal"] < both["t_loss"]).sum())
        rows.append((
            int(k), len(g), f"{np.log(int(k)):.3f}",
            f"{layout.iloc[0]:.3f}" if len(layout) else "- (no EOS)",
            f"{flat.mean():.3f} [{flat.min():.3f}, {flat.max():.3f}]" if len(flat) else "-",
            f"{np.exp(-gap).median():.4f} ({len(gap)})" if len(gap) else "- (no drop timed)",
            f"{first} of {len(both)}; median {(both['t_marginal'] - both['t_loss']).median():+.0f}"
            if len(both) else "-",
        ))  # fmt: skip
    columns = ["K", "runs", "log K", "layout-only", "rests at",
               "candidate mass at the drop (runs)",
               "mass > 0.5 before the drop (t_marginal - t_loss)"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def stages_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """Seed by seed: the matched marginal and conditional crossings (whole sequence and first
    token, :mod:`mbc_interp.analysis.timing.stages`), each run's order, and where the raw loss first
    rests and is just before the drop; ``None`` for a table without them."""
    if "order_seq" not in table or table["order_seq"].isna().all():
        return None
    done = table[table.point_status == "done"].sort_values(["labels", "n_examples", "K", "seed"])

    def lead(r: Any, v: str) -> str:
        x, se = r[f"marginal_lead_{v}"], r[f"marginal_lead_{v}_se"]
        return "-" if pd.isna(x) else f"{x:+.0f} ± {se:.0f} ({r[f'order_{v}']})"

    rows = [(
        r["labels"], int(r["n_examples"]), int(r["K"]), int(r["seed"]), r["status"],
        fmt(r["t_marginal_seq"], ".0f"), fmt(r["t_conditional_seq"], ".0f"), lead(r, "seq"),
        fmt(r["t_marginal_first"], ".0f"), fmt(r["t_conditional_first"], ".0f"),
        lead(r, "first"), fmt(r["first_rest_loss_tok"], ".2f"),
        fmt(r["pre_drop_loss_tok"], ".2f"), fmt(r["t_loss"], ".0f"),
    ) for _, r in done.iterrows()]  # fmt: skip
    return pd.DataFrame(rows, columns=[
        "grids", "N", "K", "seed", "status", "marginal (seq)", "conditional (seq)",
        "conditional - marginal (seq)", "marginal (first)", "conditional (first)",
        "conditional - marginal (first)", "first rest (tok)", "before the drop (tok)", "t_loss",
    ])  # fmt: skip


def circuit_table(table: pd.DataFrame) -> pd.DataFrame | None:
    """Run by run, where the ablation measured it: the head set, its necessity over log K and
    the share of the first-token marginal's gain its ablation undoes, the costliest single head
    with the same two numbers, and the groups' collective and half-way scores
    (:mod:`mbc_interp.sweep.circuit`); ``None`` where no run has the marginal."""
    if "marginal_undone" not in table or table["marginal_undone"].isna().all():
        return None
    done = table[table.point_status == "done"].sort_values(["labels", "n_examples", "K", "seed"])
    done = done[done.marginal_undone.notna()]
    rows = [(
        r["labels"], int(r["n_examples"]), int(r["K"]), int(r["seed"]), r["ablation_heads"],
        fmt(r["necessity_frac"], ".2f"), fmt(r["marginal_undone"], ".2f"), r["costliest_head"],
        fmt(r["single_frac"], ".2f"), fmt(r["single_marginal_undone"], ".2f"),
        fmt(r["collective_score"], ".2f"),
    ) for _, r in done.iterrows()]  # fmt: skip
    out = pd.DataFrame(rows, columns=[
        "grids", "N", "K", "seed", "head set", "set: cost / log K", "set: marginal undone",
        "costliest head", "head: cost / log K", "head: marginal undone", "collective score",
    ])  # fmt: skip
    if "halfway_score" in done and done["halfway_score"].notna().any():
        out["half-way score"] = [fmt(v, ".2f")
                                 for v in pd.to_numeric(done["halfway_score"], errors="coerce")]
    if "necessity_z_frac" in done and done["necessity_z_frac"].notna().any():
        out["z alone: head set"] = [h if isinstance(h, str) else "-"
                                    for h in done["ablation_heads_z"]]  # fmt: skip
        for col, name in (("necessity_z_frac", "z alone: set cost / log K"),
                          ("sufficiency_z_frac", "z alone: the rest's cost / log K")):
            out[name] = [fmt(v, ".2f") for v in pd.to_numeric(done[col], errors="coerce")]
    return out


def order_counts(table: pd.DataFrame) -> str | None:
    """One sentence per size: how many runs put the marginal first, together or after."""
    if "order_seq" not in table or table["order_seq"].isna().all():
        return None
    lines = []
    for n, g in table[table.point_status == "done"].groupby("n_examples"):
        parts = []
        for v, name in (("seq", "whole sequences"), ("first", "first tokens")):
            c = counts_by_order(g, v)
            parts.append(
                f"{name}: marginal first in {c['marginal_first']}, together in "
                f"{c['together']}, conditional first in {c['conditional_first']} of {c['n']}"
            )
        lines.append(f"- N = {int(n):,}: " + "; ".join(parts))
    return "\n".join(lines)


def markdown_section(
    fits: dict[str, Any], results: Path, svgs: list[Path], doc_dir: Path, table: pd.DataFrame
) -> str:
    """The generated part of the results document."""
    rel = lambda p: os.path.relpath(p, doc_dir)  # noqa: E731
    parts = [md_table(claims_table(fits)), ""]
    parts.append(f"Reference point (other axes held here): `{fits['reference']}`; "
                 f"{fits['n_runs']} finished runs. Per-run table: [`{rel(results / RUNS_TABLE)}`]"
                 f"({rel(results / RUNS_TABLE)}); every fit with its interval: "
                 f"[`{rel(results / FITS_FILE)}`]({rel(results / FITS_FILE)}).")  # fmt: skip
    per_k = fits["plateau"].get("per_K")
    if per_k:
        parts += [
            "",
            "**Plateau height by K** (median loss and mean exact-match accuracy over "
            "the plateau's evaluations, mean over runs)",
            "",
            "| K | runs | log K | plateau loss | plateau / log K | accuracy | 1/K |",
            "|---|---|---|---|---|---|---|",
        ]
        parts += [f"| {k} | {v['n']} | {v['log_k']:.4f} | {v['mean_plateau_loss']:.4f} | "
                  f"{v['mean_ratio']:.4f} | {fmt(v.get('mean_plateau_acc'))} | {1 / int(k):.3f} |"
                  for k, v in per_k.items()]  # fmt: skip
    rest = resting_table(table)
    if rest is not None:
        parts += ["", "**Where the raw per-token loss rests, by K** (`flat_loss_tok`: its longest "
                  "stretch within 2% of its median before the drop; mean [min, max] over runs), "
                  "against log K and the layout-only value; the probability on B's K "
                  "candidates at the drop (`exp(-marginal_gap_at_drop)`, median: ~1 if the "
                  "marginal P(A|B) is learned first); and in how many runs that probability "
                  "passes 0.5 (`t_marginal`) before the drop (`t_loss`), with the median "
                  "difference in steps", "", md_table(rest)]  # fmt: skip
    stages = stages_table(table)
    if stages is not None:
        parts += ["", "**Marginal before conditional, matched** (steps: each stage's held "
                  "half-way crossing on the log scale from its chance value to 0, on the same "
                  "rows; the lead with its sampling error and the run's order by the rule of "
                  "`mbc_interp/analysis/timing/stages.py`; over runs: "
                  "`mbc_interp/sweep/order.py`)", "", paragraph(order_findings(fits) or ""), "",
                  order_counts(table) or "", "", md_table(stages)]  # fmt: skip
    circuit = circuit_table(table)
    if circuit is not None:
        parts += ["", "**The circuit, run by run** (mean ablation at the last checkpoint: the "
                  "first-token candidate loss's increase over log K, and the share of the "
                  "first-token marginal's gain over the layout that the same ablation undoes; "
                  "0: the model still knows B's candidates, z-use alone removed; the *z "
                  "alone* columns: the `ablation_z` kind, where each ablated head sees another "
                  "selector of the same B, its set chosen by the same rule; "
                  "`mbc_interp/sweep/circuit.py`)", "", md_table(circuit)]  # fmt: skip
    for axis in ("D", "K", "lr", "batch"):
        t = level_table(fits, axis)
        if t is not None:
            censored = fits[axis].get("n_censored", 0)
            parts += ["", f"**Plateau duration by {axis}**, means over seeds (runs that never "
                      f"dropped: {censored})", "", md_table(t)]  # fmt: skip
    c = fits.get("control", {})
    if "forward" in c:
        parts += ["", "**Control: the same pairs read A -> B**", "",
                  "| direction | runs | runs with a log K plateau | mean steps to solved |",
                  "|---|---|---|---|"]  # fmt: skip
        for d in ("backward", "forward"):
            if d in c:
                parts.append(f"| {d} | {c[d]['n']} | {c[d]['with_log_k_plateau']} | "
                             f"{c[d]['mean_t_solved_steps']:.0f} |")  # fmt: skip
    heads = fits["lead"].get("routing_heads")
    if heads:
        parts += ["", "Routing heads found: " + ", ".join(f"{h} ({n})" for h, n in heads.items())]
    if svgs:
        parts += [""] + [f"![{p.stem.replace('_', ' ')}]({rel(p)})" for p in svgs]
    return "\n".join(parts)


def format_fits(fits: dict[str, Any]) -> str:
    """The claims table as text (what ``mbc fit`` prints)."""
    return claims_table(fits).to_string(index=False)
