"""Where a sweep's points run: ``local``, a pool of ``spawn``-ed worker processes on this
machine; ``ray``, one Ray task per point with its resources declared. Each yields ``("start",
{"name": ...})`` as a point starts and ``("end", outcome)`` as it ends."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Literal

from mbc_interp.config import ConfigError
from mbc_interp.sweep.point import died, run_point

Event = tuple[Literal["start", "end"], dict[str, Any]]


def run_local(tasks: list[dict[str, Any]], workers: int) -> Iterator[Event]:
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
        return died(task, "worker process died", e)


def run_ray(tasks: list[dict[str, Any]], address: str | None) -> Iterator[Event]:
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
                outcome = died(task, "ray task died", e)
            yield "end", outcome
