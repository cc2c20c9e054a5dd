"""Tiny configurations shared by the tests: ``build_cfg(**overrides)`` in the SAELens manner."""

from __future__ import annotations

from dataclasses import replace

from mbc_interp import CheckpointSchedule, ModelConfig, RunConfig, TaskConfig, TrainConfig

TINY_TASK = TaskConfig(D=64, K=4, base_len=3, n_base_symbols=8, n_target_symbols=8)
TINY_MODEL = ModelConfig(n_layers=2, d_model=32, n_heads=2, d_mlp=64)
TINY_TRAIN = TrainConfig(
    lr=3e-3,
    batch_size=32,
    steps=120,
    eval_every=10,
    device="cpu",
    checkpoints=CheckpointSchedule(log_until=16, every=40, loss_delta=0.1),
)


def build_cfg(task: dict | None = None, model: dict | None = None, **train) -> RunConfig:
    """A tiny run config; keyword arguments override training fields."""
    return RunConfig(
        task=replace(TINY_TASK, **(task or {})),
        model=replace(TINY_MODEL, **(model or {})),
        train=replace(TINY_TRAIN, **train),
    )
