"""Fits recover known answers from synthetic sweeps, and `mbc fit` writes tables and figures."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mbc_interp.cli import main
from mbc_interp.studies.mbc import END, begin_marker, claims_table
from mbc_interp.sweep.fit import fit_sweep, mean_ci, power_law, ratio_of_means, reference_point
from mbc_interp.sweep.results import collect


def synthetic(exp_d=1.19, exp_k=0.0, lr_ratio=3.6, batch_ratio=1.5, lead=0.5, noise=0.05, seeds=5):
    """A run table like `collect`'s, with durations from known power laws and seed-to-seed
    spread that is symmetric in log space (so the point estimates equal the truth)."""
    rng = np.random.default_rng(0)
    ref = dict(D=500, K=4, lr=3e-4, batch=128)
    points = [{**ref, "D": d} for d in (125, 250, 500, 1000, 2000)]
    points += [{**ref, "K": k} for k in (2, 8)]
    points += [{**ref, "lr": lr} for lr in (1e-3, 2e-3)]
    points += [{**ref, "batch": 64}]
    rows = []
    for p in points:
        for s in range(seeds):
            dur = 1e5 * (p["D"] / 500) ** exp_d * (p["K"] / 4) ** exp_k
            dur *= lr_ratio ** (np.log(p["lr"] / 3e-4) / np.log(2e-3 / 3e-4))
            dur *= batch_ratio if p["batch"] == 64 else 1.0
            dur *= np.exp(noise * (s - (seeds - 1) / 2))  # symmetric: fits are exact
            rows.append({**p, "seed": s, "direction": "backward", "target_len": 1,
                         "construction": "shared_pool", "data_seed": 0, "n_layers": 2,
                         "d_model": 64, "n_heads": 4, "point_status": "done",
                         "name": f"run{len(rows)}", "duration_tokens": dur,
                         "duration_steps": dur / (p["batch"] * 7), "log_k": np.log(p["K"]),
                         "n_examples": p["D"] * p["K"],
                         "duration_epochs": dur / (p["D"] * p["K"] * 7),
                         "t_loss_tokens": dur + 100 * p["batch"] * 7,
                         "plateau_loss": np.log(p["K"]) * (1 + 0.005 * rng.standard_normal()),
                         "lead_fraction": lead + 0.1 * (-1) ** len(rows),
                         "lead_fraction_z": lead + 0.2, "routing_head": "L0H1",
                         "t_plateau_start": 100.0, "t_solved": 2000.0,
                         "status": "transitioned"})  # fmt: skip
    table = pd.DataFrame(rows)
    table["plateau_ratio"] = table.plateau_loss / table.log_k
    return table


def test_power_law_recovers_the_exponent_and_its_ci_covers_it():
    x = np.repeat([100.0, 200, 400, 800], 6)
    y = 3.0 * x**1.19 * np.exp(0.05 * np.random.default_rng(1).standard_normal(len(x)))
    fit = power_law(x, y)
    assert fit.exponent == pytest.approx(1.19, abs=0.05)
    assert fit.ci[0] < 1.19 < fit.ci[1] and fit.ci[1] - fit.ci[0] < 0.2
    assert fit.r2 > 0.98 and fit.p_zero < 0.01 and fit.levels == (100, 200, 400, 800)
    flat = power_law(x, np.exp(0.05 * np.random.default_rng(2).standard_normal(len(x))))
    assert flat.ci[0] < 0 < flat.ci[1] and flat.p_zero > 0.05
    with pytest.raises(ValueError, match="at least 2 distinct"):
        power_law(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="positive"):
        power_law(np.array([1.0, 2.0]), np.array([1.0, -1.0]))


def test_ratio_and_mean_intervals():
    a, b = np.array([4.0, 4.2, 3.8]), np.array([1.0, 1.1, 0.9])
    r = ratio_of_means(a, b)
    geo = np.exp(np.log(a).mean() - np.log(b).mean())
    assert r.ratio == pytest.approx(geo) and r.ci[0] < 4.0 < r.ci[1]
    assert r.mean_a == pytest.approx(4.0) and r.dof > 2
    m = mean_ci(np.array([0.4, 0.5, 0.6, np.nan]))
    assert m.mean == pytest.approx(0.5) and m.n == 3 and m.ci[0] < 0.5 < m.ci[1]
    # t with 2 degrees of freedom: 4.30 standard errors either side
    assert m.ci[1] - 0.5 == pytest.approx(4.303 * 0.1 / np.sqrt(3), rel=1e-3)
    # one run on a side: no spread is measured, so nothing is excluded
    assert ratio_of_means(a, b[:1]).ci == (0.0, np.inf)


@pytest.mark.parametrize("seeds", [3, 4])
def test_interval_coverage_holds_at_few_seeds(seeds):
    """Simulated sweeps with a known exponent (1.19), ratio (3.6) and mean (0.5), lognormal
    seed noise, 5 levels: each 95% interval covers the truth in 95% +- 2% of 2,000 sweeps."""
    rng = np.random.default_rng(seeds)
    n_sim, sd = 2000, 0.3
    x = np.repeat([1000.0, 2000, 3000, 5000, 10000], seeds)
    hits = {"exponent": 0, "ratio": 0, "mean": 0}
    for _ in range(n_sim):
        y = 2.0 * x**1.19 * np.exp(sd * rng.standard_normal(len(x)))
        lo, hi = power_law(x, y).ci
        hits["exponent"] += lo <= 1.19 <= hi
        a = 3.6 * np.exp(sd * rng.standard_normal(seeds))
        b = np.exp(sd * rng.standard_normal(seeds))
        lo, hi = ratio_of_means(a, b).ci
        hits["ratio"] += lo <= 3.6 <= hi
        lo, hi = mean_ci(0.5 + 0.2 * rng.standard_normal(seeds)).ci
        hits["mean"] += lo <= 0.5 <= hi
    for name, n in hits.items():
        assert n / n_sim == pytest.approx(0.95, abs=0.02), name


def test_verdicts_say_underpowered_when_the_data_cannot_decide():
    from mbc_interp.sweep.fit import no_dependence_verdict, verdict_for

    assert verdict_for((0.5, 1.5), 1.19, 0.0) == "reproduced"
    assert verdict_for((-0.2, 1.5), 1.19, 0.0) == "underpowered"
    assert verdict_for((0.2, 0.9), 1.19, 0.0) == "partly"
    assert verdict_for((-0.5, -0.1), 1.19, 0.0) == "not reproduced"
    assert no_dependence_verdict((-0.3, 0.3)) == "reproduced"
    assert no_dependence_verdict((-0.3, 0.8)) == "underpowered"
    assert no_dependence_verdict((0.1, 0.8)) == "not reproduced"


def test_fit_sweep_verdicts_follow_the_rules():
    fits = fit_sweep(synthetic())
    assert fits["reference"]["D"] == 500 and fits["reference"]["lr"] == 3e-4
    assert fits["D"]["exponent"] == pytest.approx(1.19, abs=1e-9)
    assert fits["D"]["n_runs"] == 25
    verdicts = {k: fits[k]["verdict"] for k in ("plateau", "D", "K", "lr", "batch", "lead")}
    assert verdicts == dict.fromkeys(verdicts, "reproduced")
    assert fits["lr"]["ratio"] == pytest.approx(3.6, rel=0.05)
    assert fits["lr"]["monotone_increasing"]
    assert fits["N"]["n_runs"] == 35  # the D and K slices pooled
    assert fits["batch"]["numerator"] == 64
    assert fits["batch"]["ratio"] == pytest.approx(1.5, rel=0.05)

    other = fit_sweep(synthetic(exp_d=0.6, exp_k=0.5, lr_ratio=1.0, batch_ratio=0.8, lead=0.9))
    assert other["D"]["verdict"] == "partly"  # grows with D, but not as D^1.19
    assert other["K"]["verdict"] == "not reproduced"
    assert other["lr"]["verdict"] == "not reproduced"
    assert other["batch"]["verdict"] == "not reproduced"
    assert other["lead"]["verdict"] == "partly"


def test_fewer_than_three_seeds_a_level_make_a_claim_underpowered():
    """The same exact power laws at 2 seeds: the intervals alone would say reproduced (the
    spread is tiny), the seed rule says underpowered and keeps the interval's verdict beside it."""
    fits = fit_sweep(synthetic(seeds=2))
    for key in ("plateau", "D", "K", "lr", "batch"):
        assert fits[key]["verdict"] == "underpowered", key
        assert fits[key]["min_seeds_per_level"] == 2
        assert fits[key]["verdict_by_interval"] == "reproduced", key
    assert fits["lead"]["verdict"] == "reproduced"  # one mean over 20 runs: enough
    table = claims_table(fits)
    row = table[table.claim.str.startswith("2a")].iloc[0]
    assert row.verdict.startswith("underpowered (2 run(s) at a level")
    assert "by its interval: reproduced" in row.verdict
    three = fit_sweep(synthetic(seeds=3))
    assert three["D"]["verdict"] == "reproduced" and "seed_note" not in three["D"]


