"""Head attribution: attention shares are probabilities, DLA decomposes the logit difference."""

from __future__ import annotations

import pytest
import torch

from mbc_interp.analysis import head_attribution
from mbc_interp.model import ModelConfig

from .conftest import tiny_model


def test_attention_at_answer_covers_every_visible_position(trained, task):
    """SEP sees B, z and itself only: the three shares sum to 1 for every head."""
    result = head_attribution(trained, task, batch_size=100)
    total = result.attn_to_z + result.attn_to_base + result.attn_to_sep
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-5, rtol=0)
    for name in ("attn_to_z", "attn_to_z_pred", "attn_to_base", "attn_to_sep", "dla"):
        values = getattr(result, name)
        assert values.shape == (2, 4) and torch.isfinite(values).all()
    assert ((result.attn_to_z >= 0) & (result.attn_to_z <= 1)).all()


@pytest.mark.parametrize("normalization", ["LN", "RMS", "none"])
def test_components_sum_to_the_logit_difference(task, normalization):
    config = ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64, normalization=normalization)
    model = tiny_model(task, config, seed=3)
    with torch.no_grad():  # nonzero biases, so every term of the decomposition is exercised
        for p in model.parameters():
            if p.ndim == 1:  # norm weights and biases, b_O, b_U, MLP biases
                p.add_(0.1 * torch.randn_like(p))
    result = head_attribution(model, task, torch.arange(40))
    assert result.total_dla() == pytest.approx(result.logit_diff, abs=1e-5)
    assert result.circuit_dla(result.head_labels) == pytest.approx(
        float(result.dla.sum()), abs=1e-6
    )


def test_trained_model_decomposition_and_circuit(trained, task):
    result = head_attribution(trained, task)
    assert result.logit_diff > 1.0  # it prefers the right candidate
    assert result.total_dla() == pytest.approx(result.logit_diff, abs=1e-4)
    frame = result.to_frame()
    assert len(frame) == 6 * 8 + len(result.other_labels)
    assert set(frame[frame["metric"] == "dla"]["component"]) >= {"L1H3", "embed", "L1.mlp"}


def test_ablating_a_last_layer_head_moves_logits_by_its_dla(task):
    """Attention-only model, final-norm scale frozen: removing the head's output at the answer
    position changes the logit difference by exactly minus its DLA."""
    model = tiny_model(task, ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=None), seed=4)
    rows = torch.arange(48)
    result = head_attribution(model, task, rows)
    tokens, sep = task.tokens[rows], task.answer_pos
    _, cache = model.run_with_cache(tokens, names_filter="ln_final.hook_scale")
    cands = task.candidate_first(rows)
    correct = tokens[:, sep + 1]

    def knock_out(z, hook, head=2):
        z[:, sep, head] = 0.0
        return z

    with torch.no_grad():
        logits = model.run_with_hooks(
            tokens,
            fwd_hooks=[
                ("blocks.1.attn.hook_z", knock_out),
                ("ln_final.hook_scale", lambda s, hook: cache["ln_final.hook_scale"]),
            ],
        )[:, sep]
    right = logits.gather(-1, correct[:, None]).squeeze(-1)
    others = (logits.gather(-1, cands).sum(-1) - right) / 3
    ablated = float((right - others).mean())
    assert ablated == pytest.approx(result.logit_diff - float(result.dla[1, 2]), abs=1e-5)


def test_candidates_are_the_k_targets_of_the_same_base(task):
    rows = torch.tensor([0, 5, 7])
    cands = task.candidate_first(rows)
    assert cands.shape == (3, 4)
    first = task.tokens[:, task.answer_pos + 1]
    for i, row in enumerate(rows.tolist()):
        assert first[row] in cands[i]
        assert cands[i].unique().numel() == 4
