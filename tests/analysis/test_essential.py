"""Essential dynamics on trajectories whose turn is known, and a real model's output vector."""

from __future__ import annotations

import numpy as np
import pytest

from mbc_interp.analysis.dynamics.essential import (
    EssentialConfig,
    output_vector,
    pca_trajectory,
    turn,
)


def test_an_l_shaped_trajectory_turns_at_its_corner():
    steps = np.arange(0, 200, 10.0)
    a, b = np.zeros(50), np.zeros(50)
    a[0], b[1] = 1.0, 1.0
    t = np.arange(20.0)
    # along a until step 100, then along b: the corner is the checkpoint at step 100
    vectors = np.array([np.minimum(s, 10) * a + np.maximum(s - 10, 0) * b for s in t])
    coords, share = pca_trajectory(vectors + 1e-9 * np.random.default_rng(0).random((20, 50)), 3)
    assert share[:2].sum() == pytest.approx(1.0, abs=1e-6)
    out = turn(steps, coords, window=2)
    assert out["t_turn"] == 100.0 and out["turn_angle"] == pytest.approx(90.0, abs=1.0)
    straight = np.array([s * a for s in t])
    line = turn(steps, pca_trajectory(straight, 3)[0], window=2)
    assert line["turn_angle"] == pytest.approx(0.0, abs=1e-3)
    still = turn(steps, np.zeros((20, 3)), window=2)
    assert still["t_turn"] is None


def test_output_vector_is_log_probabilities_of_the_probe_set(trained, task):
    v = output_vector(trained, task, EssentialConfig(n_examples=16))
    assert v.numel() == 16 * task.n_targets * task.config.d_vocab
    probs = v.reshape(-1, task.config.d_vocab).exp().sum(-1)
    assert np.allclose(probs.numpy(), 1.0, atol=1e-6)


def test_projections_keep_the_distances_between_checkpoints(trained, random_model, task):
    import torch

    from mbc_interp.analysis.dynamics.essential import projected_records

    cfg = EssentialConfig(n_examples=16, n_projections=512)
    a, b = (output_vector(m, task, cfg) for m in (trained, random_model))
    pa, pb = (torch.tensor([r["value"] for r in projected_records(m, task, cfg)])
              for m in (trained, random_model))  # fmt: skip
    assert float((pa - pb).norm()) == pytest.approx(float((a - b).norm()), rel=0.1)
    with pytest.raises(ValueError, match="n_projections"):
        EssentialConfig(n_projections=0)
