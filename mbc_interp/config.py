"""Run configuration: task + model + training, as frozen dataclasses that round-trip JSON/TOML.

A config file (JSON or TOML) has up to three sections, each optional::

    [task]            # TaskConfig fields: D, K, base_len, ...
    [model]           # ModelConfig fields: n_layers, d_model, ...
    [train]           # TrainConfig fields: lr, batch_size, steps, ...

Unknown sections or fields raise :class:`ConfigError` naming the file and the field.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from mbc_interp.core.checks import check_field
from mbc_interp.core.strict import build_dataclass
from mbc_interp.model_config import ModelConfig
from mbc_interp.tasks.protocol import TaskConfigLike
from mbc_interp.tasks.registry import DEFAULT_TASK, UnknownTaskError, entry
from mbc_interp.tasks.wind_tunnel.config import TaskConfig


class ConfigError(ValueError):
    """A configuration file or value is invalid; the message names the file, field and value."""


@dataclass(frozen=True)
class CheckpointSchedule:
    """When to save: log-spaced early, evenly spaced later, and wherever the loss moves.

    Fixed steps are 0, 1, 2, 4, ... up to ``log_until``, then every ``every`` steps. On top,
    an evaluation whose loss has moved by more than ``loss_delta`` x log K since the last
    checkpoint triggers one, so the transition is densely sampled wherever it happens.
    """

    log_until: int = 512
    """Checkpoint at steps 0, 1, 2, 4, ... (powers of two) up to this step."""
    every: int = 100
    """Then checkpoint every this many steps."""
    loss_delta: float | None = 0.04
    """Fraction of log K; ``None`` turns adaptive checkpoints off."""
    dz_delta: float | None = 0.25
    """Also checkpoint when log10 of Δz (floored at twice its standard error and 1e-4) has
    moved this much since the last checkpoint: Δz grows exponentially on the plateau, so this
    spreads checkpoints evenly over its growth however long the plateau lasts. ``None``: off."""

    def __post_init__(self) -> None:
        if self.log_until < 0:
            raise ConfigError(f"train.checkpoints.log_until = {self.log_until}: must be >= 0")
        if self.every < 1:
            raise ConfigError(f"train.checkpoints.every = {self.every}: must be >= 1")
        if self.loss_delta is not None and not 0 < self.loss_delta <= 1:
            raise ConfigError(
                f"train.checkpoints.loss_delta = {self.loss_delta}: must be in (0, 1] or null"
            )
        if self.dz_delta is not None and not self.dz_delta > 0:
            raise ConfigError(f"train.checkpoints.dz_delta = {self.dz_delta}: must be > 0 or null")

    def is_fixed(self, step: int) -> bool:
        """Whether ``step`` is on the fixed part of the schedule."""
        if step <= self.log_until and (step == 0 or step & (step - 1) == 0):
            return True
        return step > 0 and step % self.every == 0

    def moved(self, loss: float, last_loss: float | None, log_k: float) -> bool:
        """Whether the loss has moved enough since the last checkpoint to save another."""
        if self.loss_delta is None or last_loss is None:
            return False
        scale = log_k if log_k > 0 else 1.0
        return abs(loss - last_loss) > self.loss_delta * scale

    def dz_moved(self, level: float | None, last_level: float | None) -> bool:
        """Whether log10 Δz (see :func:`dz_level`) moved enough to save another checkpoint."""
        if self.dz_delta is None or level is None or last_level is None:
            return False
        return abs(level - last_level) >= self.dz_delta


def dz_level(row: dict[str, Any]) -> float | None:
    """log10 of Δz floored at twice its standard error and 1e-4 (None without Δz)."""
    dz, se = row.get("dz"), row.get("dz_se")
    if dz is None or not math.isfinite(dz):
        return None
    floor = max(2 * se if se is not None and math.isfinite(se) else 0.0, 1e-4)
    return math.log10(max(dz, floor))


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser, data order, evaluation and stopping."""

    lr: float = 3e-4
    """Peak learning rate (after the warm-up)."""
    optimizer: Literal["adamw", "sgd"] = "adamw"
    """``adamw`` (torch's AdamW) or ``sgd`` (with ``momentum``)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW only."""
    eps: float = 1e-8
    """AdamW's denominator term: ``sqrt(v_hat) + eps``."""
    momentum: float = 0.0
    """SGD only (heavy ball; 0 is plain SGD)."""
    weight_decay: float = 0.0
    """Decoupled weight decay (AdamW) or L2 (SGD)."""
    batch_size: int = 128
    """Examples per optimiser step, drawn without replacement within an epoch."""
    steps: int = 8000
    """Optimiser steps at most (runs stop earlier once solved: ``stop_after_solved``)."""
    warmup_steps: int = 0
    """Linear warm-up from 0 to ``lr``; then ``schedule``."""
    schedule: Literal["constant", "cosine", "linear_decay"] = "constant"
    """After warm-up: constant ``lr``, or a cosine / linear decay to 0 at ``steps``."""
    seed: int = 0
    """Initialisation and batch-order seed (independent of the data seed)."""
    eval_every: int | None = None
    """Steps between evaluations; ``None``: about one per epoch, clamped to 5..25 steps
    (:attr:`RunConfig.eval_interval`), so a short plateau still gets >= 20 evaluations."""
    eval_examples: int | None = 2048
    """Evaluate on a fixed seeded subsample of this many examples (``None``: all); the metrics
    record ``eval_n``."""
    cand_examples: int = 256
    """Examples whose K whole candidate sequences are scored for the candidate loss when the
    candidates share first tokens (2 K sequences each); otherwise every evaluated example."""
    stop_after_solved: int | None = 10
    """Stop this many evaluations after the loss is solved; ``None`` runs all ``steps``."""
    solved_frac: float = 0.05
    """The loss counts as solved below ``solved_frac`` x log K."""
    device: str = "auto"
    """torch device: ``auto`` uses CUDA when present, else the CPU."""
    threads: int | None = 1
    """torch CPU threads; one thread per run is fastest per core for models this small."""
    compile: bool = False
    """Run the training step's forward and backward through torch.compile (evaluation stays
    eager, checkpoints are unchanged). On one CPU thread the paper's model gains only 1.04-1.08x
    (three quarters of its step is matrix products, which it leaves as they are) for 2-3 min of
    compiling, 20-30 s from the inductor cache (benchmarks/bench_train.py); small models on a GPU,
    bound by kernel launches, are where fusing can pay. Part of the run's config: a resumed run
    keeps its mode; runs reproduce exactly within one mode only."""
    checkpoints: CheckpointSchedule = field(default_factory=CheckpointSchedule)
    keep_optimizer: Literal["latest", "all"] = "latest"
    """Which checkpoints keep the optimiser state needed to resume."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="train", error=ConfigError)

        need(math.isfinite(self.lr) and self.lr > 0, "lr", "must be a finite number > 0")
        need(
            len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
            "betas",
            "must be two numbers in [0, 1)",
        )
        need(self.optimizer in ("adamw", "sgd"), "optimizer", "must be 'adamw' or 'sgd'")
        need(math.isfinite(self.eps) and self.eps > 0, "eps", "must be a finite number > 0")
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(
            self.schedule in ("constant", "cosine", "linear_decay"),
            "schedule",
            "must be 'constant', 'cosine' or 'linear_decay'",
        )
        need(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        need(self.batch_size >= 1, "batch_size", "must be >= 1")
        need(self.steps >= 1, "steps", "must be >= 1")
        need(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        need(self.seed >= 0, "seed", "must be >= 0")
        need(self.eval_every is None or self.eval_every >= 1, "eval_every", "must be >= 1 or null")
        need(
            self.eval_examples is None or self.eval_examples >= 2,
            "eval_examples",
            "must be >= 2 or null",
        )
        need(self.cand_examples >= 1, "cand_examples", "must be >= 1")
        need(
            self.stop_after_solved is None or self.stop_after_solved >= 0,
            "stop_after_solved",
            "must be >= 0 or null",
        )
        need(0 < self.solved_frac < 1, "solved_frac", "must be in (0, 1)")
        need(self.threads is None or self.threads >= 1, "threads", "must be >= 1 or null")
        need(self.keep_optimizer in ("latest", "all"), "keep_optimizer", "'latest' or 'all'")

    def lr_at(self, step: int) -> float:
        """Learning rate used for the update that produces ``step`` (1-based)."""
        if self.warmup_steps and step <= self.warmup_steps:
            return self.lr * step / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        span = max(self.steps - self.warmup_steps, 1)
        frac = min(max(step - self.warmup_steps, 0) / span, 1.0)
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * frac))
        return self.lr * (1 - frac)


def read_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML (``.toml``) or JSON file's top-level table; errors name the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read {what} ({e.strerror})") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the {what} must hold a table/object, got {type(data).__name__}")
    return data


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run."""

    task: TaskConfigLike = field(default_factory=TaskConfig)
    """The task's config; its ``name`` (a registered task) says which task it is."""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def tokens_per_step(self) -> int:
        """Tokens seen per optimiser step: every token of every sequence in the batch."""
        return self.train.batch_size * self.task.seq_len

    @property
    def eval_interval(self) -> int:
        """Steps between evaluations: ``train.eval_every``, or one epoch clamped to 5..25."""
        if self.train.eval_every is not None:
            return self.train.eval_every
        return min(25, max(5, round(self.task.n_train / self.train.batch_size)))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "task": self.task.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> RunConfig:
        """Build from nested dicts; ``source`` names the origin in error messages. A top-level
        ``preset = "paper"`` starts from :data:`PRESETS` and lays the rest over it."""
        if isinstance(data, dict) and "preset" in data:
            data = dict(data)
            name = data.pop("preset")
            if name not in PRESETS:
                raise ConfigError(f"{source}: preset = {name!r}: must be one of {list(PRESETS)}")
            data = merge_config(PRESETS[name], data)
        return _build(cls, data, source, "")

    @classmethod
    def from_file(cls, path: str | Path) -> RunConfig:
        return cls.from_dict(read_mapping(path, "config file"), str(path))

    def with_overrides(self, overrides: dict[str, dict[str, Any]]) -> RunConfig:
        """A copy with ``{"task": {...}, "train": {...}}`` fields replaced (validated)."""
        return RunConfig.from_dict(merge_config(self.to_dict(), overrides), "overrides")


