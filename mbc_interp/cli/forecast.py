"""``mbc forecast RUN``: the drop forecast of one run from its hidden progress (also while it
trains; ``mbc train`` shows it live on the progress line).

A run inside a sweep directory (``SWEEP/runs/NAME``) is forecast by analogy with the sweep's
other finished runs unless ``--references`` says otherwise (``--references`` with no value:
none, the extrapolation alone).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

HELP = "forecast a run's loss drop from its hidden progress (also while it trains)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", type=Path, metavar="RUN", help="run directory (may still be training)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--as-of",
        type=_step_value,
        metavar="STEP",
        help="use only the evaluations up to this step (replay a past moment)",
    )
    p.add_argument(
        "--references", type=Path, nargs="*", metavar="DIR",
        help="finished runs (run or sweep directories) to calibrate on; default: the other runs "
        "of RUN's sweep; with no value: none",
    )  # fmt: skip


def _step_value(text: str) -> float:
    """A training step for ``--as-of``: a finite number >= 0 (argparse names the flag)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (a training step)") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: must be a step >= 0")
    return value


def run(args: argparse.Namespace) -> int:
    from mbc_interp.analysis.timing.forecast_runs import forecast_run, sweep_references
    from mbc_interp.core.jsonsafe import json_safe
    from mbc_interp.store.run import load_run

    run = load_run(args.run)
    refs, used = sweep_references(run.path, args.references)
    fc = forecast_run(run, as_of=args.as_of, references=refs)
    if args.json:
        out = json_safe(fc.to_dict(run.config.tokens_per_step))
        print(json.dumps({**out, "references": [str(p) for p in used]}, indent=1))
        return 0
    print(_describe(fc, run.config.tokens_per_step))
    print(f"references: {len(refs)} runs" + (f" ({used[0].parent})" if used else ""))
    return 0


def _describe(fc, tokens_per_step: int) -> str:
    line = fc.describe()
    if fc.status == "forecast":
        line += f"\n= {fc.t_loss_forecast * tokens_per_step:,.0f} tokens; {fc.reason}"
        line += f"\n{fc.interval}"
    return line


def live_monitor(run: Path, log_k: float) -> Callable[[list[dict]], str | None]:
    """The progress line's forecast for ``mbc train`` (references: the sweep's other runs)."""
    import pandas as pd

    from mbc_interp.analysis.timing.forecast import forecast
    from mbc_interp.analysis.timing.forecast_runs import sweep_references

    refs, _ = sweep_references(run, None)

    def monitor(rows: list[dict]) -> str | None:
        fc = forecast(pd.DataFrame(rows), log_k, references=refs)
        if fc.status != "forecast":
            return None
        hi = "?" if fc.high is None else f"{fc.high:,.0f}"
        return f"drop forecast: step {fc.t_loss_forecast:,.0f} [{fc.low:,.0f}-{hi}]"

    return monitor
