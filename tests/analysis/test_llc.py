"""SGLD LLC against known answers: a regular quadratic (d/2) and a degenerate w1^2 w2^2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbc_interp.analysis.dynamics.llc import LLCConfig, estimate_llc, sgld_llc

from .conftest import tiny_model


def _quadratic(d: int, cfg: LLCConfig) -> float:
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    return sgld_llc([w], lambda rows: 0.5 * (w * w).sum(), 10, 0.0, cfg).llc


def test_regular_quadratic_gives_half_the_dimension():
    d, nbeta, gamma, eps = 20, 100.0, 1.0, 2e-4
    cfg = LLCConfig(step_size=eps, nbeta=nbeta, localization=gamma, chains=4, draws=2000,
                    burn_in=300)  # fmt: skip
    # the posterior exp(-nbeta L - gamma |w|^2 / 2) is Gaussian with precision lam = nbeta +
    # gamma; SGLD's stationary variance is 1 / (lam (1 - eps lam / 4)): E[nbeta L] = d/2 x ...
    lam = nbeta + gamma
    expected = nbeta * d / 2 / (lam * (1 - eps * lam / 4))
    assert expected == pytest.approx(d / 2, rel=0.02)
    assert _quadratic(d, cfg) == pytest.approx(expected, rel=0.1)


@pytest.mark.slow
def test_degenerate_minimum_has_a_smaller_coefficient():
    """L = w1^2 w2^2 has learning coefficient 1/2, against 1 for a regular 2-d minimum."""
    cfg = LLCConfig(step_size=1e-4, nbeta=1000.0, localization=1.0, chains=4, draws=2000,
                    burn_in=300)  # fmt: skip
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    degenerate = sgld_llc([w], lambda rows: w[0] ** 2 * w[1] ** 2, 10, 0.0, cfg)
    regular = _quadratic(2, cfg)
    assert regular == pytest.approx(1.0, rel=0.15)
    assert 0 < degenerate.llc < 0.6 * regular
    assert torch.equal(w, torch.zeros(2, dtype=torch.float64))  # parameters restored


def test_estimate_on_a_tiny_model_is_seeded_and_leaves_the_model_alone(task):
    model = tiny_model(task)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = LLCConfig(chains=2, draws=10, burn_in=5, batch_size=32)
    a, b = estimate_llc(model, task, cfg), estimate_llc(model, task, cfg)
    assert a.llc == b.llc and a.trace.shape == (2, 15)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert np.isfinite(a.trace).all() and a.init_loss > 0
    rows = {r["metric"]: r for r in a.to_records()}
    assert set(rows) == {"llc", "llc_std", "llc_init_loss"}
    assert rows["llc"]["analysis"] == "llc" and rows["llc"]["value"] == a.llc
    health = a.health()
    assert set(health) == {"drift", "below_init_frac", "spike"}
    assert a.per_chain.mean() == pytest.approx(a.llc)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match=r"llc\.step_size = 0"):
        LLCConfig(step_size=0.0)
    with pytest.raises(ValueError, match=r"llc\.chains = 0"):
        LLCConfig(chains=0)


def test_a_mask_restricts_the_chain_to_its_entries():
    """A regular quadratic in 20 dimensions, the chain on 6 of them: 6/2, the rest frozen."""
    d, nbeta, gamma, eps = 20, 100.0, 1.0, 2e-4
    cfg = LLCConfig(step_size=eps, nbeta=nbeta, localization=gamma, chains=4, draws=2000,
                    burn_in=300)  # fmt: skip
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(d, dtype=torch.float64)
    mask[:6] = 1.0
    r = sgld_llc([w], lambda rows: 0.5 * (w**2).sum(), 10, 0.0, cfg, masks=[mask])
    lam = nbeta + gamma
    assert r.llc == pytest.approx(nbeta * 6 / 2 / (lam * (1 - eps * lam / 4)), rel=0.1)


def test_head_llc_moves_one_head_and_leaves_the_model_alone(trained, task):
    from mbc_interp.analysis.dynamics.llc_heads import head_llc, head_llc_records, parse_head

    before = {k: v.clone() for k, v in trained.state_dict().items()}
    cfg = LLCConfig(chains=1, draws=10, burn_in=5, batch_size=32)
    r = head_llc(trained, task, "L1H0", cfg)
    assert np.isfinite(r.llc) and r.trace.shape == (1, 15)
    assert all(torch.equal(v, trained.state_dict()[k]) for k, v in before.items())
    rows = head_llc_records(trained, task, ("L0H1", "L1H0"), cfg)
    assert [r["component"] for r in rows if r["metric"] == "llc"] == ["L0H1", "L1H0"]
    assert parse_head("L3H2") == (3, 2)
    with pytest.raises(ValueError, match="L9H0"):
        head_llc(trained, task, "L9H0", cfg)
