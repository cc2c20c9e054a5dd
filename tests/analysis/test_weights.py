"""Weight norms, circuit ranks and update cosines against weights whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from mbc_interp.analysis.dynamics.weights import (
    effective_rank,
    parameter_group,
    update_cosines,
    weight_records,
)
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
