from __future__ import annotations

import math

import pytest
import torch

from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.task import SEP, TaskConfig, TaskConfigError, WindTunnelTask, sequence_nll

CONFIGS = [
    TaskConfig(),
    TaskConfig(D=50, K=2, target_len=3),
    TaskConfig(D=300, K=8, base_len=3, construction="distinct_random", target_len=2),
    TaskConfig(D=40, K=5, selector_first=True, n_target_symbols=5),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.construction}-K{c.K}-LA{c.target_len}")
class TestConstruction:
    def test_marginal_predictor_sits_at_log_k(self, cfg):
        assert abs(WindTunnelTask(cfg).marginal_loss() - math.log(cfg.K)) < 1e-6

    def test_targets_determined_by_base_and_selector(self, cfg):
        task = WindTunnelTask(cfg)
        c = cfg
        toks = task.tokens
        assert toks.shape == (c.D * c.K, c.seq_len)
        bases = toks[:, list(c.base_positions)]
        targets = toks[:, list(c.target_positions)]
        # D distinct bases, each repeated K times; K distinct first target tokens per base
        assert len({tuple(r) for r in bases.tolist()}) == c.D
        firsts = targets[:, 0].view(c.D, c.K)
        assert all(len(set(row)) == c.K for row in firsts.tolist())
        # H(A | B, z) = 0: every (B, z) appears once
        keys = torch.cat([bases, toks[:, [c.selector_pos]]], 1)
        assert len({tuple(r) for r in keys.tolist()}) == c.D * c.K
        assert (toks[:, c.sep_pos] == SEP).all()

    def test_token_roles(self, cfg):
        task = WindTunnelTask(cfg)
        labels = task.labels(task.tokens[0])
        roles = task.position_labels
        assert labels[cfg.selector_pos] == "z1" and roles[cfg.selector_pos] == "z"
        assert labels[cfg.sep_pos] == "SEP"
        assert all(labels[p].startswith("b") for p in cfg.base_positions)
        assert all(labels[p].startswith("a") for p in cfg.target_positions)
        assert task.tokens.max() < cfg.d_vocab

    def test_loss_mask_marks_positions_before_targets(self, cfg):
        task = WindTunnelTask(cfg)
        cols = task.loss_mask[0].nonzero().flatten().tolist()
        assert cols == [p - 1 for p in cfg.target_positions]
        assert task.loss_mask.all(0).sum() == cfg.target_len


def test_shared_pool_first_tokens_come_from_one_pool_of_k():
    task = WindTunnelTask(TaskConfig(D=200, K=4, target_len=3))
    c = task.config
    firsts = task.tokens[:, c.target_positions[0]]
    assert len(set(firsts.tolist())) == c.K
    stems = task.tokens[:, list(c.target_positions[1:])].view(c.D, c.K, -1)
    assert (stems == stems[:, :1]).all()  # the stem is shared by a base's K targets


def test_distinct_random_uses_more_than_k_first_symbols():
    task = WindTunnelTask(TaskConfig(D=200, K=4, construction="distinct_random"))
    assert len(set(task.tokens[:, task.config.target_positions[0]].tolist())) > 4


def test_same_config_same_data_and_seed_changes_it():
    a, b = WindTunnelTask(TaskConfig(seed=3)), WindTunnelTask(TaskConfig(seed=3))
    assert torch.equal(a.tokens, b.tokens) and a.fingerprint == b.fingerprint
    assert WindTunnelTask(TaskConfig(seed=4)).fingerprint != a.fingerprint


def test_default_dataset_is_stable_across_machines_and_versions():
    # A regression guard: saved runs rebuild their data from the config; if numpy's PCG64 stream
    # or our construction changes, this fingerprint changes and old runs would not reload.
    task = WindTunnelTask(TaskConfig())
    assert task.tokens[:2].tolist() == [[13, 7, 16, 12, 1, 0, 31], [13, 7, 16, 12, 2, 0, 25]]
    assert task.fingerprint == "6ff63f9eae7d2ad3432812c46cee9d41d515a65c3ecd8121a5c52d6b37e63eeb"


def test_large_base_space_uses_rejection_sampling():
    cfg = TaskConfig(D=500, base_len=8, n_base_symbols=20)  # 20^8 > 2^24 strings
    task = WindTunnelTask(cfg)
    bases = task.tokens[:, list(cfg.base_positions)]
    assert len({tuple(r) for r in bases.tolist()}) == 500


def test_sequence_nll_sums_over_targets_only():
    task = WindTunnelTask(TaskConfig(D=10, K=2, target_len=2))
    n, seq, v = task.tokens.shape[0], task.config.seq_len, task.config.d_vocab
    uniform = torch.full((n, seq, v), -math.log(v))
    loss = sequence_nll(uniform, task.tokens, task.loss_mask)
    assert torch.allclose(loss, torch.full((n,), 2 * math.log(v)))


def test_patching_pairs_differ_only_in_selector():
    task = WindTunnelTask(TaskConfig(D=100, K=4))
    pairs = task.patching_pairs(n=64, seed=1)
    c = task.config
    assert len(pairs) == 64 and pairs.answer_pos == c.sep_pos
    diff = pairs.clean_tokens != pairs.corrupt_tokens
    assert diff[:, c.selector_pos].all() and diff.sum() == 64
    assert (pairs.clean_answer != pairs.corrupt_answer).all()
    rows = pairs.example_index
    assert torch.equal(pairs.clean_answer, task.tokens[rows, c.sep_pos + 1])
    assert torch.equal(pairs.clean_tokens, task.tokens[rows, : c.sep_pos + 1])
    assert len(task.patching_pairs()) == len(task)


@pytest.mark.parametrize(
    ("kwargs", "field", "limit"),
    [
        ({"K": 20}, "task.K", "n_target_symbols = 16"),
        ({"D": 70000}, "task.D", "65536"),
        ({"base_len": 0}, "task.base_len", ">= 1"),
        ({"target_len": 0}, "task.target_len", ">= 1"),
    ],
)
def test_bad_parameters_name_field_and_limit(kwargs, field, limit):
    with pytest.raises(TaskConfigError, match=field) as err:
        TaskConfig(**kwargs)
    assert limit in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field", "limit"),
    [
        ({"construction": "nope"}, "task.construction", "shared_pool"),
        ({"D": 2.5}, "task.D", "int"),
        ({"K": 20}, "task.K", "n_target_symbols = 16"),
    ],
)
def test_bad_parameters_in_a_config_file_name_source_field_and_limit(kwargs, field, limit):
    # (type errors are checked while reading, before the dataclass is built)
    with pytest.raises(ConfigError, match=r"run\.json") as err:
        RunConfig.from_dict({"task": kwargs}, "run.json")
    assert field in str(err.value) and limit in str(err.value)


def test_patching_pairs_need_two_selectors():
    with pytest.raises(TaskConfigError, match=r"K >= 2"):
        WindTunnelTask(TaskConfig(D=10, K=1)).patching_pairs()
