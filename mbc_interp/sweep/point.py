"""One sweep point, in a worker process or a Ray task (plain data in, plain data out): train or
resume its run, analyse it with the sweep's settings and passes, and write its outcome file."""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path
from typing import Any

from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.core.files import atomic_write
from mbc_interp.sweep.grid import AnalysisPass


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
    return record_outcome(task, outcome)


def record_outcome(task: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    """Write a point's outcome file (atomically) and return the outcome."""
    atomic_write(Path(task["outcome_path"]), (json.dumps(outcome, indent=1) + "\n").encode())
    return outcome


def died(task: dict[str, Any], why: str, error: Exception) -> dict[str, Any]:
    """Record a point whose process died before it could record itself."""
    return record_outcome(task, {"name": task["name"], "status": "failed", "seconds": 0.0,
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
