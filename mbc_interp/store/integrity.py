"""Is a run directory intact? Checkpoint checksums, a cheap size check, and the repair that
drops damaged checkpoints from the manifest.

A listed checkpoint can still be damaged after the fact (a disk error, a copy cut short, a
file edited by hand). :func:`verify_checkpoints` checks every listed file against the sha256
the manifest recorded when it was written; :func:`quick_check` only compares each file's size
with what its safetensors header says it must be (no hashing: cheap enough for ``mbc info``,
and it catches truncation, the usual damage). :func:`drop_damaged` removes damaged
checkpoints from the manifest in one atomic write and moves their files into ``RUN/damaged/``
(never deleting them); metrics and the analysis are left as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from mbc_interp.store.layout import DAMAGED_DIR, METRICS_FILE
from mbc_interp.store.run_store import CheckpointEntry, RunStore, RunStoreError

METRICS_REQUIRED = ("step", "tokens", "loss")
"""Fields every evaluation row has and the analysis reads (the summary times the loss)."""
_CHUNK = 1 << 20


class DamagedCheckpointWarning(UserWarning):
    """A damaged checkpoint was skipped (the message names its file) and work went on."""


@dataclass(frozen=True)
class FileProblem:
    """One listed checkpoint file that is not what the manifest says."""

    step: int
    file: str
    """Path relative to the run directory, as listed in the manifest."""
    kind: str
    """``"weights"`` or ``"trainer"`` (the optimiser + RNG state)."""
    problem: str
    """``"missing"``, ``"checksum mismatch"`` or ``"truncated"`` (with sizes)."""

    def describe(self, root: Path) -> str:
        return f"step {self.step}: {root / self.file} ({self.kind}): {self.problem}"


def _listed(entry: CheckpointEntry) -> list[tuple[str, str, str | None]]:
    files = [("weights", entry.file, entry.sha256)]
    if entry.trainer_file is not None:
        files.append(("trainer", entry.trainer_file, entry.trainer_sha256))
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def check_entry(store: RunStore, entry: CheckpointEntry) -> list[FileProblem]:
    """The problems of one checkpoint's files (empty when all match their checksums)."""
    out = []
    for kind, name, sha in _listed(entry):
        path = store.path / name
        if not path.is_file():
            out.append(FileProblem(entry.step, name, kind, "missing"))
        elif sha is not None and _sha256(path) != sha:
            size = path.stat().st_size
            out.append(FileProblem(entry.step, name, kind, f"checksum mismatch ({size} bytes)"))
    return out


def verify_checkpoints(
    store: RunStore, steps: Iterable[int] | None = None
) -> list[FileProblem]:
    """Every listed checkpoint (or those at ``steps``) checked against its manifest sha256."""
    wanted = None if steps is None else set(steps)
    problems = []
    for entry in store.read_manifest().checkpoints:
        if wanted is None or entry.step in wanted:
            problems.extend(check_entry(store, entry))
    return problems


def expected_size(path: Path) -> int | None:
    """The size a safetensors file must have from its own header (``None``: unreadable)."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if not 0 < n < 100_000_000:
                return None
            header = json.loads(f.read(n))
        ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return 8 + n + max(ends, default=0)


def quick_check(store: RunStore) -> list[FileProblem]:
    """Missing or truncated listed files, from sizes and headers only (no checksums): what
    ``mbc info`` runs. Damage that keeps the size (flipped bytes) needs
    :func:`verify_checkpoints`."""
    problems = []
    for entry in store.read_manifest().checkpoints:
        for kind, name, _ in _listed(entry):
            path = store.path / name
            if not path.is_file():
                problems.append(FileProblem(entry.step, name, kind, "missing"))
                continue
            size, want = path.stat().st_size, expected_size(path)
            if want is None or size != want:
                what = "unreadable header" if want is None else f"expected {want}"
                problems.append(
                    FileProblem(entry.step, name, kind, f"truncated ({size} bytes, {what})")
                )
    return problems


@dataclass(frozen=True)
class Repair:
    """What :func:`drop_damaged` did."""

    dropped: tuple[int, ...]
    """Steps removed from the manifest (their weights were damaged or missing)."""
    trainer_dropped: tuple[int, ...]
    """Steps that kept their weights but lost a damaged trainer state (no resume from them)."""
    moved: tuple[Path, ...]
    """Files moved into ``RUN/damaged/``."""


def drop_damaged(store: RunStore, problems: list[FileProblem] | None = None) -> Repair:
    """Remove damaged checkpoints from the manifest (one atomic write) and move their files
    into ``RUN/damaged/``. A step whose weights are damaged is dropped with its trainer state;
    a step with only a damaged trainer state keeps its weights. Holds the run's writer lock, so
    a run being trained is refused. ``problems`` defaults to a full verification."""
    with store.writer():
        problems = verify_checkpoints(store) if problems is None else problems
        bad_weights = {p.step for p in problems if p.kind == "weights"}
        bad_trainer = {p.step for p in problems if p.kind == "trainer"} - bad_weights
        manifest = store.read_manifest()
        kept, to_move = [], []
        for c in manifest.checkpoints:
            if c.step in bad_weights:
                to_move.extend(name for _, name, _ in _listed(c))
            elif c.step in bad_trainer:
                to_move.append(c.trainer_file)
                kept.append(replace(c, trainer_file=None, trainer_sha256=None))
            else:
                kept.append(c)
        if not to_move:
            return Repair((), (), ())
        store.write_manifest(replace(manifest, checkpoints=tuple(kept)))
        moved = []
        for name in to_move:
            src = store.path / name
            if not src.is_file():
                continue
            dest = store.path / DAMAGED_DIR / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)
            moved.append(dest)
        return Repair(tuple(sorted(bad_weights)), tuple(sorted(bad_trainer)), tuple(moved))


def validate_metrics(store: RunStore, required: Iterable[str] = METRICS_REQUIRED) -> int:
    """Check ``metrics.jsonl`` line by line: every line a JSON object with the ``required``
    fields as numbers (``step`` an int >= 0). A torn last line without its newline (a run
    killed mid-write) is allowed, as :meth:`RunStore.read_metrics` skips it. Returns the number
    of rows; raises :class:`RunStoreError` naming the file, line, field and value. Run before
    any long computation, so a bad line fails it at once instead of at the end."""
    file = store.path / METRICS_FILE
    if not file.is_file():
        raise RunStoreError(f"{file}: missing")
    lines = file.read_text().split("\n")
    n = 0
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(lines):
                break  # torn final line
            raise RunStoreError(f"{file}: line {i}: not valid JSON ({e})") from None
        if not isinstance(row, dict):
            raise RunStoreError(f"{file}: line {i}: a JSON object expected, got {line[:60]!r}")
        for name in required:
            if name not in row:
                raise RunStoreError(f"{file}: line {i}: missing field {name!r}")
            v = row[name]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise RunStoreError(f"{file}: line {i}: field {name!r} = {v!r}: not a number")
        if "step" in row and (not isinstance(row["step"], int) or row["step"] < 0):
            raise RunStoreError(
                f"{file}: line {i}: field 'step' = {row['step']!r}: must be an int >= 0"
            )
        n += 1
    return n
