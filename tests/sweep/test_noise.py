"""Issue 11's noise verdicts (``mbc fit --noise``): the rules on synthetic tables with known
answers, the plateau medians on a real run directory, and the command end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbc_interp.store.run_store import ANALYSIS_DIR
from mbc_interp.studies.mbc import END, noise_fit_and_write, noise_marker
from mbc_interp.sweep.noise import (
    RUN_COLUMNS,
    noise_table,
    noise_verdicts,
    plateau_measures,
    spearman,
)
from mbc_interp.sweep.noise_text import format_verdicts

REF = {"D": 500, "K": 4, "lr": 3e-4, "batch": 128, "optimizer": "adamw", "eps": 1e-8,
       "momentum": 0.0}  # fmt: skip


def run(
    seed: int = 0,
    *,
    grad: float = 1.0,
    b_ratio: float = 100.0,
    t0: float = 100.0,
    t_loss: float | None = 900.0,
    ckpts: int = 5,
    **axes,
) -> dict:
    """One synthetic row of a noise table (the reference point unless ``axes`` say otherwise)."""
    row = {**REF, **axes, "seed": seed, "direction": "backward", "target_len": 1,
           "construction": "shared_pool", "data_seed": 0, "n_layers": 2, "d_model": 64,
           "n_heads": 4, "selector_gap": 0, "point_status": "done"}  # fmt: skip
    row["n_examples"] = row["D"] * row["K"]
    row["name"] = f"D{row['D']}_lr{row['lr']:g}_eps{row['eps']:g}_{row['optimizer']}_s{seed}"
    row["labels"] = "synthetic"
    dur = None if t_loss is None else t_loss - t0
    t_adam = row["lr"] * b_ratio / (1 + b_ratio)
    row.update(t_plateau_start=t0, t_plateau_end=(t_loss or 4000) - 10, t_loss=t_loss,
               duration_steps=dur, duration_tokens=None if dur is None else dur * 128 * 7,
               censored=t_loss is None, status="transitioned" if t_loss else "no_transition",
               n_plateau_ckpts=ckpts, grad_norm=grad, b_ratio=b_ratio,
               b_simple=b_ratio * row["batch"], t_adam=t_adam, coherence=0.002,
               coherence_null=1 / 512, group_ratio=0.1, group_ratio_null=0.577,
               eps_dominated_frac=0.01, llc=math.nan, plateau_lr=row["lr"])  # fmt: skip
    row["tr_sigma"] = row["b_simple"] * grad**2
    row["t_sgd"] = row["lr"] * row["tr_sigma"] / row["batch"]
    return row


def table(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def reference_filler() -> list[dict]:
    """Runs that make the reference point unambiguous (D 500, lr 3e-4, eps 1e-8, AdamW)."""
    return [run(s) for s in (10, 11, 12)]


def test_spearman_exact_permutation_p():
    a = np.array  # floats: the arguments are typed Float[np.ndarray, "n"]
    rho, p = spearman(a([0.0, 1, 2, 3, 4, 5]), a([5.0, 4, 3, 2, 1, 0]))
    assert rho == pytest.approx(-1) and p == pytest.approx(2 / 720)  # only 2 of 6! as extreme
    rho, p = spearman(a([1.0, 2, 3, 4]), a([1.0, 2, 4, 3]))
    # rho = 1 - sum d^2 / 10 >= 0.8: the identity and the 3 adjacent swaps; with the mirrors 8
    assert rho == pytest.approx(0.8) and p == pytest.approx(8 / 24)
    rho, _ = spearman(a([1.0, 2, 3]), a([1.0, 2, math.inf]))  # never escaped: ranks last
    assert rho == pytest.approx(1)
    assert math.isnan(spearman(a([1.0, 1, 1]), a([1.0, 2, 3]))[0])


def test_a_yes_mixed_and_not_tested():
    t = table(*reference_filler(), run(1, b_ratio=5.0), run(2, b_ratio=1e3, ckpts=2))
    a = noise_verdicts(t)["a"]
    assert a["verdict"] == "yes" and a["n_runs"] == 4  # the 2-checkpoint run is not measurable
    t = table(*reference_filler(), run(1, b_ratio=0.5))
    assert noise_verdicts(t)["a"]["verdict"] == "mixed (3 of 4 above)"
    t = table(run(1, b_ratio=0.5, ckpts=2))
    assert noise_verdicts(t)["a"]["verdict"] == "not tested"


def d_slice(grads: list[float]) -> list[dict]:
    """Six runs over D (250, 500, 1000, two seeds): durations grow with D."""
    ds = [250, 250, 500, 500, 1000, 1000]
    return [run(i, D=d, grad=g, t_loss=100 + d * (1.0 + 0.1 * i))
            for i, (d, g) in enumerate(zip(ds, grads, strict=True))]  # fmt: skip


def test_b_ordered_as_predicted_opposite_and_not():
    sgd = run(7, D=250, grad=0.01, optimizer="sgd", momentum=0.9, lr=0.1)  # outside the slice
    b = noise_verdicts(table(*d_slice([6, 5, 4, 3, 2, 1]), sgd))["b"]
    assert b["verdict"] == "ordered as predicted" and b["rho"] == pytest.approx(-1)
    assert b["n_runs"] == 6 and b["llc"]["verdict"] == "not tested"
    b = noise_verdicts(table(*d_slice([1, 2, 3, 4, 5, 6])))["b"]
    assert b["verdict"] == "ordered, opposite sign"
    b = noise_verdicts(table(*d_slice([3, 1, 6, 2, 5, 4])))["b"]
    assert b["verdict"] == "not ordered" and b["p"] > 0.05
    few = d_slice([6, 5, 4, 3, 2, 1])[:4]  # two values of D
    assert noise_verdicts(table(*few))["b"]["verdict"] == "not tested"


def lr_slice(b_ratios: list[float], t_losses: list[float]) -> list[dict]:
    lrs = [3e-4, 3e-4, 1e-3, 1e-3, 2e-3, 2e-3]
    return [run(i, lr=lr, b_ratio=b, t_loss=t) for i, (lr, b, t) in
            enumerate(zip(lrs, b_ratios, t_losses, strict=True))]  # fmt: skip


def test_c_noise_raised_and_the_duration_decides_the_mechanism():
    flat = [900, 1000, 950, 850, 1000, 900]
    c = noise_verdicts(table(*lr_slice([100] * 6, flat), *reference_filler()))["c"]
    # B_simple >> batch: T_adam ~ lr, 6.7x across the range; the durations overlap
    assert c["verdict"] == "raised"
    assert c["noise"]["ratio_largest_over_smallest"] == pytest.approx(2e-3 / 3e-4, rel=1e-6)
    assert c["duration"]["verdict"] == "no clear change" and c["mechanism"] == "against it"
    longer = [900, 1000, 1500, 1600, 3000, None]  # a run that never escaped is the longest
    c = noise_verdicts(table(*lr_slice([100] * 6, longer)))["c"]
    assert c["duration"]["verdict"] == "raised" and c["mechanism"] == "supports the paper's reading"
    # a larger lr that settles where the noise share is small: T_adam does not rise
    c = noise_verdicts(table(*lr_slice([100, 100, 0.3, 0.3, 0.1, 0.1], flat)))["c"]
    assert c["verdict"] == "lowered" and c["mechanism"] == "not tested"
    one = lr_slice([100] * 6, flat)[:5]  # one run at the largest lr
    assert noise_verdicts(table(*one))["c"]["verdict"] == "not tested"


def test_d_later_sooner_and_within_the_spread():
    rows = [run(0, t_loss=800), run(1, t_loss=900),
            run(0, eps=1e-4, t_loss=850), run(1, eps=1e-4, t_loss=950),
            run(0, eps=1e-3, t_loss=1200), run(1, eps=1e-3, t_loss=None),
            run(0, eps=1e-2, t_loss=300)]  # fmt: skip
    d = noise_verdicts(table(*rows, *reference_filler()[:2]))["d"]
    assert d["levels"]["0.0001"]["verdict"] == "no change beyond the seed spread"
    assert d["levels"]["0.001"]["verdict"] == "later"  # one of them never escaped
    assert d["levels"]["0.01"]["verdict"] == "not tested"  # one run
    assert d["verdict"] == "eps changes the escape time"
    d = noise_verdicts(table(*rows[:4], *reference_filler()[:2]))["d"]
    assert d["verdict"] == "no"
    sooner = [run(0, t_loss=800), run(1, t_loss=900), run(0, eps=1e-3, t_loss=500),
              run(1, eps=1e-3, t_loss=700)]  # fmt: skip
    assert noise_verdicts(table(*sooner))["d"]["levels"]["0.001"]["verdict"] == "sooner"
    assert "no eps level" in format_verdicts(noise_verdicts(table(*reference_filler())))


def test_plateau_medians_on_a_run_directory(tmp_path):
    """Medians over the summary's window only; lr from the schedule (warm-up) at each step."""
    from mbc_interp.training import train

    from ..helpers import build_cfg

    out = tmp_path / "run"
    train(build_cfg(steps=20, warmup_steps=100), out, progress=False)
    steps = [10, 20, 30, 40, 50, 60]
    rows = []
    for s, b, g in zip(steps, [1, 200, 300, 400, 1e6, 7], [9, 1, 2, 3, 9, 9], strict=True):
        for metric, value in (("b_simple", b), ("grad_norm", g), ("coherence", 0.1)):
            rows.append({"step": s, "analysis": "gradients", "kind": None, "component": "all",
                         "metric": metric, "value": value})  # fmt: skip
        rows.append({"step": s, "analysis": "gradients", "kind": None, "component": "L0.mlp",
                     "metric": "b_simple", "value": -1.0})  # fmt: skip
    (out / ANALYSIS_DIR).mkdir(exist_ok=True)
    pd.DataFrame(rows).to_csv(out / ANALYSIS_DIR / "timeline.csv", index=False)
    summary = {"t_plateau_start": 20, "t_plateau_end": 40}
    (out / ANALYSIS_DIR / "summary.json").write_text(json.dumps(summary))
    m = plateau_measures(out)
    assert m["n_plateau_ckpts"] == 3 and m["b_simple"] == 300 and m["grad_norm"] == 2
    assert m["tr_sigma"] == 300 * 2**2 and m["b_ratio"] == pytest.approx(300 / 32)
    # lr of the update from step s in the warm-up: 3e-3 (s + 1) / 100; medians at step 30
    nu = np.array([200, 300, 400]) / 32
    t_adam = 3e-3 * np.array([21, 31, 41]) / 100 * nu / (1 + nu)
    assert m["plateau_lr"] == pytest.approx(3e-3 * 31 / 100)
    assert m["t_adam"] == pytest.approx(np.median(t_adam))
    assert math.isnan(m["eps_dominated_frac"])  # no Adam rows in this timeline
    (out / ANALYSIS_DIR / "summary.json").write_text(json.dumps({"t_plateau_start": None}))
    assert plateau_measures(out)["n_plateau_ckpts"] == 0


