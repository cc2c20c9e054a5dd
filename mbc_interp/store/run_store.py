"""The run store: one directory per run, every write atomic, nothing unpickled on load.

Layout (file names are the constants of :mod:`mbc_interp.store.layout`; nothing is found by
matching names)::

    RUN/
      config.json              full RunConfig, library versions, dataset fingerprint
      metrics.jsonl            one JSON object per evaluation
      manifest.json            completed checkpoints: step, tokens, file, sha256, eval loss
      writer.lock              who is writing the run now (pid, host, start time)
      checkpoints/
        step00001500.safetensors          model weights
        step00001500.trainer.safetensors  optimiser + RNG state (latest checkpoint, or all)

A checkpoint file is written to a temporary name, fsynced and renamed; only then is it listed
in the manifest (itself replaced atomically). A crash at any moment leaves every listed
checkpoint valid; loading verifies the checksum and names the file on any problem.

One process at a time writes a run (:meth:`RunStore.writer`): an advisory ``flock`` on
``writer.lock``, which the kernel releases when its process dies, so a lock left by a killed
process is no lock at all, and a second writer is refused with the holder's pid, host and start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbc_interp.core.files import atomic_write
from mbc_interp.store.layout import (  # re-exported: the run directory's names
    ANALYSIS_DIR,  # noqa: F401
    CHECKPOINT_DIR,
    CONFIG_FILE,
    LOCK_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    trainer_file,
    weights_file,
)

if TYPE_CHECKING:  # torch and safetensors load with the first checkpoint read or written
    import torch

FORMAT_VERSION = 1


class RunStoreError(RuntimeError):
    """A run directory is missing, malformed or not what was asked for."""


class CheckpointError(RunStoreError):
    """A checkpoint file is missing, truncated or corrupt; the message names the file."""


class RunLockedError(RunStoreError):
    """Another live process is writing this run directory; the message names it."""


# lock files this process holds: path -> (open file, depth), so nested writers in one process
# (train, then analyse, in a sweep worker) re-enter instead of deadlocking on their own flock
_HELD: dict[Path, list] = {}


@contextlib.contextmanager
def exclusive_writer(lock_path: Path, what: str) -> Iterator[None]:
    """Hold ``lock_path`` (created if needed) exclusively for the block, or raise
    :class:`RunLockedError` naming the holder. Non-blocking: a second writer fails at once."""
    key = lock_path.resolve()
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    f = open(lock_path, "a+")  # noqa: SIM115  (held open for the whole block)
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process (starting up)"
            raise RunLockedError(
                f"{lock_path.parent}: {what} is already being written by {holder}; wait for it "
                f"to finish or stop it (the lock is {lock_path}, released when that process ends)"
            ) from None
        # ours now; whatever the file says is from a process that ended (a stale lock)
        f.seek(0)
        f.truncate()
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        f.write(f"pid {os.getpid()} on host {socket.gethostname()} since {started}\n")
        f.flush()
        _HELD[key] = [f, 1]
        try:
            yield
        finally:
            del _HELD[key]
            f.seek(0)
            f.truncate()  # an empty lock file reads as free to a human too
            f.flush()
    finally:
        f.close()  # closing releases the flock


@dataclass(frozen=True)
class CheckpointEntry:
    """One completed checkpoint as listed in the manifest."""

    step: int
    tokens: int
    file: str
    sha256: str
    eval_loss: float | None
    trainer_file: str | None = None
    trainer_sha256: str | None = None


@dataclass(frozen=True)
class Manifest:
    checkpoints: tuple[CheckpointEntry, ...] = ()
    status: str = "running"
    """``running`` until training ends, then ``finished`` (or ``diverged``)."""
    stop_reason: str | None = None

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.checkpoints]

    def entry(self, step: int) -> CheckpointEntry:
        for c in self.checkpoints:
            if c.step == step:
                return c
        raise KeyError(f"no checkpoint at step {step}; checkpointed steps: {self.steps}")

    def latest_resumable(self) -> CheckpointEntry | None:
        with_state = [c for c in self.checkpoints if c.trainer_file is not None]
        return with_state[-1] if with_state else None


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=1, allow_nan=True) + "\n").encode()


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def writer(self) -> contextlib.AbstractContextManager[None]:
        """Exclusive right to write this run (training or resuming); see the module doc."""
        return exclusive_writer(self.path / LOCK_FILE, "this run")

    # -- creation and config ---------------------------------------------------------------------
    def create(self, config_record: dict[str, Any]) -> None:
        """Start a new run directory; refuses to touch one that already holds a run."""
        if (self.path / CONFIG_FILE).exists() or (self.path / MANIFEST_FILE).exists():
            raise RunStoreError(
                f"{self.path}: already holds a run; continue it with `mbc train --resume "
                f"{self.path}` or choose another --out"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / CHECKPOINT_DIR).mkdir(exist_ok=True)
        atomic_write(self.path / CONFIG_FILE, _json_bytes(config_record))
        self.write_manifest(Manifest())
        atomic_write(self.path / METRICS_FILE, b"")

    def read_config(self) -> dict[str, Any]:
        return self._read_json(CONFIG_FILE)

    def write_config(self, config_record: dict[str, Any]) -> None:
        atomic_write(self.path / CONFIG_FILE, _json_bytes(config_record))

    def exists(self) -> bool:
        return (self.path / CONFIG_FILE).is_file()

    def _read_json(self, name: str) -> dict[str, Any]:
        file = self.path / name
        if not file.is_file():
            what = "not a run directory" if not self.path.is_dir() else f"{name} is missing"
            raise RunStoreError(f"{file}: {what} (expected a directory made by `mbc train`)")
        try:
            return json.loads(file.read_text())
        except json.JSONDecodeError as e:
            raise RunStoreError(f"{file}: not valid JSON ({e})") from None

    # -- manifest --------------------------------------------------------------------------------
    def read_manifest(self) -> Manifest:
        data = self._read_json(MANIFEST_FILE)
        try:
            entries = tuple(CheckpointEntry(**c) for c in data["checkpoints"])
            return Manifest(entries, data["status"], data.get("stop_reason"))
        except (KeyError, TypeError) as e:
            raise RunStoreError(f"{self.path / MANIFEST_FILE}: malformed manifest ({e})") from None

    def write_manifest(self, manifest: Manifest) -> None:
        record = {
            "format": FORMAT_VERSION,
            "status": manifest.status,
            "stop_reason": manifest.stop_reason,
            "checkpoints": [asdict(c) for c in manifest.checkpoints],
        }
        atomic_write(self.path / MANIFEST_FILE, _json_bytes(record))

    def set_status(self, status: str, stop_reason: str | None) -> None:
        self.write_manifest(replace(self.read_manifest(), status=status, stop_reason=stop_reason))

    # -- checkpoints -----------------------------------------------------------------------------
    def save_checkpoint(
        self,
        step: int,
        tokens: int,
        weights: dict[str, torch.Tensor],
        eval_loss: float | None,
        trainer_state: dict[str, torch.Tensor] | None = None,
        trainer_meta: dict[str, Any] | None = None,
        keep_trainer: str = "latest",
    ) -> CheckpointEntry:
        """Write weights (+ trainer state), then list them; older trainer states are pruned
        after the manifest no longer names them when ``keep_trainer == "latest"``."""
        meta = {"step": str(step), "tokens": str(tokens)}
        w_file = weights_file(step)
        w_sha = self._write_tensors(w_file, weights, meta)
        t_file = t_sha = None
        if trainer_state is not None:
            t_file = trainer_file(step)
            t_meta = {**meta, "trainer": json.dumps(trainer_meta or {})}
            t_sha = self._write_tensors(t_file, trainer_state, t_meta)
        entry = CheckpointEntry(step, tokens, w_file, w_sha, eval_loss, t_file, t_sha)

        manifest = self.read_manifest()
        pruned: list[str] = []
        kept = []
        for c in manifest.checkpoints:
            if c.step >= step:
                continue  # superseded (a resumed run re-writes later steps)
            if t_file is not None and keep_trainer == "latest" and c.trainer_file is not None:
                pruned.append(c.trainer_file)
                c = replace(c, trainer_file=None, trainer_sha256=None)
            kept.append(c)
        self.write_manifest(replace(manifest, checkpoints=(*kept, entry)))
        for name in pruned:
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()
        return entry

    def _write_tensors(self, name: str, tensors: dict[str, torch.Tensor], meta: dict) -> str:
        from safetensors.torch import save as st_save

        data = st_save({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, meta)
        atomic_write(self.path / name, data)
        return hashlib.sha256(data).hexdigest()

    def load_tensors(self, name: str, sha256: str | None) -> tuple[dict[str, torch.Tensor], dict]:
        """Read a safetensors file after checking it against its manifest checksum."""
        from safetensors import SafetensorError
        from safetensors.torch import load as st_load

        file = self.path / name
        try:
            data = file.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{file}: listed in the manifest but missing") from None
        if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
            raise CheckpointError(
                f"{file}: checksum mismatch ({len(data)} bytes): the file is truncated or "
                "corrupt; `mbc verify RUN --drop-damaged` drops it from the manifest (file kept)"
            )
        try:
            tensors = st_load(data)
            header_len = int.from_bytes(data[:8], "little")
            header = json.loads(data[8 : 8 + header_len])
        except (SafetensorError, ValueError) as e:
            raise CheckpointError(f"{file}: not a readable safetensors file ({e})") from None
        return tensors, header.get("__metadata__", {})

    # -- metrics ---------------------------------------------------------------------------------
    def append_metrics(self, rows: Iterable[dict[str, Any]], sync: bool = False) -> None:
        """Append rows; ``sync=True`` (before a checkpoint is written) makes them durable, so a
        crash never leaves a checkpoint newer than the metrics that describe it."""
        with open(self.path / METRICS_FILE, "a") as f:
            for row in rows:
                f.write(json.dumps(row, allow_nan=True) + "\n")
            f.flush()
            if sync:
                os.fsync(f.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        """Every complete metrics row; a torn last line (a run killed mid-write) is skipped."""
        file = self.path / METRICS_FILE
        if not file.is_file():
            raise RunStoreError(f"{file}: missing")
        lines = file.read_text().split("\n")
        rows = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 1:  # torn final line without newline
                    break
                raise RunStoreError(f"{file}: line {i + 1} is not valid JSON") from None
        return rows

    def last_metrics(self, tail: int = 65536) -> dict[str, Any] | None:
        """The last complete metrics row, read from the file's end (a progress check on a long
        run need not parse all of it); ``None`` where there is none yet."""
        file = self.path / METRICS_FILE
        if not file.is_file():
            return None
        with open(file, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - tail))
            lines = f.read().splitlines()
        for line in reversed(lines):
            try:
                return json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a row cut by the seek, or torn by a write in progress
        return None

    def truncate_metrics(self, max_step: int) -> None:
        """Keep rows up to ``max_step`` (resuming from that checkpoint re-logs the rest)."""
        rows = [r for r in self.read_metrics() if r["step"] <= max_step]
        data = "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows).encode()
        atomic_write(self.path / METRICS_FILE, data)
