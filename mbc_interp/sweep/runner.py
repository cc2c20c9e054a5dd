"""Run a sweep: every point an ordinary run directory, trained then analysed, on a backend.

Layout of a sweep directory::

    SWEEP/sweep.json            the spec (base, analysis, grids) and the point list
    SWEEP/runs/<point>/         an ordinary run directory (see checkpoints/README.md)
    SWEEP/points/<point>.json   the point's outcome: done, diverged (its loss or weights became
                                NaN/inf: the run stopped, no fit counts it) or failed (error
                                and traceback)

A point is done (or diverged) once its outcome file says so; re-running the sweep skips those and
resumes unfinished runs from their last checkpoint, so a sweep stopped at any moment (Ctrl-C,
a killed worker, a lost node) continues where it stopped. A failed point is recorded and the
others go on; it is tried again on the next run of the sweep.

With a records directory (``records=``), each finished point's record (its run directory
without the weights: :mod:`mbc_interp.store.records`) is kept there as it finishes, and points
recorded there are restored as done when the sweep starts: a sweep that runs for days across
machines whose sweep directories are lost goes on from its committed records.

Backends: ``"local"`` (default), a pool of ``spawn``-ed worker processes on this machine;
``"ray"``, one Ray task per point with its resources declared (``num_cpus`` = the run's
threads, ``num_gpus`` when it trains on CUDA), all writing to a directory every node sees.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.core.files import atomic_write
from mbc_interp.store.layout import (
    ANALYSIS_DIR,
    POINTS_DIR,
    RECORD_ARCHIVE_FILE,
    RUNS_DIR,
    STEPS_DIR,
    SWEEP_FILE,
)
from mbc_interp.store.records import (
    read_record_outcome,
    record_config,
    restore_record,
    write_record,
)
from mbc_interp.store.run_store import RunStore, RunStoreError
from mbc_interp.sweep.backends import run_local, run_ray
from mbc_interp.sweep.grid import Point, SweepSpec
from mbc_interp.sweep.point import record_outcome

SPEC_FILE = SWEEP_FILE
RESTORED = "restored_from"
"""The outcome key naming the record a point was restored from (never kept in the record)."""

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = ("local", "ray")
FINAL = ("done", "diverged")
"""Outcomes a re-run keeps (training is deterministic: a diverged point would diverge again)."""


def default_workers(threads: int = 1) -> int:
    """Worker processes that fit this machine: its usable cores over each run's threads."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, threads))


# -- the sweep --------------------------------------------------------------------------------
@dataclass
class SweepProgress:
    """Counts for the progress line; ``eta`` from the mean time of points finished so far."""

    total: int
    skipped: int
    workers: int
    started: float
    done: int = 0
    failed: int = 0
    diverged: int = 0
    running: int = 0
    seconds: float = 0.0

    @property
    def remaining(self) -> int:
        return self.total - self.skipped - self.done - self.failed - self.diverged

    def eta(self) -> float | None:
        finished = self.done + self.failed + self.diverged
        if not finished:
            return None
        # wall seconds per point, each worker busy with one point at a time
        return self.seconds / finished * max(0, self.remaining) / max(1, self.workers)

    def line(self) -> str:
        eta = self.eta()
        return (
            f"[sweep] {self.done + self.skipped}/{self.total} done"
            + (f" ({self.skipped} earlier)" if self.skipped else "")
            + f", {self.running} running, {self.failed} failed"
            + (f", {self.diverged} diverged" if self.diverged else "")
            + f", {self.remaining} to go"
            + f" | elapsed {_hms(time.time() - self.started)}"
            + (f" | ETA {_hms(eta)}" if eta is not None and self.remaining else "")
        )


