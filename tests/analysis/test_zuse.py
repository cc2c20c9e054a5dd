"""Per-head z-use, routing-head choice and growth onsets: cases where the answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from mbc_interp.analysis import (
    growth_onset,
    growth_rate,
    head_attribution,
    head_z_use,
    patch_head_out_all_pos,
)
from mbc_interp.analysis.timing.summary import routing_scores
from mbc_interp.model import ModelConfig, build_model

from .conftest import tiny_model


def decoy_model(task):
    """One layer, no norm: head 0 attends from every later position to z (its query is a
    constant bias, its key reads a positional direction only z's position has) but its values
    are a constant: its output cannot depend on z. The other heads are silent."""
    model = build_model(ModelConfig(n_layers=1, d_model=32, n_heads=4, d_mlp=None,
                                    normalization="none"), task.config.d_vocab,
                        task.config.seq_len, seed=0)  # fmt: skip
    z = task.selector_positions[0]
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.W_E[:, :16] = torch.randn(task.config.d_vocab, 16)
        model.W_pos[z, 31] = 1.0  # only z's position has this direction
        attn = model.blocks[0].attn
        attn.b_Q[0, 0] = 20.0
        attn.W_K[0, 31, 0] = 20.0  # key 20 at z, 0 elsewhere: softmax weight ~1 on z
        attn.b_V[0] = torch.randn(attn.b_V.shape[-1])  # constant values
        attn.W_O[0] = torch.randn_like(attn.W_O[0])
        model.W_U[:16] = torch.randn(16, task.config.d_vocab)
    return model.eval()


def test_a_head_that_attends_to_z_without_using_it_has_no_z_use(task):
    model = decoy_model(task)
    pairs = task.patching_pairs(64)
    attention = head_attribution(model, task, torch.arange(64)).attn_to_z
    assert attention[0, 0] > 0.99  # attends to z perfectly
    use = head_z_use(model, pairs)
    assert use.direct.abs().max() < 1e-5 and use.gap == pytest.approx(0.0, abs=1e-5)
    total = patch_head_out_all_pos(model, task, pairs).raw
    assert total.abs().max() < 1e-5


def test_z_use_of_heads_plus_the_rest_is_the_models_gap(trained, task):
    """Direct effects of the heads are a share of the clean - corrupt gap: on a model that
    reads z the gap is large and the heads carry a positive part of it."""
    use = head_z_use(trained, task.patching_pairs(128))
    assert use.gap > 1.0
    assert use.direct.sum() > 0.2 * use.gap
    assert (use.direct_se > 0).all() and use.n_pairs == 128


def test_z_use_is_small_but_defined_at_initialisation(task):
    use = head_z_use(tiny_model(task, seed=3), task.patching_pairs(128))
    assert torch.isfinite(use.direct).all() and torch.isfinite(use.direct_se).all()
    assert (use.direct.abs() < 4 * use.direct_se + 1e-3).all()  # indistinguishable from 0


def _z_use_table(curves: dict[str, tuple[np.ndarray, float]], steps: np.ndarray) -> pd.DataFrame:
    rows = []
    for head, (total, attn) in curves.items():
        for s, v in zip(steps, total, strict=True):
            rows.append({"step": s, "tokens": s, "component": head, "total": v,
                         "total_se": 0.01, "attn_to_z": attn})  # fmt: skip
    return pd.DataFrame(rows)


def test_routing_scores_pick_the_head_whose_z_use_grows_over_the_plateau():
    steps = np.arange(0, 1001, 50, dtype=float)
    router = 0.001 * np.exp(steps / 100)  # grows through the plateau
    late = np.where(steps >= 950, 30.0, 0.0)  # largest at the very end only
    table = _z_use_table({"L0H0": (np.zeros_like(steps), 1.0),  # attends to z, never uses it
                          "L1H1": (router, 0.3), "L1H2": (late, 0.3)}, steps)  # fmt: skip
    scores = routing_scores(table, start=100.0, stop=900.0)
    assert scores.idxmax() == "L1H1" and scores["L0H0"] == 0.0
    assert routing_scores(table, None, None)["L1H2"] > 0  # the whole run when no window


def test_exponential_onset_is_where_it_leaves_the_floor_not_half_way():
    rng = np.random.default_rng(0)
    steps = np.arange(0.0, 2000.0, 10.0)
    se = np.full_like(steps, 0.01)
    values = 1e-4 * np.exp(steps / 200) + rng.normal(0, 0.01, steps.shape)
    leaves = 200 * np.log(3 * 0.01 / 1e-4)  # 1e-4 e^(t/200) = 3 SE: t ~ 1141
    t = growth_onset(steps, values, se).t
    assert t is not None and abs(t - leaves) < 100
    half_way = 200 * np.log(0.5 * values[-1] / 1e-4)
    assert half_way - t > 500  # far earlier than the half-way crossing
    g = growth_rate(steps, values, se, t, None)
    assert g.doubling == pytest.approx(200 * np.log(2), rel=0.1)


def test_onset_needs_the_signal_to_stay_above_its_floor():
    steps = np.arange(10.0)
    se = np.full(10, 1.0)
    blip = np.array([0, 0, 5, 0, 0, 0, 0, 0, 0, 0.0])
    assert growth_onset(steps, blip, se).t is None
    already = np.full(10, 10.0)
    assert "first evaluation" in growth_onset(steps, already, se).reason
    assert growth_onset(steps, np.zeros(10), se).t is None
    with pytest.raises(ValueError, match="exactly one"):
        growth_onset(steps, blip)
