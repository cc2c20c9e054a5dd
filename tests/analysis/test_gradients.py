"""Gradient diagnostics: the estimators on hand-computable cases, vmap against autograd."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mbc_interp.analysis.dynamics.gradients import (
    GradientConfig,
    adam_update_stats,
    full_gradient,
    gradient_diagnostics,
    group_sample,
    param_group,
    per_example_gradient_blocks,
    per_example_gradients,
)
from mbc_interp.analysis.dynamics.hessian import hessian_extremes, lanczos
from mbc_interp.analysis.dynamics.noise_sums import NoiseSums, noise_statistics
from mbc_interp.store.run import OptimizerState
from mbc_interp.tasks.losses import target_losses
from mbc_interp.tasks.wind_tunnel.task import sequence_nll

from .conftest import tiny_model


def test_hand_computed_example():
    # G = (1, 1); eps = (0,-1), (2,-1), (-1,0), (-1,2); groups {0,1}, {2,3}
    g = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    G = torch.tensor([1.0, 1.0])
    groups = torch.tensor([0, 0, 1, 1])
    for columns in (None, torch.tensor([0, 1])):
        s = noise_statistics(g, G, groups, columns)
        # mean |eps|^2 = (1 + 5 + 1 + 5) / 4 = 3 over |G|^2 = 2; per column: 1.5 / 1
        assert s["b_simple"][-1] == pytest.approx(1.5)
        # |mean g|^2 = 2, mean |g|^2 = 5
        assert s["coherence"][-1] == pytest.approx(0.4)
        # group means of eps: (1,-1), (-1,1): rms sqrt 2; deviations: unit vectors: rms 1
        assert s["group_ratio"][-1] == pytest.approx(math.sqrt(2))
        assert s["grad_sq"][-1] == pytest.approx(2.0)
        assert s["coherence_null"] == 0.25 and s["group_ratio_null"] == pytest.approx(1.0)
    per_column = noise_statistics(g, G, groups, torch.tensor([0, 1]))
    assert per_column["b_simple"] == pytest.approx([1.5, 1.5, 1.5])
    assert per_column["coherence"] == pytest.approx([0.4, 0.4, 0.4])


def test_least_squares_matches_direct_formulas_across_chunks():
    """Per-example gradients of 0.5 (w.x - y)^2 are r_i x_i; the chunked sums must give the
    textbook definitions computed directly."""
    rng = np.random.default_rng(0)
    n, p, K = 24, 5, 3
    x, y, w = rng.normal(size=(n, p)), rng.normal(size=n), rng.normal(size=p)
    g = (x @ w - y)[:, None] * x
    G = g.mean(0) + 0.1  # the "full batch" need not be the sample's mean
    groups = np.arange(n) // K
    columns = torch.tensor([0, 0, 1, 1, 1])
    sums = NoiseSums(torch.tensor(G), columns, 2)
    for lo in range(0, n, 6):  # chunks of two whole groups
        sums.add(torch.tensor(g[lo : lo + 6]), torch.tensor(groups[lo : lo + 6]))
    s = sums.result()
    eps = g - G
    means = eps.reshape(n // K, K, p).mean(1)
    dev = eps - np.repeat(means, K, axis=0)
    for c, cols in enumerate([[0, 1], [2, 3, 4], [0, 1, 2, 3, 4]]):
        e, gg, m, d = eps[:, cols], g[:, cols], means[:, cols], dev[:, cols]
        sq = lambda a: (a**2).sum(-1)  # noqa: E731
        assert s["b_simple"][c] == pytest.approx(sq(e).mean() / sq(G[cols]))
        assert s["coherence"][c] == pytest.approx(sq(gg.mean(0)) / sq(gg).mean())
        assert s["group_ratio"][c] == pytest.approx(
            math.sqrt(sq(m).mean()) / math.sqrt(sq(d).mean())
        )
    assert s["group_ratio_null"] == pytest.approx(1 / math.sqrt(K - 1))


def test_independent_vectors_sit_at_the_nulls():
    torch.manual_seed(0)
    n, K = 400, 4
    g = torch.randn(n, 4000, dtype=torch.float64)
    s = noise_statistics(g, torch.full((4000,), 1e-3, dtype=torch.float64), torch.arange(n) // K)
    assert s["group_ratio"][-1] == pytest.approx(1 / math.sqrt(K - 1), rel=0.03)
    assert s["coherence"][-1] == pytest.approx(1 / n, rel=0.15)
    assert s["group_ratio_null"] == pytest.approx(1 / math.sqrt(K - 1))


def test_vmap_per_example_gradients_equal_autograd_loop(task):
    torch.manual_seed(0)
    model = tiny_model(task)
    tokens, a = task.tokens[:6], task.answer_pos
    pe = per_example_gradients(model, tokens, a)
    params = [p for _, p in model.named_parameters()]
    for i in range(len(tokens)):
        loss = target_losses(model, tokens[i : i + 1], a).sum()
        ref = torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])
        torch.testing.assert_close(pe[i], ref, atol=1e-5, rtol=1e-5)
    full = full_gradient(model, tokens, a, chunk_size=4)
    torch.testing.assert_close(pe.mean(0), full, atol=1e-6, rtol=1e-5)


def test_the_example_loss_is_the_masked_sequence_loss(task):
    """One example loss for training and the analyses: nats per example, summed over the
    positions of ``task.loss_mask`` (the same as :func:`sequence_nll` on the model's output)."""
    model = tiny_model(task)
    tokens = task.tokens[:6]
    per_pos = target_losses(model, tokens, task.answer_pos)
    assert per_pos.shape == (6, task.n_targets) and (per_pos > 0).all()
    with torch.no_grad():
        log_probs = model(tokens[:, :-1]).log_softmax(-1)
    reference = sequence_nll(log_probs, tokens, task.loss_mask[:6])
    torch.testing.assert_close(per_pos.sum(-1).detach(), reference, atol=1e-5, rtol=1e-5)


def _textbook(g: torch.Tensor, G: torch.Tensor, groups: torch.Tensor) -> dict[str, float]:
    """The definitions of the module docstring, directly on a [n, P] matrix (float64)."""
    g, G = g.double(), G.double()
    eps = g - G
    uniq, inv = torch.unique(groups, return_inverse=True)
    means = torch.zeros(len(uniq), g.shape[1], dtype=g.dtype).index_add_(0, inv, eps)
    means /= torch.bincount(inv)[:, None]
    sq = lambda a: (a * a).sum(-1)  # noqa: E731
    return {
        "grad_norm": G.norm().item(),
        "b_simple": (sq(eps).mean() / sq(G)).item(),
        "coherence": (sq(g.mean(0)) / sq(g).mean()).item(),
        "group_ratio": (sq(means).mean().sqrt() / sq(eps - means[inv]).mean().sqrt()).item(),
    }


@pytest.mark.parametrize("cap", [None, 100])
def test_diagnostics_equal_the_textbook_definitions(trained, task, cap):
    """The fast path (G reusing the sample's per-example sum, statistics from per-parameter
    blocks in vmap's layout, group sums by reshape) gives the definitions computed the slow
    way: the per-example matrix, G by autograd over every example (or the capped subsample)."""
    config = GradientConfig(sample_size=96, chunk_size=40, full_batch_cap=cap, seed=3)
    d = gradient_diagnostics(trained, task, config)
    rows = group_sample(task.base_index, 96, 3)
    order = torch.randperm(len(task), generator=torch.Generator().manual_seed(3))
    full = slice(None) if cap is None else order[:cap].sort().values
    G = full_gradient(trained, task.tokens[full], task.answer_pos)
    pe = per_example_gradients(trained, task.tokens[rows], task.answer_pos)
    ref = _textbook(pe, G, task.base_index[rows])
    for metric, value in ref.items():
        assert getattr(d, metric)[-1] == pytest.approx(value, rel=1e-5), metric
    assert d.n_full == (len(task) if cap is None else cap)


def test_blocks_in_vmap_layout_equal_the_matrix(trained, task):
    """Some per-parameter gradients come out of vmap transposed in memory; statistics from the
    blocks as they are equal those from the flattened matrix, whole equal-size groups (the
    reshape path) or not (index_add)."""
    rows = group_sample(task.base_index, 64, 0)
    blocks = per_example_gradient_blocks(trained, task.tokens[rows], task.answer_pos)
    assert not all(b.is_contiguous() for b in blocks)  # the case this test is about
    matrix = torch.cat([b.flatten(1) for b in blocks], dim=1)
    columns = torch.cat([torch.full((b[0].numel(),), i % 3) for i, b in enumerate(blocks)])
    G = torch.randn(matrix.shape[1]) * 1e-3
    for groups in (task.base_index[rows], torch.arange(len(rows)) % 5):  # unequal, scattered
        a, b = NoiseSums(G, columns, 3), NoiseSums(G, columns, 3)
        a.add(blocks, groups)
        b.add(matrix, groups)
        ra, rb = a.result(), b.result()
        for key in ("b_simple", "coherence", "group_ratio", "grad_sq"):
            np.testing.assert_allclose(ra[key], rb[key], rtol=1e-5)
        ref = _textbook(matrix, G, groups)
        assert ra["group_ratio"][-1] == pytest.approx(ref["group_ratio"], rel=1e-5)
        assert ra["b_simple"][-1] == pytest.approx(ref["b_simple"], rel=1e-5)


def test_param_groups_cover_the_model(task):
    model = tiny_model(task)
    comps = {param_group(n)[0] for n, _ in model.named_parameters()}
    assert comps == {"embed", "L0.attn", "L0.mlp", "L1.attn", "L1.mlp", "unembed"}
    assert param_group("blocks.1.ln2.w") == ("L1.mlp", 1)
    assert param_group("ln_final.b") == ("unembed", None)
    with pytest.raises(ValueError, match=r"'foo\.bar'"):
        param_group("foo.bar")


def test_group_sample_takes_whole_groups():
    base = torch.arange(40) // 4
    rows = group_sample(base, 18, seed=1)
    assert len(rows) == 16  # four whole groups fit in 18
    g = base[rows]
    assert all((g[i : i + 4] == g[i]).all() for i in range(0, 16, 4))
    assert torch.equal(rows, group_sample(base, 18, seed=1))


def test_diagnostics_records_and_chunk_invariance(task):
    model = tiny_model(task)
    small = gradient_diagnostics(model, task, GradientConfig(sample_size=64, chunk_size=8))
    big = gradient_diagnostics(model, task, GradientConfig(sample_size=64, chunk_size=512))
    assert small.components == ("embed", "L0.attn", "L0.mlp", "L1.attn", "L1.mlp", "unembed", "all")
    for metric in ("grad_norm", "b_simple", "coherence", "group_ratio"):
        np.testing.assert_allclose(getattr(small, metric), getattr(big, metric), rtol=1e-4)
    assert small.n_sample == 64 and small.n_full == len(task)
    assert small.group_ratio_null == pytest.approx(1 / math.sqrt(task.config.K - 1))
    # |G| of "all" is the root of the sum of the groups' squares
    assert small.grad_norm[-1] == pytest.approx(math.sqrt(sum(x * x for x in small.grad_norm[:-1])))
    rows = small.to_records()
    assert {r["analysis"] for r in rows} == {"gradients"}
    assert set(rows[0]) == {
        "analysis", "kind", "component", "layer", "head", "pos", "position", "metric", "value"
    }  # fmt: skip
    by = {(r["component"], r["metric"]): r for r in rows}
    assert by[("L1.attn", "b_simple")]["layer"] == 1 and by[("embed", "grad_norm")]["layer"] is None
    assert by[("all", "coherence_null")]["value"] == pytest.approx(1 / 64)
    assert all(math.isfinite(r["value"]) for r in rows)


def test_rejects_an_answer_position_with_no_target_after_it(task):
    class Bad:
        tokens, base_index = task.tokens, task.base_index
        answer_pos = task.tokens.shape[1] - 1

    with pytest.raises(ValueError, match=rf"answer_pos = {Bad.answer_pos}: no target token"):
        gradient_diagnostics(tiny_model(task), Bad())


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"gradients\.sample_size = 1"):
        GradientConfig(sample_size=1)
    with pytest.raises(ValueError, match=r"gradients\.adam_quantiles"):
        GradientConfig(adam_quantiles=(1.5,))


