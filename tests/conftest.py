from __future__ import annotations

from pathlib import Path

import pytest

from mbc_interp import Run, train
from mbc_interp.sweep.runner import run_sweep

from .helpers import build_cfg, tiny_spec


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Run:
    """A finished tiny run (about two seconds), shared read-only by the tests."""
    return train(build_cfg(), tmp_path_factory.mktemp("runs") / "tiny", progress=False)


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory) -> Path:
    """A finished 4-point tiny sweep on the local backend (2 workers)."""
    out = tmp_path_factory.mktemp("sweep") / "local"
    outcomes = run_sweep(tiny_spec(), out, workers=2, progress=False)
    assert [o["status"] for o in outcomes] == ["done"] * 4, outcomes
    return out
