"""``mbc verify RUN [--drop-damaged]``: check every checkpoint against its manifest checksum,
and drop the damaged ones from the manifest (their files moved into ``RUN/damaged/``).

Exit status: 0 when every listed checkpoint is intact (or, with ``--drop-damaged``, once the
damaged ones are dropped), 1 when some are damaged, 2 on bad input (no such run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mbc_interp.store.integrity import FileProblem, drop_damaged, quick_check, verify_checkpoints
from mbc_interp.store.run_store import RunStore

HELP = "check a run's checkpoints against their checksums; --drop-damaged repairs the manifest"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")
    p.add_argument(
        "--drop-damaged", action="store_true",
        help="remove damaged checkpoints from the manifest (atomically) and move their files "
        "into RUN/damaged/; metrics and analysis are kept",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    store = RunStore(args.run)
    manifest = store.read_manifest()  # a clear error when RUN is not a run
    store.read_config()
    problems = verify_checkpoints(store)
    n = len(manifest.checkpoints)
    if not problems:
        print(f"{store.path}: {n} checkpoints, all intact (sha256 as in the manifest)")
        return 0
    steps = sorted({p.step for p in problems})
    print(f"{store.path}: {len(steps)} of {n} checkpoints damaged: steps {_steps(steps)}")
    for p in problems:
        print(f"  {p.describe(store.path)}")
    if not args.drop_damaged:
        print(f"drop them with `mbc verify {store.path} --drop-damaged` (files kept in "
              f"{store.path / 'damaged'})")  # fmt: skip
        return 1
    repair = drop_damaged(store, problems)
    if repair.dropped:
        print(f"dropped from the manifest: steps {_steps(repair.dropped)}")
    if repair.trainer_dropped:
        print(f"trainer state dropped (weights kept): steps {_steps(repair.trainer_dropped)}")
    for path in repair.moved:
        print(f"  moved to {path}")
    after = store.read_manifest()
    if after.status == "running" and after.latest_resumable() is None:
        print("no checkpoint with trainer state is left: the run cannot be resumed")
    return 0


def checkpoint_health(store: RunStore) -> str:
    """One line for ``mbc info``: missing or truncated checkpoints by file size (no hashing),
    and how to check the checksums."""
    problems = quick_check(store)
    if not problems:
        return f"integrity  files complete by size; `mbc verify {store.path}` checks checksums"
    return (
        f"integrity  {len({p.step for p in problems})} damaged checkpoint(s): steps "
        f"{_steps(sorted({p.step for p in problems}))} ({_first(problems)}); run "
        f"`mbc verify {store.path}`"
    )


def _first(problems: list[FileProblem]) -> str:
    p = problems[0]
    return f"{p.file}: {p.problem}" + ("" if len(problems) == 1 else ", ...")


def _steps(steps) -> str:
    return ", ".join(str(s) for s in steps)
