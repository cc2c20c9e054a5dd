"""Modular addition: the config's checks, the table and its seeded split, evaluation against a
direct computation, and the task protocol's statements."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mbc_interp.model import ModelConfig, build_model
from mbc_interp.tasks.losses import target_losses
from mbc_interp.tasks.modular_addition.capability import HasModularInputs
from mbc_interp.tasks.modular_addition.config import (
    ModularAdditionConfig,
    ModularAdditionConfigError,
    is_prime,
)
from mbc_interp.tasks.modular_addition.task import ModularAdditionTask
from mbc_interp.tasks.protocol import HasGroups, HasPatchingPairs, HasSelector, Task, supports
from mbc_interp.tasks.registry import build_task, config_from_dict

ROOT = Path(__file__).resolve().parents[2]
SMALL = ModularAdditionConfig(p=7, train_frac=0.5, seed=3)


@pytest.fixture(scope="module")
def task() -> ModularAdditionTask:
    return ModularAdditionTask(SMALL)


def test_config_defaults_and_derived_sizes():
    c = ModularAdditionConfig()
    assert (c.p, c.train_frac, c.seed) == (113, 0.3, 0)
    assert (c.d_vocab, c.seq_len, c.n_total, c.n_train) == (114, 4, 12769, 3830)
    assert c.log_p == pytest.approx(math.log(113))
    assert "113" in c.describe() and "3830/12769" in c.describe()
    assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"p": 4}, "task.p = 4: must be a prime >= 3"),
        ({"p": 2}, "task.p = 2: must be a prime >= 3"),
        ({"train_frac": 0.0}, "task.train_frac = 0.0: must be a number in (0, 1)"),
        ({"train_frac": 1.0}, "task.train_frac = 1.0: must be a number in (0, 1)"),
        ({"p": 3, "train_frac": 0.1}, "task.train_frac = 0.1: leaves 0 of the p^2 = 9 pairs"),
        ({"seed": -1}, "task.seed = -1: must be an int >= 0"),
    ],
)
def test_config_errors_name_the_field_and_the_value(kwargs, message):
    with pytest.raises(ModularAdditionConfigError) as err:
        ModularAdditionConfig(**kwargs)
    assert str(err.value).startswith(message)


def test_config_records_round_trip_through_the_registry():
    record = SMALL.to_dict()
    assert record == {"name": "modular_addition", "p": 7, "train_frac": 0.5, "seed": 3}
    assert config_from_dict(json.loads(json.dumps(record))) == SMALL
    assert ModularAdditionConfig.from_dict(record) == SMALL
    assert isinstance(build_task(SMALL), ModularAdditionTask)
    with pytest.raises(ModularAdditionConfigError, match=r"unknown field task\.K \(known: p, "):
        ModularAdditionConfig.from_dict({"p": 7, "K": 4})
    with pytest.raises(ModularAdditionConfigError, match=r"task\.p = '7' does not match type int"):
        ModularAdditionConfig.from_dict({"p": "7"})
    with pytest.raises(ModularAdditionConfigError, match=r"task\.p = 8: must be a prime"):
        ModularAdditionConfig.from_dict({"p": 8})
    with pytest.raises(ModularAdditionConfigError, match="expected 'modular_addition'"):
        ModularAdditionConfig.from_dict({"name": "wind_tunnel"})


def test_the_config_module_loads_without_torch():
    code = ("import sys; import mbc_interp.tasks.modular_addition.config as c; "
            "c.ModularAdditionConfig(p=5); print('torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT)})  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_tokens_hold_every_pair_in_row_order(task):
    p = 7
    t = task.tokens
    assert t.shape == (p * p, 4) and t.dtype == torch.int64
    a, b = task.operands(torch.arange(p * p))
    assert torch.equal(a * p + b, torch.arange(p * p))
    assert torch.equal(t[:, 2], torch.full((p * p,), p))
    assert torch.equal(t[:, 3], (a + b) % p)
    assert task.tokens[3 * p + 5].tolist() == [3, 5, p, 1]
    assert task.modulus == p and len(task) == p * p


def test_the_split_is_seeded_disjoint_sorted_and_of_the_right_size(task):
    train, test = task.train_rows, task.test_rows
    assert len(train) == SMALL.n_train == 24 and len(test) == 25
    assert not set(train.tolist()) & set(test.tolist())
    assert sorted(train.tolist() + test.tolist()) == list(range(49))
    assert torch.equal(train, train.sort().values)
    again = ModularAdditionTask(ModularAdditionConfig(p=7, train_frac=0.5, seed=3))
    assert torch.equal(again.train_rows, train) and again.fingerprint == task.fingerprint
    other = ModularAdditionTask(ModularAdditionConfig(p=7, train_frac=0.5, seed=4))
    assert not torch.equal(other.train_rows, train) and other.fingerprint != task.fingerprint
    assert torch.equal(task.is_train(train), torch.ones(24, dtype=torch.bool))


def test_eval_rows_take_at_most_n_max_of_each_split(task):
    assert torch.equal(task.eval_rows(None), torch.arange(49))
    assert torch.equal(task.eval_rows(100), torch.arange(49))
    rows = task.eval_rows(10, seed=1)
    assert len(rows) == 20 and torch.equal(rows, rows.sort().values)
    assert int(task.is_train(rows).sum()) == 10
    assert torch.equal(task.eval_rows(10, seed=1), rows)
    assert not torch.equal(task.eval_rows(10, seed=2), rows)
    with pytest.raises(ValueError, match="n_max = 0"):
        task.eval_rows(0)


def test_evaluate_matches_a_direct_computation(task):
    model = build_model(ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32), 8, 3, seed=0)
    rows = torch.tensor([0, 5, 9, 17, 30, 41, 48])
    got = task.evaluate(model, rows)
    with torch.no_grad():
        loss = target_losses(model, task.tokens[rows], task.answer_pos)[:, 0].double()
        logits = model(task.tokens[rows, :3])[:, 2]
    hit = (logits.argmax(-1) == task.tokens[rows, 3]).double()
    train = task.is_train(rows)
    assert got["loss"] == pytest.approx(float(loss[train].mean()), rel=1e-6)
    assert got["loss_se"] == pytest.approx(float(loss[train].std() / train.sum().sqrt()), rel=1e-5)
    assert got["test_loss"] == pytest.approx(float(loss[~train].mean()), rel=1e-6)
    assert got["acc"] == pytest.approx(float(hit[train].mean()))
    assert got["test_acc"] == pytest.approx(float(hit[~train].mean()))
    assert got["loss_tok"] == got["loss"]
    assert (got["eval_n"], got["test_n"]) == (int(train.sum()), int((~train).sum()))
    assert task.transition.metric in got
    only_test = task.evaluate(model, task.test_rows[:3])
    assert math.isnan(only_test["loss"]) and not math.isnan(only_test["test_loss"])


def test_the_protocol_statements(task):
    assert isinstance(task, Task) and supports(task, HasModularInputs)
    assert not supports(task, HasPatchingPairs) and supports(task, HasGroups)
    assert not supports(task, HasSelector)
    assert task.answer_pos == 2 and task.n_targets == 1
    assert task.transition.metric == "test_loss" and task.transition.rest_level is None
    assert task.transition.scale == pytest.approx(math.log(7))
    primary = task.progress_signals[0]
    assert (primary.name, primary.se, primary.source, primary.direction) == (
        "excluded_gain", "excluded_gain_se", "fourier", "up")  # fmt: skip
    assert {s.source for s in task.progress_signals} == {"fourier", "llc"}
    assert {s.baseline for s in task.progress_signals} == {"rest"}  # timed from memorisation
    assert task.position_labels() == ["a", "b", "=", "c"]
    assert [task.token_label(i) for i in (0, 6, 7)] == ["0", "6", "="]
    with pytest.raises(ValueError, match="token id 8"):
        task.token_label(8)


def test_groups_are_the_answers_over_the_held_out_pairs(task):
    """Each group is one answer c's held-out pairs; a model that answers every pair right and
    sure solves every group, and the ``groups`` kind reads the groups through the protocol."""
    import torch

    from mbc_interp.analysis.groups import GroupsConfig, group_records

    names, members = task.group_members(100)
    test = set(task.test_rows.tolist())
    assert sum(len(m) for m in members) == len(test)  # every held-out pair, once
    for name, rows in zip(names, members, strict=True):
        c = int(name[1:])
        assert set(rows.tolist()) <= test
        assert torch.all(task.tokens[rows, task.answer_pos + 1] == c)
    few, _ = task.group_members(3, seed=1)
    assert len(few) == 3 and few == task.group_members(3, seed=1)[0] and set(few) <= set(names)
    assert task.group_loss_scale == pytest.approx(math.log(task.config.p))

    class Oracle(torch.nn.Module):  # logits: +20 on the true answer of each (a, b)
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, tokens):
            a, b = tokens[:, 0], tokens[:, 1]
            out = torch.zeros(len(tokens), tokens.shape[1], task.config.d_vocab)
            out[torch.arange(len(tokens)), task.answer_pos, (a + b) % task.config.p] = 20.0
            return out

    rows = group_records(Oracle(), task, GroupsConfig(n_groups=100))
    solved = [r for r in rows if r["metric"] == "group_solved"]
    assert len(solved) == len(names) and all(r["value"] == 1.0 for r in solved)
    assert [r["value"] for r in rows if r["metric"] == "solved_fraction"] == [1.0]
