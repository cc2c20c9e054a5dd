"""The notebooks and scripts in examples/ run, on a tiny configuration, so they cannot rot.

Notebooks read their parameters from environment variables (``MBC_EXAMPLE_RUN``: the run
directory; ``MBC_EXAMPLE_CONFIG``: a config file for 01 to train), which the kernel inherits.
They are committed with outputs stripped; that is checked too.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ..helpers import build_cfg, grokking_cfg
from .conftest import copy_run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


@pytest.fixture
def kernel_env(monkeypatch):
    """What the kernel inherits: one torch thread, and this checkout's package first."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(ROOT), path) if p))
    return monkeypatch


def execute(path: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": EXAMPLES}}
    )
    client.execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> str:
    return json.dumps([c.get("outputs", []) for c in notebook.cells])


def test_notebooks_are_committed_stripped():
    assert [p.name for p in NOTEBOOKS] == [
        "01_quickstart.ipynb", "02_patching.ipynb", "03_attention.ipynb", "04_sweep_fits.ipynb",
        "05_grokking.ipynb",
    ]  # fmt: skip
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


@pytest.mark.slow
def test_quickstart_trains_a_tiny_run(kernel_env, tmp_path):
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(build_cfg().to_dict()))
    kernel_env.setenv("MBC_EXAMPLE_RUN", str(tmp_path / "run"))
    kernel_env.setenv("MBC_EXAMPLE_CONFIG", str(config))
    notebook = execute(EXAMPLES / "01_quickstart.ipynb")
    assert (tmp_path / "run" / "manifest.json").is_file()
    text = outputs(notebook)
    assert "application/vnd.plotly.v1+json" in text and "log K = 1.3863" in text


@pytest.mark.slow
def test_grokking_notebook_trains_analyses_and_summarises(kernel_env, tmp_path):
    """A tiny modular-addition run trained, analysed with the task's own kind, its summary
    printed and drawn; the printed summary is the one written to the run."""
    config = tmp_path / "tiny_grokking.json"
    config.write_text(json.dumps(grokking_cfg().to_dict()))
    kernel_env.setenv("MBC_EXAMPLE_RUN", str(tmp_path / "run"))
    kernel_env.setenv("MBC_EXAMPLE_CONFIG", str(config))
    text = outputs(execute(EXAMPLES / "05_grokking.ipynb"))
    summary = json.loads((tmp_path / "run" / "analysis" / "summary.json").read_text())
    assert summary["transition_signal"] == "test_loss"
    for key in ("t_loss", "progress_signal", "t_progress", "t_progress_reason"):
        assert f"{key:>18}: {summary[key]}" in text, key
    assert "excluded_gain" in text and "a+b mod p=11" in text
    assert "not enough signal: task 'modular_addition'" in text
    assert text.count("application/vnd.plotly.v1+json") >= 4  # losses x2, progress, spectrum


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: relative name -> (modification time in ns, sha256)."""
    files = sorted(f for f in folder.rglob("*") if f.is_file())
    digest = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    return {str(f.relative_to(folder)): (f.stat().st_mtime_ns, digest[f]) for f in files}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["02_patching.ipynb", "03_attention.ipynb"])
def test_analysis_notebooks_run_and_leave_the_run_untouched(
    name, kernel_env, demo_like_run, tmp_path
):
    """On an analysed run they only read: no file of the run directory is added, rewritten or
    touched; 03's attention page goes to ``MBC_EXAMPLE_OUT``. tqdm finds ipywidgets."""
    run = copy_run(demo_like_run, tmp_path / "run")
    kernel_env.setenv("MBC_EXAMPLE_RUN", str(run.path))
    kernel_env.setenv("MBC_EXAMPLE_OUT", str(tmp_path / "out"))
    before = snapshot(run.path)
    text = outputs(execute(EXAMPLES / name))
    assert snapshot(run.path) == before
    assert "IProgress not found" not in text
    if name == "02_patching.ipynb":  # its patching heatmaps
        assert "application/vnd.plotly.v1+json" in text
    else:  # the circuitsvis views, inline and offline, and the saved page
        assert text.count("CircuitsVis.render") >= 2 and "unpkg.com" not in text
        page = tmp_path / "out" / f"attention_{run.path.name}.html"
        assert "CircuitsVis.render" in page.read_text()


@pytest.mark.slow
def test_sweep_notebook_on_the_committed_results(kernel_env):
    kernel_env.delenv("MBC_EXAMPLE_SWEEP", raising=False)
    text = outputs(execute(EXAMPLES / "04_sweep_fits.ipynb"))
    assert "application/vnd.plotly.v1+json" in text and "Plateau duration grows with D" in text
    assert "p(no dependence)" in text


@pytest.mark.slow
def test_sweep_notebook_on_a_sweep_directory(kernel_env, local_sweep):
    kernel_env.setenv("MBC_EXAMPLE_SWEEP", str(local_sweep))
    text = outputs(execute(EXAMPLES / "04_sweep_fits.ipynb"))
    assert "4 runs, 4 finished" in text


@pytest.mark.slow
def test_patch_over_checkpoints_script(transitioned_run, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    script = EXAMPLES / "patch_over_checkpoints.py"
    done = subprocess.run(
        [sys.executable, str(script), str(transitioned_run.path), "--kind", "resid_pre",
         "--every", "4", "--n-pairs", "16", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    csv = tmp_path / "patching_resid_pre.csv"
    assert f"wrote {csv}" in done.stdout
    assert (tmp_path / "patching_resid_pre.html").read_text().count("plotly-graph-div") == 1