def test_local_exponents_find_a_bend_the_single_exponent_averages_over():
    """Durations growing as D^1 up to D = 500 and D^2 above: each adjacent pair's exponent is
    the truth, its Welch interval covers it, and the level table shows it beside the lower size."""
    from mbc_interp.studies.mbc.claims import level_table

    table = synthetic(exp_d=1.0)
    above = table.D > 500
    bend = (table.D[above] / 500) ** 1.0  # a second factor D^1 above the bend: D^2 there
    for col in ("duration_tokens", "duration_steps", "duration_epochs"):
        table.loc[above, col] *= bend
    local = fit_sweep(table)["D"]["local"]
    assert list(local) == ["125", "250", "500", "1000"]
    for lo, want in (("125", 1.0), ("250", 1.0), ("500", 2.0), ("1000", 2.0)):
        assert local[lo]["exponent"] == pytest.approx(want, abs=1e-9)
        assert local[lo]["ci"][0] < want < local[lo]["ci"][1]
    assert local["500"]["to"] == 1000.0
    shown = level_table(fit_sweep(table), "D")
    col = "exponent to the next D (tokens)"
    assert list(shown[col])[-1] == "-" and list(shown[col])[2].startswith("2.00 [")
    one = synthetic(seeds=1)  # one run a side: no spread, an unbounded interval
    assert tuple(fit_sweep(one)["D"]["local"]["125"]["ci"]) == (-np.inf, np.inf)


