"""Tiny analysed runs for the figure, report, browser and notebook tests."""

from __future__ import annotations

import shutil

import pytest

from mbc_interp import Run, load_run, train
from mbc_interp.analysis import AnalysisConfig, analyze

from ..helpers import build_cfg

SMALL = AnalysisConfig(n_pairs=32, n_examples=64, patch_kinds=("head_out_all_pos", "resid_pre"))
"""What the figures need (routing scores, residual patching, logit lens), at a tiny cost."""


@pytest.fixture(scope="package")
def transitioned_run(tmp_path_factory) -> Run:
    """A tiny run through the whole story: plateau at log K, then the drop (about 3 s).
    Not analysed: copy it before writing to it."""
    return train(
        build_cfg(steps=1500, batch_size=64),
        tmp_path_factory.mktemp("viz") / "transitioned",
        progress=False,
    )


@pytest.fixture(scope="package")
def analysed(transitioned_run, tmp_path_factory) -> tuple[Run, object, dict]:
    """``(run, timeline, summary)``: a copy of the transitioned run, analysed with SMALL."""
    run = copy_run(transitioned_run, tmp_path_factory.mktemp("viz") / "analysed")
    table, summary = analyze(run, SMALL, progress=False)
    assert summary["status"] == "transitioned", summary["reason"]
    return run, table, summary


@pytest.fixture(scope="package")
def demo_like_run(transitioned_run, tmp_path_factory) -> Run:
    """A copy analysed with the default settings, as ``make demo`` leaves checkpoints/demo
    (the notebooks' incremental ``analyze`` then has nothing left to do). Copy it to write."""
    run = copy_run(transitioned_run, tmp_path_factory.mktemp("viz") / "demo_like")
    analyze(run, AnalysisConfig(), progress=False)
    return run


def copy_run(run: Run, dest) -> Run:
    shutil.copytree(run.path, dest)
    return load_run(dest)
