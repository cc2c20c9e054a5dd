"""The candidate-normalised loss and Δz against predictors whose answers are known exactly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mbc_interp.tasks.wind_tunnel.evaluation import evaluate
from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask

from .helpers import build_cfg

TASKS = {
    "proxy": TaskConfig(D=40, K=4),
    "proxy-gap": TaskConfig(D=30, K=3, target_len=2, selector_gap=1),
    "paper": TaskConfig(construction="random_strings", K=5, n_examples=100, base_len=6,
                        selector_len=2, target_len=4),
    "paper-per-base": TaskConfig(construction="random_strings", K=4, n_examples=80, base_len=6,
                                 selector_len=2, target_len=4, selectors="per_base",
                                 distinct_first=True),
}  # fmt: skip


class Reference(nn.Module):
    """An exact reference predictor as a model: ``marginal`` ignores z (the task's exact
    marginal), otherwise it predicts every target token from (B, z) with probability 1 - 1e-6.
    A sequence is matched to its row through its prompt (B and z); for the marginal, through
    everything but z."""

    def __init__(self, task: WindTunnelTask, marginal: bool):
        super().__init__()
        self.task, self.marginal = task, marginal
        self.anchor = nn.Parameter(torch.zeros(()))  # evaluate() reads the device from here
        self.logp = task.marginal_log_probs().float() if marginal else None
        skip = set(task.selector_positions) if marginal else set()
        self.cols = [q for q in range(task.config.seq_len) if q not in skip]

    def _row(self, seq: torch.Tensor) -> int:
        t = self.task
        # the prompt (B, z); for the marginal, B and the target prefix, which is all it uses
        upto = t.config.seq_len - 1 if self.marginal else t.answer_pos + 1
        cols = [c for c in self.cols if c < upto]
        return int((t.tokens[:, cols] == seq[cols]).all(-1).nonzero().flatten()[0])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t, v = self.task, self.task.config.d_vocab
        out = torch.full((*tokens.shape, v), -30.0)
        full = torch.cat([tokens, torch.zeros(len(tokens), 1, dtype=tokens.dtype)], 1)
        for i, seq in enumerate(full):
            row = self._row(seq)
            if self.marginal:
                out[i] = self.logp[row, : tokens.shape[1]].clamp(min=-30.0)
            else:
                for p in range(t.answer_pos, tokens.shape[1]):
                    out[i, p, t.tokens[row, p + 1]] = math.log(1 - 1e-6)
        return out


@pytest.mark.parametrize("name", list(TASKS))
def test_marginal_predictor_sits_at_log_k_and_ignores_z(name):
    task = WindTunnelTask(TASKS[name])
    ev = evaluate(Reference(task, marginal=True), task, cand_examples=len(task))
    assert ev["cand_loss"] == pytest.approx(math.log(task.K), abs=1e-4)
    assert ev["loss"] == pytest.approx(math.log(task.K), abs=1e-4)
    assert ev["dz"] == pytest.approx(0.0, abs=1e-5) and ev["dz_cand"] == pytest.approx(0, abs=1e-5)
    assert ev["cand_acc"] <= 1 / task.K + 0.35  # ties: argmax picks one of the K


@pytest.mark.parametrize("name", list(TASKS))
def test_perfect_predictor_scores_zero_and_depends_on_z(name):
    task = WindTunnelTask(TASKS[name])
    ev = evaluate(Reference(task, marginal=False), task, cand_examples=len(task))
    assert ev["cand_loss"] < 1e-4 and ev["cand_acc"] == 1.0 and ev["loss"] < 1e-3
    # with another z of the same B, the predictor names another A: the loss jumps
    assert ev["dz"] > 10 * task.n_targets and ev["dz_cand"] > 10
    assert ev["dz_se"] < ev["dz"] / 10


def test_whole_sequence_scoring_matches_first_token_scoring_when_first_tokens_differ():
    """With distinct first characters, the first-token candidate loss is the renormalised
    probability of the first token, the whole-sequence one of all tokens: for the marginal
    predictor (uniform over the K, then deterministic) both are log K."""
    task = WindTunnelTask(TASKS["paper-per-base"])
    assert task.first_token_distinct and not WindTunnelTask(TASKS["paper"]).first_token_distinct
    ev = evaluate(Reference(task, marginal=True), task)
    assert ev["cand_loss"] == pytest.approx(math.log(task.K), abs=1e-4)


def test_metrics_are_logged_at_every_evaluation(tmp_path):
    from mbc_interp import train

    run = train(build_cfg(steps=30, eval_every=10), tmp_path / "r", progress=False)
    m = run.metrics
    for col in ("cand_loss", "cand_acc", "dz", "dz_se", "dz_cand", "dz_cand_se", "loss_tok"):
        assert m[col].notna().all(), col
    assert (m["eval_n"] == len(run.task)).all()
    assert m["loss_tok"].to_numpy() == pytest.approx(m["loss"].to_numpy() / run.task.n_targets)


class LayoutOnly(nn.Module):
    """The paper task's layout-only model: uniform over the 36 characters at every character
    position of A, certain of EOS after it; it knows nothing of B or z."""

    def __init__(self, task: WindTunnelTask):
        super().__init__()
        self.task = task
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        t, v = self.task, self.task.config.d_vocab
        out = torch.full((*tokens.shape, v), -60.0)
        chars = t.config.n_target_chars
        a, n = t.answer_pos, t.config.target_len
        out[:, a : a + n, :chars] = -math.log(chars)
        eos = t.config.vocab.index("EOS")
        if tokens.shape[1] > a + n:
            out[:, a + n, eos] = 0.0
        return out


def test_matched_stage_measures_against_known_predictors():
    """The marginal runs from its chance value (the layout-only model) to 0 (the exact
    marginal), the conditional from log K (the marginal, z ignored) to 0 (the perfect
    predictor); first-token versions from theirs; all on the same rows."""
    task = WindTunnelTask(TASKS["paper"])
    k, chars = task.K, 36
    layout = evaluate(LayoutOnly(task), task, cand_examples=len(task))
    assert layout["marg_chance"] == pytest.approx(4 * math.log(chars) - math.log(k))
    assert layout["marg_loss"] == pytest.approx(layout["marg_chance"], abs=1e-4)
    assert layout["marg_first_loss"] == pytest.approx(layout["marg_first_chance"], abs=1e-4)
    assert layout["cand_loss"] == pytest.approx(math.log(k), abs=1e-4)
    # uniform over the distinct first characters: at least the floor, which is below log K
    first = task.candidate_first(torch.arange(len(task)))
    distinct = torch.tensor([len(set(r.tolist())) for r in first]).double()
    assert layout["cand_first_loss"] == pytest.approx(float(distinct.log().mean()), abs=1e-4)
    assert layout["cand_first_floor"] <= layout["cand_first_loss"] + 1e-9
    assert layout["cand_first_floor"] <= math.log(k)

    marginal = evaluate(Reference(task, marginal=True), task, cand_examples=len(task))
    assert marginal["marg_loss"] == pytest.approx(0.0, abs=1e-3)
    assert marginal["marg_first_loss"] == pytest.approx(0.0, abs=1e-3)
    assert marginal["cand_first_loss"] == pytest.approx(marginal["cand_first_floor"], abs=1e-3)
    assert marginal["loss_zswap"] == pytest.approx(marginal["loss"], abs=1e-4)

    perfect = evaluate(Reference(task, marginal=False), task, cand_examples=len(task))
    for key in ("marg_loss", "cand_loss", "marg_first_loss", "cand_first_loss"):
        assert perfect[key] == pytest.approx(0.0, abs=1e-3), key
        assert perfect[f"{key}_se"] >= 0
    assert perfect["loss_zswap"] > perfect["loss"] + 10
    assert len(perfect["loss_zswap_pos"]) == task.n_targets


def test_stage_measures_on_the_proxy_are_first_token_measures():
    task = WindTunnelTask(TASKS["proxy"])
    ev = evaluate(Reference(task, marginal=True), task)
    assert ev["marg_loss"] == pytest.approx(ev["marg_first_loss"])
    assert ev["marg_chance"] == pytest.approx(math.log(16) - math.log(task.K))
    assert ev["cand_first_loss"] == pytest.approx(ev["cand_loss"], abs=1e-6)


def test_first_token_losses_count_a_shared_first_token_once():
    from mbc_interp.tasks.wind_tunnel.evaluation import first_token_losses

    logp = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]]).log().double()
    first = torch.tensor([[1, 1, 2], [0, 3, 3]])  # K = 3; two candidates share a first token
    k_true = torch.tensor([2, 1])
    marg, cand = first_token_losses(logp, first, k_true)
    assert marg.tolist() == pytest.approx([-math.log(0.5), -math.log(0.5)])
    assert cand.tolist() == pytest.approx([math.log(0.5 / 0.3), math.log(0.5 / 0.1)])