def test_censored_runs_are_left_out_and_counted():
    table = synthetic()
    table.loc[(table.D == 2000) & (table.seed < 2), ["duration_tokens", "duration_steps"]] = np.nan
    fits = fit_sweep(table)
    assert fits["D"]["n_censored"] == 2 and fits["D"]["n_runs"] == 23
    assert reference_point(table)["K"] == 4
    assert list(claims_table(fits).verdict)[:2] == ["reproduced", "reproduced"]


def test_a_tie_goes_to_the_centre_where_the_arms_cross():
    """Part-way through a star sweep the centre's size can be no more common than the others:
    the reference is the one whose runs belong to the most grids, so the arms stay comparable
    (not the smallest size, which no arm holds)."""
    table = synthetic(seeds=4)
    table = table[(table.lr == 3e-4) & (table.batch == 128) & (table.K == 4)]  # the size arm
    table = table.assign(labels="D")
    arms = table[table.D == 500].assign(labels="D,lr_batch,K")
    table = pd.concat([table[table.D != 500], arms], ignore_index=True)
    assert table.D.value_counts().nunique() == 1  # every size tied at 4 runs
    ref = reference_point(table)
    assert (ref["D"], ref["n_examples"]) == (500, 2000)
    assert reference_point(table.assign(labels="D"))["D"] == 125  # no centre: the smallest
    assert reference_point(table.drop(columns="labels"))["D"] == 125


