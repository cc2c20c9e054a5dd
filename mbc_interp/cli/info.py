"""``mbc info RUN``: a run's status, task, checkpoints and last evaluation, without loading
torch (nothing is built: the task is described from its config)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mbc_interp.cli.verify import checkpoint_health

HELP = "print a run's status, task and last evaluation"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")


def run(args: argparse.Namespace) -> int:
    from mbc_interp.store.run import load_run

    print_info(load_run(args.run))
    return 0


def print_info(run) -> None:
    """The lines ``mbc info`` (and ``mbc train`` at its end) prints for ``run``."""
    m = run.metrics
    manifest = run.manifest
    print(f"run        {run.path}")
    print(
        f"status     {manifest.status}"
        + (f" ({manifest.stop_reason})" if manifest.stop_reason else "")
    )
    print(f"task       {type(run.config.task).name}({run.config.task.describe()})")  # no data built
    print(
        f"checkpoints {len(manifest.checkpoints)} (steps {run.steps[0]}..{run.steps[-1]})"
        if run.steps
        else "checkpoints 0"
    )
    print(checkpoint_health(run.store))
    if len(m):
        last = m.iloc[-1]
        log_k = getattr(run.config.task, "log_k", None)
        where = f" ({last.loss / log_k:.1%} of log K = {log_k:.4f})" if log_k else ""
        test = f", test loss {last.test_loss:.4f}" if "test_loss" in m else ""
        print(
            f"last eval  step {int(last.step)}, tokens {int(last.tokens):,}, "
            f"loss {last.loss:.4f} nats{where}{test}, accuracy {last.acc:.3f}"
        )
