"""The batched patching engine equals ``transformer_lens.patching`` site by site."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import transformer_lens.patching as tlp

from mbc_interp.analysis import (
    HEAD_OUT_ALL_POS,
    SITE_KINDS,
    UNDEFINED_BELOW,
    logit_diff,
    patch_head_out_all_pos,
    patch_sites,
)
from mbc_interp.model import ModelConfig
from mbc_interp.tasks.wind_tunnel.task import PatchingPairs

from .conftest import tiny_model


def tl_reference(model, pairs, kind):
    """TL's per-site loop with a metric using the same baselines: (normalised, raw)."""
    clean_logits, clean_cache = model.run_with_cache(pairs.clean_tokens)
    clean = logit_diff(clean_logits, pairs).mean()
    corrupt = logit_diff(model(pairs.corrupt_tokens), pairs).mean()
    fn = getattr(tlp, kind.tl_function)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = fn(
            model,
            pairs.corrupt_tokens,
            clean_cache,
            lambda lg: logit_diff(lg, pairs).mean() - corrupt,
        )
    return raw / (clean - corrupt), raw


@pytest.mark.parametrize("kind", SITE_KINDS, ids=lambda k: k.name)
def test_equals_transformer_lens_on_trained_model(trained, task, kind):
    pairs = task.patching_pairs(24, seed=1)
    ours = patch_sites(trained, task, kind, pairs)
    ref_norm, ref_raw = tl_reference(trained, pairs, kind)
    assert ours.normalised_defined
    assert abs(ours.clean_logit_diff - ours.corrupt_logit_diff) > 1.0  # z is read
    assert ours.values.shape == ref_norm.shape
    torch.testing.assert_close(ours.values, ref_norm, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.raw, ref_raw, atol=1e-5, rtol=0)


@pytest.mark.parametrize("kind", SITE_KINDS, ids=lambda k: k.name)
def test_equals_transformer_lens_on_random_model_chunked(random_model, task, kind):
    """Random init, and a ``max_batch`` smaller than the pairs: both pairs and sites chunked."""
    pairs = task.patching_pairs(12, seed=2)
    ours = patch_sites(random_model, task, kind, pairs, max_batch=5, threshold=0.0)
    ref_norm, ref_raw = tl_reference(random_model, pairs, kind)
    torch.testing.assert_close(ours.raw, ref_raw, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.values, ref_norm, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("positional", ["rotary", "shortformer"])
def test_other_positional_embeddings(task, positional):
    """The engine restarts mid-model from the cached residual; rotary/shortformer must survive."""
    model = tiny_model(
        task,
        ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=None, positional_embedding=positional),
    )
    pairs = task.patching_pairs(8)
    ours = patch_sites(model, task, HEAD_OUT_ALL_POS, pairs, threshold=0.0)
    _, ref_raw = tl_reference(model, pairs, HEAD_OUT_ALL_POS)
    torch.testing.assert_close(ours.raw, ref_raw, atol=1e-5, rtol=0)


def test_identical_pairs_leave_normalisation_undefined(trained, task):
    """Clean == corrupt prompt: the denominator is exactly 0, values NaN, the flag says so."""
    p = task.patching_pairs(16)
    same = PatchingPairs(
        p.clean_tokens,
        p.clean_tokens.clone(),
        p.clean_answer,
        p.corrupt_answer,
        p.example_index,
        p.corrupt_index,
        p.answer_pos,
    )
    result = patch_head_out_all_pos(trained, task, same)
    assert not result.normalised_defined
    assert result.threshold == UNDEFINED_BELOW
    assert torch.isnan(result.values).all()
    assert result.clean_logit_diff == pytest.approx(result.corrupt_logit_diff, abs=1e-6)
    torch.testing.assert_close(result.raw, torch.zeros_like(result.raw), atol=1e-5, rtol=0)
    norm_rows = [r for r in result.to_records() if r["metric"] == "patch_norm"]
    assert all(math.isnan(r["value"]) for r in norm_rows)


def test_records_and_labels(trained, task):
    result = patch_sites(trained, task, SITE_KINDS[-1], task.patching_pairs(8))  # by position
    n_layers, n_pos, n_heads = result.values.shape
    frame = result.to_frame()
    assert len(frame) == 3 * n_layers * n_pos * n_heads
    assert set(frame["metric"]) == {"patch_norm", "patch_raw", "patch_raw_se"}
    z = task.selector_positions[0]
    pick = (frame["layer"] == 1) & (frame["head"] == 2) & (frame["pos"] == z)
    rows = frame[pick]
    assert len(rows) == 3
    assert set(rows["component"]) == {"L1H2"} and set(rows["position"]) == {"z"}
