"""Atomic file writes: readers see the old file or the new one, never half of one.

Every file the package writes (run directories, sweeps, results, documents) goes through
:func:`atomic_write`, so a crash at any moment leaves each file whole.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def write_if_changed(path: Path, data: bytes) -> bool:
    """:func:`atomic_write`, unless ``path`` already holds exactly ``data``: then nothing is
    touched, its modification time included, so work that finds nothing new (an incremental
    analysis of an analysed run) leaves a run directory as it was. Returns whether it wrote."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write(path, data)
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
