"""A trained (or training) run, read back from its directory: the API notebooks use.

>>> from mbc_interp import load_run
>>> run = load_run("checkpoints/demo")            # doctest: +SKIP
>>> model = run.model(run.steps[-1])              # doctest: +SKIP

Opening a run reads JSON only: torch and TransformerLens are imported by the first model,
task or tensor asked for, so reading a run's status and metrics (``mbc info``) stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.store.layout import CONFIG_FILE
from mbc_interp.store.run_store import (
    CheckpointEntry,
    CheckpointError,
    Manifest,
    RunStore,
    RunStoreError,
)

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from transformer_lens import HookedTransformer

    from mbc_interp.tasks.protocol import Task



@dataclass(frozen=True)
class OptimizerState:
    """A checkpoint's saved optimiser state, by parameter name (see :meth:`Run.optimizer_state`)."""

    optimizer: str
    """``train.optimizer`` of the run: ``"adamw"`` or ``"sgd"``."""
    step: int
    """Optimiser steps taken (Adam's bias-correction count)."""
    hyper: dict[str, Any]
    """The saved parameter group: lr, betas, eps, weight_decay, momentum, ..."""
    buffers: dict[str, dict[str, torch.Tensor]]
    """Per-parameter state by kind: ``exp_avg``/``exp_avg_sq`` (AdamW), ``momentum_buffer``
    (SGD with momentum), each ``{parameter name: tensor}``."""


