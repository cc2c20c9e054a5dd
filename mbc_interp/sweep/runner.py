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
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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
from mbc_interp.sweep.grid import AnalysisPass, Point, SweepSpec

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


# -- one point (runs in a worker process or a Ray task: plain data in, plain data out) ---------
def run_point(task: dict[str, Any]) -> dict[str, Any]:
    """Train (or resume) one point's run, analyse it, and record the outcome file.

    Never raises: an error becomes ``{"status": "failed", "error": ..., "traceback": ...}``."""
    started = time.time()
    outcome: dict[str, Any] = {"name": task["name"], "started": started, "pid": os.getpid()}
    try:
        outcome.update(_train_and_analyse(task))
        outcome["status"] = "diverged" if outcome["run_status"] == "diverged" else "done"
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        outcome.update(status="failed", error=f"{type(e).__name__}: {e}",
                       traceback=traceback.format_exc())  # fmt: skip
    outcome["seconds"] = time.time() - started
    return _record(task, outcome)


def _record(task: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """Write a point's outcome file (atomically) and return the outcome."""
    atomic_write(Path(task["outcome_path"]), (json.dumps(outcome, indent=1) + "\n").encode())
    return outcome


def _died(task: dict[str, Any], why: str, error: Exception) -> dict[str, Any]:
    """Record a point whose process died before it could record itself."""
    return _record(task, {"name": task["name"], "status": "failed", "seconds": 0.0,
                          "error": f"{why}: {type(error).__name__}: {error}"})  # fmt: skip


def _train_and_analyse(task: dict[str, Any]) -> dict[str, Any]:
    from mbc_interp.analysis.timeline import AnalysisConfig, analyze, task_parts
    from mbc_interp.store.run import load_run
    from mbc_interp.store.run_store import RunStore
    from mbc_interp.training import resume, train

    config = RunConfig.from_dict(task["config"], f"sweep point {task['name']}")
    out = Path(task["run_dir"])
    info: dict[str, Any] = {}
    t0 = time.time()
    if RunStore(out).exists():
        run = load_run(out)
        if run.config != config:
            raise ConfigError(f"{out}: holds a run with a different config than this point")
        if run.status == "running":
            run = resume(out, progress=False)
            info["resumed"] = True
    else:
        run = train(config, out, progress=False)
    info["train_seconds"] = time.time() - t0
    info["run_status"] = run.status
    if run.status == "diverged":  # nothing to analyse: say why in the outcome
        info["error"] = f"diverged: {run.manifest.stop_reason}"
        return info
    # a task without analyses of its own (the wind tunnel's forward control) is trained only
    if task.get("analysis") is not None and task_parts(run.task, AnalysisConfig()):
        t0 = time.time()
        base = AnalysisConfig.from_dict(task["analysis"])
        _, summary = analyze(run, base, progress=False)
        for data in task.get("passes", ()):
            p = AnalysisPass.from_dict(data, f"sweep point {task['name']}")
            start = run.steps[-1] if p.at == "last" else None
            _, summary = analyze(run, p.config(base), every=p.every, start=start, progress=False)
        info["analyze_seconds"] = time.time() - t0
        info["transition"] = summary["status"]
    return info


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
    run = _run_local(pending, workers) if backend == "local" else _run_ray(pending, address)
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
        _record(task, {**kept, RESTORED: str(record)})


def _rebuild_derived(run_dir: Path) -> None:
    """The files a record leaves out because they are derived: the analysis timeline."""
    if (run_dir / ANALYSIS_DIR / STEPS_DIR).is_dir():
        from mbc_interp.analysis.timeline import write_timeline
        from mbc_interp.store.run import load_run

        write_timeline(load_run(run_dir))


Event = tuple[Literal["start", "end"], dict[str, Any]]


def _run_local(tasks: list[dict[str, Any]], workers: int) -> Iterator[Event]:
    """A pool of ``spawn``-ed worker processes (each run sets its own seed and threads).

    If a worker dies outright (killed, out of memory) the pool breaks: the points it was running
    are recorded as failed and a new pool takes the rest."""
    queue = list(tasks)
    ctx = multiprocessing.get_context("spawn")
    while queue:
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            running: dict[Future, dict[str, Any]] = {}
            try:
                while queue or running:
                    while queue and len(running) < workers and not _broken(pool):
                        task = queue.pop(0)
                        running[pool.submit(run_point, task)] = task
                        yield "start", {"name": task["name"]}
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        yield "end", _result(future, running.pop(future))
                    if _broken(pool) and not running:
                        break  # a fresh pool for what is left
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise


def _broken(pool: ProcessPoolExecutor) -> bool:
    return bool(getattr(pool, "_broken", False))


def _result(future: Future, task: dict[str, Any]) -> dict[str, Any]:
    """The worker's outcome, or a failure record if the worker itself died (killed, OOM)."""
    try:
        return future.result()
    except Exception as e:  # BrokenProcessPool and friends: the point never recorded itself
        return _died(task, "worker process died", e)


def _run_ray(tasks: list[dict[str, Any]], address: str | None) -> Iterator[Event]:
    """One Ray task per point, resources declared; uses a running Ray if one is initialised."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError(
            "backend 'ray' needs Ray: pip install 'mbc-interp[ray]'"
        ) from e
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    refs = {}
    for task in tasks:
        remote = ray.remote(num_cpus=task["threads"], num_gpus=task["gpus"])
        refs[remote(run_point).options(name=task["name"]).remote(task)] = task
        yield "start", {"name": task["name"]}
    while refs:
        ready, _ = ray.wait(list(refs), num_returns=1)
        for ref in ready:
            task = refs.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as e:  # the task's process died (run_point itself never raises)
                outcome = _died(task, "ray task died", e)
            yield "end", outcome


def sweep_status(out: str | Path) -> list[dict[str, Any]]:
    """Every listed point's state: ``done``, ``diverged`` or ``failed`` (with the error or the
    step), ``started`` (a run
    directory without an outcome: running now, or interrupted) or ``pending``."""
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
        rows.append({"name": p["name"], "labels": p["labels"], "state": state,
                     "error": (outcome or {}).get("error"),
                     "seconds": (outcome or {}).get("seconds")})  # fmt: skip
    return rows


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