def test_adam_stats_from_a_known_state(task):
    model = tiny_model(task)
    names = [n for n, _ in model.named_parameters()]
    # step 1, betas (0.9, 0.999): m_hat = 10 exp_avg, v_hat = 1000 exp_avg_sq
    m = {n: torch.full_like(p, 0.1) for n, p in model.named_parameters()}
    v = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for n in names:
        if n.startswith("blocks.0."):
            v[n].fill_(0.004)  # sqrt(v_hat) = 2: ratio 0.5; elsewhere eps dominates
    state = OptimizerState(
        "adamw", 1, {"betas": (0.9, 0.999), "eps": 1e-8}, {"exp_avg": m, "exp_avg_sq": v}
    )
    stats = adam_update_stats(state, model, (0.5,))
    rows = {(r["component"], r["metric"]): r["value"] for r in stats}
    assert rows[("L0.attn", "adam_ratio_q50")] == pytest.approx(0.5, rel=1e-6)
    assert rows[("L0.attn", "eps_dominated_frac")] == 0.0
    assert rows[("L1.mlp", "eps_dominated_frac")] == 1.0
    assert rows[("L1.mlp", "adam_ratio_q50")] == pytest.approx(1e8, rel=1e-5)
    n0 = sum(p.numel() for n, p in model.named_parameters() if n.startswith("blocks.0."))
    total = sum(p.numel() for p in model.parameters())
    assert rows[("all", "eps_dominated_frac")] == pytest.approx(1 - n0 / total)