def test_command_refits_a_committed_table_and_rewrites_its_section(tmp_path, capsys):
    from mbc_interp.cli import main

    results = tmp_path / "results" / "noise_x"
    results.mkdir(parents=True)
    rows = [*d_slice([6, 5, 4, 3, 2, 1]), *lr_slice([100] * 6, [900, 1000, 950, 850, 1000, 900])]
    pd.DataFrame(rows).to_csv(results / "runs.csv", index=False)
    doc = tmp_path / "DOC.md"
    doc.write_text(f"# Title\n\nprose\n\n{noise_marker(results)}\nold\n{END}\n\nafter\n")
    args = ["fit", str(results), "--noise", "--results", str(results), "--doc", str(doc)]
    assert main(args) == 0
    text = doc.read_text()
    assert "old" not in text and text.startswith("# Title\n\nprose") and text.endswith("after\n")
    assert "| (b) plateau |G|" not in text  # a literal | inside a cell is escaped
    assert "ordered as predicted" in text and "against it" in text
    verdicts = json.loads((results / "verdicts.json").read_text())
    assert verdicts["b"]["verdict"] == "ordered as predicted"
    assert list(pd.read_csv(results / "runs.csv").columns) == [
        c for c in RUN_COLUMNS if c in rows[0]]  # fmt: skip
    assert "ordered as predicted" in capsys.readouterr().out
    # a document without the markers: exit 2, nothing written
    bare = tmp_path / "BARE.md"
    bare.write_text("no markers\n")
    out2 = tmp_path / "out2"
    assert main(["fit", str(results), "--noise", "--results", str(out2), "--doc", str(bare)]) == 2
    assert "marker" in capsys.readouterr().err and not out2.exists()
    assert bare.read_text() == "no markers\n"


