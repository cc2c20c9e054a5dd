"""``mbc fit SWEEP``: a sweep's scaling claims where its task declares them (the wind tunnel:
plateau duration against D, K, lr and batch; the lead fraction; the circuit), or the
gradient-noise verdicts (``--noise``), or the hidden-progress verdicts of a sweep of any other
task; tables, figures and the document section."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "fit a sweep: the claims (duration vs D, K, lr, batch; lead; circuit) or progress verdicts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", type=Path, metavar="SWEEP", help="sweep directory")
    p.add_argument(
        "--results", type=Path,
        help="directory for runs.csv, fits.json, report.html and figures (default SWEEP/fit)",
    )  # fmt: skip
    p.add_argument("--doc", type=Path, help="markdown file whose generated section to rewrite "
                   "(e.g. REPRODUCTION.md)")  # fmt: skip
    p.add_argument(
        "--summary",
        type=Path,
        help="markdown file whose generated summary "
        "paragraph of this sweep to rewrite (e.g. README.md; scaling claims only)",
    )
    p.add_argument("--noise", action="store_true",
                   help="instead of the scaling claims: the gradient-noise verdicts (runs "
                   "analysed with --kinds gradients; REPRODUCTION.md's noise section)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from mbc_interp.studies.mbc import fit_and_write, format_fits

    out = args.results or args.sweep / "fit"
    if args.noise:
        from mbc_interp.studies.mbc import noise_fit_and_write
        from mbc_interp.sweep.noise_text import format_verdicts

        _no_summary(args)
        verdicts, paths = noise_fit_and_write(args.sweep, out, args.doc)
        print(format_verdicts(verdicts))
        for p in paths:
            print(f"wrote {p}")
        return 0
    from mbc_interp.studies.mbc import progress_fit_and_write, sweep_task
    from mbc_interp.tasks.registry import entry

    if not entry(sweep_task(args.sweep)).scaling_claims:  # hidden progress only
        from mbc_interp.sweep.progress_text import level_table

        _no_summary(args)
        verdicts, paths = progress_fit_and_write(args.sweep, out, args.doc)
        print(level_table(verdicts).to_string(index=False))
        for p in paths:
            print(f"wrote {p}")
        return 0
    fits, paths = fit_and_write(args.sweep, out, args.doc, args.summary)
    print(format_fits(fits))
    for p in paths:
        print(f"wrote {p}")
    return 0


def _no_summary(args: argparse.Namespace) -> None:
    if args.summary is not None:
        raise ValueError(
            f"--summary {args.summary}: only a sweep's scaling claims (not --noise, "
            "not hidden-progress verdicts) have a summary paragraph"
        )