class Run:
    """One run directory. Cheap to open; checkpoints are loaded on demand, one at a time."""

    def __init__(self, path: str | Path):
        self.store = RunStore(path)
        self.path = self.store.path
        self._record = self.store.read_config()
        try:
            self.config = RunConfig.from_dict(
                self._record["config"], str(self.path / CONFIG_FILE)
            )
        except KeyError:
            raise RunStoreError(f"{self.path / CONFIG_FILE}: has no 'config' section") from None
        except ConfigError as e:
            raise RunStoreError(str(e)) from None

    def __repr__(self) -> str:
        m = self.manifest
        return (
            f"Run({str(self.path)!r}, status={m.status!r}, checkpoints={len(m.checkpoints)}, "
            f"last_step={m.steps[-1] if m.steps else None})"
        )

    # -- what the run holds ---------------------------------------------------------------------
    @property
    def manifest(self) -> Manifest:
        """Read fresh on every access, so a run still training shows its progress."""
        return self.store.read_manifest()

    @property
    def steps(self) -> list[int]:
        """Sorted checkpointed steps."""
        return sorted(self.manifest.steps)

    @property
    def checkpoints(self) -> tuple[CheckpointEntry, ...]:
        return self.manifest.checkpoints

    @property
    def status(self) -> str:
        return self.manifest.status

    @property
    def versions(self) -> dict[str, str | None]:
        """Package and library versions the run was trained with."""
        return dict(self._record.get("versions", {}))

    @cached_property
    def task(self) -> Task:
        """The task rebuilt from the saved config; checked against the saved data fingerprint."""
        from mbc_interp.tasks.registry import build_task

        task = build_task(self.config.task)
        saved = self._record.get("task_fingerprint")
        if saved is not None and saved != task.fingerprint:
            raise RunStoreError(
                f"{self.path / CONFIG_FILE}: the rebuilt dataset differs from the one trained "
                f"on (fingerprint {task.fingerprint[:12]} != {saved[:12]}); numpy's generator "
                f"changed? Pin numpy to the version in {CONFIG_FILE} 'versions'"
            )
        return task

    @property
    def log_k(self) -> float:
        """The level the transition metric rests at (log K on the wind tunnel); a task with no
        resting level has none, and this is an error naming the task."""
        level = getattr(self.config.task, "log_k", None)  # from the config: no data built
        if level is None:
            name = type(self.config.task).name
            raise AttributeError(f"{self.path}: task {name!r} has no log K plateau level")
        return level

    @property
    def metrics(self) -> pd.DataFrame:
        """Every evaluation as a table (one row per evaluated step), read fresh."""
        import pandas as pd

        return pd.DataFrame(self.store.read_metrics())

    def nearest_step(self, step: float | int) -> int:
        """The checkpointed step nearest ``step`` (the earlier one on a tie), e.g. to load a
        model near a time read off a curve; ValueError when the run has no checkpoint."""
        steps = self.steps
        if not steps:
            raise ValueError(f"{self.path}: no checkpoint yet")
        return min(steps, key=lambda s: (abs(s - step), s))

    def tokens_at(self, step: int) -> int:
        """Tokens seen after ``step`` updates."""
        return step * self.config.tokens_per_step

    # -- models ---------------------------------------------------------------------------------
    def state_dict(self, step: int) -> dict[str, torch.Tensor]:
        """The checkpoint's weights (checksum verified), as saved."""
        return self._load_weights(self._entry(step))

    def _load_weights(self, entry: CheckpointEntry) -> dict[str, torch.Tensor]:
        tensors, _ = self.store.load_tensors(entry.file, entry.sha256)
        return tensors

    def model(self, step: int, device: str | torch.device | None = None) -> HookedTransformer:
        """The model at ``step``, in eval mode, on ``device`` (default: auto)."""
        from mbc_interp.model import build_model, load_model_state, resolve_device

        entry = self._entry(step)  # one manifest read per load
        state = self._load_weights(entry)
        model = build_model(
            self.config.model,
            self.config.task.d_vocab,
            self.config.task.seq_len,
            device=resolve_device(device),
        )
        try:
            load_model_state(model, state)
        except KeyError as e:
            raise CheckpointError(
                f"{self.path / entry.file}: does not fit the run's model config ({e})"
            ) from None
        return model.eval()

    def models(
        self, steps: Iterable[int] | None = None, device: str | torch.device | None = None
    ) -> Iterator[tuple[int, HookedTransformer]]:
        """``(step, model)`` pairs, lazily: one model in memory at a time."""
        for step in self.steps if steps is None else steps:
            yield step, self.model(step, device=device)

    def optimizer_state(self, step: int) -> OptimizerState | None:
        """The optimiser state saved with checkpoint ``step``; ``None`` when that checkpoint
        kept no trainer state (``train.keep_optimizer = "latest"`` prunes all but the last)."""
        entry = self._entry(step)
        if entry.trainer_file is None:
            return None
        import torch

        from mbc_interp.store import trainer_state

        tensors, meta = self.store.load_tensors(entry.trainer_file, entry.trainer_sha256)
        file = self.path / entry.trainer_file
        state, groups, info = trainer_state.unflatten(tensors, meta, file)
        names = [n for n, _ in self.model_skeleton().named_parameters()]
        buffers: dict[str, dict[str, torch.Tensor]] = {}
        steps = []
        try:
            hyper = dict(groups[0])
            for pid, per_param in state.items():
                for kind, value in per_param.items():
                    if kind == "step":
                        steps.append(int(value.item() if torch.is_tensor(value) else value))
                    elif torch.is_tensor(value):
                        buffers.setdefault(kind, {})[names[pid]] = value
        except (KeyError, ValueError, TypeError, IndexError) as e:
            raise CheckpointError(f"{file}: optimiser state is malformed ({e})") from None
        hyper.pop("params", None)
        order = {n: i for i, n in enumerate(names)}
        buffers = {
            kind: dict(sorted(b.items(), key=lambda kv: order[kv[0]]))
            for kind, b in buffers.items()
        }
        return OptimizerState(
            optimizer=getattr(self.config.train, "optimizer", "adamw"),
            step=max(steps, default=int(info.get("progress", {}).get("step", 0))),
            hyper=hyper,
            buffers=buffers,
        )

    def model_skeleton(self) -> HookedTransformer:
        """An untrained model of the run's architecture on CPU (for parameter names/shapes)."""
        from mbc_interp.model import build_model

        return build_model(
            self.config.model, self.config.task.d_vocab, self.config.task.seq_len, device="cpu"
        )

    def _entry(self, step: int) -> CheckpointEntry:
        manifest = self.manifest
        try:
            return manifest.entry(int(step))
        except KeyError:
            raise KeyError(_no_checkpoint(self.path, int(step), manifest.steps)) from None

    def record(self) -> dict[str, Any]:
        """The raw config.json record (config, versions, fingerprint)."""
        return dict(self._record)


def _no_checkpoint(path: Path, step: int, steps: list[int]) -> str:
    """The message for a step that has no checkpoint: the nearest ones on either side."""
    if not steps:
        return f"{path}: no checkpoint at step {step}; the run has no checkpoint yet"
    below = [s for s in steps if s < step]
    above = [s for s in steps if s > step]
    near = [str(s) for s in (max(below, default=None), min(above, default=None)) if s is not None]
    return (
        f"{path}: no checkpoint at step {step}; nearest checkpoint(s): {', '.join(near)} "
        f"({len(steps)} checkpoints, steps {min(steps)}..{max(steps)}; Run.nearest_step({step}))"
    )


def load_run(path: str | Path) -> Run:
    """Open a run directory written by :func:`mbc_interp.train`."""
    return Run(path)