@pytest.mark.slow  # a real 4-run sweep with the gradients kind (~40 s)
def test_noise_table_of_a_real_sweep(tmp_path):
    from dataclasses import replace

    from mbc_interp.sweep.runner import run_sweep

    from ..helpers import tiny_spec

    spec = tiny_spec()
    spec = replace(spec, analysis=replace(spec.analysis, kinds=("gradients",)))
    outcomes = run_sweep(spec, tmp_path / "sw", workers=1, progress=False)
    assert all(o["status"] == "done" for o in outcomes), outcomes
    t = noise_table(tmp_path / "sw")
    assert len(t) == 4 and set(t.optimizer) == {"adamw"} and set(t.eps) == {1e-8}
    measured = t[t.n_plateau_ckpts >= 3]
    assert len(measured) >= 1
    assert (measured.b_simple > 0).all() and (measured.grad_norm > 0).all()
    assert np.allclose(measured.b_ratio, measured.b_simple / 32)  # the tiny runs' batch
    assert (measured.t_adam < measured.plateau_lr).all()  # lr times a share below 1
    v = noise_verdicts(t)
    assert v["reference"]["optimizer"] == "adamw" and v["a"]["n_runs"] == len(measured)
    _, paths = noise_fit_and_write(tmp_path / "sw", tmp_path / "res")
    assert {p.name for p in paths} >= {"runs.csv", "verdicts.json"}
    assert all(Path(p).is_file() for p in paths)  # and one noise figure per D when exportable
