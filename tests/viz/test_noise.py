"""Noise and LLC figures: the expected traces from computed rows, t_loss marked."""

from __future__ import annotations

import pandas as pd
import pytest

from mbc_interp.analysis.dynamics.gradients import GradientConfig, gradient_diagnostics
from mbc_interp.analysis.dynamics.llc import LLCConfig, estimate_llc
from mbc_interp.viz.noise import llc_curve, noise_timelines


@pytest.fixture(scope="module")
def rows(tiny_run):
    out = []
    for step in tiny_run.steps[::4]:
        model = tiny_run.model(step)
        recs = gradient_diagnostics(model, tiny_run.task, GradientConfig(sample_size=32))
        llc = estimate_llc(model, tiny_run.task, LLCConfig(chains=2, draws=4, burn_in=2))
        out += [{"step": step, **r} for r in recs.to_records() + llc.to_records()]
    return tiny_run, pd.DataFrame(out)


def titles(fig) -> set[str]:
    """The subplot titles (plotly keeps them as annotations too)."""
    return {a.text for a in fig.layout.annotations if a.yref == "paper"}


def test_noise_timelines_draw_every_measure_with_its_null(rows):
    run, table = rows
    fig = noise_timelines(table, run.metrics, t_loss=40.0, batch_size=32)
    names = [t.name for t in fig.data]
    for name in ("loss", "|G|", "B_simple", "coherence", "group ratio", "null 1/n",
                 "null 1/sqrt(K-1)", "batch size 32", "|G| L0.attn", "|G| unembed"):  # fmt: skip
        assert name in names
    steps = sorted(table["step"].unique())
    b = next(t for t in fig.data if t.name == "B_simple")
    assert list(b.x) == steps
    expected = table[(table["metric"] == "b_simple") & (table["component"] == "all")]
    assert list(b.y) == pytest.approx(list(expected.sort_values("step")["value"]))
    null = next(t for t in fig.data if t.name == "null 1/sqrt(K-1)")
    assert list(null.y) == pytest.approx([3**-0.5] * len(steps))
    assert [s.x0 for s in fig.layout.shapes] == [40.0] * 5  # t_loss on each panel
    # labelled once, on the top panel: no placeholder text on the others
    labels = [a.text for a in fig.layout.annotations if a.text not in titles(fig)]
    assert labels == ["t_loss"]
    assert not noise_timelines(table, run.metrics).layout.shapes
    assert "|G| L0.attn" not in [
        t.name for t in noise_timelines(table, run.metrics, components=False).data
    ]


def test_llc_curve_draws_the_estimates_with_their_spread(rows):
    run, table = rows
    fig = llc_curve(table, run.metrics, t_loss=40.0)
    llc = next(t for t in fig.data if t.name == "LLC")
    expected = table[table["metric"] == "llc"].sort_values("step")
    assert list(llc.y) == pytest.approx(list(expected["value"]))
    assert len(llc.error_y.array) == len(expected)
    assert len(fig.layout.shapes) == 2
