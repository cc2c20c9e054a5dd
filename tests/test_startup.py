"""Start-up stays light: importing the package, building every command's parser (``mbc --help``,
``mbc CMD --help``) and ``mbc info RUN`` never import torch or TransformerLens (seconds each;
``benchmarks/bench_startup.py`` times it). Checked in a fresh interpreter through
``sys.modules``, not with a clock, so the test means the same on a loaded machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformer_lens")


def _heavy_loaded(code: str) -> dict[str, bool]:
    """Run ``code`` in a fresh interpreter; which of :data:`HEAVY` it left imported."""
    probe = f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", code + probe], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


NONE = dict.fromkeys(HEAVY, False)


@pytest.mark.parametrize(
    "code",
    [
        "import mbc_interp",
        "import mbc_interp.cli",
        "import mbc_interp.analysis, mbc_interp.viz, mbc_interp.sweep",
        "from mbc_interp import ConfigError, ModelConfig, RunConfig, TaskConfig, load_run",
        "from mbc_interp.analysis import AnalysisConfig, SITE_KINDS",
    ],
)
def test_imports_leave_torch_and_transformer_lens_unloaded(code):
    assert _heavy_loaded(code) == NONE


def test_every_commands_help_leaves_torch_and_transformer_lens_unloaded():
    code = (
        "import contextlib, io\n"
        "from mbc_interp.cli import COMMANDS, main\n"
        "for argv in [['--help'], *[[c, '--help'] for c in COMMANDS]]:\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "assert len(COMMANDS) >= 8\n"
    )
    assert _heavy_loaded(code) == NONE


def test_info_reads_a_run_without_torch(tiny_run):
    code = f"from mbc_interp.cli import main\nassert main(['info', {str(tiny_run.path)!r}]) == 0"
    assert _heavy_loaded(code) == NONE


def test_building_a_model_loads_them():
    """The probe can see a heavy import: building a model does load torch and TL."""
    code = (
        "from mbc_interp import ModelConfig, build_model\n"
        "build_model(ModelConfig(n_layers=1, d_model=8, n_heads=2, d_mlp=None), 5, 4)"
    )
    assert _heavy_loaded(code) == dict.fromkeys(HEAVY, True)


# -- the lazy exports -------------------------------------------------------------------------
def test_exports_shadowing_a_submodule_stay_the_export():
    """``analysis.logit_lens`` (the function) survives ``analysis/logit_lens.py`` being
    imported, and so does ``viz.run_report``."""
    import importlib

    import mbc_interp.analysis
    import mbc_interp.viz

    for package, name in [(mbc_interp.analysis, "logit_lens"), (mbc_interp.viz, "run_report")]:
        module = importlib.import_module(f"{package.__name__}.{name}")
        assert isinstance(module, types.ModuleType)
        assert callable(getattr(package, name))
        assert not isinstance(getattr(package, name), types.ModuleType)
        assert getattr(package, name) is getattr(module, name)


@pytest.mark.parametrize("package", ["mbc_interp", "mbc_interp.analysis", "mbc_interp.viz"])
def test_every_export_resolves(package):
    import importlib

    mod = importlib.import_module(package)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name
        assert name in dir(mod)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mod.nope  # noqa: B018
