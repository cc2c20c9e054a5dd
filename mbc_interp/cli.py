"""The ``mbc`` command line.

Usage:
    mbc train [--config FILE] [--out DIR] [config flags...]
    mbc train --resume RUN [--steps N]
    mbc info RUN

Examples:
    mbc train --out checkpoints/demo             # the default run, through its transition
    mbc train --D 500 --K 8 --lr 1e-3 --seed 1   # flags override the defaults (or --config)
    mbc train --config runs/big.toml --out checkpoints/big
    mbc train --resume checkpoints/demo          # continue a stopped run, exactly

Design choices:
    Every config field is a flag, generated from the dataclasses in ``mbc_interp.config`` so the
    CLI can never drift from the config; precedence is defaults < --config file < flags. Each
    command is a ``(add_arguments, handler)`` pair registered in ``COMMANDS``, so ``analyze``,
    ``report`` and ``sweep`` slot in beside ``train``.
"""

from __future__ import annotations

import argparse
import sys
import typing
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal

from .config import PRESETS, ConfigError, RunConfig, TrainConfig, merge_config, read_mapping
from .model import ModelConfig
from .store import RunStore, RunStoreError
from .sweep import commands as _sweep
from .task import TaskConfig
from .train import TrainingError
from .viz.commands import add_report_args, cmd_report

# (section, field path) -> flag name, where the plain field name would be ambiguous or unclear
_RENAMES = {
    ("task", "seed"): "data-seed",
    ("train", "checkpoints.log_until"): "ckpt-log-until",
    ("train", "checkpoints.every"): "ckpt-every",
    ("train", "checkpoints.loss_delta"): "ckpt-loss-delta",
}
_SECTIONS: dict[str, type] = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


