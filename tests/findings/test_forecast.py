"""Findings of the forecast backtest (`results/forecast/backtest.csv`), recomputed."""

from __future__ import annotations

import pandas as pd

from .prose import RESULTS, fits, i0, pct, runs, span, stated, verdicts

# ---------------------------------------------------------------- the forecast backtest


def _backtest(sweep: str, fraction: float) -> pd.DataFrame:
    b = pd.read_csv(RESULTS / "forecast" / "backtest.csv")
    b = b[(b.sweep == sweep) & (b.fraction == fraction)]
    return b.pivot_table(index="run", columns="method", values="rel_err")


def test_forecast_on_the_proxy():
    half = _backtest("layout_cpu", 0.5)
    size = runs("layout_cpu").set_index("name").D
    large = half.forecast[size[half.index] >= 500].abs()
    stated(
        f"{pct(large.min(), 2)[:-1]}-{pct(large.max())} (median {pct(large.median(), 1)}) "
        "at D >= 500"
    )
    stated(f"the plateau by {pct(_backtest('layout_cpu', 0.75).forecast.abs().median(), 1)}")
    epochs = [m["mean_epochs"] for m in fits("layout_cpu")["D"]["means"].values()]
    stated(f"duration table: {span(epochs, i0)} epochs at every D")
    small = half.forecast[size[half.index] == 125]
    assert (small > 0).all()
    b = pd.read_csv(RESULTS / "forecast" / "backtest.csv")
    rem = b[(b.sweep == "layout_cpu") & (b.fraction == 0.5) & (b.method == "forecast")]
    rem = rem.set_index("run").rel_err_remaining[small.index]
    late = f"{pct(small.min())[:-1]}-{pct(small.max())}"
    stated(
        f"all four D = 125 runs are forecast late, by {late} "
        f"of t_loss, {span(rem, lambda x: f'{x:.1f}')}x the time still to wait"
    )
    rest = half.forecast[size[half.index] >= 500]
    stated(f"the eight larger runs between {pct(-rest.min())} early and {pct(rest.max())} late")
    quarter = b[(b.sweep == "layout_cpu") & (b.fraction == 0.25) & (b.method == "forecast")]
    n_none = int((quarter.status == "not_enough_signal").sum())
    stated(f"Δz has no onset yet in {n_none} of {len(quarter)} runs")


def test_forecast_on_the_paper_task():
    half = _backtest("paper_cpu", 0.5)
    stated(f"{half.forecast.notna().sum()} runs forecast at half the plateau")
    table = runs("paper_cpu")
    dropped = table[table.status == "transitioned"]
    stated(f"a near-constant {span(dropped.duration_epochs, i0)} epochs whatever N, K, lr, batch")
    b = pd.read_csv(RESULTS / "forecast" / "backtest.csv")
    f = b[
        (b.sweep == "paper_cpu")
        & (b.fraction == 0.5)
        & (b.method == "forecast")
        & (b.status == "forecast")
    ]
    eps = table.set_index("name").eps
    first = f[eps[f.run].to_numpy() == 1e-8]
    err = pct(first.rel_err.abs().median())
    stated(
        f"on the {len(first)} of them from the first 14 points {err}, "
        f"{int(first.covered.astype(bool).sum())} of {len(first)} covered"
    )
    means = fits("paper_cpu")["batch"]["means"]
    assert 1.9 < means["64"]["mean_steps"] / means["128"]["mean_steps"] < 2.3
    assert abs(means["64"]["mean_epochs"] / means["128"]["mean_epochs"] - 1) < 0.1
    stated("batch 64 doubles it in steps and leaves it in epochs")
    ratio = verdicts("paper_noise")["d"]["levels"]["0.001"]["ratio"]
    stated(f"eps 1e-3 delays the drop by {pct(ratio - 1)}")


def _noise_epochs() -> pd.Series:
    t = runs("noise_cpu").set_index("name")
    return t.t_loss * t.batch / t.n_examples, t