SIZE_FIELDS = ("D", "n_examples")
"""One quantity in two units (bases, examples): overriding one clears the other."""


def merge_config(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` laid over ``base`` (nested dicts merge); a task size given in one unit
    (``D`` or ``n_examples``) replaces a size given in the other; a task section naming another
    task than the base's replaces the base's task section whole."""
    merged = dict(base)
    if _other_task(base.get("task"), overrides.get("task")):
        merged.pop("task")
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_config(merged[key], value)
        else:
            merged[key] = value
    task = overrides.get("task")
    if isinstance(task, dict) and isinstance(merged.get("task"), dict):
        given = [f for f in SIZE_FIELDS if task.get(f) is not None]
        if len(given) == 1:
            merged["task"] = {**merged["task"], **{f: None for f in SIZE_FIELDS if f not in given}}
    return merged


def _other_task(base: Any, override: Any) -> bool:
    if not (isinstance(base, dict) and isinstance(override, dict) and "name" in override):
        return False
    return override["name"] != base.get("name", DEFAULT_TASK)


_GROKKING_MODEL = {"n_layers": 1, "d_model": 128, "n_heads": 4, "d_mlp": 512, "act_fn": "relu",
                   "normalization": "none"}  # fmt: skip
_GROKKING_TRAIN = {"lr": 1e-3, "weight_decay": 1.0, "betas": [0.9, 0.98], "warmup_steps": 10,
                   "eval_examples": None, "checkpoints": {"dz_delta": None}}  # fmt: skip

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "task": {"construction": "random_strings", "K": 20, "n_examples": 3000,
                 "base_len": 6, "selector_len": 2, "target_len": 4},
        "model": {"n_layers": 4, "n_heads": 4, "d_model": 128, "d_mlp": 512, "act_fn": "gelu"},
        "train": {"lr": 1e-3, "weight_decay": 0.01, "betas": [0.9, 0.999], "batch_size": 128,
                  "warmup_steps": 500, "eval_every": 25, "eval_examples": 512,
                  "cand_examples": 48},
    },
    "grokking": {
        "task": {"name": "modular_addition", "p": 113, "train_frac": 0.3},
        "model": _GROKKING_MODEL,
        "train": {**_GROKKING_TRAIN, "batch_size": 3830, "steps": 40000, "eval_every": 100,
                  "stop_after_solved": None},
    },
    "grokking_cpu": {
        "task": {"name": "modular_addition", "p": 59, "train_frac": 0.4},
        "model": _GROKKING_MODEL,
        "train": {**_GROKKING_TRAIN, "batch_size": 1392, "steps": 10000, "eval_every": 10,
                  "stop_after_solved": 100},
    },
}  # fmt: skip
"""Named settings: ``paper`` is the paper's task, model and optimiser (see PAPER.md): 36
characters, B 6 / z 2 / A 4, K = 20 at 3,000 examples; 4 layers x 4 heads, d_model 128, d_mlp
512, GELU; AdamW lr 1e-3, weight decay 0.01, batch 128, 500 linear warm-up steps.

``grokking`` is the canonical setting of the progress-measures study of grokking (Nanda et al.
2023): a + b mod 113, 30% of the pairs trained on; one layer, d_model 128, 4 heads, d_mlp 512,
ReLU, no LayerNorm; AdamW lr 1e-3, weight decay 1.0, betas (0.9, 0.98), full batch (3,830
pairs), 10 warm-up steps, 40,000 steps. ``grokking_cpu`` is the same at p = 59 with 40% trained
on (full batch: 1,392 pairs), which groks within minutes on one core; it stops 100 evaluations
(1,000 steps) after the test loss is solved, so the clean-up after the drop is recorded. The
batch is the whole training split only at these sizes: a changed ``train_frac`` needs
``batch_size`` = its ``n_train`` for full batch."""


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, checking names and types field by field
    (:func:`~mbc_interp.core.strict.build_dataclass`); a task section builds the config of the
    task it names."""
    return build_dataclass(cls, data, source, prefix=prefix, error=ConfigError,
                           custom={TaskConfigLike: _task_config})  # fmt: skip


def _task_config(value: Any, source: str, name: str) -> Any:
    """The config of the task ``value["name"]`` names (absent: the default task)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {name} must be a table/object, got {type(value).__name__}")
    data = dict(value)
    try:
        cls = entry(data.pop("name", DEFAULT_TASK)).config_class
    except UnknownTaskError as e:
        raise ConfigError(f"{source}: {e}") from None
    return _build(cls, data, source, name + ".")


def run_name(config: RunConfig) -> str:
    """A readable default run directory name: the task's part (the fields people sweep) and
    the training part, ``lr<lr>_b<batch>_s<seed>``."""
    tr = config.train
    return config.task.run_name(f"lr{tr.lr:g}_b{tr.batch_size}_s{tr.seed}")
