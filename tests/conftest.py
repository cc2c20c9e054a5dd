from __future__ import annotations

import os
from pathlib import Path

# Dependencies first, before mbc_interp: jaxtyping's import hook (pyproject's addopts) gives
# the modules imported while an instrumented mbc_interp module runs its own bytecode-cache name,
# so without a written cache (PYTHONDONTWRITEBYTECODE) torch, TransformerLens, pandas... were
# compiled from source at every session (~3,000 modules, ~6 s of CPU).
import beartype  # noqa: F401
import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import pytest
import torch
import torch.func
import transformer_lens  # noqa: F401

from mbc_interp import Run, train
from mbc_interp.sweep.runner import run_sweep

from .helpers import build_cfg, tiny_spec


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread for the whole session, set before any fixture runs (a session fixture
    set up before a package's thread fixture used to train on every core: on a shared 2-core
    machine, 20x the CPU time), and for every process the tests start (CLI runs, sweep workers,
    notebook kernels)."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Run:
    """A finished tiny run (about two seconds), shared read-only by the tests."""
    return train(build_cfg(), tmp_path_factory.mktemp("runs") / "tiny", progress=False)


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory) -> Path:
    """A finished 4-point tiny sweep on the local backend (2 workers), every run through its
    transition (what the fits need; ~25 s of CPU: the slow tests)."""
    out = tmp_path_factory.mktemp("sweep") / "local"
    outcomes = run_sweep(tiny_spec(), out, workers=2, progress=False)
    assert [o["status"] for o in outcomes] == ["done"] * 4, outcomes
    return out


@pytest.fixture(scope="session")
def short_sweep(tmp_path_factory) -> Path:
    """The same 4 points, analysed, on the same backend, cut at 40 steps (no transition): for
    the tests of the runner itself. Most of its cost is two worker processes importing."""
    out = tmp_path_factory.mktemp("sweep") / "short"
    outcomes = run_sweep(tiny_spec(steps=40), out, workers=2, progress=False)
    assert [o["status"] for o in outcomes] == ["done"] * 4, outcomes
    return out
