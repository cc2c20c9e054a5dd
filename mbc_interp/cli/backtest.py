"""``mbc backtest SWEEP...``: the drop forecast backtested over sweeps, against naive
baselines; the files and document section are written by
:mod:`mbc_interp.studies.mbc.backtest_doc`."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "backtest the drop forecast over sweeps, against naive baselines"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweeps", type=Path, nargs="+", metavar="SWEEP",
                   help="sweep directories (each backtested on its own runs), or a results "
                   "directory holding a committed backtest.csv (re-summarised)")  # fmt: skip
    p.add_argument("--results", type=Path, help="where backtest.csv, summary.csv, coverage.csv, "
                   "calibration.json, report.html and the figure go (default: "
                   "SWEEP/backtest)")  # fmt: skip
    p.add_argument("--doc", type=Path, help="markdown file whose backtest section to rewrite")


def run(args: argparse.Namespace) -> int:
    from mbc_interp.studies.mbc.backtest_doc import load_or_backtest, write_backtest
    from mbc_interp.sweep.backtest import summarize_backtest, verdict

    out = args.results or args.sweeps[0] / "backtest"
    table = load_or_backtest(args.sweeps)
    summary = summarize_backtest(table)
    paths = write_backtest(table, summary, out, doc=args.doc)
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print("\n".join(verdict(summary)))
    for p in paths:
        print(f"wrote {p}")
    return 0
