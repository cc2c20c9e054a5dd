from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from mbc_interp import train
from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.tasks.wind_tunnel.task import (
    TaskConfig,
    TaskConfigError,
    WindTunnelTask,
    sequence_nll,
)

from .helpers import build_cfg

SEP = 0  # the proxy tasks' SEP id

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
        assert toks.shape == (c.n_bases * c.K, c.seq_len)
        bases = toks[:, list(WindTunnelTask(c).base_positions)]
        targets = toks[:, list(WindTunnelTask(c).target_positions)]
        # D distinct bases, each repeated K times; K distinct first target tokens per base
        assert len({tuple(r) for r in bases.tolist()}) == c.n_bases
        firsts = targets[:, 0].view(c.n_bases, c.K)
        assert all(len(set(row)) == c.K for row in firsts.tolist())
        # H(A | B, z) = 0: every (B, z) appears once
        keys = torch.cat([bases, toks[:, [WindTunnelTask(c).selector_positions[0]]]], 1)
        assert len({tuple(r) for r in keys.tolist()}) == c.n_bases * c.K
        assert (toks[:, WindTunnelTask(c).answer_pos] == SEP).all()

    def test_token_roles(self, cfg):
        task = WindTunnelTask(cfg)
        labels = task.labels(task.tokens[0])
        roles = task.position_labels
        z = task.selector_positions[0]
        assert labels[z] == "z1" and roles[z] == "z"
        assert labels[WindTunnelTask(cfg).answer_pos] == "SEP"
        assert all(labels[p].startswith("b") for p in WindTunnelTask(cfg).base_positions)
        assert all(labels[p].startswith("a") for p in WindTunnelTask(cfg).target_positions)
        assert task.tokens.max() < cfg.d_vocab

    def test_loss_mask_marks_positions_before_targets(self, cfg):
        task = WindTunnelTask(cfg)
        cols = task.loss_mask[0].nonzero().flatten().tolist()
        assert cols == [p - 1 for p in WindTunnelTask(cfg).target_positions]
        assert task.loss_mask.all(0).sum() == cfg.target_len


def test_shared_pool_first_tokens_come_from_one_pool_of_k():
    task = WindTunnelTask(TaskConfig(D=200, K=4, target_len=3))
    c = task.config
    firsts = task.tokens[:, WindTunnelTask(c).target_positions[0]]
    assert len(set(firsts.tolist())) == c.K
    stems = task.tokens[:, list(WindTunnelTask(c).target_positions[1:])].view(c.n_bases, c.K, -1)
    assert (stems == stems[:, :1]).all()  # the stem is shared by a base's K targets


def test_distinct_random_uses_more_than_k_first_symbols():
    task = WindTunnelTask(TaskConfig(D=200, K=4, construction="distinct_random"))
    assert len(set(task.tokens[:, task.answer_pos + 1].tolist())) > 4


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
    bases = task.tokens[:, list(WindTunnelTask(cfg).base_positions)]
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
    assert len(pairs) == 64 and pairs.answer_pos == WindTunnelTask(c).answer_pos
    diff = pairs.clean_tokens != pairs.corrupt_tokens
    assert diff[:, WindTunnelTask(c).selector_positions[0]].all() and diff.sum() == 64
    assert (pairs.clean_answer != pairs.corrupt_answer).all()
    rows = pairs.example_index
    assert torch.equal(pairs.clean_answer, task.tokens[rows, WindTunnelTask(c).answer_pos + 1])
    assert torch.equal(pairs.clean_tokens, task.tokens[rows, : WindTunnelTask(c).answer_pos + 1])
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
        ({"direction": "sideways"}, "task.direction", "['backward', 'forward']"),
        ({"direction": "forward"}, "task.direction", "every A to name one B"),
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


# -- the forward direction (A -> B, the control) ---------------------------------------------
FORWARD = TaskConfig(D=50, K=2, target_len=3, direction="forward")


def _pairs(task: WindTunnelTask) -> set[tuple[tuple[int, ...], tuple[int, ...]]]:
    bases = task.tokens[:, list(task.layout.positions("base"))].tolist()
    targets = task.tokens[:, list(task.layout.positions("target"))].tolist()
    return {(tuple(b), tuple(a)) for b, a in zip(bases, targets, strict=True)}


def test_forward_layout_is_a_sep_b_without_selector():
    task = WindTunnelTask(FORWARD)
    c = task.config
    assert (c.seq_len, task.answer_pos, c.has_selector, task.has_selector) == (8, 3, False, False)
    # the loss is on everything after the answer position: the B tokens in the forward direction
    assert task.target_positions == (4, 5, 6, 7) and task.base_positions == (4, 5, 6, 7)
    assert task.position_labels == ["A1", "A2", "A3", "SEP", "B1", "B2", "B3", "B4"]
    for row in task.tokens[:20]:
        labels = task.labels(row)
        assert all(lab.startswith("a") for lab in labels[:3]) and labels[3] == "SEP"
        assert all(lab.startswith("b") for lab in labels[4:])
    toks = task.tokens
    assert not any(task.token_label(int(t)).startswith("z") for t in toks.unique())  # no z
    assert c.d_vocab == TaskConfig(D=50, K=2, target_len=3).d_vocab  # same vocabulary


def test_forward_loss_is_on_the_base_tokens():
    task = WindTunnelTask(FORWARD)
    c = task.config
    assert WindTunnelTask(c).prediction_positions == (3, 4, 5, 6)
    cols = task.loss_mask[0].nonzero().flatten().tolist()
    assert cols == [p - 1 for p in task.base_positions]
    assert task.loss_mask.all(0).sum() == c.base_len and task.loss_mask.any(0).sum() == c.base_len