def _hms(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def prepare(spec: SweepSpec, out: str | Path) -> list[dict[str, Any]]:
    """Write the spec to ``out`` and return every point's task (plain, picklable dicts).

    A sweep directory may grow (new grids, more seeds); a point whose name is already there
    with a different config is an error that names it."""
    out = Path(out).resolve()
    points = spec.points
    previous = _read_spec(out)
    if previous is not None:
        old = {p["name"]: p["config"] for p in previous.get("points", [])}
        for p in points:
            if p.name in old and RunConfig.from_dict(old[p.name], p.name) != p.config:
                raise ConfigError(
                    f"{out / SPEC_FILE}: point {p.name!r} already exists with a different "
                    "config; use another --out (or delete that point's run and outcome)"
                )
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    (out / POINTS_DIR).mkdir(exist_ok=True)
    listed = {p.name: p for p in points}
    if previous is not None:  # keep earlier points in the listing so `mbc fit` still sees them
        for old_point in previous.get("points", []):
            listed.setdefault(old_point["name"], _point_from_dict(old_point))
    record = {**spec.to_dict(), "points": [_point_dict(p) for p in listed.values()]}
    atomic_write(out / SPEC_FILE, (json.dumps(record, indent=1) + "\n").encode())
    analysis = None if spec.analysis is None else spec.analysis.to_dict()
    return [
        {
            "name": p.name,
            "config": p.config.to_dict(),
            "run_dir": str(out / RUNS_DIR / p.name),
            "outcome_path": str(out / POINTS_DIR / f"{p.name}.json"),
            "analysis": analysis,
            "passes": [q.to_dict() for q in spec.passes],
            "threads": p.config.train.threads or 1,
            "cuda": p.config.train.device == "cuda",
        }
        for p in points
    ]


def _point_dict(p: Point) -> dict[str, Any]:
    return {"name": p.name, "labels": list(p.labels), "config": p.config.to_dict()}


def _point_from_dict(d: dict[str, Any]) -> Point:
    return Point(d["name"], RunConfig.from_dict(d["config"], d["name"]), tuple(d["labels"]))


def _read_spec(out: Path) -> dict[str, Any] | None:
    path = out / SPEC_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e})") from e


def read_outcome(path: str | Path) -> dict[str, Any] | None:
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None  # unreadable: treat as not done (atomic writes make this rare)


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    workers: int | None = None,
    backend: Backend = "local",
    address: str | None = None,
    gpus_per_point: float = 1.0,
    progress: bool = True,
    records: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Run every point of ``spec`` not already done under ``out``; returns this call's outcomes
    in grid order, whatever order the workers finished in (done points skipped, failures
    recorded with their error, the rest still run).

    ``gpus_per_point`` (Ray): the GPU share each CUDA run declares; 0.25 packs four of these
    small models on one GPU. ``records``: where finished points' records are kept and restored
    from (see the module docstring)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend = {backend!r}: must be one of {BACKENDS}")
    tasks = prepare(spec, out)
    if records is not None:
        sync_records(tasks, Path(records))
    for t in tasks:
        t["gpus"] = gpus_per_point if t["cuda"] else 0
    pending = [t for t in tasks
               if (read_outcome(t["outcome_path"]) or {}).get("status") not in FINAL]  # fmt: skip
    threads = max((t["threads"] for t in tasks), default=1)
    workers = workers or default_workers(threads)
    if workers < 1:
        raise ConfigError(f"workers = {workers}: must be >= 1")
    state = SweepProgress(len(tasks), len(tasks) - len(pending), workers, time.time())
    say: Callable[[str], None] = (lambda s: print(s, file=sys.stderr, flush=True)) if progress \
        else (lambda s: None)  # fmt: skip
    say(state.line())
    outcomes: list[dict[str, Any]] = []
    starts: dict[str, float] = {}
    by_name = {t["name"]: t for t in tasks}
    run = run_local(pending, workers) if backend == "local" else run_ray(pending, address)
    for event, outcome in run:
        if event == "start":
            state.running += 1
            starts[outcome["name"]] = time.time()
        else:
            state.running -= 1
            state.seconds += time.time() - starts.pop(outcome["name"], time.time())
            if records is not None and outcome["status"] in FINAL:
                write_record(by_name[outcome["name"]]["run_dir"], outcome,
                             Path(records) / outcome["name"])  # fmt: skip
            if outcome["status"] == "done":
                state.done += 1
            elif outcome["status"] == "diverged":
                state.diverged += 1
                say(f"[sweep] DIVERGED {outcome['name']}: {outcome['error']}")
            else:
                state.failed += 1
                say(f"[sweep] FAILED {outcome['name']}: {outcome['error']}")
            outcomes.append(outcome)
        say(state.line())
    order = {t["name"]: i for i, t in enumerate(pending)}
    return sorted(outcomes, key=lambda o: order.get(o["name"], len(order)))


