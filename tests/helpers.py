"""Tiny configurations shared by the tests: ``build_cfg(**overrides)`` in the SAELens manner."""

from __future__ import annotations

from dataclasses import replace

from mbc_interp import CheckpointSchedule, ModelConfig, RunConfig, TaskConfig, TrainConfig
from mbc_interp.sweep.grid import SweepSpec

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


def grokking_cfg(**train) -> RunConfig:
    """A tiny modular-addition run (p = 11, half the pairs trained on, full batch; 60 steps, a
    few seconds): the ``grokking_cpu`` preset's model and optimiser at a tenth of the width. It
    memorises and has not grokked by its end."""
    base = {"preset": "grokking_cpu", "task": {"p": 11, "train_frac": 0.5},
            "model": {"d_model": 32, "d_mlp": 64},
            "train": {"batch_size": 60, "steps": 60, "eval_every": 10,
                      "checkpoints": {"every": 20}}}  # fmt: skip
    base["train"].update(train)
    return RunConfig.from_dict(base)


def tiny_spec(grids: tuple[dict, ...] | None = None, analysis: bool = True, **train) -> SweepSpec:
    """A sweep of tiny runs (2-3 s each, through their transition): D 24 and 32, seeds 0, 1."""
    base = build_cfg(steps=train.pop("steps", 400), **train).to_dict()
    grids = grids or ({"task": {"D": [24, 32]}, "train": {"seed": [0, 1]}},)
    spec = SweepSpec(grids=grids, base=base)
    return spec if analysis else SweepSpec(grids=grids, base=base, analysis=None)

