"""``mbc analyze RUN``: the per-checkpoint analyses of a run (incremental: checkpoints already
analysed are kept; ``--kinds`` adds extra kinds to an earlier analysis), then its summary.
Settings not given are chosen to fit ``--budget`` seconds, and the plan is printed first."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from mbc_interp.cli.flags import parse_optional
from mbc_interp.config import ConfigError

HELP = "analyse a run's checkpoints (circuit, hidden progress, --kinds) against its transition"


def add_arguments(p: argparse.ArgumentParser) -> None:
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
        "--n-examples", type=parse_optional(int), default=argparse.SUPPRESS,
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
    p.add_argument(
        "--redo", nargs="+", default=(), choices=list(kinds), metavar="KIND",
        help="recompute these extra kinds (of --kinds or the earlier analysis) on checkpoints "
        "already analysed, their rows replaced and every other row kept (after a kind's code "
        "has changed)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


_ANALYSIS_FLAGS = ("n_pairs", "pair_seed", "n_examples", "patch_kinds", "detail_every", "kinds")


def run(args: argparse.Namespace) -> int:
    from mbc_interp.analysis.timeline import analyze
    from mbc_interp.analysis.timing.summary import format_summary
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
            force=args.force, progress=not args.no_progress, redo=tuple(args.redo),
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
            from mbc_interp.analysis.dynamics.llc_heads import default_heads

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