def test_lanczos_finds_extreme_eigenvalues():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(50, 50, dtype=torch.float64))
    evals = torch.linspace(-3, 7, 50, dtype=torch.float64)
    A = q @ torch.diag(evals) @ q.T
    ritz, _ = lanczos(lambda v: A @ v, 50, 50)
    assert ritz[0].item() == pytest.approx(-3) and ritz[-1].item() == pytest.approx(7)
    # the Hessian of 0.5 x'Ax is A; a gradient along the lowest eigenvector has |cos| 1
    x = torch.zeros(50, dtype=torch.float64, requires_grad=True)
    res = hessian_extremes(lambda: 0.5 * x @ A @ x, [x], q[:, 0], iters=50)
    assert res.min_eig == pytest.approx(-3) and res.max_eig == pytest.approx(7)
    assert res.grad_cos_min == pytest.approx(1.0)


def test_hessian_rows_on_the_tiny_model(task):
    d = gradient_diagnostics(
        tiny_model(task), task, GradientConfig(sample_size=16, hessian=True, lanczos_iters=8)
    )
    rows = {r["metric"]: r["value"] for r in d.to_records() if r["kind"] == "hessian"}
    assert set(rows) == {"hessian_max", "hessian_min", "hessian_grad_cos_min"}
    assert rows["hessian_min"] <= rows["hessian_max"] and 0 <= rows["hessian_grad_cos_min"] <= 1
