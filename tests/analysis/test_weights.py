"""Weight norms, circuit ranks and update cosines (exact, and read from the stored parameter
sketch) against weights whose answers are known."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from mbc_interp.analysis.dynamics.weights import (
    SKETCH_SIZE,
    effective_rank,
    parameter_group,
    parameter_sketch,
    update_cosines,
    weight_records,
)
from mbc_interp.analysis.timing.extra_summary import weights_summary
from mbc_interp.model import ModelConfig, build_model


def test_effective_rank_counts_equal_singular_values():
    assert effective_rank(torch.diag(torch.tensor([2.0, 2.0, 0.0])))[0] == pytest.approx(2.0)
    rank, top = effective_rank(torch.outer(torch.ones(4), torch.arange(4.0)))
    assert rank == pytest.approx(1.0) and top == pytest.approx(1.0)
    assert effective_rank(torch.eye(5))[0] == pytest.approx(5.0)


def test_weight_records_on_a_tiny_model_with_a_planted_head():
    model = build_model(ModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=16), 10, 6, seed=0)
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.W_V[0].zero_()
        attn.W_O[0].zero_()
        attn.W_V[0][0, 0] = attn.W_V[0][1, 1] = 1.0  # V reads two residual directions ...
        attn.W_O[0][0, 2] = attn.W_O[0][1, 3] = 1.0  # ... and O writes them to two others
    rows = {(r["component"], r["metric"]): r["value"] for r in weight_records(model)}
    assert rows[("L0H0", "ov_rank")] == pytest.approx(2.0)
    assert rows[("L0H0", "ov_top_frac")] == pytest.approx(0.5)
    assert 1.0 <= rows[("L0H1", "ov_rank")] <= model.cfg.d_head
    want = math.sqrt(sum(float(p.detach().pow(2).sum()) for p in model.parameters()))
    assert rows[("all", "norm")] == pytest.approx(want, rel=1e-6)
    attn_sq = sum(float(p.detach().pow(2).sum()) for n, p in model.named_parameters()
                  if ".attn." in n)
    assert rows[("L0.attn", "norm")] == pytest.approx(math.sqrt(attn_sq), rel=1e-6)


def test_parameter_groups_and_update_cosines():
    assert parameter_group("blocks.3.attn.W_Q") == "L3.attn"
    assert parameter_group("blocks.0.ln1.w") == "L0.ln"
    assert parameter_group("unembed.W_U") == "unembed"
    line = [{"w": torch.tensor([float(t), 2.0 * t])} for t in range(4)]
    assert update_cosines(line) == pytest.approx([1.0, 1.0])
    back = [{"w": torch.tensor([0.0])}, {"w": torch.tensor([1.0])}, {"w": torch.tensor([0.0])}]
    assert update_cosines(back) == pytest.approx([-1.0])


def _states_along(model, direction, ts):
    """The model's state moved ``t`` times ``direction`` from where it is, for each ``t``."""
    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    for t in ts:
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(base[n] + t * direction[n])
        yield model
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(base[n])


def test_the_sketch_reads_a_straight_path_and_a_reversal_exactly():
    model = build_model(ModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=16), 10, 6, seed=0)
    g = torch.Generator().manual_seed(1)
    d = {n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    line = [{"s": parameter_sketch(m)} for m in _states_along(model, d, [0.0, 1.0, 3.0, 4.0])]
    assert update_cosines(line) == pytest.approx([1.0, 1.0], abs=1e-9)
    back = [{"s": parameter_sketch(m)} for m in _states_along(model, d, [0.0, 1.0, 0.5])]
    assert update_cosines(back) == pytest.approx([-1.0], abs=1e-9)
    # the rows carry the sketch, and the summary reads the same cosines from them
    table = pd.DataFrame([{"step": step, **r}
                          for step, m in zip((10, 20, 30, 40),
                                             _states_along(model, d, [0.0, 1.0, 3.0, 2.0]),
                                             strict=True)
                          for r in weight_records(m)])  # fmt: skip
    out = weights_summary(table)
    assert out["update_cosine"]["step"] == [30.0, 40.0]
    assert out["update_cosine"]["value"] == pytest.approx([1.0, -1.0], abs=1e-9)
    assert len(table[(table.step == 10) & (table.metric == "param_sketch")]) == SKETCH_SIZE


def test_the_sketched_cosine_is_unbiased_within_its_stated_error():
    """Two updates at a known cosine of 0.5 over 20,000 entries: across sketch seeds, the
    estimate centres on 0.5 with the spread sqrt((1 + cos^2) / SKETCH_SIZE) the docstring
    states."""
    n = 20_000
    g = torch.Generator().manual_seed(0)
    u = torch.randn(n, generator=g, dtype=torch.float64)
    v = torch.randn(n, generator=g, dtype=torch.float64)
    v = v - (v @ u) / (u @ u) * u  # orthogonal to u
    w = 0.5 * u / u.norm() + (0.75**0.5) * v / v.norm()  # cos(u, w) = 0.5
    points = [torch.zeros(n, dtype=torch.float64), u, u + w]
    layer = torch.nn.Linear(n, 1, bias=False)
    estimates = []
    for seed in range(60):
        sketches = []
        for x in points:
            with torch.no_grad():
                layer.weight.copy_(x[None])
            sketches.append({"s": parameter_sketch(layer, seed=seed)})
        estimates.append(update_cosines(sketches)[0])
    spread = (1.25 / SKETCH_SIZE) ** 0.5
    assert abs(float(np.mean(estimates)) - 0.5) < 3 * spread / 60**0.5
    assert 0.6 * spread < float(np.std(estimates)) < 1.5 * spread


def test_sketched_cosines_follow_the_exact_ones_over_a_real_run(tiny_run):
    from mbc_interp.model import model_state

    steps = tiny_run.steps[-4:]
    models = [tiny_run.model(s) for s in steps]
    exact = update_cosines([model_state(m) for m in models])
    table = pd.DataFrame([{"step": s, **r} for s, m in zip(steps, models, strict=True)
                          for r in weight_records(m)])  # fmt: skip
    sketched = weights_summary(table)["update_cosine"]["value"]
    assert sketched == pytest.approx(exact, abs=4 * (2 / SKETCH_SIZE) ** 0.5)
