"""Training with dense checkpointing, exact resume and early stop after the transition.

Batch order is a pure function of (seed, step): each epoch is a fresh permutation drawn from
``default_rng([seed, epoch])``. Together with the weights and AdamW state saved at a
checkpoint, that makes a resumed run log exactly the metrics of an uninterrupted one (on the same
device and thread count, and in the same ``train.compile`` mode, which the run's config fixes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from mbc_interp.config import RunConfig, dz_level
from mbc_interp.core.progress import progress_interval, train_postfix
from mbc_interp.model import build_model, model_state, resolve_device
from mbc_interp.store import trainer_state
from mbc_interp.store.run import Run, load_run
from mbc_interp.store.run_store import RunStore, RunStoreError
from mbc_interp.tasks.losses import target_losses
from mbc_interp.tasks.protocol import Task
from mbc_interp.tasks.registry import build_task
from mbc_interp.training.optim import (
    TrainingError,
    check_compiler,
    make_optimizer,
    optimizer_record,
    training_forward,
)


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


# -- the loop -----------------------------------------------------------------------------------
@dataclass
class _Progress:
    """Counters a checkpoint must carry for an exact resume."""

    step: int = 0
    last_ckpt_loss: float | None = None
    solved_evals: int = 0
    wall_offset: float = 0.0
    last_ckpt_dz: float | None = None
    """log10 Δz level at the last checkpoint (see :func:`mbc_interp.config.dz_level`)."""


Monitor = Callable[[list[dict[str, Any]]], str | None]
"""Called after each evaluation with every metrics row so far; its text (if any) joins the
progress line (``mbc train`` shows the live drop forecast this way)."""


def train(
    config: RunConfig | None = None,
    out: str | Path = "checkpoints/default",
    *,
    progress: bool = True,
    monitor: Monitor | None = None,
) -> Run:
    """Train a new run into ``out`` and return it (see :class:`mbc_interp.store.run.Run`)."""
    config = config or RunConfig()
    store = RunStore(out)
    task = build_task(config.task)
    device = resolve_device(config.train.device)
    _apply_threads(config)
    if config.train.compile:  # before anything is written
        check_compiler(device)
    with store.writer():
        store.create(_config_record(config, task))
        model = build_model(
            config.model,
            config.task.d_vocab,
            config.task.seq_len,
            seed=config.train.seed,
            device=device,
        )
        optimizer = make_optimizer(model, config)
        record = store.read_config()
        record["optimizer"] = optimizer_record(optimizer)
        store.write_config(record)
        _Loop(config, store, task, model, optimizer, _Progress(), progress, monitor).run(fresh=True)
    return load_run(out)


def resume(
    path: str | Path,
    *,
    steps: int | None = None,
    progress: bool = True,
    monitor: Monitor | None = None,
) -> Run:
    """Continue a stopped run from its latest resumable checkpoint (optionally to more steps).

    Nothing in the run directory changes until the checkpoint and its trainer state have loaded
    and validated (a corrupt file is an error naming it, the run left as it was)."""
    run = load_run(path)
    store = run.store
    with store.writer():
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
                raise TrainingError(
                    f"--steps {steps} is below the step to resume from ({entry.step})"
                )
            config = config.with_overrides({"train": {"steps": steps}})
        _apply_threads(config)
        device = resolve_device(config.train.device)
        if config.train.compile:  # the run's saved mode; checked before anything changes
            check_compiler(device)
        model = run.model(entry.step, device=device)
        model.train()
        optimizer = make_optimizer(model, config)
        state, meta = store.load_tensors(entry.trainer_file, entry.trainer_sha256)
        counters = _restore_optimizer(optimizer, state, meta, store.path / entry.trainer_file)
        # validated: only now may the run directory change
        record = store.read_config()
        record["config"] = config.to_dict()
        impl = optimizer_record(optimizer)
        if record.get("optimizer", impl) != impl:  # numerics change from here on: say where
            record.setdefault("optimizer_changes", []).append({"step": entry.step, **impl})
        record.setdefault("optimizer", impl)
        store.write_config(record)
        store.truncate_metrics(entry.step)
        store.set_status("running", None)
        _Loop(config, store, run.task, model, optimizer, counters, progress, monitor).run()
    return load_run(path)


class _Loop:
    def __init__(
        self, config, store, task, model, optimizer, counters: _Progress, progress: bool,
        monitor: Monitor | None = None,
    ):  # fmt: skip
        self.config, self.store, self.task = config, store, task
        self.model, self.optimizer, self.p = model, optimizer, counters
        self.forward = training_forward(model, config.train.compile)
        self.show_progress = progress
        self.monitor = monitor if progress else None
        self.history = store.read_metrics() if self.monitor and counters.step else []
        self.device = next(model.parameters()).device
        self.tokens = task.tokens.to(self.device)
        self.train_rows = task.train_rows.to(self.device)
        self.answer_pos = task.answer_pos
        self.eval_rows = task.eval_rows(config.train.eval_examples)
        self.transition = task.transition
        self.eval_every = config.eval_interval

    def run(self, fresh: bool = False) -> None:
        """Train to the step cap or until solved; ``fresh``: a new run, whose step 0 is
        evaluated and checkpointed first (a resumed one, even from step 0, has them already)."""
        tc = self.config.train
        tr = self.transition
        t0 = time.perf_counter() - self.p.wall_offset
        bar = tqdm(  # no total: the cap is shown as a cap, with no ETA to it
            initial=self.p.step,
            disable=not self.show_progress,
            unit="step",
            dynamic_ncols=True,
            desc="train",
            mininterval=progress_interval(),
            bar_format="{desc}: step {n} of at most " + str(tc.steps) + " | {elapsed}, {rate_fmt}"
            "{postfix}",
        )
        losses: list[Tensor] = []  # this window's step losses, left on the device (no sync)
        stop_reason = "max_steps"
        status = "finished"
        if fresh:
            self._eval_and_checkpoint(0, None, t0, bar, force_ckpt=True)
        with contextlib.closing(bar):
            while self.p.step < tc.steps:
                step = self.p.step + 1
                losses.append(self._update(step))
                self.p.step = step
                bar.update(1)
                if not (
                    step % self.eval_every == 0
                    or tc.checkpoints.is_fixed(step)
                    or step == tc.steps
                ):
                    continue
                # every step's loss is checked here, before anything is written: one sync
                window = torch.stack(losses).tolist()
                losses = []
                bad = _first_non_finite(window, step)
                row = None
                if bad is None:
                    row = self._eval_and_checkpoint(step, sum(window) / len(window), t0, bar)
                if row is None:  # a non-finite loss, eval loss or weight: nothing was written
                    stop_reason, status = self._diverged(bad, step), "diverged"
                    break
                if self._solved_enough() and step < tc.steps:
                    stop_reason = (
                        f"solved: {tr.metric} < {tc.solved_frac} x {tr.scale:.4f} for "
                        f"{tc.stop_after_solved} further evaluations"
                    )
                    break
        self.store.set_status(status, stop_reason)
        if self.show_progress:
            tqdm.write(
                f"{self.store.path}: {status} at step {self.p.step} ({stop_reason}); "
                f"{tr.metric} scale = {tr.scale:.4f}"
            )

    def _diverged(self, bad_step: int | None, step: int) -> str:
        what = (f"training loss at step {bad_step}" if bad_step
                else f"eval loss or weights at step {step}")  # fmt: skip
        good = self.store.read_manifest().latest_resumable()
        return f"non-finite {what}; last good checkpoint: step {good.step if good else None}"

    def _solved_enough(self) -> bool:
        after = self.config.train.stop_after_solved
        return after is not None and self.p.solved_evals > after

    def _update(self, step: int) -> Tensor:
        tc = self.config.train
        for group in self.optimizer.param_groups:
            group["lr"] = tc.lr_at(step)
        idx = torch.from_numpy(batch_indices(tc.seed, step, tc.batch_size, len(self.train_rows)))
        batch = self.tokens[self.train_rows[idx.to(self.device)]]
        loss = target_losses(self.forward, batch, self.answer_pos).sum(-1).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _eval_and_checkpoint(
        self, step, train_loss, t0, bar, force_ckpt: bool = False
    ) -> dict | None:
        tc = self.config.train
        tr = self.transition
        self.model.eval()
        ev = self.task.evaluate(self.model, self.eval_rows, cand_examples=tc.cand_examples)
        self.model.train()
        if not (math.isfinite(ev["loss"]) and _weights_finite(self.model)):
            return None
        level = dz_level(ev)
        solved = ev[tr.metric] < tc.solved_frac * tr.scale
        self.p.solved_evals = self.p.solved_evals + 1 if solved else 0
        ckpt = (
            force_ckpt
            or self._solved_enough()
            or tc.checkpoints.is_fixed(step)
            or step == tc.steps
            or tc.checkpoints.moved(ev[tr.metric], self.p.last_ckpt_loss, tr.scale)
            or tc.checkpoints.dz_moved(level, self.p.last_ckpt_dz)
        )
        row = {
            "step": step,
            "tokens": step * self.config.tokens_per_step,
            "examples": step * tc.batch_size,
            **ev,
            "train_loss": train_loss,
            **({} if tr.rest_level is None else {"log_k": tr.rest_level}),
            "lr": tc.lr_at(max(step, 1)),
            "checkpoint": ckpt,
            "wall_time": time.perf_counter() - t0,
        }
        self.store.append_metrics([row], sync=ckpt)
        if ckpt:
            self.p.wall_offset = row["wall_time"]
            self.p.last_ckpt_dz = level
            self._checkpoint(step, ev[tr.metric])
        postfix = train_postfix(ev[tr.metric], tr.scale, ev["acc"], tc.solved_frac, tr.metric)
        if self.monitor is not None:
            self.history.append(row)
            extra = self.monitor(self.history)
            postfix += f" | {extra}" if extra else ""
        bar.set_postfix_str(postfix, False)
        return row

    def _checkpoint(self, step: int, loss: float) -> None:
        self.p.last_ckpt_loss = loss
        tc = self.config.train
        state, meta = trainer_state.flatten(
            self.optimizer.state_dict(), progress=dataclasses.asdict(self.p)
        )
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


def _first_non_finite(window: list[float], step: int) -> int | None:
    """The step of the first non-finite loss in ``window`` (the losses of steps up to ``step``)."""
    first = step - len(window) + 1
    return next((first + i for i, x in enumerate(window) if not math.isfinite(x)), None)


def _weights_finite(model: torch.nn.Module) -> bool:
    """Whether every parameter is finite (one sync for the whole model)."""
    return bool(torch.stack([torch.isfinite(p).all() for p in model.parameters()]).all())


def _restore_optimizer(optimizer, tensors: dict[str, Tensor], meta: dict, file: Path) -> _Progress:
    state, groups, info = trainer_state.unflatten(tensors, meta, file)
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
        torch.set_rng_state(tensors["torch_rng"])
        return _Progress(**info["progress"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise RunStoreError(
            f"{file}: trainer state is incomplete or malformed ({type(e).__name__}: {e}); "
            "resume from an earlier checkpoint"
        ) from None


# -- bookkeeping --------------------------------------------------------------------------------
def _apply_threads(config: RunConfig) -> None:
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)


def _config_record(config: RunConfig, task: Task) -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "format": 1,
        "config": config.to_dict(),
        "task_fingerprint": task.fingerprint,
        "log_k": task.transition.rest_level,
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
