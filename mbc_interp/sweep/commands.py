"""``mbc sweep`` and ``mbc fit``: argument parsers and handlers (registered in ``mbc.cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mbc_interp.config import ConfigError
from mbc_interp.flags import add_config_flags, config_overrides


def add_sweep(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--status", action="store_true", help="print the points' states and exit")
    p.add_argument("--dry-run", action="store_true", help="list the points and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress lines")
    add_config_flags(p, multi=True)


def cmd_sweep(args: argparse.Namespace) -> int:
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
        spec = replace(spec, analysis=None)
    if args.dry_run:
        for p in spec.points:
            print(f"{p.name}  [{', '.join(p.labels)}]")
        print(f"{len(spec.points)} points")
        return 0
    outcomes = run_sweep(spec, args.out, workers=args.workers, backend=args.backend,
                         address=args.address, gpus_per_point=args.gpus_per_point,
                         progress=not args.no_progress)  # fmt: skip
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
        secs = f"{r['seconds']:6.0f}s" if r["seconds"] is not None else "       "
        print(f"{r['state']:8s} {secs}  {r['name']}{extra}")
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return 0


def add_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("sweep", type=Path, metavar="SWEEP", help="sweep directory")
    p.add_argument(
        "--results", type=Path,
        help="directory for runs.csv, fits.json, report.html and figures (default SWEEP/fit)",
    )  # fmt: skip
    p.add_argument("--doc", type=Path, help="markdown file whose generated section to rewrite "
                   "(e.g. REPRODUCTION.md)")  # fmt: skip
    p.add_argument("--noise", action="store_true",
                   help="instead of the scaling claims: the gradient-noise verdicts (runs "
                   "analysed with --kinds gradients; REPRODUCTION.md's noise section)")  # fmt: skip


def cmd_fit(args: argparse.Namespace) -> int:
    from mbc_interp.reproduction import fit_and_write, format_fits

    out = args.results or args.sweep / "fit"
    if args.noise:
        from mbc_interp.reproduction import noise_fit_and_write
        from mbc_interp.sweep.noise_text import format_verdicts

        verdicts, paths = noise_fit_and_write(args.sweep, out, args.doc)
        print(format_verdicts(verdicts))
        for p in paths:
            print(f"wrote {p}")
        return 0
    from mbc_interp.reproduction import progress_fit_and_write, sweep_task

    if sweep_task(args.sweep) != "wind_tunnel":  # no scaling claims: hidden progress only
        from mbc_interp.sweep.progress_text import level_table

        verdicts, paths = progress_fit_and_write(args.sweep, out, args.doc)
        print(level_table(verdicts).to_string(index=False))
        for p in paths:
            print(f"wrote {p}")
        return 0
    fits, paths = fit_and_write(args.sweep, out, args.doc)
    print(format_fits(fits))
    for p in paths:
        print(f"wrote {p}")
    return 0

