"""The example loss from a model, from its logits and from log-probabilities: one quantity."""

from __future__ import annotations

import math

import torch

from mbc_interp.model import ModelConfig, build_model
from mbc_interp.tasks.losses import log_prob_losses, logit_losses, target_losses


def test_the_three_entry_points_agree_on_a_tiny_model():
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32), 9, 6, seed=0)
    tokens = torch.randint(0, 9, (5, 6))
    answer_pos = 3
    with torch.no_grad():
        losses = target_losses(model, tokens, answer_pos)  # (5, 2): positions 3 and 4
        logits = model(tokens[:, :-1])
    assert losses.shape == (5, 2)
    assert torch.equal(logit_losses(logits[:, answer_pos:], tokens[:, answer_pos + 1 :]), losses)
    from_lp = log_prob_losses(logits.log_softmax(-1), tokens, answer_pos)
    assert torch.allclose(from_lp, losses, atol=1e-6)
    # log-probabilities over every position (seq of them) give the same: the last is unused
    padded = torch.cat([logits, logits[:, -1:]], 1).log_softmax(-1)
    assert torch.equal(log_prob_losses(padded, tokens, answer_pos), from_lp)


def test_uniform_log_probs_cost_log_vocab_per_target():
    tokens = torch.tensor([[1, 2, 3, 0], [0, 0, 1, 2]])
    uniform = torch.full((2, 4, 5), -math.log(5))
    got = log_prob_losses(uniform, tokens, 1)
    assert got.shape == (2, 2) and torch.allclose(got, torch.full((2, 2), math.log(5)))
