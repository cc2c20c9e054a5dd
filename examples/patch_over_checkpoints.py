"""Activation patching over a run's checkpoints: when does each site start to carry z?

Patches the clean activation of every site of one kind into the corrupt run (same B, another
z) at each chosen checkpoint, one model in memory at a time, and writes the tidy result as CSV
plus an offline HTML page with one line per site (the summary's times marked, if the run was
analysed). This is the patching part of ``mbc analyze`` as a standalone, hackable script.

Usage:
    python examples/patch_over_checkpoints.py RUN [--kind head_out_all_pos] [--every 2]
        [--start STEP] [--stop STEP] [--n-pairs 256] [--seed 0] [--metric patch_raw]
        [--x step|tokens] [--out DIR]

Examples:
    python examples/patch_over_checkpoints.py checkpoints/demo
    python examples/patch_over_checkpoints.py checkpoints/demo --kind resid_pre --every 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import torch

from mbc_interp import load_run
from mbc_interp.analysis import SITE_KINDS, patch_sites, select_steps
from mbc_interp.viz import Section, site_timelines, write_html_report

KINDS = {k.name: k for k in SITE_KINDS}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path, metavar="RUN", help="run directory")
    p.add_argument("--kind", choices=list(KINDS), default="head_out_all_pos", help="site kind")
    p.add_argument("--every", type=int, default=1, help="every n-th checkpoint")
    p.add_argument("--start", type=int, help="first step")
    p.add_argument("--stop", type=int, help="last step")
    p.add_argument("--n-pairs", type=int, default=256, help="clean/corrupt pairs")
    p.add_argument("--seed", type=int, default=0, help="seed of the pair sample")
    p.add_argument("--metric", choices=("patch_raw", "patch_norm"), default="patch_raw")
    p.add_argument("--x", choices=("step", "tokens"), default="step", help="time axis")
    p.add_argument("--out", type=Path, help="output folder (default: RUN/analysis/patching)")
    return p.parse_args(argv)


def patch_over_checkpoints(args: argparse.Namespace) -> pd.DataFrame:
    """The tidy table: one row per step x site x metric, plus the clean - corrupt gap."""
    run = load_run(args.run)
    task, kind = run.task, KINDS[args.kind]
    pairs = task.patching_pairs(min(args.n_pairs, len(task)), args.seed)
    frames = []
    for step in select_steps(run.steps, args.every, args.start, args.stop):
        result = patch_sites(run.model(step, device="cpu"), task, kind, pairs)
        frame = result.to_frame().assign(step=step, tokens=run.tokens_at(step))
        frame["clean_minus_corrupt"] = result.clean_logit_diff - result.corrupt_logit_diff
        frames.append(frame)
        print(f"step {step:>7,}: clean - corrupt = {frame['clean_minus_corrupt'].iloc[0]:.3f}")
    return pd.concat(frames, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)  # tiny models: one thread is fastest
    args = parse_args(argv)
    table = patch_over_checkpoints(args)
    run = load_run(args.run)
    out = args.out or run.path / "analysis" / "patching"
    out.mkdir(parents=True, exist_ok=True)
    csv = out / f"patching_{args.kind}.csv"
    table.to_csv(csv, index=False)
    summary_file = run.path / "analysis" / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else None
    figure = site_timelines(
        table, summary, metric=args.metric, x=args.x, title=f"Patching {args.kind} over training"
    )
    note = (
        f"{table['step'].nunique()} checkpoints, {min(args.n_pairs, len(run.task))} clean/corrupt "
        f"pairs (seed {args.seed}); {args.metric}: 0 = the corrupt run."
    )
    page = write_html_report(
        out / f"patching_{args.kind}.html",
        f"Activation patching over checkpoints: {run.path.name}",
        [Section(args.kind, text=note, figures=[figure])],
    )
    print(f"wrote {csv}\nwrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
