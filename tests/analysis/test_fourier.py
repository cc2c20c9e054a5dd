"""The Fourier progress measures against inputs whose answers are known, and the ``fourier``
kind on a tiny modular model (and its refusal of the wind tunnel)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch

from mbc_interp.analysis.fourier import (
    basis_labels,
    excluded_logits,
    fourier_basis,
    fourier_measures,
    frequency_norms,
    gini,
    key_frequencies,
    logit_frequency_energy,
    pair_losses,
    restricted_logits,
    sum_directions,
)
from mbc_interp.analysis.fourier_kind import answer_logits, final_settings, fourier_records
from mbc_interp.analysis.fourier_settings import FourierConfig
from mbc_interp.analysis.registry import CostContext, build_settings, get_kind
from mbc_interp.model import ModelConfig, build_model
from mbc_interp.tasks.modular_addition.config import ModularAdditionConfig
from mbc_interp.tasks.modular_addition.task import ModularAdditionTask
from mbc_interp.tasks.protocol import TaskProtocolError

P = 13


def planted_logits(p: int, k: int, scale: float = 10.0) -> torch.Tensor:
    """``scale * cos(w_k (a + b - c))``: a perfect one-frequency modular adder."""
    x = torch.arange(p, dtype=torch.float64)
    s = x[:, None, None] + x[None, :, None] - x[None, None, :]
    return scale * torch.cos(2 * math.pi * k * s / p)


def test_the_basis_and_the_sum_directions_are_orthonormal():
    for p in (3, 7, P):
        f = fourier_basis(p)
        assert torch.allclose(f @ f.T, torch.eye(p, dtype=torch.float64), atol=1e-12)
        d = sum_directions(p, tuple(range(1, (p - 1) // 2 + 1)), constant=True)
        assert torch.allclose(d @ d.T, torch.eye(p, dtype=torch.float64), atol=1e-12)
    assert basis_labels(5) == ["const", "cos 1", "sin 1", "cos 2", "sin 2"]
    with pytest.raises(ValueError, match="odd modulus"):
        fourier_basis(4)
    with pytest.raises(ValueError, match=r"distinct frequencies in 1\.\.6"):
        sum_directions(P, (7,))


def test_gini_known_values():
    assert gini(torch.ones(10)) == pytest.approx(0.0)
    assert gini(torch.tensor([0.0, 0.0, 0.0, 5.0])) == pytest.approx(0.75)
    assert gini(torch.tensor([1.0, 3.0])) == pytest.approx(0.25)


def test_a_two_frequency_embedding_has_those_key_frequencies_and_a_high_gini():
    p, d = 59, 32
    g = torch.Generator().manual_seed(0)
    f = fourier_basis(p)
    rows = [f[2 * 7 - 1], f[2 * 7], f[2 * 20 - 1], f[2 * 20]]  # cos/sin of k = 7 and 20
    embed = sum(r[:, None] * torch.randn(1, d, generator=g, dtype=torch.float64) for r in rows)
    embed = embed + 1e-3 * torch.randn(p, d, generator=g, dtype=torch.float64)
    norms = frequency_norms(embed)
    assert norms.shape == (29,)
    assert key_frequencies(norms.pow(2)) == (7, 20)
    assert gini(norms) > 0.9  # the most for two of 29 frequencies: 1 - 2/29 = 0.93
    noise = frequency_norms(torch.randn(p, d, generator=g))
    assert gini(noise) < 0.15
    assert len(key_frequencies(noise.pow(2))) > 20


def test_key_frequencies_take_the_smallest_set_reaching_the_share():
    energy = torch.tensor([1.0, 50.0, 2.0, 40.0, 7.0])
    assert key_frequencies(energy, 0.9) == (2, 4)
    assert key_frequencies(energy, 0.95) == (2, 4, 5)
    assert key_frequencies(energy, 1.0) == (1, 2, 3, 4, 5)
    assert key_frequencies(torch.zeros(4)) == ()
    with pytest.raises(ValueError, match="share = 0"):
        key_frequencies(energy, 0.0)


def test_a_planted_adder_is_all_restricted_and_nothing_when_excluded():
    k = 4
    logits = planted_logits(P, k, scale=40.0)
    energy = logit_frequency_energy(logits)
    assert key_frequencies(energy) == (k,)
    assert float(energy.sum()) == pytest.approx(float(logits.pow(2).sum()), rel=1e-9)
    assert torch.allclose(restricted_logits(logits, (k,)), logits, atol=1e-9)
    assert torch.allclose(excluded_logits(logits, (k,)), torch.zeros_like(logits), atol=1e-9)
    full = float(pair_losses(logits).mean())
    train = torch.arange(P * P) % 3 == 0
    m = fourier_measures(torch.randn(P, 8, dtype=torch.float64), logits, train)
    assert m.freqs == (k,)
    assert m.restricted_loss == pytest.approx(full, abs=1e-9)
    assert m.full_loss == pytest.approx(full) and full < 0.05
    assert m.excluded_loss == pytest.approx(math.log(P), abs=1e-9)  # logits 0: uniform
    assert m.excluded_gain == pytest.approx(math.log(P) - m.clean_loss, abs=1e-9)
    other = fourier_measures(torch.randn(P, 8, dtype=torch.float64), logits, train, freqs=(2,))
    assert other.excluded_gain == pytest.approx(0.0, abs=1e-9)  # k = 4 untouched
    assert other.restricted_loss == pytest.approx(math.log(P), abs=1e-9)


def test_excluded_gain_of_a_memoriser_is_small_against_its_restricted_loss():
    """A lookup table of the training pairs (no structure over a + b) hardly moves when a
    frequency's two directions are removed, and those directions alone do not solve it."""
    p = 31
    x = torch.arange(p)
    answer = ((x[:, None] + x[None, :]) % p).reshape(-1)
    train = torch.arange(p * p) % 2 == 0
    logits = torch.zeros(p * p, p, dtype=torch.float64)
    logits[train, answer[train]] = 8.0
    logits = logits.reshape(p, p, p)
    m = fourier_measures(torch.randn(p, 8, dtype=torch.float64), logits, train, freqs=(3,))
    assert 0 <= m.excluded_gain < 0.05
    assert m.restricted_loss > 0.9 * math.log(p)


