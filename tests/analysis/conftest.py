"""Tiny real models for the analysis tests: random-init ones and one briefly trained to read z;
a tiny modular-addition task, model and run (a task without a selector, pairs or candidates)."""

from __future__ import annotations

import pytest
import torch
from transformer_lens import HookedTransformer

from mbc_interp import Run, RunConfig
from mbc_interp import train as train_run
from mbc_interp.model import ModelConfig, build_model
from mbc_interp.tasks.modular_addition.config import ModularAdditionConfig
from mbc_interp.tasks.modular_addition.task import ModularAdditionTask
from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask, sequence_nll

TINY = ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64)


def tiny_model(
    task: WindTunnelTask, config: ModelConfig = TINY, seed: int = 0
) -> HookedTransformer:
    return build_model(config, task.config.d_vocab, task.config.seq_len, seed=seed)


def train(model: HookedTransformer, task: WindTunnelTask, steps: int, lr: float = 3e-3) -> None:
    """Full-batch AdamW on the task loss: ~100 steps at 3e-3 leave the log K plateau."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        log_probs = model(task.tokens).log_softmax(-1)
        loss = sequence_nll(log_probs, task.tokens, task.loss_mask).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


@pytest.fixture(scope="session")
def task() -> WindTunnelTask:
    return WindTunnelTask(TaskConfig(D=64, K=4))


@pytest.fixture(scope="session")
def trained(task: WindTunnelTask) -> HookedTransformer:
    """Past the plateau: reads z, so clean and corrupt runs differ by several logits."""
    torch.manual_seed(0)
    model = tiny_model(task)
    train(model, task, steps=100)
    return model


@pytest.fixture(scope="session")
def random_model(task: WindTunnelTask) -> HookedTransformer:
    return tiny_model(task, seed=1)


GROK_MODEL = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32)


@pytest.fixture(scope="session")
def grok_task() -> ModularAdditionTask:
    return ModularAdditionTask(ModularAdditionConfig(p=7, train_frac=0.5))


@pytest.fixture(scope="session")
def grok_model(grok_task: ModularAdditionTask) -> HookedTransformer:
    c = grok_task.config
    return build_model(GROK_MODEL, c.d_vocab, c.seq_len, seed=0)


@pytest.fixture(scope="session")
def grok_run(tmp_path_factory) -> Run:
    """A finished tiny modular-addition run (p = 7, 30 steps, three checkpoints)."""
    cfg = RunConfig.from_dict({
        "preset": "grokking_cpu",
        "task": {"name": "modular_addition", "p": 7, "train_frac": 0.5},
        "model": {"d_model": 16, "d_mlp": 32, "n_heads": 2},
        "train": {"batch_size": 24, "steps": 30, "eval_every": 10, "stop_after_solved": None,
                  "checkpoints": {"log_until": 0, "every": 15}},
    })  # fmt: skip
    return train_run(cfg, tmp_path_factory.mktemp("grok") / "run", progress=False)
