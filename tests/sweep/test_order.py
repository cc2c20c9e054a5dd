"""Claim 8 over runs: the order rule, the regime's answer, families kept apart, and the
generated text that states it (`mbc fit --summary`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbc_interp.cli import main
from mbc_interp.studies.mbc.documents import END, begin_marker, summary_marker
from mbc_interp.studies.mbc.findings import order_findings, order_rows
from mbc_interp.sweep.fit import fit_sweep
from mbc_interp.sweep.order import REGIME_N, TOGETHER, order_claim, order_of, order_verdicts

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("ci", "order"),
    [
        ((-0.03, 0.04), "together"),
        ((0.01, 0.04), "together"),  # a sure but tiny lead is still "together"
        ((0.01, 0.20), "marginal_first"),
        ((-0.20, -0.06), "conditional_first"),
        ((-0.10, 0.20), "underpowered"),
        ((-0.02, TOGETHER + 0.01), "underpowered"),
        ((-np.inf, np.inf), "underpowered"),
    ],
)
def test_the_order_rule(ci, order):
    assert order_of(ci) == order


def stage_runs(n_runs=3, lead_seq=0.0, lead_first=0.2, sizes=(3000, 10000, 20000), **extra):
    """Finished runs at each size with known relative leads (conditional at 1000 * N / 1000
    steps, the marginal earlier by the lead), small symmetric seed-to-seed spread."""
    rows = []
    for n in sizes:
        for s in range(n_runs):
            t = float(n) / 5
            wiggle = 0.01 * (s - (n_runs - 1) / 2)
            row = {
                "name": f"N{n}_s{s}",
                "n_examples": n,
                "D": n / 20,
                "K": 20,
                "lr": 1e-3,
                "batch": 128,
                "seed": s,
                "direction": "backward",
                "point_status": "done",
                "selectors": "shared",
                "distinct_first": False,
                "warmup_steps": 500,
                **extra,
            }
            for v, lead in (("seq", lead_seq), ("first", lead_first)):
                rel = lead + wiggle
                row.update(
                    {
                        f"t_conditional_{v}": t,
                        f"t_marginal_{v}": t * (1 - rel),
                        f"marginal_lead_{v}": t * rel,
                        f"marginal_lead_{v}_se": 1.0,
                        f"order_{v}": "marginal_first" if rel > 0.05 else "together",
                    }
                )
            rows.append(row)
    return pd.DataFrame(rows)


def test_the_regime_answer_pools_runs_at_n_10000_and_above():
    res = order_claim(stage_runs())
    assert res["sizes"] == [3000, 10000, 20000] and res["runs_at_largest"] == 3
    first, seq = res["first"], res["seq"]
    assert first["n_runs"] == 6  # the 3,000-example runs are counted, not pooled
    assert first["relative_lead"]["mean"] == pytest.approx(0.2)
    assert first["order"] == "marginal_first" and first["verdict"] == "reproduced"
    assert seq["order"] == "together" and seq["verdict"] == "not reproduced"
    assert seq["counts"] == {"marginal_first": 0, "together": 9, "conditional_first": 0, "n": 9}
    assert first["regime_counts"]["marginal_first"] == 6


def test_fewer_than_three_runs_in_the_regime_are_underpowered():
    res = order_claim(stage_runs(n_runs=1, sizes=(3000, 5000, 10000, 20000)))
    first = res["first"]
    assert first["n_runs"] == 2 and first["order"] == "underpowered"
    assert first["order_by_interval"] == "marginal_first" and first["verdict"] == "underpowered"
    none = order_claim(stage_runs(sizes=(1000, 3000)))
    assert none["seq"]["verdict"] == "not tested" and f"{REGIME_N:,}" in none["seq"]["why"]


def test_the_variant_and_the_warm_up_arm_are_their_own_families():
    """Runs of the follow-up's variant (conditional first here) and of the warm-up arm neither
    enter the reference family's answer nor the size fit's rows."""
    ref = stage_runs()
    variant = stage_runs(
        lead_seq=-0.3, lead_first=-0.3, selectors="per_base", distinct_first=True
    ).assign(name=lambda d: d.name + "_v")
    warm = stage_runs(warmup_steps=50).assign(name=lambda d: d.name + "_w")
    table = pd.concat([ref, variant, warm], ignore_index=True)
    table["order_seq"] = table["order_seq"].where(table.selectors == "shared", "conditional_first")
    refs = {
        "selectors": "shared",
        "distinct_first": False,
        "warmup_steps": 500,
        "direction": "backward",
        "K": 20,
        "lr": 1e-3,
        "batch": 128,
    }
    out = order_verdicts(table, refs)
    assert out["reference"]["n_runs"] == 9
    assert out["reference"]["seq"]["counts"]["conditional_first"] == 0
    key = "selectors=per_base, distinct_first=True"
    assert out[key]["first"]["order"] == "conditional_first"
    assert out["warmup_steps=50"]["n_runs"] == 9
    rows = order_rows({"order": out})
    assert [r[4] for r in rows[:2]] == ["not reproduced", "reproduced"]
    assert any(key in r[0] and r[4] == "-" for r in rows)


def test_variant_runs_do_not_leak_into_the_size_fit():
    from tests.sweep.test_fit import synthetic

    table = synthetic(seeds=3)
    table["selectors"], table["distinct_first"], table["warmup_steps"] = "shared", False, 500
    base = fit_sweep(table)
    at_ref = table[table.K == 4]
    for arm in ({"selectors": "per_base", "distinct_first": True}, {"warmup_steps": 50}):
        other = at_ref.assign(
            **arm,
            duration_tokens=at_ref.duration_tokens * 10,
            duration_steps=at_ref.duration_steps * 10,
            name=[f"arm{i}" for i in range(len(at_ref))],
        )
        fits = fit_sweep(pd.concat([table, other], ignore_index=True))
        for axis in ("D", "lr", "batch"):
            assert fits[axis]["n_runs"] == base[axis]["n_runs"], (arm, axis)
        assert fits["D"]["exponent"] == pytest.approx(base["D"]["exponent"])


def test_the_findings_paragraph_states_counts_answer_and_scale():
    fits = {"order": order_verdicts(stage_runs(), {"selectors": "shared"})}
    text = order_findings(fits)
    assert "Over 9 runs from N = 3,000 to 20,000 (3 at N = 20,000 so far)" in text
    assert "on first tokens the marginal first in 9, together in 0" in text
    assert "+20.0% [" in text and "order: the marginal first" in text
    assert text.endswith("This is a statement about N <= 20,000 only.")
    assert order_findings({"order": {}}) is None


def test_mbc_fit_writes_the_readme_summary_from_a_committed_table(tmp_path, capsys):
    """`mbc fit` refits the committed paper-regime table and rewrites the README's summary
    block and the document's section; a missing marker or a task without the scaling claims
    is a named error that writes nothing."""
    sweep = tmp_path / "paper_regime"
    sweep.mkdir()
    shutil.copy(ROOT / "results/paper_regime/runs.csv", sweep / "runs.csv")
    out = tmp_path / "res" / "paper_regime"
    readme, doc = tmp_path / "README.md", tmp_path / "REPRO.md"
    readme.write_text(f"intro\n{summary_marker(out)}\nold\n{END}\nafter\n")
    doc.write_text(f"{begin_marker(out)}\nold\n{END}\n")
    args = ["fit", str(sweep), "--results", str(out), "--doc", str(doc)]
    assert main([*args, "--summary", str(readme)]) == 0
    text = readme.read_text()
    assert "old" not in text and text.startswith("intro\n") and text.endswith("after\n")
    assert "On the paper-regime sweep (`sweeps/paper_regime.toml`: N = 1,000 to" in text
    assert "8a. The marginal P(A\\|B) comes before z is read" in doc.read_text()
    bare = tmp_path / "bare.md"
    bare.write_text("nothing\n")
    before = (out / "fits.json").read_text()
    (out / "fits.json").unlink()
    assert main([*args, "--summary", str(bare)]) == 2
    assert "no generated section" in capsys.readouterr().err
    assert not (out / "fits.json").exists()  # refused before anything was written
    assert before
    assert main(["fit", str(sweep), "--noise", "--summary", str(readme)]) == 2
    assert "--summary" in capsys.readouterr().err
    untimed = tmp_path / "untimed" / "paper_regime"  # no run has the matched stage times
    untimed.mkdir(parents=True)
    runs = pd.read_csv(sweep / "runs.csv")
    stages = ("t_marginal_", "t_conditional_", "marginal_lead_", "order_")
    runs = runs.drop(columns=[c for c in runs if c.startswith(stages)])
    runs.to_csv(untimed / "runs.csv", index=False)
    readme.write_text(f"{summary_marker(out)}\nold\n{END}\n")
    fresh = tmp_path / "fresh" / "paper_regime"
    assert main(["fit", str(untimed), "--results", str(fresh), "--summary", str(readme)]) == 2
    assert "no summary for" in capsys.readouterr().err
    assert not fresh.exists() and "old" in readme.read_text()  # refused before any write


def test_the_order_figure_draws_every_run_and_the_regime_intervals():
    from mbc_interp.sweep.order import lead_points
    from mbc_interp.viz.scaling import order_figure

    runs = stage_runs()
    points = lead_points(runs)
    assert len(points) == 2 * len(runs)
    assert points.loc[points.version == "first", "relative_lead"].mean() == pytest.approx(0.2)
    fig = order_figure(points, order_claim(runs))
    markers = [t for t in fig.data if t.mode == "markers"]
    assert [len(t.y) for t in markers] == [9, 9]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 2 and max(bands[1].y) == pytest.approx(
        100 * order_claim(runs)["first"]["relative_lead"]["ci"][1]
    )


def test_the_same_figure_is_the_same_svg_file(tmp_path):
    """Figures are exported with stable ids, so a refit whose numbers did not change leaves
    the committed SVGs as they were (plotly draws random ids for clip paths and traces)."""
    pytest.importorskip("kaleido")
    from mbc_interp.studies.mbc.documents import write_svgs
    from mbc_interp.sweep.order import lead_points
    from mbc_interp.viz.scaling import order_figure

    runs = stage_runs()
    fig = order_figure(lead_points(runs), order_claim(runs))
    first = write_svgs({"order": fig}, tmp_path / "a")
    if not first:  # no browser for the export: nothing to compare
        pytest.skip("SVG export unavailable")
    again = write_svgs({"order": fig}, tmp_path / "b")
    assert first[0].read_bytes() == again[0].read_bytes()
    assert fig.data[0].uid is None  # the caller's figure is left as it was