# -- config flags, generated from the dataclasses ---------------------------------------------
def _flag_specs() -> list[tuple[str, str, Any]]:
    """``(section, dotted field path, annotation)`` for every leaf config field."""
    specs = []

    def walk(section: str, cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp = hints[f.name]
            if is_dataclass(tp):
                walk(section, tp, f"{prefix}{f.name}.")
            else:
                specs.append((section, prefix + f.name, tp))

    for section, cls in _SECTIONS.items():
        walk(section, cls, "")
    return specs


def _flag_name(section: str, path: str) -> str:
    return _RENAMES.get((section, path), path.replace("_", "-"))


def _dest(section: str, path: str) -> str:
    return f"cfg__{section}__{path.replace('.', '__')}"


def _parse_optional(inner: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else inner(text)

    parse.__name__ = getattr(inner, "__name__", "value")
    return parse


def add_config_flags(parser: argparse.ArgumentParser, multi: bool = False) -> None:
    """One flag per config field; ``multi=True`` lets each take several values (a grid)."""
    groups = {s: parser.add_argument_group(f"{s} config") for s in _SECTIONS}
    parser.add_argument(
        "--preset", choices=list(PRESETS), nargs="+" if multi else None, default=argparse.SUPPRESS,
        help="start from named settings (paper: the paper's task, model and optimiser); "
        "a config file and flags override it",
    )
    for section, path, tp in _flag_specs():
        # SUPPRESS: an unset flag leaves no attribute, so an explicit 'none' stays distinct
        kwargs: dict[str, Any] = {"dest": _dest(section, path), "default": argparse.SUPPRESS}
        args = typing.get_args(tp)
        optional = type(None) in args
        core = next((a for a in args if a is not type(None)), tp) if optional else tp
        if typing.get_origin(core) is Literal:
            kwargs["choices"] = list(typing.get_args(core))
        elif typing.get_origin(core) is tuple:
            kwargs.update(type=float, nargs=len(typing.get_args(core)), metavar="X")
        elif core is bool:
            if multi:
                kwargs.update(type=_parse_bool, nargs="+")
            else:
                kwargs["action"] = argparse.BooleanOptionalAction
            groups[section].add_argument(f"--{_flag_name(section, path)}", **kwargs)
            continue
        else:
            kwargs["type"] = core
        if optional and "type" in kwargs:
            kwargs["type"] = _parse_optional(kwargs["type"])
        if multi and "nargs" not in kwargs:
            kwargs["nargs"] = "+"
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", path.rsplit(".", 1)[-1].upper())
        default = _default_of(section, path)
        help_ = f"{section}.{path} (default: {default})" + (" or 'none'" if optional else "")
        groups[section].add_argument(f"--{_flag_name(section, path)}", help=help_, **kwargs)


def _default_of(section: str, path: str) -> Any:
    node: Any = getattr(RunConfig(), section)
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def config_overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The config fields set on the command line, as nested ``{section: {field: value}}``."""
    out: dict[str, Any] = {}
    if hasattr(args, "preset"):
        out["preset"] = args.preset
    for section, path, _ in _flag_specs():
        if not hasattr(args, _dest(section, path)):
            continue
        value = getattr(args, _dest(section, path))
        if isinstance(value, list) and not path.endswith("betas"):
            pass  # grids (multi=True) are expanded by the caller
        elif isinstance(value, list):
            value = tuple(value)
        node = out.setdefault(section, {})
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """Defaults < ``--config`` file < flags."""
    overrides = config_overrides(args)
    data: dict[str, Any] = {"preset": overrides.pop("preset")} if "preset" in overrides else {}
    if args.config:
        data = merge_config(data, read_mapping(args.config, "config file"))
        RunConfig.from_dict(data, str(args.config))  # errors name the file
    return RunConfig.from_dict(merge_config(data, overrides), "command-line flags")


def run_name(config: RunConfig) -> str:
    """A readable default run directory name from the fields people sweep."""
    t, tr = config.task, config.train
    size = f"D{t.n_bases}" if t.n_examples is None else f"N{t.n_total}"
    name = f"{size}_K{t.K}_lr{tr.lr:g}_b{tr.batch_size}_s{tr.seed}"
    return name + ("_forward" if t.direction == "forward" else "")


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
    from .train import resume, train

    progress = not args.no_progress
    if args.resume is not None:
        overrides = config_overrides(args)
        extra = {k: v for k, v in overrides.get("train", {}).items() if k != "steps"}
        if args.config or args.out or extra or set(overrides) - {"train"}:
            raise ConfigError(
                "--resume continues a run with its saved config; only --steps may change"
            )
        run = resume(args.resume, steps=overrides.get("train", {}).get("steps"), progress=progress)
    else:
        config = resolve_config(args)
        out = args.out or Path("checkpoints") / run_name(config)
        if args.exist_ok and RunStore(out).exists():
            run = _existing(out, config, progress)
        else:
            run = train(config, out, progress=progress)
    _print_info(run)
    return 0


def _existing(out: Path, config: RunConfig, progress: bool):
    from .run import load_run
    from .train import resume

    run = load_run(out)
    if run.config != config:
        raise ConfigError(f"{out}: holds a run with a different config; choose another --out")
    if run.status == "running":
        print(f"{out}: unfinished run found; resuming it")
        return resume(out, progress=progress)
    print(f"{out}: already trained ({run.status}); nothing to do")
    return run


def _add_info(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")


def _cmd_info(args: argparse.Namespace) -> int:
    from .run import load_run

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
    print(f"task       {run.task!r}")
    print(
        f"checkpoints {len(manifest.checkpoints)} (steps {run.steps[0]}..{run.steps[-1]})"
        if run.steps
        else "checkpoints 0"
    )
    if len(m):
        last = m.iloc[-1]
        print(
            f"last eval  step {int(last.step)}, tokens {int(last.tokens):,}, "
            f"loss {last.loss:.4f} nats ({last.loss / run.log_k:.1%} of log K = "
            f"{run.log_k:.4f}), exact match {last.acc:.3f}"
        )


def _add_analyze(p: argparse.ArgumentParser) -> None:
    from .analysis.patching import SITE_KINDS
    from .analysis.timeline import AnalysisConfig

    d = AnalysisConfig()
    p.add_argument("run", type=Path, metavar="RUN", help="run directory (may still be training)")
    p.add_argument("--every", type=int, default=1, help="analyse every n-th checkpoint")
    p.add_argument("--start", type=int, help="first step to analyse")
    p.add_argument("--stop", type=int, help="last step to analyse")
    p.add_argument("--n-pairs", type=int, default=d.n_pairs, help="clean/corrupt pairs")
    p.add_argument("--pair-seed", type=int, default=d.pair_seed)
    p.add_argument(
        "--n-examples", type=_parse_optional(int), default=d.n_examples,
        help=f"examples for attribution and logit lens (default {d.n_examples}; 'none' = all)",
    )  # fmt: skip
    p.add_argument(
        "--patch-kinds", nargs="+", choices=[k.name for k in SITE_KINDS], default=d.patch_kinds,
        help="activation-patching site kinds (default: all)",
    )  # fmt: skip
    p.add_argument("--force", action="store_true", help="re-analyse checkpoints already done")
    p.add_argument("--no-progress", action="store_true")


def _cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis.summary import format_summary
    from .analysis.timeline import AnalysisConfig, analyze

    config = AnalysisConfig(
        n_pairs=args.n_pairs, pair_seed=args.pair_seed, n_examples=args.n_examples,
        patch_kinds=tuple(args.patch_kinds),
    )  # fmt: skip
    table, summary = analyze(
        args.run, config, every=args.every, start=args.start, stop=args.stop, force=args.force,
        progress=not args.no_progress,
    )  # fmt: skip
    print(f"{args.run}/analysis: {table['step'].nunique()} checkpoints, {len(table):,} rows")
    print(format_summary(summary))
    return 0


COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "train": ("train a run (or --resume one) with dense checkpoints", _add_train, _cmd_train),
    "analyze": (
        "time the selector-routing circuit against the loss drop, over a run's checkpoints",
        _add_analyze,
        _cmd_analyze,
    ),
    "info": ("print a run's status, task and last evaluation", _add_info, _cmd_info),
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, RunStoreError, TrainingError, ValueError) as e:
        print(f"mbc {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"mbc {args.command}: interrupted; every listed checkpoint is intact "
            "(continue with `mbc train --resume RUN`)",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
