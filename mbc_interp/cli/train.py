"""``mbc train``: train a run with dense checkpoints, or continue a stopped one exactly.

    mbc train --out checkpoints/demo             # the default run, through its transition
    mbc train --D 500 --K 8 --lr 1e-3 --seed 1   # flags override the defaults (or --config)
    mbc train --config runs/big.toml --out checkpoints/big
    mbc train --resume checkpoints/demo          # continue a stopped run, exactly

Every config field is a flag, generated from the config dataclasses (:mod:`.flags`);
precedence is defaults < ``--config`` file < flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mbc_interp.cli.flags import add_config_flags, config_overrides, resolve_config
from mbc_interp.cli.info import print_info
from mbc_interp.config import ConfigError, RunConfig, run_name
from mbc_interp.store.run_store import RunStore

HELP = "train a run (or --resume one) with dense checkpoints"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="JSON or TOML file with [task] [model] [train]")
    p.add_argument("--out", type=Path, help="run directory (default: checkpoints/<run-name>)")
    p.add_argument("--resume", type=Path, metavar="RUN", help="continue a stopped run")
    p.add_argument(
        "--exist-ok",
        action="store_true",
        help="if --out already holds this run: resume it when unfinished, else just report it",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_flags(p)


def run(args: argparse.Namespace) -> int:
    from mbc_interp.training import resume, train

    progress = not args.no_progress
    if args.resume is not None:
        overrides = config_overrides(args)
        extra = {k: v for k, v in overrides.get("train", {}).items() if k != "steps"}
        if args.config or args.out or extra or set(overrides) - {"train"}:
            raise ConfigError(
                "--resume continues a run with its saved config; only --steps may change"
            )
        monitor = _monitor(args.resume, progress)
        run = resume(args.resume, steps=overrides.get("train", {}).get("steps"),
                     progress=progress, monitor=monitor)  # fmt: skip
    else:
        config = resolve_config(args)
        out = args.out or Path("checkpoints") / run_name(config)
        if args.exist_ok and RunStore(out).exists():
            run = _existing(out, config, progress)
        else:
            monitor = _monitor(out, progress, config.task)
            run = train(config, out, progress=progress, monitor=monitor)
    print_info(run)
    return 0


def _existing(out: Path, config: RunConfig, progress: bool):
    from mbc_interp.store.run import load_run
    from mbc_interp.training import resume

    run = load_run(out)
    if run.config != config:
        raise ConfigError(f"{out}: holds a run with a different config; choose another --out")
    if run.status == "running":
        print(f"{out}: unfinished run found; resuming it")
        return resume(out, progress=progress, monitor=_monitor(out, progress))
    print(f"{out}: already trained ({run.status}); nothing to do")
    return run


def _monitor(out: Path, progress: bool, task_config=None):
    """The live drop forecast on the progress line (none without a progress line, and none for
    a task without a log K plateau: its forecast has no logged signal to run on)."""
    if not progress:
        return None
    if task_config is None:
        from mbc_interp.store.run import load_run

        task_config = load_run(out).config.task
    from mbc_interp.cli.forecast import live_monitor

    log_k = getattr(task_config, "log_k", None)
    return None if log_k is None else live_monitor(out, log_k)
