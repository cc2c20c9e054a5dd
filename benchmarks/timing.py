"""The timing loop the benchmarks share: median wall and CPU seconds after one warm-up call."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """``(wall, cpu)`` medians of ``repeats`` calls of ``fn`` after one warm-up call (CPU time
    beside wall time: the machine may be shared)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)
