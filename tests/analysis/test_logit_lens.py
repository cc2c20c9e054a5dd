"""Logit lens: the last stage reproduces the model; the knowledge measures are probabilities."""

from __future__ import annotations

import pytest
import torch

from mbc_interp.analysis import logit_lens
from mbc_interp.model import ModelConfig
from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask, sequence_nll

from .conftest import tiny_model


def model_loss(model, task):
    with torch.no_grad():
        log_probs = model(task.tokens).log_softmax(-1)
    return float(sequence_nll(log_probs, task.tokens, task.loss_mask).mean())


def test_last_stage_equals_the_model(trained, task):
    lens = logit_lens(trained, task, batch_size=100)
    assert lens.layer_labels == ("embed", "L0", "L1")
    assert float(lens.loss[-1]) == pytest.approx(model_loss(trained, task), abs=1e-5)
    torch.testing.assert_close(lens.loss_by_position.sum(-1), lens.loss)
    assert (lens.correct_prob <= lens.candidate_mass + 1e-6).all()
    assert (lens.candidate_mass <= 1 + 1e-6).all()
    assert float(lens.correct_prob[-1]) > 0.5  # trained past the plateau
    assert len(lens.to_frame()) == 3 * 3


@pytest.mark.parametrize("normalization", ["RMS", "none"])
def test_longer_targets_and_other_norms(normalization):
    task = WindTunnelTask(TaskConfig(D=16, K=3, target_len=3))
    config = ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, normalization=normalization)
    model = tiny_model(task, config, seed=5)
    lens = logit_lens(model, task)
    assert lens.loss_by_position.shape == (3, 3)
    assert float(lens.loss[-1]) == pytest.approx(model_loss(model, task), abs=1e-5)
