"""Start-up time of the ``mbc`` commands that should answer at once.

    python benchmarks/bench_startup.py [--repeats N] [--run RUN]

Each command runs in a fresh interpreter (``python -m mbc_interp.cli ...`` from the repository
root, so this checkout's code), ``--repeats`` times after one warm-up (the OS file cache); the
table shows the median wall seconds and the ratio to ``python -c "import torch"``, the cost of
the one import these commands avoid (``python -c pass``: the interpreter alone). ``mbc info``
reads a tiny run trained first into a temporary directory, unless ``--run`` names one.

Measured on the 2-core development machine (shared with other jobs, so +-20%), the same tiny
run for ``mbc info``; before: the command line importing TransformerLens and torch at start-up
(best of 2), after: only inside the handlers that need them (median of 3):

=========================  ===========  ===========================
command                    before       after (x ``import torch``)
=========================  ===========  ===========================
``mbc --help``             12.9 s       1.1 s (0.35x)
``mbc train --help``       11.3 s       1.0 s (0.33x)
``mbc analyze --help``     --           1.5 s (0.49x)
``mbc info RUN``           11.3 s       1.2 s (0.38x)
``import torch``           2.7-3.1 s    3.1 s (1.00x)
=========================  ===========  ===========================

What is left is mostly pandas and numpy (``Run.metrics``).
``tests/test_startup.py`` checks that none of these imports torch or TransformerLens.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(argv: list[str], repeats: int) -> float:
    """Median wall seconds of running ``argv`` (from the repository root), after one warm-up."""

    def once() -> float:
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start

    once()
    return statistics.median(once() for _ in range(repeats))


def tiny_run(root: Path) -> Path:
    """A finished run of a few seconds (what ``mbc info`` reads), trained in a subprocess so
    this process stays as light as the commands it times."""
    out = root / "tiny"
    code = (
        "from mbc_interp import ModelConfig, RunConfig, TaskConfig, TrainConfig, train\n"
        "config = RunConfig(\n"
        "    task=TaskConfig(D=64, K=4, base_len=3, n_base_symbols=8, n_target_symbols=8),\n"
        "    model=ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64),\n"
        "    train=TrainConfig(steps=60, eval_every=10, device='cpu'),\n"
        ")\n"
        f"train(config, {str(out)!r}, progress=False)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--run", type=Path, help="run directory for `mbc info` (default: a tiny one)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench_startup_"))
    try:
        run = args.run or tiny_run(tmp)
        py, mbc = [sys.executable], [sys.executable, "-m", "mbc_interp.cli"]
        rows = [
            ('python -c "import torch"', wall([*py, "-c", "import torch"], args.repeats)),
            ("python -c pass", wall([*py, "-c", "pass"], args.repeats)),
            ("import mbc_interp", wall([*py, "-c", "import mbc_interp"], args.repeats)),
            ("mbc --help", wall([*mbc, "--help"], args.repeats)),
            ("mbc train --help", wall([*mbc, "train", "--help"], args.repeats)),
            ("mbc analyze --help", wall([*mbc, "analyze", "--help"], args.repeats)),
            ("mbc info RUN", wall([*mbc, "info", str(run)], args.repeats)),
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0][1]
    head = f"{'command':26s} {'wall s':>7s} {'x import torch':>15s}"
    print(f"median of {args.repeats} runs each, fresh interpreters")
    print(head)
    print("-" * len(head))
    for name, seconds in rows:
        print(f"{name:26s} {seconds:7.2f} {seconds / base:14.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
