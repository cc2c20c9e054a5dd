"""Training with dense checkpointing, exact resume and early stop after the transition.

Batch order is a pure function of (seed, step): each epoch is a fresh permutation drawn from
``default_rng([seed, epoch])``. Together with the weights and AdamW state saved at a
checkpoint, that makes a resumed run log exactly the metrics of an uninterrupted one (on the same
device and thread count).
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from .config import RunConfig
from .model import build_model, model_state, resolve_device
from .run import Run, load_run
from .store import RunStore, RunStoreError
from .task import WindTunnelTask

EVAL_CHUNK = 8192


class TrainingError(RuntimeError):
    """Training cannot start or continue; the message says why."""


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, sparse in a log file."""
    return 0.5 if sys.stderr.isatty() else 10.0


# -- data order and loss ----------------------------------------------------------------------
def batch_indices(seed: int, step: int, batch_size: int, n: int) -> np.ndarray:
    """Rows of the batch used for update ``step`` (1-based): a slice of the epoch stream."""
    start = (step - 1) * batch_size
    out = np.empty(batch_size, dtype=np.int64)
    filled = 0
    while filled < batch_size:
        epoch, offset = divmod(start + filled, n)
        take = min(batch_size - filled, n - offset)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out[filled : filled + take] = perm[offset : offset + take]
        filled += take
    return out


def example_losses(
    model: HookedTransformer, tokens: Int[Tensor, "batch seq"], first_pred: int
) -> Float[Tensor, "batch n_pred"]:
    """Per-example, per-target-position loss in nats."""
    logits = model(tokens[:, :-1])[:, first_pred:]
    targets = tokens[:, first_pred + 1 :]
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