def test_forecast_on_the_held_out_grid():
    epochs, t = _noise_epochs()
    half = _backtest("noise_cpu", 0.5)
    adam = t.optimizer == "adamw"
    ref_like = (adam & (t.eps == 1e-8) & (t.lr != 1e-3)) | (adam & (t.eps == 1e-4))
    stated(
        f"{int(ref_like.sum())} of its {len(t)} runs keep the reference epoch count (the D "
        "block, "
        f"lr 2e-3 and eps 1e-4: {span(epochs[ref_like], i0)} epochs to the drop)"
    )
    groups = {
        "sgd": ~adam,
        "eps3": adam & (t.eps == 1e-3),
        "lr1": adam & (t.lr == 1e-3),
        "lr2": adam & (t.lr == 2e-3),
        "eps4": adam & (t.eps == 1e-4),
    }
    e = {g: half.loc[t.index[m]] for g, m in groups.items()}
    plain = adam & (t.eps == 1e-8) & (t.lr != 1e-3)  # lr 3e-4 (the D block) and lr 2e-3
    stated(
        f"from {span(epochs[plain], i0)} epochs to the drop at lr 3e-4 and 2e-3 to "
        f"{span(epochs[groups['lr1']], i0)} at lr 1e-3, "
        f"{span(epochs[groups['eps3']], i0)} at eps 1e-3 and {span(epochs[groups['sgd']], i0)} "
        "with SGD"
    )
    stated(
        f"SGD runs ({span(epochs[groups['sgd']], i0)} epochs to the drop) are forecast "
        f"{span(-e['sgd'].forecast * 100, i0)}% early by Δz and "
        f"{span(-e['sgd'].epochs * 100, i0)[:2]}% early by the epochs baseline"
    )
    assert (e["sgd"].forecast < 0).all() and (e["sgd"].epochs < 0).all()
    stated(
        f"the eps 1e-3 pair {span(e['eps3'].forecast * 100, i0)}% late against "
        f"{span(-e['eps3'].epochs * 100, i0)}% early"
    )
    lr1f, lr1e = e["lr1"].forecast.abs(), e["lr1"].epochs.abs()
    stated(
        f"the lr 1e-3 pair {pct(lr1f.iloc[0])} and {pct(lr1f.iloc[1])} against "
        f"{pct(lr1e.iloc[0])} and {pct(lr1e.iloc[1])}"
    )
    stated(
        f"the lr 2e-3 pair is forecast {span(-e['lr2'].forecast * 100, i0)}% early by Δz "
        "against "
        f"{span(e['lr2'].epochs * 100, i0)}% by the epochs baseline"
    )
    stated(
        f"the eps 1e-4 pair {span(e['eps4'].forecast.abs() * 100, i0)}% against "
        f"{span(e['eps4'].epochs.abs() * 100, i0)}%"
    )
    changed = pd.concat([e[g] for g in groups])
    better = changed[changed.forecast.abs() < changed.epochs.abs()]
    stated(
        f"Δz is better on {len(better)} of the {len(changed)} runs with other optimizer settings"
    )
    stated(f"the six where the baseline's own miss is {pct(better.epochs.abs().min())} or more")
    worse = changed.drop(better.index)
    assert len(better) == 6 and better.epochs.abs().min() > worse.epochs.abs().max()
    stated(f"still up to {pct(better.forecast.abs().max())}")




def _summary(sweep: str, method: str) -> tuple[float, float]:
    """Median |relative error| and coverage at half the plateau, over the runs the forecast
    predicted (as the generated verdicts count them)."""
    b = pd.read_csv(RESULTS / "forecast" / "backtest.csv")
    b = b[(b.sweep == sweep) & (b.fraction == 0.5)]
    predicted = b[(b.method == "forecast") & (b.status == "forecast")].run
    rows = b[(b.method == method) & b.run.isin(predicted)]
    return rows.rel_err.abs().median(), rows.covered.astype(float).mean()


def test_forecast_medians_and_coverage():
    err, cov = _summary("layout_cpu", "forecast")
    stated(f"off by a median {pct(err)} of t_loss")
    stated(f"cover {pct(cov)} of the outcomes")
    stated(
        f"right to {pct(_summary('layout_cpu', 'epochs')[0])}, and the power law to "
        f"{pct(_summary('layout_cpu', 'power_law')[0])}"
    )
    stated(f"misses by {pct(_summary('layout_cpu', 'extrapolation')[0])} at half the plateau")
    err, cov = _summary("paper_cpu", "forecast")
    stated(f"the forecast is off by {pct(err)} (coverage {pct(cov)};")
    stated(
        f"the constant-epochs baseline by {pct(_summary('paper_cpu', 'epochs')[0])} and the "
        f"power law by {pct(_summary('paper_cpu', 'power_law')[0])}"
    )
    stated(
        f"median {pct(_summary('noise_cpu', 'forecast')[0])} for the forecast against "
        f"{pct(_summary('noise_cpu', 'epochs')[0])} for constant epochs"
    )
    covers = [pct(_summary("noise_cpu", m)[1]) for m in ("forecast", "epochs", "power_law")]
    stated(f"the v3 intervals there cover {covers[0]}, {covers[1]} and {covers[2]}")