@pytest.mark.parametrize(
    "cfg",
    [
        FORWARD,
        TaskConfig(D=256, K=4, target_len=3, n_target_symbols=16, selector_first=False),
        TaskConfig(D=16, K=8, base_len=3, construction="distinct_random", target_len=2),
        TaskConfig(D=40, K=4, construction="distinct_random", target_len=2),  # seed-dependent
        TaskConfig(D=1, K=3),  # one B: its K pool symbols are distinct A's
    ],
    ids=["shared_pool", "shared_pool-full", "distinct_random", "distinct_random-drawn", "D1"],
)
def test_both_directions_hold_the_same_pairs_with_distinct_as(cfg):
    backward = WindTunnelTask(replace(cfg, direction="backward"))
    forward = WindTunnelTask(replace(cfg, direction="forward"))
    assert _pairs(backward) == _pairs(forward) and len(_pairs(forward)) == cfg.n_total
    a = forward.tokens[:, list(forward.layout.positions('target'))]
    assert len({tuple(r) for r in a.tolist()}) == cfg.n_total  # A -> B is a function
    # same rows, too: row b*K+k is (B_b, A_bk) in both
    assert torch.equal(
        backward.tokens[:, list(backward.layout.positions('target'))],
        forward.tokens[:, list(forward.layout.positions('target'))],
    )


def test_shared_pool_stems_are_distinct_when_there_is_room():
    task = WindTunnelTask(TaskConfig(D=200, K=4, target_len=3))  # 200 <= 16**2
    c = task.config
    stems = task.tokens[:: c.K, list(WindTunnelTask(c).target_positions[1:])]
    assert len({tuple(r) for r in stems.tolist()}) == c.n_bases


def test_marginal_loss_is_log_k_backward_and_zero_forward():
    assert WindTunnelTask(FORWARD).marginal_loss() == 0.0
    backward = WindTunnelTask(replace(FORWARD, direction="backward"))
    assert abs(backward.marginal_loss() - math.log(2)) < 1e-9
    assert WindTunnelTask(FORWARD).log_k == backward.log_k == math.log(2)  # shared reference


def test_forward_has_no_selector_to_route():
    from mbc_interp.tasks.protocol import HasSelector, TaskProtocolError, require, supports

    assert supports(WindTunnelTask(replace(FORWARD, direction="backward")), HasSelector)
    task = WindTunnelTask(FORWARD)
    assert not supports(task, HasSelector)  # a plain no, not the member's error
    getters = (lambda: task.selector_positions, lambda: task.derangement(torch.tensor([0])))
    for get in (*getters, task.patching_pairs):
        with pytest.raises(TaskConfigError, match="forward direction has no selector") as err:
            get()
        assert "backward runs" in str(err.value)
    with pytest.raises(TaskProtocolError, match=r"the routing analyses needs a task with "
                       r"HasSelector; task 'wind_tunnel' does not provide it \(task.direction = "
                       r"'forward': the forward direction has no selector"):  # fmt: skip
        require(task, HasSelector, "the routing analyses")


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({}, "n_target_symbols ** (target_len - 1) = 1"),  # the default: L_A = 1, D = 1000
        ({"D": 17, "target_len": 2}, "= 16): use target_len >= 2"),
        ({"D": 100, "target_len": 2, "construction": "distinct_random"}, "D = 100 B's"),
    ],
)
def test_forward_needs_distinct_as_checked_with_the_config(kwargs, needle):
    with pytest.raises(TaskConfigError, match=r"task\.direction = 'forward'") as err:
        TaskConfig(direction="forward", **kwargs)
    assert "every A to name one B" in str(err.value) and needle in str(err.value)


def test_forward_needs_distinct_as_checked_when_drawn():
    cfg = TaskConfig(D=60, K=4, target_len=2, construction="distinct_random", direction="forward")
    with pytest.raises(TaskConfigError, match=r"task\.direction = 'forward'") as err:
        WindTunnelTask(cfg)  # 240 A's in 256 strings: possible, but not this draw
    assert "repeats" in str(err.value) and "another seed" in str(err.value)
    WindTunnelTask(replace(cfg, direction="backward"))  # repeated A's are fine backward


def test_forward_rejects_selector_first():
    with pytest.raises(TaskConfigError, match=r"task\.selector_first = True.*no selector"):
        TaskConfig(D=10, target_len=2, selector_first=True, direction="forward")


def test_forward_config_round_trips():
    cfg = RunConfig(task=FORWARD)
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["task"]["direction"] == "forward"
    assert RunConfig().task.direction == "backward"
    assert RunConfig.from_dict({"task": {"D": 10}}).task.direction == "backward"  # old files


def test_forward_run_trains_without_a_selector(tmp_path):
    cfg = build_cfg(task={"direction": "forward", "target_len": 3, "D": 32}, steps=100)
    run = train(cfg, tmp_path / "fwd", progress=False)
    loss = run.metrics["loss"]
    assert loss.iloc[-1] < 0.5 * loss.iloc[0] and loss.iloc[-1] < run.log_k
    assert len(run.metrics.iloc[0]["loss_pos"]) == cfg.task.base_len  # loss on B tokens
    tokens = run.task.tokens
    selectors = [i for i, label in enumerate(cfg.task.vocab) if label.startswith("z")]
    assert not torch.isin(tokens, torch.tensor(selectors)).any()