@torch.inference_mode()
def evaluate(model: HookedTransformer, task: WindTunnelTask) -> dict[str, Any]:
    """Loss (nats/example), per-position loss and exact-match accuracy on every example."""
    first = task.config.sep_pos
    device = next(model.parameters()).device
    losses, correct = [], []
    for chunk in task.tokens.split(EVAL_CHUNK):
        chunk = chunk.to(device)
        logits = model(chunk[:, :-1])[:, first:]
        targets = chunk[:, first + 1 :]
        losses.append(F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").cpu())
        correct.append((logits.argmax(-1) == targets).cpu())
    pos_loss = torch.cat(losses).double()
    hits = torch.cat(correct)
    return {
        "loss": float(pos_loss.sum(-1).mean()),
        "loss_pos": [float(x) for x in pos_loss.mean(0)],
        "acc": float(hits.all(-1).double().mean()),
        "acc_first": float(hits[:, 0].double().mean()),
    }


# -- the loop -----------------------------------------------------------------------------------
@dataclass
class _Progress:
    """Counters a checkpoint must carry for an exact resume."""

    step: int = 0
    last_ckpt_loss: float | None = None
    solved_evals: int = 0
    wall_offset: float = 0.0


def train(
    config: RunConfig | None = None,
    out: str | Path = "checkpoints/default",
    *,
    progress: bool = True,
) -> Run:
    """Train a new run into ``out`` and return it (see :class:`mbc_interp.run.Run`)."""
    config = config or RunConfig()
    store = RunStore(out)
    task = WindTunnelTask(config.task)
    store.create(_config_record(config, task))
    _apply_threads(config)
    device = resolve_device(config.train.device)
    model = build_model(
        config.model,
        config.task.d_vocab,
        config.task.seq_len,
        seed=config.train.seed,
        device=device,
    )
    optimizer = make_optimizer(model, config)
    _Loop(config, store, task, model, optimizer, _Progress(), progress).run()
    return load_run(out)


def resume(path: str | Path, *, steps: int | None = None, progress: bool = True) -> Run:
    """Continue a stopped run from its latest resumable checkpoint (optionally to more steps)."""
    run = load_run(path)
    store = run.store
    config = run.config
    entry = store.read_manifest().latest_resumable()
    if entry is None:
        raise TrainingError(f"{store.path}: no checkpoint with trainer state to resume from")
    if steps is None and run.status != "running":
        raise TrainingError(
            f"{store.path}: already {run.status} ({run.manifest.stop_reason}); "
            "pass --steps N to train it further"
        )
    if steps is not None:
        if steps < entry.step:
            raise TrainingError(f"--steps {steps} is below the step to resume from ({entry.step})")
        config = config.with_overrides({"train": {"steps": steps}})
        record = store.read_config()
        record["config"] = config.to_dict()
        store.write_config(record)
    _apply_threads(config)
    device = resolve_device(config.train.device)
    model = run.model(entry.step, device=device)
    model.train()
    optimizer = make_optimizer(model, config)
    state, meta = store.load_tensors(entry.trainer_file, entry.trainer_sha256)
    counters = _restore_optimizer(optimizer, state, meta, store.path / entry.trainer_file)
    store.truncate_metrics(entry.step)
    store.set_status("running", None)
    _Loop(config, store, run.task, model, optimizer, counters, progress).run()
    return load_run(path)


class _Loop:
    def __init__(self, config, store, task, model, optimizer, counters: _Progress, progress: bool):
        self.config, self.store, self.task = config, store, task
        self.model, self.optimizer, self.p = model, optimizer, counters
        self.show_progress = progress
        self.device = next(model.parameters()).device
        self.tokens = task.tokens.to(self.device)
        self.first_pred = task.config.sep_pos

    def run(self) -> None:
        tc = self.config.train
        log_k = self.task.log_k
        t0 = time.perf_counter() - self.p.wall_offset
        bar = tqdm(
            total=tc.steps,
            initial=self.p.step,
            disable=not self.show_progress,
            unit="step",
            dynamic_ncols=True,
            desc="train",
            mininterval=progress_interval(),
        )
        train_sum, train_n = 0.0, 0
        stop_reason = "max_steps"
        status = "finished"
        if self.p.step == 0:
            self._eval_and_checkpoint(0, None, t0, bar, force_ckpt=True)
        with contextlib.closing(bar):
            while self.p.step < tc.steps:
                step = self.p.step + 1
                loss = self._update(step)
                self.p.step = step
                train_sum, train_n = train_sum + loss, train_n + 1
                bar.update(1)
                if not (
                    step % tc.eval_every == 0 or tc.checkpoints.is_fixed(step) or step == tc.steps
                ):
                    continue
                row = self._eval_and_checkpoint(step, train_sum / train_n, t0, bar)
                train_sum, train_n = 0.0, 0
                if not math.isfinite(row["loss"]):
                    stop_reason, status = "non-finite loss", "diverged"
                    break
                if self._solved_enough() and step < tc.steps:
                    stop_reason = (
                        f"solved: loss < {tc.solved_frac} log K for "
                        f"{tc.stop_after_solved} further evaluations"
                    )
                    break
        self.store.set_status(status, stop_reason)
        if self.show_progress:
            tqdm.write(
                f"{self.store.path}: {status} at step {self.p.step} ({stop_reason}); "
                f"log K = {log_k:.4f}"
            )

    def _solved_enough(self) -> bool:
        after = self.config.train.stop_after_solved
        return after is not None and self.p.solved_evals > after

    def _update(self, step: int) -> float:
        tc = self.config.train
        for group in self.optimizer.param_groups:
            group["lr"] = tc.lr_at(step)
        idx = torch.from_numpy(batch_indices(tc.seed, step, tc.batch_size, len(self.task)))
        batch = self.tokens[idx.to(self.device)]
        loss = example_losses(self.model, batch, self.first_pred).sum(-1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach().item()

    def _eval_and_checkpoint(self, step, train_loss, t0, bar, force_ckpt: bool = False) -> dict:
        tc = self.config.train
        log_k = self.task.log_k
        self.model.eval()
        ev = evaluate(self.model, self.task)
        self.model.train()
        solved = ev["loss"] < tc.solved_frac * log_k
        self.p.solved_evals = self.p.solved_evals + 1 if solved else 0
        ckpt = (
            force_ckpt
            or self._solved_enough()
            or tc.checkpoints.is_fixed(step)
            or step == tc.steps
            or tc.checkpoints.moved(ev["loss"], self.p.last_ckpt_loss, log_k)
        )
        row = {
            "step": step,
            "tokens": step * self.config.tokens_per_step,
            "examples": step * tc.batch_size,
            **ev,
            "train_loss": train_loss,
            "log_k": log_k,
            "lr": tc.lr_at(max(step, 1)),
            "checkpoint": ckpt,
            "wall_time": time.perf_counter() - t0,
        }
        self.store.append_metrics([row])
        if ckpt:
            self.p.wall_offset = row["wall_time"]
            self._checkpoint(step, ev["loss"])
        bar.set_postfix(
            tokens=f"{row['tokens']:.3g}",
            loss=f"{ev['loss']:.4f}",
            logK=f"{log_k:.4f}",
            acc=f"{ev['acc']:.2f}",
            refresh=False,
        )
        return row

    def _checkpoint(self, step: int, loss: float) -> None:
        self.p.last_ckpt_loss = loss
        tc = self.config.train
        state, meta = _optimizer_state(self.optimizer)
        meta["progress"] = {
            "step": self.p.step,
            "last_ckpt_loss": self.p.last_ckpt_loss,
            "solved_evals": self.p.solved_evals,
            "wall_offset": self.p.wall_offset,
        }
        state["torch_rng"] = torch.get_rng_state()
        self.store.save_checkpoint(
            step,
            step * self.config.tokens_per_step,
            model_state(self.model),
            loss,
            trainer_state=state,
            trainer_meta=meta,
            keep_trainer=tc.keep_optimizer,
        )


# -- optimiser state <-> flat tensors -------------------------------------------------------------
def make_optimizer(model: HookedTransformer, config: RunConfig) -> torch.optim.Optimizer:
    """The training loop's optimiser, AdamW or SGD by ``train.optimizer`` (also the benchmark's,
    so both compare like with like)."""
    tc = config.train
    params = list(model.parameters())
    if tc.optimizer == "sgd":
        return torch.optim.SGD(
            params, lr=tc.lr, momentum=tc.momentum, weight_decay=tc.weight_decay, foreach=True
        )
    kwargs = {"lr": tc.lr, "betas": tc.betas, "eps": tc.eps, "weight_decay": tc.weight_decay}
    try:  # one fused kernel per step: ~1 ms saved at this size (CPU support needs torch >= 2.4)
        return torch.optim.AdamW(params, fused=True, **kwargs)
    except RuntimeError:
        return torch.optim.AdamW(params, foreach=True, **kwargs)


def _optimizer_state(optimizer: torch.optim.Optimizer) -> tuple[dict[str, Tensor], dict]:
    sd = optimizer.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if isinstance(value, Tensor):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [{k: v for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def _restore_optimizer(optimizer, tensors: dict[str, Tensor], meta: dict, file: Path) -> _Progress:
    try:
        info = json.loads(meta["trainer"])
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith("optim."):
                _, pid, key = name.split(".", 2)
                state.setdefault(int(pid), {})[key] = value
        for pid, scalars in info["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        groups = info["param_groups"]
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        torch.set_rng_state(tensors["torch_rng"])
        return _Progress(**info["progress"])
    except (KeyError, ValueError, TypeError) as e:
        raise RunStoreError(f"{file}: trainer state is incomplete or malformed ({e})") from None


# -- bookkeeping --------------------------------------------------------------------------------
def _apply_threads(config: RunConfig) -> None:
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)


def _config_record(config: RunConfig, task: WindTunnelTask) -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "format": 1,
        "config": config.to_dict(),
        "task_fingerprint": task.fingerprint,
        "log_k": task.log_k,
        "tokens_per_step": config.tokens_per_step,
        "versions": {
            "mbc_interp": version("mbc-interp"),
            "torch": torch.__version__,
            "transformer_lens": version("transformer-lens"),
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
