"""One analysis of a run at a time: an exclusive lock on ``RUN/analysis/.lock``.

Two processes analysing one run (``mbc analyze``, ``mbc report``, a sweep worker) would
interleave their step files; the second fails at once instead, naming the run and the lock
file. The lock is an advisory ``flock``, which the kernel releases when its process ends (a
lock left by a killed process is no lock at all). The file is created once and never written,
so an analysis with nothing to compute leaves the run's files as they were.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from mbc_interp.store.layout import ANALYSIS_DIR
from mbc_interp.store.layout import ANALYSIS_LOCK_FILE as LOCK_FILE
from mbc_interp.store.run_store import RunLockedError

_HELD: set[Path] = set()
"""Lock files this process holds: a nested lock (``analyze`` around ``analyze_run``) re-enters
instead of failing on its own lock."""


@contextlib.contextmanager
def analysis_lock(run_path: Path) -> Iterator[None]:
    """Hold the analysis lock of the run at ``run_path`` for the block, or raise
    :class:`~mbc_interp.store.RunLockedError` naming the run and the lock file (non-blocking:
    at once, while another process holds it)."""
    lock = Path(run_path) / ANALYSIS_DIR / LOCK_FILE
    key = lock.absolute()
    if key in _HELD:
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:  # closing releases the flock
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{run_path}: another process is analysing this run (it holds the lock {lock}); "
                "wait for it to finish or stop it (the lock is released when that process ends)"
            ) from None
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