def sync_records(tasks: list[dict[str, Any]], records: Path) -> None:
    """Restore each point recorded under ``records`` and not finished here (its config checked
    against the point's), and keep the record of each point finished here up to date."""
    for task in tasks:
        record = records / task["name"]
        outcome = read_outcome(task["outcome_path"]) or {}
        if outcome.get("status") in FINAL:
            if Path(task["run_dir"]).is_dir():  # as recorded: where it was restored from is local
                kept = {k: v for k, v in outcome.items() if k != RESTORED}
                write_record(task["run_dir"], kept, record)
            continue
        kept = read_record_outcome(record)
        if kept is None or kept.get("status") not in FINAL:
            continue
        source = str(record / RECORD_ARCHIVE_FILE)
        saved = RunConfig.from_dict(record_config(record).get("config", {}), source)
        if saved != RunConfig.from_dict(task["config"], task["name"]):
            raise ConfigError(f"{source}: point {task['name']!r} is recorded with a different "
                              "config than the sweep's; move the record away or rename the "
                              "sweep")  # fmt: skip
        restore_record(record, task["run_dir"])
        _rebuild_derived(Path(task["run_dir"]))
        record_outcome(task, {**kept, RESTORED: str(record)})


def _rebuild_derived(run_dir: Path) -> None:
    """The files a record leaves out because they are derived: the analysis timeline."""
    if (run_dir / ANALYSIS_DIR / STEPS_DIR).is_dir():
        from mbc_interp.analysis.timeline import write_timeline
        from mbc_interp.store.run import load_run

        write_timeline(load_run(run_dir))


def sweep_status(out: str | Path) -> list[dict[str, Any]]:
    """Every listed point's state: ``done``, ``diverged`` or ``failed`` (with the error and the
    seconds it took), ``started`` (a run directory without an outcome: running now, or
    interrupted; with its last evaluated ``step`` of ``steps``, and ``trained`` once its training
    has ended and it is being analysed) or ``pending``."""
    out = Path(out)
    spec = _read_spec(out)
    if spec is None:
        raise ConfigError(f"{out}: not a sweep directory (no {SPEC_FILE})")
    rows = []
    for p in spec["points"]:
        outcome = read_outcome(out / POINTS_DIR / f"{p['name']}.json")
        if outcome is not None:
            state = outcome["status"]
        elif (out / RUNS_DIR / p["name"]).exists():
            state = "started"
        else:
            state = "pending"
        row = {"name": p["name"], "labels": p["labels"], "state": state,
               "error": (outcome or {}).get("error"), "seconds": (outcome or {}).get("seconds"),
               "step": None, "steps": p["config"]["train"]["steps"], "trained": False}  # fmt: skip
        if state == "started":
            row.update(_training_progress(out / RUNS_DIR / p["name"]))
        rows.append(row)
    return rows


def _training_progress(run_dir: Path) -> dict[str, Any]:
    """A started run's last evaluated step and whether its training has ended (its manifest
    says finished: the point is being analysed)."""
    store = RunStore(run_dir)
    last = store.last_metrics()
    try:
        trained = store.read_manifest().status == "finished"
    except RunStoreError:  # not written yet, or mid-write
        trained = False
    return {"step": None if last is None else int(last["step"]), "trained": trained}


def done_points(out: str | Path) -> Iterable[tuple[dict[str, Any], Path]]:
    """``(point record, run directory)`` for every finished point whose run directory exists."""
    for point, run_dir in iter_points(out):
        outcome = read_outcome(Path(out) / POINTS_DIR / f"{point['name']}.json") or {}
        if outcome.get("status") == "done" and run_dir.exists():
            yield point, run_dir


def iter_points(out: str | Path) -> Iterable[tuple[dict[str, Any], Path]]:
    """``(point record, run directory)`` for every point listed in a sweep directory."""
    out = Path(out)
    spec = _read_spec(out)
    if spec is None:
        raise ConfigError(f"{out}: not a sweep directory (no {SPEC_FILE})")
    for p in spec["points"]:
        yield p, out / RUNS_DIR / p["name"]
