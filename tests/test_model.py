"""The model module: build_model's FastLayerNorm swap, hooks, variants, config errors, state."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer
from transformer_lens.components import LayerNorm as TLLayerNorm

from mbc_interp.model import (
    FastLayerNorm,
    ModelConfig,
    ModelConfigError,
    build_model,
    load_model_state,
    model_state,
    resolve_device,
)

from .helpers import TINY_MODEL

D_VOCAB, N_CTX = 11, 6


def _tokens(batch: int = 8, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, D_VOCAB, (batch, N_CTX), generator=g)


def _model(config: ModelConfig = TINY_MODEL, seed: int = 0) -> HookedTransformer:
    model = build_model(config, D_VOCAB, N_CTX, seed=seed)
    with torch.no_grad():  # move LN scales/biases and zero-initialised biases off their init
        g = torch.Generator().manual_seed(seed + 1)
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _set_ln_class(model: HookedTransformer, old: type, new: type) -> int:
    n = 0
    for m in model.modules():
        if type(m) is old:
            m.__class__ = new
            n += 1
    return n


@pytest.fixture(scope="module")
def model() -> HookedTransformer:
    return _model()


# -- FastLayerNorm ----------------------------------------------------------------------------
def test_build_model_swaps_every_layernorm(model):
    assert isinstance(model, HookedTransformer)
    kinds = [type(m) for m in model.modules() if isinstance(m, TLLayerNorm)]
    assert kinds == [FastLayerNorm] * (2 * TINY_MODEL.n_layers + 1)  # ln1, ln2 per block + final
    assert isinstance(model.ln_final, FastLayerNorm)
    assert all(isinstance(b.ln1, FastLayerNorm) for b in model.blocks)


def test_fast_layernorm_matches_stock_layernorm():
    model = _model()
    tokens = _tokens()
    fast = model(tokens)
    fast.sum().backward()
    fast_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)

    assert _set_ln_class(model, FastLayerNorm, TLLayerNorm) == 2 * TINY_MODEL.n_layers + 1
    stock = model(tokens)
    stock.sum().backward()
    torch.testing.assert_close(fast, stock, atol=1e-5, rtol=0)
    for name, p in model.named_parameters():
        torch.testing.assert_close(fast_grads[name], p.grad, atol=1e-4, rtol=1e-4, msg=name)


HOOKS = [
    "blocks.{l}.attn.hook_z",
    "blocks.{l}.attn.hook_pattern",
    "blocks.{l}.hook_resid_pre",
    "blocks.{l}.hook_resid_post",
    "blocks.{l}.hook_attn_out",
    "blocks.{l}.hook_mlp_out",
    "blocks.{l}.ln1.hook_scale",
    "blocks.{l}.ln2.hook_normalized",
]


def test_run_with_cache_fires_the_hooks(model):
    tokens = _tokens()
    with torch.no_grad():
        ref = model(tokens)
        logits, cache = model.run_with_cache(tokens)
    needed = ["ln_final.hook_normalized", "ln_final.hook_scale"]
    needed += [h.format(l=l) for l in range(TINY_MODEL.n_layers) for h in HOOKS]
    assert [n for n in needed if n not in cache] == []
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=0)
    b, p, h = tokens.shape[0], N_CTX, TINY_MODEL.n_heads
    assert cache["blocks.0.attn.hook_pattern"].shape == (b, h, p, p)
    assert cache["blocks.0.ln1.hook_scale"].shape == (b, p, 1)
    # TL's values: the cached normalised stream is (resid - mean) / scale
    resid = cache["blocks.1.hook_resid_pre"]
    centred = resid - resid.mean(-1, keepdim=True)
    torch.testing.assert_close(
        cache["blocks.1.ln1.hook_normalized"], centred / cache["blocks.1.ln1.hook_scale"]
    )


def test_hooked_layernorm_takes_tl_path_and_unhooks_cleanly(model):
    tokens = _tokens()

    def double_scale(scale, hook):
        return scale * 2

    with torch.no_grad():
        ref = model(tokens)
        hooked = model.run_with_hooks(tokens, fwd_hooks=[("blocks.0.ln1.hook_scale", double_scale)])
        again = model(tokens)
        model.add_hook("blocks.0.ln1.hook_scale", double_scale)
        try:
            added = model(tokens)
        finally:
            model.reset_hooks()
        after_reset = model(tokens)
    assert (hooked - ref).abs().max() > 1e-3, "a hook on ln1.hook_scale had no effect"
    torch.testing.assert_close(added, hooked)
    assert torch.equal(again, ref)
    assert torch.equal(after_reset, ref)


def test_hook_z_patching_changes_output(model):
    tokens = _tokens()

    def zero_head(z, hook):
        z[:, :, 0] = 0.0
        return z

    with torch.no_grad():
        ref = model(tokens)
        patched = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_z", zero_head)])
    assert (patched - ref).abs().max() > 1e-3


# -- variants ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        {"d_mlp": None},
        {"normalization": "none"},
        {"normalization": "RMS"},
        {"normalization": "LNPre"},
        {"positional_embedding": "rotary"},
        {"positional_embedding": "shortformer"},
        {"act_fn": "relu", "n_layers": 1},
        {"d_head": 8, "n_heads": 3},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_variants_build_and_run(overrides):
    cfg = ModelConfig(**{**TINY_MODEL.to_dict(), **overrides})
    model = build_model(cfg, D_VOCAB, N_CTX, seed=0)
    tokens = _tokens(batch=3)
    logits = model(tokens)
    assert logits.shape == (3, N_CTX, D_VOCAB)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    if cfg.attn_only:
        assert model.cfg.attn_only
        assert not hasattr(model.blocks[0], "mlp")
    if cfg.normalization != "LN":
        assert not any(isinstance(m, FastLayerNorm) for m in model.modules())
    _, cache = model.run_with_cache(tokens)
    assert "blocks.0.attn.hook_z" in cache
    assert "blocks.0.attn.hook_pattern" in cache


def test_build_model_is_seeded():
    a = model_state(build_model(TINY_MODEL, D_VOCAB, N_CTX, seed=3))
    b = model_state(build_model(TINY_MODEL, D_VOCAB, N_CTX, seed=3))
    c = model_state(build_model(TINY_MODEL, D_VOCAB, N_CTX, seed=4))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# -- config errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"d_model": 30, "n_heads": 4}, "model.d_model"),
        ({"n_layers": 0}, "model.n_layers"),
        ({"n_heads": 0}, "model.n_heads"),
        ({"d_head": 0}, "model.d_head"),
        ({"d_mlp": 0}, "model.d_mlp"),
        ({"act_fn": "tanh"}, "model.act_fn"),
        ({"d_model": 12, "n_heads": 4, "positional_embedding": "rotary"}, "model.d_head"),
    ],
)
def test_model_config_errors_name_the_field(kwargs, field):
    with pytest.raises(ModelConfigError, match=field.replace(".", r"\.")):
        ModelConfig(**kwargs)


def test_model_config_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"divisible by n_heads = 4"):
        ModelConfig(d_model=30, n_heads=4)


def test_model_config_properties():
    cfg = ModelConfig(n_layers=2, d_model=32, n_heads=2, d_mlp=None)
    assert cfg.head_dim == 16
    assert cfg.attn_only
    from mbc_interp.analysis.heads import head_labels  # the one source of head labels

    assert head_labels(cfg.n_layers, cfg.n_heads) == ["L0H0", "L0H1", "L1H0", "L1H1"]
    assert ModelConfig(d_model=32, n_heads=2, d_head=5).head_dim == 5


# -- devices ----------------------------------------------------------------------------------
def test_resolve_device():
    expected = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("auto") == expected
    assert resolve_device(None) == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")


# -- state ------------------------------------------------------------------------------------
def test_model_state_round_trip(model):
    state = model_state(model)
    assert set(state) == {n for n, _ in model.named_parameters()}
    assert all(t.device.type == "cpu" and t.is_contiguous() for t in state.values())
    assert all(not t.requires_grad for t in state.values())

    other = build_model(TINY_MODEL, D_VOCAB, N_CTX, seed=123)
    tokens = _tokens()
    with torch.no_grad():
        assert not torch.allclose(other(tokens), model(tokens))
        load_model_state(other, state)
        torch.testing.assert_close(other(tokens), model(tokens), atol=0, rtol=0)
    assert all(torch.equal(p, state[n]) for n, p in other.named_parameters())
    # a copy, not a view: editing the loaded model leaves the saved state alone
    with torch.no_grad():
        other.embed.W_E.add_(1.0)
    assert not torch.equal(other.embed.W_E, state["embed.W_E"])


def test_load_model_state_missing_parameter(model):
    state = model_state(model)
    del state["blocks.1.attn.W_Q"]
    with pytest.raises(KeyError, match=r"blocks\.1\.attn\.W_Q"):
        load_model_state(build_model(TINY_MODEL, D_VOCAB, N_CTX, seed=0), state)


def test_load_model_state_unexpected_and_shape(model):
    target = build_model(TINY_MODEL, D_VOCAB, N_CTX, seed=0)
    state = model_state(model)
    state["blocks.9.extra"] = torch.zeros(2)
    with pytest.raises(KeyError, match=r"blocks\.9\.extra"):
        load_model_state(target, state)
    state = model_state(model)
    state["unembed.b_U"] = torch.zeros(D_VOCAB + 1)
    with pytest.raises(KeyError, match=r"unembed\.b_U"):
        load_model_state(target, state)


# -- shared prefixes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [{}, {"positional_embedding": "rotary"}, {"positional_embedding": "shortformer"},
     {"normalization": "RMS"}, {"d_mlp": None}],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "default",
)
def test_shared_prefix_losses_match_whole_sequences(overrides):
    """Continuations scored through the prompt's shared keys and values give the losses of the
    whole sequences, position for position; a hooked model runs the whole sequences, so its
    hooks see every position."""
    from mbc_interp.model import shared_prefix_losses

    model = _model(ModelConfig(**{**TINY_MODEL.to_dict(), **overrides}))
    g = torch.Generator().manual_seed(3)
    prompts = torch.randint(0, D_VOCAB, (5, 3), generator=g)
    conts = torch.randint(0, D_VOCAB, (5, 4, N_CTX - 3 + 1), generator=g)  # k = 4, t = 4
    seqs = torch.cat([prompts[:, None].expand(-1, 4, -1), conts], -1).reshape(20, -1)
    with torch.no_grad():
        logits = model(seqs[:, :-1])[:, 2:]
        whole = torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), seqs[:, 3:], reduction="none"
        ).reshape(5, 4, -1)
        shared = shared_prefix_losses(model, prompts, conts)
        assert shared.shape == (5, 4, 4)
        torch.testing.assert_close(shared, whole, atol=1e-5, rtol=1e-5)
        seen = []
        hook = ("blocks.0.attn.hook_z", lambda z, hook: seen.append(z.shape[1]))
        with model.hooks(fwd_hooks=[hook]):
            hooked = shared_prefix_losses(model, prompts, conts)
        assert seen == [N_CTX]  # one whole-sequence pass
        torch.testing.assert_close(hooked, whole, atol=1e-5, rtol=1e-5)
        one = shared_prefix_losses(model, prompts, conts[..., :1])  # first tokens only
        torch.testing.assert_close(one, whole[..., :1], atol=1e-5, rtol=1e-5)
