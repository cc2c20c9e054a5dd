"""``mbc report RUN [--out PATH]``: the run's self-contained HTML report; prints its path.
Given a sweep directory instead, it writes the sweep's report (``mbc fit``'s figures, in
``SWEEP/fit/report.html``).

Checkpoints not analysed yet are analysed first (incrementally, with the settings already in
``RUN/analysis/config.json``, or the defaults for a run never analysed), so the report always
covers the whole run, also one still training. ``--no-analyze`` uses what is there.

A damaged checkpoint (its file missing or not matching the manifest's sha256) is skipped with a
warning on stderr: left out of that analysis, and an attention view that would show it shows
the nearest intact checkpoint instead (``mbc verify RUN --drop-damaged`` repairs the run).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from mbc_interp.store.layout import REPORT_FILE, is_sweep_dir

HELP = "write a run's self-contained HTML report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")
    p.add_argument("--out", type=Path, help="HTML file to write (default: RUN/report.html)")
    p.add_argument("--example", type=int, default=0, help="example shown in the attention views")
    p.add_argument(
        "--x", choices=("step", "tokens"), default="step", help="time axis of the figures"
    )
    p.add_argument(
        "--no-analyze", action="store_true",
        help="do not analyse missing checkpoints first (fails if none is analysed)",
    )  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if is_sweep_dir(args.run):  # a sweep directory: its fits and figures
        return _sweep_report(args)
    from mbc_interp.store.integrity import DamagedCheckpointWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DamagedCheckpointWarning)
        try:
            return _run_report(args)
        finally:
            for w in caught:
                if issubclass(w.category, DamagedCheckpointWarning):
                    print(f"mbc report: warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _run_report(args: argparse.Namespace) -> int:
    from mbc_interp.analysis.timeline import AnalysisConfig, analysed_steps, analyze, saved_config
    from mbc_interp.store.integrity import DamagedCheckpointWarning, verify_checkpoints
    from mbc_interp.store.run import load_run
    from mbc_interp.viz.run_report import write_run_report

    run = load_run(args.run)
    if not run.steps:
        raise ValueError(f"{run.path}: no checkpoint yet; nothing to report")
    missing = sorted(set(run.steps) - analysed_steps(run))
    if not getattr(run.config.task, "has_selector", True):
        pass  # a forward run: nothing to analyse, the report shows its loss
    elif missing and not args.no_analyze:
        config = saved_config(run) or AnalysisConfig()
        damaged = [p for p in verify_checkpoints(run.store, missing) if p.kind == "weights"]
        for p in damaged:
            warnings.warn(f"{p.describe(run.path)}; not analysed", DamagedCheckpointWarning,
                          stacklevel=1)  # fmt: skip
        todo = len(missing) - len(damaged)
        print(f"{run.path}: analysing {todo} of {len(run.steps)} checkpoints first")
        analyze(run, config, progress=not args.no_progress, exclude={p.step for p in damaged})
    elif not analysed_steps(run):
        raise ValueError(f"{run.path}: no analysed checkpoint; run `mbc analyze {run.path}`")
    path = write_run_report(run, args.out, example=args.example, x=args.x)
    print(path)
    return 0


def _sweep_report(args: argparse.Namespace) -> int:
    from mbc_interp.studies.mbc import fit_and_write

    out = args.out.parent if args.out is not None else args.run / "fit"
    if args.out is not None and args.out.name != REPORT_FILE:
        raise ValueError(f"--out {args.out}: a sweep report is written as <DIR>/{REPORT_FILE}")
    fit_and_write(args.run, out)
    print(out / REPORT_FILE)
    return 0
