"""The ``mbc`` command line.

Usage:
    mbc train [--config FILE] [--out DIR] [config flags...]
    mbc train --resume RUN [--steps N]
    mbc info RUN
    mbc forecast RUN [--json]

Examples:
    mbc train --out checkpoints/demo             # the default run, through its transition
    mbc train --D 500 --K 8 --lr 1e-3 --seed 1   # flags override the defaults (or --config)
    mbc train --config runs/big.toml --out checkpoints/big
    mbc train --resume checkpoints/demo          # continue a stopped run, exactly

Design choices:
    Every config field is a flag, generated from the config dataclasses (``mbc_interp.flags``) so
    the CLI can never drift from the config; precedence is defaults < --config file < flags. Each
    command is a ``(add_arguments, handler)`` pair registered in ``COMMANDS``, so ``analyze``,
    ``report`` and ``sweep`` slot in beside ``train``.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from mbc_interp import forecast_commands as _forecast
from mbc_interp import verify_commands as _verify
from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.flags import (
    _parse_optional,
    add_config_flags,
    config_overrides,
    resolve_config,
    run_name,
)
from mbc_interp.store.run_store import RunStore, RunStoreError
from mbc_interp.sweep import commands as _sweep
from mbc_interp.viz.commands import add_report_args, cmd_report


# -- commands ---------------------------------------------------------------------------------
def _add_train(p: argparse.ArgumentParser) -> None:
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


def _cmd_train(args: argparse.Namespace) -> int:
    from mbc_interp.train import resume, train

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
    _print_info(run)
    return 0


def _existing(out: Path, config: RunConfig, progress: bool):
    from mbc_interp.store.run import load_run
    from mbc_interp.train import resume

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
    log_k = getattr(task_config, "log_k", None)
    return None if log_k is None else _forecast.live_monitor(out, log_k)


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")


def _cmd_info(args: argparse.Namespace) -> int:
    from mbc_interp.store.run import load_run

    _print_info(load_run(args.run))
    return 0


def _print_info(run) -> None:
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
    print(_verify.checkpoint_health(run.store))
    if len(m):
        last = m.iloc[-1]
        log_k = getattr(run.config.task, "log_k", None)
        where = f" ({last.loss / log_k:.1%} of log K = {log_k:.4f})" if log_k else ""
        test = f", test loss {last.test_loss:.4f}" if "test_loss" in m else ""
        print(
            f"last eval  step {int(last.step)}, tokens {int(last.tokens):,}, "
            f"loss {last.loss:.4f} nats{where}{test}, accuracy {last.acc:.3f}"
        )


def _add_analyze(p: argparse.ArgumentParser) -> None:
    from mbc_interp.analysis.analysis_config import AnalysisConfig
    from mbc_interp.analysis.plan import BUDGET_S
    from mbc_interp.analysis.registry import extra_kinds
    from mbc_interp.analysis.sites import SITE_KINDS

    d = AnalysisConfig()
    p.add_argument("run", type=Path, metavar="RUN", help="run directory (may still be training)")
    p.add_argument("--every", type=int, default=1, help="analyse every n-th checkpoint")
    p.add_argument("--start", type=int, help="first step to analyse")
    p.add_argument("--stop", type=int, help="last step to analyse")
    given = "; not given: chosen to fit --budget (or the run's earlier analysis settings)"
    p.add_argument(
        "--n-pairs",
        type=int,
        default=argparse.SUPPRESS,
        help=f"clean/corrupt pairs (default {d.n_pairs}{given})",
    )
    p.add_argument(
        "--pair-seed", type=int, default=argparse.SUPPRESS, help=f"default {d.pair_seed}"
    )
    p.add_argument(
        "--n-examples", type=_parse_optional(int), default=argparse.SUPPRESS,
        help=f"examples for attribution and logit lens ('none' = all; default {d.n_examples}"
        f"{given})",
    )  # fmt: skip
    p.add_argument(
        "--patch-kinds", nargs="+", default=argparse.SUPPRESS, choices=[k.name for k in SITE_KINDS],
        help="activation-patching site kinds (default: all)",
    )  # fmt: skip
    p.add_argument(
        "--detail-every", type=int, default=argparse.SUPPRESS,
        help="position-resolved patching (resid_pre, attn_out, mlp_out, head_out_by_pos) at "
        f"every n-th checkpoint and the last (default {d.detail_every}{given})",
    )  # fmt: skip
    kinds = extra_kinds()
    p.add_argument(
        "--kinds", nargs="+", default=argparse.SUPPRESS, choices=list(kinds),
        help="extra analyses per checkpoint, added to those of the run's earlier analysis: "
        + ", ".join(f"{k.name} ({k.help})" if k.help else k.name for k in kinds.values()),
    )  # fmt: skip
    p.add_argument(
        "--kind-setting", action="append", default=argparse.SUPPRESS, metavar="KIND.NAME=VALUE",
        dest="kind_setting",
        help="a setting of an extra kind of --kinds, e.g. llc.draws=200 (repeat for more; the "
        "others keep their defaults, or the run's earlier analysis' values)",
    )  # fmt: skip
    p.add_argument(
        "--budget", type=float, default=BUDGET_S, metavar="SECONDS",
        help="settings not given are chosen so the estimated analysis fits this many seconds of "
        f"one core (default {BUDGET_S:.0f}); the plan is printed first",
    )  # fmt: skip
    p.add_argument(
        "--full", action="store_true",
        help="the full default settings whatever they cost (no budget)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="re-analyse checkpoints already done")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


_ANALYSIS_FLAGS = ("n_pairs", "pair_seed", "n_examples", "patch_kinds", "detail_every", "kinds")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from mbc_interp.analysis.summary import format_summary
    from mbc_interp.analysis.timeline import analyze
    from mbc_interp.store.run import load_run

    if args.budget <= 0:
        raise ConfigError(f"--budget {args.budget}: must be > 0 seconds")
    from mbc_interp.store.integrity import DamagedCheckpointWarning

    run = load_run(args.run)
    plan = _analysis_plan(args, run)
    print(f"{args.run}: {plan.describe()}")
    with warnings.catch_warnings():  # a damaged checkpoint: one line on stderr, then go on
        warnings.simplefilter("always", DamagedCheckpointWarning)
        warnings.showwarning = _warn_line(warnings.showwarning, DamagedCheckpointWarning)
        table, summary = analyze(
            run, plan.config, every=args.every, start=args.start, stop=args.stop,
            force=args.force, progress=not args.no_progress,
        )  # fmt: skip
    print(f"{args.run}/analysis: {table['step'].nunique()} checkpoints, {len(table):,} rows")
    if summary["skipped_steps"]:
        steps = ", ".join(str(s) for s in summary["skipped_steps"])
        print(f"skipped as damaged: steps {steps} (`mbc verify {args.run}` checks every file)")
    print(format_summary(summary))
    return 0


def _warn_line(show: Callable, category: type[Warning]) -> Callable:
    """``show`` (a ``warnings.showwarning``), but a warning of ``category`` as one line on
    stderr, ``mbc analyze: warning: MESSAGE``, without the source line."""

    def show_line(message, cat, *args, **kwargs) -> None:
        if issubclass(cat, category):
            print(f"mbc analyze: warning: {message}", file=sys.stderr)
        else:
            show(message, cat, *args, **kwargs)

    return show_line


def _analysis_plan(args: argparse.Namespace, run):
    """The settings ``mbc analyze`` will use: the flags given; for the others, those of the run's
    earlier analysis (unless ``--force``), else the defaults (``--full``) or the budget plan."""
    from dataclasses import replace

    from mbc_interp.analysis.plan import fixed_plan, plan_analysis
    from mbc_interp.analysis.timeline import AnalysisConfig, saved_config, select_steps

    steps = select_steps(run.steps, args.every, args.start, args.stop)
    given = {k: getattr(args, k) for k in _ANALYSIS_FLAGS if hasattr(args, k)}  # flags given
    given = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items()}
    try:
        settings = _kind_settings(getattr(args, "kind_setting", []))
        saved = None if args.force else saved_config(run)
        known = saved is not None and "llc_heads" in saved.extra_settings
        new_llc_heads = ("llc_heads" in given.get("kinds", ()) and not known
                         and "heads" not in settings.get("llc_heads", {}))  # fmt: skip
        if new_llc_heads:  # the routing heads of the earlier analysis, and a control head
            from mbc_interp.analysis.llc_heads import default_heads

            settings.setdefault("llc_heads", {})["heads"] = list(default_heads(run))
        if saved is not None:
            if "kinds" in given:  # extra kinds add to the earlier analysis' (computed alone)
                given["kinds"] = tuple(dict.fromkeys((*saved.kinds, *given["kinds"])))
            if settings:
                old = saved.extra_settings
                settings = {k: {**old.get(k, {}), **v} for k, v in settings.items()}
                given["extra_settings"] = {**old, **settings}
            source = "of the run's earlier analysis" + (" and given" if given else "")
            return fixed_plan(run, steps, replace(saved, **given), source)
        if settings:
            given["extra_settings"] = settings
        if args.full:
            return fixed_plan(run, steps, AnalysisConfig(**given), "given (--full)")
        return plan_analysis(run, steps, given=given, budget_s=args.budget)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def _kind_settings(texts: list[str]) -> dict[str, dict[str, object]]:
    """``--kind-setting KIND.NAME=VALUE`` flags as ``{kind: {name: value}}``."""
    from mbc_interp.analysis.registry import parse_setting

    out: dict[str, dict[str, object]] = {}
    for text in texts:
        kind, name, value = parse_setting(text)
        out.setdefault(kind, {})[name] = value
    return out


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "train": ("train a run (or --resume one) with dense checkpoints", _add_train, _cmd_train),
    "analyze": (
        "time the selector-routing circuit against the loss drop, over a run's checkpoints",
        _add_analyze,
        _cmd_analyze,
    ),
    "info": ("print a run's status, task and last evaluation", _add_info, _cmd_info),
    "verify": (
        "check a run's checkpoints against their checksums; --drop-damaged repairs the manifest",
        _verify.add_verify,
        _verify.cmd_verify,
    ),
    "sweep": (
        "run a grid of runs (local pool or Ray), each trained and analysed; resumable",
        _sweep.add_sweep,
        _sweep.cmd_sweep,
    ),
    "fit": (
        "fit a sweep: plateau duration vs D, K, lr, batch; lead fraction; figures and tables",
        _sweep.add_fit,
        _sweep.cmd_fit,
    ),
    "report": ("write a run's self-contained HTML report", add_report_args, cmd_report),
    "forecast": (
        "forecast a run's loss drop from its hidden progress (also while it trains)",
        _forecast.add_forecast,
        _forecast.cmd_forecast,
    ),
    "backtest": (
        "backtest the drop forecast over sweeps, against naive baselines",
        _forecast.add_backtest,
        _forecast.cmd_backtest,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbc",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (help_, add, handler) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add(p)
        p.set_defaults(handler=handler)
    return parser


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors reported as ``mbc CMD: error: ...`` (exit 2) rather than a traceback.
    ``TrainingError`` is looked up, not imported: it can only have been raised once the training
    code (and torch with it) was imported, and importing it here would load torch for ``--help``."""
    train = sys.modules.get(f"{__package__}.train")
    extra = (train.TrainingError,) if train is not None else ()
    return (ConfigError, RunStoreError, ValueError, *extra)


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


if __name__ == "__main__":
    sys.exit(main())
