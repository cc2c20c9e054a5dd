"""Sweep throughput: how to spend this machine's cores on many small runs.

    python benchmarks/bench_sweep.py [--points N] [--steps S] [--D D]

The same N training-only points (one default-size model each, D = 500, S steps, different
seeds) are run through :func:`mbc_interp.sweep.runner.run_sweep` four ways, each into a fresh
directory:

- ``1 worker x 1 thread``: one run at a time, single-threaded (the baseline, ratio 1.0).
- ``1 worker x 2 threads``: one run at a time using two torch threads.
- ``2 workers x 1 thread``: two single-thread runs side by side (the default on 2 cores).
- ``serial, in process``: the same runs through ``train()`` in this process, no pool at all
  (what the pool's process start-up and imports cost).

The table shows wall seconds and points per minute, and the throughput ratio against the
baseline, all measured in this one invocation. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from mbc_interp import RunConfig, TaskConfig, TrainConfig, train
from mbc_interp.config import CheckpointSchedule
from mbc_interp.sweep.grid import SweepSpec
from mbc_interp.sweep.runner import run_sweep


def spec(points: int, steps: int, d: int, threads: int) -> SweepSpec:
    base = RunConfig(
        task=TaskConfig(D=d),
        train=TrainConfig(steps=steps, threads=threads, device="cpu",
                          checkpoints=CheckpointSchedule(log_until=16, every=1000)),
    ).to_dict()  # fmt: skip
    return SweepSpec(grids=({"train": {"seed": list(range(points))}},), base=base, analysis=None)


def timed_sweep(points: int, steps: int, d: int, workers: int, threads: int, root: Path) -> float:
    out = root / f"w{workers}_t{threads}"
    start = time.perf_counter()
    outcomes = run_sweep(spec(points, steps, d, threads), out, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    failed = [o for o in outcomes if o["status"] != "done"]
    if failed:
        raise RuntimeError(f"benchmark point failed: {failed[0]['error']}")
    return seconds


def timed_serial(points: int, steps: int, d: int, root: Path) -> float:
    start = time.perf_counter()
    for p in spec(points, steps, d, threads=1).points:
        train(p.config, root / "serial" / p.name, progress=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--D", type=int, default=500)
    args = ap.parse_args(argv)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.points} points x {args.steps} steps (D={args.D}, default model), {cores} cores")
    root = Path(tempfile.mkdtemp(prefix="bench_sweep_"))
    try:
        rows = [
            ("1 worker x 1 thread (baseline)",
             timed_sweep(args.points, args.steps, args.D, 1, 1, root)),
            ("1 worker x 2 threads", timed_sweep(args.points, args.steps, args.D, 1, 2, root)),
            ("2 workers x 1 thread", timed_sweep(args.points, args.steps, args.D, 2, 1, root)),
            ("serial, in process (no pool)", timed_serial(args.points, args.steps, args.D, root)),
        ]  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = rows[0][1]
    head = f"{'configuration':32s} {'wall s':>8s} {'points/min':>11s} {'throughput':>11s}"
    print(head)
    print("-" * len(head))
    for name, seconds in rows:
        print(f"{name:32s} {seconds:8.1f} {60 * args.points / seconds:11.2f} "
              f"{base / seconds:10.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
