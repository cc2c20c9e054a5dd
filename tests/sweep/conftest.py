from __future__ import annotations

from pathlib import Path

import pytest

from mbc_interp.sweep.grid import SweepSpec
from mbc_interp.sweep.runner import run_sweep

from ..helpers import build_cfg


def tiny_spec(grids: tuple[dict, ...] | None = None, analysis: bool = True, **train) -> SweepSpec:
    """A sweep of tiny runs (2-3 s each, through their transition): D 24 and 32, seeds 0, 1."""
    base = build_cfg(steps=train.pop("steps", 400), **train).to_dict()
    grids = grids or ({"task": {"D": [24, 32]}, "train": {"seed": [0, 1]}},)
    spec = SweepSpec(grids=grids, base=base)
    return spec if analysis else SweepSpec(grids=grids, base=base, analysis=None)


@pytest.fixture(scope="session")
def local_sweep(tmp_path_factory) -> Path:
    """A finished 4-point tiny sweep on the local backend (2 workers)."""
    out = tmp_path_factory.mktemp("sweep") / "local"
    outcomes = run_sweep(tiny_spec(), out, workers=2, progress=False)
    assert [o["status"] for o in outcomes] == ["done"] * 4, outcomes
    return out