@dataclass
class _FakeRun:
    model_: object
    task: ModularAdditionTask
    steps: tuple[int, ...] = (0, 10)

    def model(self, step: int) -> object:
        return self.model_


@pytest.fixture(scope="module")
def mod_task() -> ModularAdditionTask:
    return ModularAdditionTask(ModularAdditionConfig(p=7, train_frac=0.5))


@pytest.fixture(scope="module")
def mod_model(mod_task):
    return build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32), 8, 3, seed=0)


def test_answer_logits_lay_out_every_pair(mod_task, mod_model):
    logits = answer_logits(mod_model, mod_task)
    with torch.no_grad():
        direct = mod_model(mod_task.tokens[:, :3])[:, 2, :7].double()
    assert torch.allclose(logits.reshape(49, 7), direct)
    assert logits[3, 5].tolist() == pytest.approx(direct[3 * 7 + 5].tolist())


def test_the_fourier_kind_rows(mod_task, mod_model):
    kind = get_kind("fourier")
    assert kind.settings is FourierConfig
    assert kind.cost(FourierConfig(), CostContext(1, 4, 1, 49)) == 49
    settings = build_settings("fourier", {"freqs": [1, 3]})
    assert settings.freqs == (1, 3) and settings.freqs_from == "final"
    rows = kind.run_function()(mod_model, mod_task, settings, None)
    table = {(r["metric"], r["component"]): r["value"] for r in rows}
    assert {r["kind"] for r in rows} == {"final"}
    assert [v for (m, _), v in table.items() if m == "key_freq"] == [1.0, 3.0]
    assert table[("n_key_freqs", "all")] == 2
    assert table[("excluded_gain", "all")] == pytest.approx(
        table[("excluded_loss", "all")] - table[("clean_loss", "all")], abs=1e-9)  # fmt: skip
    want = sum(float(p.detach().pow(2).sum()) for p in mod_model.parameters()) ** 0.5
    assert table[("weight_norm", "all")] == pytest.approx(want, rel=1e-6)
    shares = [v for (m, _), v in table.items() if m == "logit_share"]
    assert len(shares) == 3 and sum(shares) == pytest.approx(1.0)
    each = fourier_records(mod_model, mod_task, FourierConfig(freqs_from="each"))
    assert {r["kind"] for r in each} == {"each"}
    final = final_settings(_FakeRun(mod_model, mod_task))
    assert final.freqs_from == "final" and final.freqs
    assert [r["value"] for r in each if r["metric"] == "key_freq"] == list(final.freqs)


def test_the_fourier_kind_refuses_what_it_cannot_measure(mod_task, mod_model, task, random_model):
    with pytest.raises(ValueError, match=r"fourier\.freqs_from = 'final' needs"):
        fourier_records(mod_model, mod_task, FourierConfig())
    with pytest.raises(TaskProtocolError, match="needs a task with HasModularInputs; task "):
        fourier_records(random_model, task, FourierConfig(freqs_from="each"))
    with pytest.raises(ValueError, match=r"fourier\.freqs_from = 'last': must be one of"):
        FourierConfig(freqs_from="last")
    with pytest.raises(ValueError, match=r"fourier\.freqs = \(2,\): are the final"):
        FourierConfig(freqs_from="each", freqs=(2,))
    with pytest.raises(ValueError, match=r"fourier\.freqs = \(2, 2\): must be distinct"):
        FourierConfig(freqs=(2, 2))
