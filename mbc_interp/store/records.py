"""A run's record: its directory without the weights, small enough to commit.

A long sweep outlives any one machine: its sweep directory (weights included) is lost with the
machine, while its results are committed. A record is what the fits, tables and summaries read
from a finished run: the config, metrics, manifest and every analysis file, with
``checkpoints/`` (weights and trainer state), ``damaged/`` and lock files left out. Restored
into a fresh sweep directory it is an ordinary run directory whose listed checkpoints have no
files: enough to refit it under today's rules (:func:`mbc_interp.sweep.results.run_row`), not
to analyse it again or to resume its training.

Layout: ``RECORDS/<point>/`` holds the run's files as they were, plus ``point.json``, the sweep
point's outcome (:mod:`mbc_interp.sweep.runner`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mbc_interp.core.files import atomic_write
from mbc_interp.store.run_store import CHECKPOINT_DIR, CONFIG_FILE, LOCK_FILE, RunStoreError

OUTCOME_FILE = "point.json"
"""The sweep point's outcome, beside the run's files in its record."""
LEFT_OUT_DIRS = (CHECKPOINT_DIR, "damaged")
"""Top-level folders of a run directory a record leaves out (weights, trainer state)."""


def record_files(run_dir: Path) -> Iterator[Path]:
    """The files of ``run_dir`` a record keeps (relative paths, sorted)."""
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if not path.is_file() or rel.parts[0] in LEFT_OUT_DIRS:
            continue
        if rel.name == LOCK_FILE or rel.name.endswith(".lock") or rel.name.startswith("."):
            continue
        yield rel


def write_record(run_dir: str | Path, outcome: dict[str, Any], dest: str | Path) -> bool:
    """Copy ``run_dir``'s record (and the point's ``outcome``) to ``dest``, replacing what was
    there; each file is written atomically, only where its bytes change, and ``point.json``
    last, so a record with an outcome is complete. Returns whether anything changed."""
    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunStoreError(f"{run_dir}: not a run directory ({CONFIG_FILE} is missing)")
    keep = list(record_files(run_dir))
    stale = [old for old in record_files(dest) if old not in keep and old.name != OUTCOME_FILE]
    data = {rel: (run_dir / rel).read_bytes() for rel in keep}
    data[Path(OUTCOME_FILE)] = (json.dumps(outcome, indent=1) + "\n").encode()
    changed = [rel for rel, b in data.items() if not _same(dest / rel, b)]
    if not changed and not stale:
        return False
    (dest / OUTCOME_FILE).unlink(missing_ok=True)  # incomplete until its outcome is back
    for old in stale:
        (dest / old).unlink()
    for rel in changed:
        if rel.name != OUTCOME_FILE:
            atomic_write(dest / rel, data[rel])
    atomic_write(dest / OUTCOME_FILE, data[Path(OUTCOME_FILE)])
    return True


def _same(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except FileNotFoundError:
        return False


def read_record_outcome(record: str | Path) -> dict[str, Any] | None:
    """The outcome in a record (``None``: no record there, or one cut short before its end)."""
    file = Path(record) / OUTCOME_FILE
    if not file.is_file():
        return None
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise RunStoreError(f"{file}: not valid JSON ({e})") from None


def restore_record(record: str | Path, run_dir: str | Path) -> dict[str, Any]:
    """Copy a record's run files into ``run_dir`` (created; an existing one is replaced) and
    return its outcome. The caller writes the outcome where its sweep keeps it."""
    record, run_dir = Path(record), Path(run_dir)
    outcome = read_record_outcome(record)
    if outcome is None:
        raise RunStoreError(f"{record}: not a complete record ({OUTCOME_FILE} is missing)")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    for rel in record_files(record):
        if rel.name != OUTCOME_FILE:
            atomic_write(run_dir / rel, (record / rel).read_bytes())
    return outcome


def record_config(record: str | Path) -> dict[str, Any]:
    """The run config stored in a record (as the run directory's ``config.json`` holds it)."""
    file = Path(record) / CONFIG_FILE
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise RunStoreError(f"{record}: not a record ({CONFIG_FILE} is missing)") from None
    except json.JSONDecodeError as e:
        raise RunStoreError(f"{file}: not valid JSON ({e})") from None