@pytest.mark.slow  # a real sweep of 4 tiny runs (~30 s)
def test_mbc_fit_on_a_real_sweep_writes_tables_figures_and_the_doc(local_sweep, tmp_path, capsys):
    doc = tmp_path / "REPRO.md"
    out = tmp_path / "results"
    begin = begin_marker(out)
    doc.write_text(f"# Results\nprose before\n{begin}\nold numbers\n{END}\nprose after\n")
    assert main(["fit", str(local_sweep), "--results", str(out), "--doc", str(doc)]) == 0
    printed = capsys.readouterr().out
    assert "2a. Plateau duration grows with D" in printed
    runs = pd.read_csv(out / "runs.csv")
    table = collect(local_sweep)
    assert len(runs) == len(table) and set(runs.D) == {24, 32}
    fits = json.loads((out / "fits.json").read_text())
    assert fits["n_runs"] == int((table.point_status == "done").sum())
    html = (out / "report.html").read_text()
    assert "Plateau duration vs D" in html and '<script src="http' not in html
    text = doc.read_text()
    assert "prose before" in text and "prose after" in text and "old numbers" not in text
    assert "| claim | paper |" in text and "runs.csv" in text
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    assert main(["fit", str(local_sweep), "--results", str(out), "--doc", str(bare)]) == 2
    assert "no generated section" in capsys.readouterr().err


def test_reproduction_md_matches_the_committed_results():
    """The numbers in REPRODUCTION.md are those `mbc fit` computes from results/cpu/runs.csv."""
    from pathlib import Path

    from mbc_interp.studies.mbc import md_table

    root = Path(__file__).resolve().parents[2]
    runs = pd.read_csv(root / "results/cpu/runs.csv")
    saved = json.loads((root / "results/cpu/fits.json").read_text())
    again = fit_sweep(runs)
    for key in ("D", "K", "N"):
        assert again[key]["exponent"] == pytest.approx(saved[key]["exponent"], abs=1e-9)
        assert again[key]["ci"] == pytest.approx(saved[key]["ci"], abs=1e-9)
    for key in ("lr", "batch"):
        assert again[key]["ratio"] == pytest.approx(saved[key]["ratio"], abs=1e-9)
    assert again["K_paper"]["k_exponent"] == pytest.approx(saved["K_paper"]["k_exponent"])
    # the committed table predates the z-use measures: claim 5 is not tested on it
    assert again["lead"]["verdict"] == saved["lead"]["verdict"] == "not tested"
    doc = (root / "REPRODUCTION.md").read_text()
    assert md_table(claims_table(saved)) in doc
    on_disk = {svg.name for svg in (root / "results/cpu/figures").glob("*.svg")}
    linked = set(re.findall(r"results/cpu/figures/([\w-]+\.svg)", doc))
    assert on_disk and linked == on_disk  # every figure linked, every link a committed figure
    assert {"duration_vs_D.svg", "duration_vs_examples.svg", "plateau_height.svg"} <= on_disk


