"""The file and directory names of runs and sweeps: what a run directory holds is named by
:mod:`mbc_interp.store.layout`, its helpers find runs and sweeps, and no other module types
those names."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from mbc_interp.store import layout
from mbc_interp.store.layout import (
    CHECKPOINT_DIR,
    CONFIG_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    SWEEP_FILE,
    is_run_dir,
    is_sweep_dir,
    point_file,
    sweep_run_dir,
    sweep_run_dirs,
    weights_file,
)

PACKAGE = Path(__file__).resolve().parents[1] / "mbc_interp"
FILE_NAMES = {v for k, v in vars(layout).items() if k.endswith("_FILE") or k == "RUNS_TABLE"}
STILL_TYPED: set[str] = set()
"""Modules that type some of the names themselves; no other may."""


def test_a_trained_run_holds_the_named_files(tiny_run):
    files = {p.relative_to(tiny_run.path).as_posix() for p in tiny_run.path.rglob("*")}
    assert {CONFIG_FILE, METRICS_FILE, MANIFEST_FILE, CHECKPOINT_DIR} <= files
    assert {weights_file(s) for s in tiny_run.steps} <= files
    assert is_run_dir(tiny_run.path) and not is_sweep_dir(tiny_run.path)


def test_sweep_helpers_find_the_runs_of_a_sweep(tiny_run, tmp_path):
    sweep = tmp_path / "sweep"
    (sweep / "runs" / "b").mkdir(parents=True)
    (sweep / "runs" / "a").symlink_to(tiny_run.path, target_is_directory=True)
    (sweep / "runs" / "stray.txt").write_text("")
    assert not is_sweep_dir(sweep)
    (sweep / SWEEP_FILE).write_text(json.dumps({"points": []}))
    assert is_sweep_dir(sweep) and not is_run_dir(sweep)
    assert list(sweep_run_dirs(sweep)) == [sweep_run_dir(sweep, "a"), sweep_run_dir(sweep, "b")]
    assert point_file(sweep, "a") == sweep / "points" / "a.json"
    assert is_run_dir(sweep_run_dir(sweep, "a")) and not is_run_dir(sweep_run_dir(sweep, "b"))
    assert list(sweep_run_dirs(tmp_path / "nowhere")) == []


def test_no_other_module_types_a_file_name_of_the_layout():
    typed = {}
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = file.relative_to(PACKAGE).as_posix()
        if rel == "store/layout.py" or rel in STILL_TYPED:
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Constant) and node.value in FILE_NAMES:
                typed.setdefault(rel, []).append(f"{node.value!r} (line {node.lineno})")
    assert not typed, f"import these names from mbc_interp.store.layout: {typed}"
