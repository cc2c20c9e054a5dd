"""The drop forecast of a run, with references from its sweep: what ``mbc forecast`` and the
run report show (the rules are :mod:`mbc_interp.analysis.timing.forecast`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from mbc_interp.analysis.timing.forecast import (
    COMMITTED,
    SIGNAL,
    Forecast,
    Reference,
    forecast,
    forecast_signal,
)
from mbc_interp.store.layout import is_run_dir, is_sweep_dir, sweep_run_dirs
from mbc_interp.store.run import load_run
from mbc_interp.store.run_store import RunStoreError


def sweep_references(run: Path, given: list[Path] | None) -> tuple[list[Reference], list[Path]]:
    """The references of a forecast of ``run`` and their directories (never ``run`` itself):
    the finished runs in ``given`` (run or sweep directories), or by default the other runs of
    the sweep ``run`` belongs to (``SWEEP/runs/NAME``; none for a run outside a sweep)."""
    if given is None:
        sweep = run.resolve().parent.parent
        dirs = list(sweep_run_dirs(sweep)) if is_sweep_dir(sweep) else []
    else:
        dirs = []
        for d in given:
            if is_sweep_dir(d):
                dirs += sweep_run_dirs(d)
            elif is_run_dir(d):
                dirs.append(d)
            else:
                raise ValueError(f"--references {d}: neither a run nor a sweep directory")
    refs, used = [], []
    for d in dirs:
        if d.resolve() == run.resolve() or not is_run_dir(d):
            continue
        try:
            r = load_run(d)
        except RunStoreError:
            continue
        level = getattr(r.config.task, "log_k", None)  # a task resting at a level
        ref = None if level is None else Reference.from_metrics(r.metrics, level)
        if ref is not None:
            refs.append(ref)
            used.append(d)
    return refs, used


def forecast_run(
    run: Any,
    *,
    as_of: float | int | None = None,
    references: Sequence[Reference] = (),
    metrics: pd.DataFrame | None = None,
) -> Forecast:
    """The forecast of a run's drop from its task's primary signal (:func:`forecast_signal`),
    with the committed calibration where that is the signal it was measured on (:data:`SIGNAL`)
    and none otherwise (an open interval); ``not_enough_signal`` naming the task, the signal and
    why where its signal does not fit the forecast's model."""
    task = run.task
    m = run.metrics if metrics is None else metrics
    signal = forecast_signal(task)
    if isinstance(signal, str):
        return Forecast("not_enough_signal", None, None, None, None, None, signal)
    calibration = COMMITTED if signal == SIGNAL else None
    return forecast(m, task.transition, signal=signal, as_of=as_of, references=references,
                    calibration=calibration)  # fmt: skip