@pytest.mark.slow  # a real sweep of 4 tiny runs (~30 s)
def test_mbc_report_on_a_sweep_directory_writes_the_sweep_report(local_sweep, tmp_path, capsys):
    out = tmp_path / "r" / "report.html"
    assert main(["report", str(local_sweep), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(out))
    assert "Plateau duration vs D" in out.read_text()
    assert (tmp_path / "r" / "runs.csv").exists()


def test_scaling_figures_draw_the_runs_and_the_fits():
    from mbc_interp.viz import scaling

    table = synthetic()
    fits = fit_sweep(table)
    fig = scaling.duration_figure(table, fits, "D")
    names = [t.name for t in fig.data]
    assert names[:5] == [f"seed {s}" for s in range(5)] and "mean" in names
    fit_trace = next(t for t in fig.data if str(t.name).startswith("fit"))
    x, y = np.asarray(fit_trace.x), np.asarray(fit_trace.y)
    assert np.polyfit(np.log(x), np.log(y), 1)[0] == pytest.approx(1.19, abs=1e-6)
    assert fig.layout.xaxis.type == "log" and "verdict: reproduced" in fig.layout.title.text
    lr = scaling.ratio_figure(table, fits, "lr")
    assert "3.60x" in lr.layout.title.text
    lead = scaling.lead_figure(table, fits)
    assert [len(t.y) for t in lead.data] == [50, 50]
    n = scaling.examples_figure(table, fits)
    assert sum(len(t.x) for t in n.data[:2]) == fits["N"]["n_runs"]


def test_diverged_runs_are_not_counted_as_censored():
    table = synthetic(seeds=3)
    base = fit_sweep(table)
    nan_row = {**table.iloc[0].to_dict(), "name": "blown", "seed": 99,
               "point_status": "diverged", "duration_tokens": float("nan"),
               "duration_steps": float("nan"), "plateau_loss": float("nan")}  # fmt: skip
    with_diverged = pd.concat([table, pd.DataFrame([nan_row])], ignore_index=True)
    fits = fit_sweep(with_diverged)
    assert fits["n_diverged"] == 1 and base["n_diverged"] == 0
    for axis in ("D", "K", "lr", "batch"):
        assert fits[axis]["n_censored"] == base[axis]["n_censored"] == 0
        assert fits[axis]["n_runs"] == base[axis]["n_runs"]


def test_resting_table_reads_the_rest_and_the_candidate_mass_by_k():
    from mbc_interp.studies.mbc import resting_table

    runs = pd.DataFrame({
        "K": [5, 5, 20, 20, 4],
        "flat_loss_tok": [2.86, 2.88, 2.85, 2.87, 0.3],
        "format_loss_tok": [2.867, 2.867, 2.867, 2.867, None],  # the last: a proxy run
        "marginal_gap_at_drop": [None, None, np.log(500), np.log(1000), None],
        "t_marginal": [None, None, 600.0, 580.0, 10.0],
        "t_loss": [None, None, 380.0, 360.0, 1300.0],
    })  # fmt: skip
    t = resting_table(runs).set_index("K")
    assert list(t.index) == [4, 5, 20]
    assert t.loc[4, "layout-only"] == "- (no EOS)"  # a proxy run
    order = "mass > 0.5 before the drop (t_marginal - t_loss)"
    assert t.loc[4, order] == "1 of 1; median -1290" and t.loc[20, order] == "0 of 2; median +220"
    assert t.loc[5, order] == "-"
    assert t.loc[5, "rests at"] == "2.870 [2.860, 2.880]"
    assert t.loc[5, "log K"] == f"{np.log(5):.3f}" and t.loc[5, "layout-only"] == "2.867"
    assert t.loc[5, "candidate mass at the drop (runs)"] == "- (no drop timed)"
    assert t.loc[20, "candidate mass at the drop (runs)"] == "0.0015 (2)"  # median of 1/500, 1/1000
    assert resting_table(runs.drop(columns="flat_loss_tok")) is None


def test_the_paper_sections_resting_table_is_the_committed_runs():
    from pathlib import Path

    from mbc_interp.studies.mbc import md_table, resting_table

    root = Path(__file__).resolve().parents[2]
    runs = pd.read_csv(root / "results/paper_cpu/runs.csv")
    assert md_table(resting_table(runs)) in (root / "REPRODUCTION.md").read_text()


def test_an_eps_block_does_not_leak_into_the_other_fits():
    """Runs that differ from the reference only in Adam's eps (a 1000x larger eps, with
    durations 10x longer) must not enter the D, lr or batch fits as reference runs."""
    table = synthetic(seeds=3)
    table["optimizer"], table["eps"], table["momentum"] = "adamw", 1e-8, 0.9
    base = fit_sweep(table)
    at_ref = table[(table.D == 500) & (table.K == 4) & (table.lr == 3e-4) & (table.batch == 128)]
    slow = at_ref.assign(eps=1e-5, duration_tokens=at_ref.duration_tokens * 10,
                         duration_steps=at_ref.duration_steps * 10,
                         name=[f"eps{i}" for i in range(len(at_ref))])  # fmt: skip
    fits = fit_sweep(pd.concat([table, slow], ignore_index=True))
    assert fits["reference"]["eps"] == 1e-8
    for axis in ("D", "lr", "batch"):
        assert fits[axis]["n_runs"] == base[axis]["n_runs"]
    assert fits["D"]["exponent"] == pytest.approx(base["D"]["exponent"])


def test_stages_table_reports_each_run_and_the_order_counts():
    from mbc_interp.studies.mbc import order_counts, stages_table

    runs = pd.DataFrame({
        "labels": ["N", "N", "N"], "n_examples": [3000, 3000, 10000], "K": 20, "seed": [0, 1, 0],
        "status": "transitioned", "point_status": "done",
        "t_marginal_seq": [400.0, 410.0, 900.0], "t_conditional_seq": [380.0, 600.0, 1500.0],
        "marginal_lead_seq": [-20.0, 190.0, 600.0], "marginal_lead_seq_se": [15.0, 20.0, 30.0],
        "order_seq": ["together", "marginal_first", "marginal_first"],
        "t_marginal_first": [250.0, 260.0, np.nan], "t_conditional_first": [380.0, 390.0, np.nan],
        "marginal_lead_first": [130.0, 130.0, np.nan], "marginal_lead_first_se": [5.0, 5.0, np.nan],
        "order_first": ["marginal_first", "marginal_first", None],
        "first_rest_loss_tok": 2.87, "pre_drop_loss_tok": 2.4, "t_loss": [390.0, 610.0, 1490.0],
    })  # fmt: skip
    t = stages_table(runs)
    assert len(t) == 3 and t.iloc[0]["conditional - marginal (seq)"] == "-20 ± 15 (together)"
    assert t.iloc[2]["marginal (first)"] == "n/a"
    text = order_counts(runs)
    assert "N = 3,000: whole sequences: marginal first in 1, together in 1" in text
    assert "N = 10,000: whole sequences: marginal first in 1, together in 0, conditional first " \
           "in 0 of 1; first tokens: marginal first in 0, together in 0, conditional first in " \
           "0 of 0" in text
    assert stages_table(runs.drop(columns="order_seq")) is None


def test_compiled_runs_do_not_leak_into_the_eager_fits():
    """Runs that differ from the reference only in train.compile (with durations 10x longer,
    so a leak would show) must not enter the D, lr or batch fits as reference runs."""
    table = synthetic(seeds=3)
    table["compile"] = False
    base = fit_sweep(table)
    at_ref = table[(table.D == 500) & (table.K == 4) & (table.lr == 3e-4) & (table.batch == 128)]
    compiled = at_ref.assign(compile=True, duration_tokens=at_ref.duration_tokens * 10,
                             duration_steps=at_ref.duration_steps * 10,
                             name=[f"compiled{i}" for i in range(len(at_ref))])  # fmt: skip
    fits = fit_sweep(pd.concat([table, compiled], ignore_index=True))
    assert not fits["reference"]["compile"]
    for axis in ("D", "lr", "batch"):
        assert fits[axis]["n_runs"] == base[axis]["n_runs"]
    assert fits["D"]["exponent"] == pytest.approx(base["D"]["exponent"])
