"""The mbc command line: train, analyse, sweep, fit and report runs.

One module per command, each with ``HELP``, ``add_arguments`` and ``run``, registered in
:data:`COMMANDS`.

Usage:
    mbc train [--config FILE] [--out DIR] [config flags...]
    mbc train --resume RUN [--steps N]
    mbc analyze RUN [--kinds KIND...]
    mbc report RUN | SWEEP
    mbc sweep --config FILE --out DIR
    mbc fit SWEEP [--results DIR] [--doc FILE]
    mbc info RUN
    mbc forecast RUN [--json]

No command module imports torch or TransformerLens at import time, so ``mbc --help`` and
``mbc info`` stay fast; each imports what it runs inside ``run``.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from mbc_interp.cli import analyze, backtest, fit, forecast, info, report, sweep, train, verify
from mbc_interp.cli.flags import resolve_config
from mbc_interp.config import ConfigError
from mbc_interp.store.run_store import RunStoreError

COMMANDS: dict[str, ModuleType] = {
    "train": train,
    "analyze": analyze,
    "info": info,
    "verify": verify,
    "sweep": sweep,
    "fit": fit,
    "report": report,
    "forecast": forecast,
    "backtest": backtest,
}
"""Command name -> its module (``HELP``, ``add_arguments(parser)``, ``run(args) -> int``)."""

__all__ = ["COMMANDS", "build_parser", "main", "resolve_config"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbc",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(handler=command.run)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors reported as ``mbc CMD: error: ...`` (exit 2) rather than a traceback.
    ``TrainingError`` is looked up, not imported: it can only have been raised once the training
    code (and torch with it) was imported, and importing it here would load torch for ``--help``."""
    from mbc_interp.tasks.protocol import TaskProtocolError  # plain Python: no torch

    train = sys.modules.get("mbc_interp.training.optim")
    extra = (train.TrainingError,) if train is not None else ()
    return (ConfigError, RunStoreError, ValueError, TaskProtocolError, *extra)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except _user_errors() as e:
        print(f"mbc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"mbc {args.command}: interrupted; every listed checkpoint is intact "
            "(continue with `mbc train --resume RUN`)",
            file=sys.stderr,
        )
        return 130
    except BrokenPipeError:  # the reader left (`mbc analyze RUN | head -1`): stop as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141

