"""A run's record: its directory without the weights, small enough to commit.

A long sweep outlives any one machine: its sweep directory (weights included) is lost with the
machine, while its results are committed. A record is what the fits, tables and summaries read
from a finished run: the config, metrics, manifest and every analysis file, with
``checkpoints/`` (weights and trainer state), ``damaged/``, lock files and the derived
:data:`DERIVED_FILES` left out. Restored into a fresh sweep directory (and its timeline rebuilt
from the step files, :func:`mbc_interp.analysis.timeline.write_timeline`) it is an ordinary run
directory whose listed checkpoints have no files: enough to refit it under today's rules
(:func:`mbc_interp.sweep.results.run_row`), not to analyse it again or to resume its training.

Layout: ``RECORDS/<point>/run.tar.xz`` holds the run's files as they were, and
``RECORDS/<point>/point.json`` the sweep point's outcome (:mod:`mbc_interp.sweep.runner`).
"""

from __future__ import annotations

import io
import json
import lzma
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mbc_interp.core.files import atomic_write
from mbc_interp.store.layout import (
    ANALYSIS_DIR,
    ANALYSIS_LOCK_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    DAMAGED_DIR,
    LOCK_FILE,
    POINT_RECORD_FILE,
    RECORD_ARCHIVE_FILE,
    TIMELINE_FILE,
)
from mbc_interp.store.run_store import RunStoreError

OUTCOME_FILE = POINT_RECORD_FILE
"""The sweep point's outcome, beside the run's files in its record."""
ARCHIVE_FILE = RECORD_ARCHIVE_FILE
"""The run's files (xz at its strongest preset: a grokking run's 24 MB of step files keep in
0.8 MB)."""
LEFT_OUT_DIRS = (CHECKPOINT_DIR, DAMAGED_DIR)
"""Top-level folders of a run directory a record leaves out (weights, trainer state)."""
DERIVED_FILES = (Path(ANALYSIS_DIR) / TIMELINE_FILE,)
"""Files a record leaves out because they are rebuilt from the files it keeps: the timeline is
the step files' rows concatenated (records written before this keep it; restoring rewrites
it with the same bytes)."""
XZ_PRESET = 9 | lzma.PRESET_EXTREME


def record_files(run_dir: Path) -> Iterator[Path]:
    """The files of ``run_dir`` a record keeps (relative paths, sorted)."""
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if not path.is_file() or rel.parts[0] in LEFT_OUT_DIRS or rel in DERIVED_FILES:
            continue
        if rel.name in (LOCK_FILE, ANALYSIS_LOCK_FILE) or rel.name.startswith("."):
            continue
        yield rel


def write_record(run_dir: str | Path, outcome: dict[str, Any], dest: str | Path) -> bool:
    """Keep ``run_dir``'s record (and the point's ``outcome``) in ``dest``, replacing what was
    there. The archive is byte-for-byte the same for the same files (sorted names, no times or
    owners), so an unchanged run rewrites nothing; the outcome is written last, so a record
    with an outcome is complete. Returns whether anything changed."""
    run_dir, dest = Path(run_dir), Path(dest)
    if not (run_dir / CONFIG_FILE).is_file():
        raise RunStoreError(f"{run_dir}: not a run directory ({CONFIG_FILE} is missing)")
    archive = _archive(run_dir)
    outcome_bytes = (json.dumps(outcome, indent=1) + "\n").encode()
    if _same(dest / ARCHIVE_FILE, archive) and _same(dest / OUTCOME_FILE, outcome_bytes):
        return False
    (dest / OUTCOME_FILE).unlink(missing_ok=True)  # incomplete until its outcome is back
    atomic_write(dest / ARCHIVE_FILE, archive)
    atomic_write(dest / OUTCOME_FILE, outcome_bytes)
    return True


def _archive(run_dir: Path) -> bytes:
    """The record's files as a deterministic tar, xz-compressed."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz", format=tarfile.PAX_FORMAT,
                      preset=XZ_PRESET) as tar:  # fmt: skip
        for rel in record_files(run_dir):
            data = (run_dir / rel).read_bytes()
            info = tarfile.TarInfo(rel.as_posix())
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


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
    """Unpack a record's run files into ``run_dir`` (created; an existing one is replaced) and
    return its outcome. The caller writes the outcome where its sweep keeps it and rebuilds
    the :data:`DERIVED_FILES`."""
    record, run_dir = Path(record), Path(run_dir)
    outcome = read_record_outcome(record)
    if outcome is None:
        raise RunStoreError(f"{record}: not a complete record ({OUTCOME_FILE} is missing)")
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    try:
        with tarfile.open(record / ARCHIVE_FILE, mode="r:xz") as tar:
            tar.extractall(run_dir, filter="data")
    except (OSError, tarfile.TarError, EOFError) as e:
        raise RunStoreError(f"{record / ARCHIVE_FILE}: not a readable record ({e})") from None
    return outcome


def record_config(record: str | Path) -> dict[str, Any]:
    """The run config stored in a record (as the run directory's ``config.json`` holds it)."""
    file = Path(record) / ARCHIVE_FILE
    try:
        with tarfile.open(file, mode="r:xz") as tar:
            member = tar.extractfile(CONFIG_FILE)
            return json.loads(member.read())  # type: ignore[union-attr]
    except FileNotFoundError:
        raise RunStoreError(f"{record}: not a record ({ARCHIVE_FILE} is missing)") from None
    except KeyError:
        raise RunStoreError(f"{file}: holds no {CONFIG_FILE}") from None
    except (OSError, tarfile.TarError, EOFError, json.JSONDecodeError) as e:
        raise RunStoreError(f"{file}: not a readable record ({e})") from None
