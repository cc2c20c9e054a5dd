"""``mbc sweep``: run a grid of runs (a local pool or Ray), each trained and analysed; resumable
(done points are skipped, unfinished runs resume from their last checkpoint)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mbc_interp.cli.flags import add_config_flags, config_overrides
from mbc_interp.config import ConfigError

HELP = "run a grid of runs (local pool or Ray), each trained and analysed; resumable"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mbc_interp.sweep.runner import BACKENDS

    p.add_argument(
        "--config", type=Path, help="sweep file (TOML/JSON): [base], [analysis], [[grid]]"
    )
    p.add_argument("--out", type=Path, required=True, help="sweep directory (created or resumed)")
    p.add_argument("--workers", type=int, help="parallel runs (default: cores / threads per run)")
    p.add_argument("--backend", choices=BACKENDS, default="local", help="where points run")
    p.add_argument("--address", help="Ray cluster address (backend ray; default: start one)")
    p.add_argument("--gpus-per-point", type=float, default=1.0,
                   help="GPU share each CUDA run declares to Ray (0.25: four per GPU)")  # fmt: skip
    p.add_argument("--no-analysis", action="store_true", help="train only, skip the analysis")
    p.add_argument("--records", type=Path, metavar="DIR",
                   help="keep each finished run's record (its files but the weights) under DIR "
                   "and restore points recorded there as done: a sweep that outlives its "
                   "machine, its records committed (e.g. results/NAME/records)")  # fmt: skip
    p.add_argument("--status", action="store_true", help="print the points' states and exit")
    p.add_argument("--dry-run", action="store_true", help="list the points and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    add_config_flags(p, multi=True)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from mbc_interp.sweep.grid import SweepSpec
    from mbc_interp.sweep.runner import run_sweep, sweep_status

    if args.status:
        return _print_status(sweep_status(args.out))
    overrides = config_overrides(args)
    if args.config:
        spec = SweepSpec.from_file(args.config)
        if overrides:
            spec = spec.with_grid_overrides(overrides)
    elif overrides:
        spec = SweepSpec(grids=(overrides,), source="command-line flags")
    else:
        raise ConfigError("give a grid: --config FILE or flags with values, e.g. --D 250 500")
    if args.no_analysis:
        spec = replace(spec, analysis=None, passes=())
    if args.dry_run:
        for p in spec.points:
            print(f"{p.name}  [{', '.join(p.labels)}]")
        print(f"{len(spec.points)} points")
        return 0
    outcomes = run_sweep(spec, args.out, workers=args.workers, backend=args.backend,
                         address=args.address, gpus_per_point=args.gpus_per_point,
                         progress=not args.no_progress, records=args.records)  # fmt: skip
    failed = [o for o in outcomes if o["status"] == "failed"]
    diverged = [o for o in outcomes if o["status"] == "diverged"]
    print(f"{args.out}: {len(spec.points)} points, {len(outcomes)} run now, {len(failed)} failed"
          + (f", {len(diverged)} diverged (no fit counts them)" if diverged else ""))  # fmt: skip
    for o in failed:
        print(f"  FAILED {o['name']}: {o['error']}")
    for o in diverged:
        print(f"  DIVERGED {o['name']}: {o['error']}")
    return 1 if failed else 0


def _print_status(rows: list[dict]) -> int:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
        extra = f"  {r['error']}" if r["error"] else ""
        if r["state"] == "started":
            extra = ("  trained, analysing" if r["trained"] else
                     f"  step {r['step']:,} of {r['steps']:,}" if r["step"] is not None else "")
        secs = f"{r['seconds']:6.0f}s" if r["seconds"] is not None else "       "
        print(f"{r['state']:8s} {secs}  {r['name']}{extra}")
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0
