"""Analysis kinds are found by looking: every module of ``analysis/kinds/`` declares ``KIND``
and is registered, so a new analysis is one module and no list is edited."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mbc_interp.analysis.kinds
from mbc_interp.analysis import AnalysisConfig, registry
from mbc_interp.analysis.registry import (
    KINDS_PACKAGE,
    ExtraKind,
    build_settings,
    discover_kinds,
    extra_kinds,
    get_kind,
    kind_names,
    summary_kinds,
)

ROOT = Path(__file__).resolve().parents[2]
NORM = '''
from dataclasses import dataclass

from mbc_interp.analysis.registry import ExtraKind


@dataclass(frozen=True)
class NormSettings:
    scale: float = 1.0


KIND = ExtraKind(name="norm", run="toy.rows:norm", settings=NormSettings,
                 cost=lambda s, c: 1.0, summary="toy.rows:entry", help="a weight norm")
'''


def _kind_modules() -> list[str]:
    path = mbc_interp.analysis.kinds.__path__
    return [m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")]


def test_every_module_of_the_kinds_package_declares_a_registered_kind():
    modules = _kind_modules()
    assert len(modules) >= 10
    declared = {}
    for name in modules:
        kind = importlib.import_module(f"{KINDS_PACKAGE}.{name}").KIND
        assert isinstance(kind, ExtraKind), name
        declared[kind.name] = kind
    # every registered kind comes from one of them, the very object
    assert set(declared) == set(kind_names())
    assert all(get_kind(name) is kind for name, kind in declared.items())


def test_the_built_in_kinds_keep_their_order_and_their_summary_order():
    """The ``--kinds`` help and the report list the kinds in this order; ``summary.json``'s
    entries come in the other (its bytes stay those of the summaries already written)."""
    assert kind_names() == ("gradients", "llc", "groups", "weights", "ablation", "ablation_z",
                            "probes", "atp", "llc_heads", "essential", "fourier")  # fmt: skip
    assert [k.name for k in summary_kinds()] == ["groups", "essential", "ablation", "ablation_z",
                                                 "atp", "weights"]  # fmt: skip
    for kind in summary_kinds():
        assert callable(kind.summary_function())


@pytest.fixture
def fresh_registry(monkeypatch):
    """The registry as before its first use: the next call looks for the kinds again. The
    modules a test adds to the package are forgotten afterwards."""
    before = set(sys.modules)
    monkeypatch.setattr(registry, "_KINDS", {})
    monkeypatch.setattr(registry, "_found", False)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(f"{KINDS_PACKAGE}."):
            del sys.modules[name]
            vars(mbc_interp.analysis.kinds).pop(name.rsplit(".", 1)[1], None)


def test_a_new_module_in_the_kinds_package_is_found_without_editing_the_registry(
    tmp_path, monkeypatch, fresh_registry
):
    (tmp_path / "norm.py").write_text(NORM)
    (tmp_path / "_shared.py").write_text("SCALE = 2.0\n")  # a helper, not a kind
    kinds = mbc_interp.analysis.kinds
    monkeypatch.setattr(kinds, "__path__", [*kinds.__path__, str(tmp_path)])
    assert kind_names()[-1] == "norm"  # after the built-in ones
    assert len(kind_names()) == len(_kind_modules())
    assert build_settings("norm", {"scale": 2}).scale == 2.0
    assert AnalysisConfig(kinds=("norm",), extra_settings={"norm": {"scale": 3}}).settings_of(
        "norm"
    ).scale == 3.0  # fmt: skip
    assert [k.name for k in summary_kinds()][-1] == "norm"
    with pytest.raises(ValueError, match="registered already"):
        registry.register_kind(get_kind("norm"))


def test_a_module_without_a_kind_is_an_error_naming_it(tmp_path, monkeypatch):
    pkg = tmp_path / "stray_kinds"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "norm.py").write_text(NORM)
    (pkg / "oops.py").write_text("KIND = 'norm'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(TypeError, match=r"stray_kinds\.oops: .*KIND = ExtraKind"):
            discover_kinds("stray_kinds")
        (pkg / "oops.py").unlink()
        assert [k.name for k in discover_kinds("stray_kinds")] == ["norm"]
        assert "norm" not in extra_kinds()  # another package's kinds are not registered
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] == "stray_kinds"]:
            del sys.modules[name]


def test_the_readme_example_declares_a_kind():
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S)
              if "KIND = ExtraKind(" in b]  # fmt: skip
    assert len(blocks) == 1
    space: dict = {}
    exec(blocks[0], space)
    kind = space["KIND"]
    assert isinstance(kind, ExtraKind) and kind.name not in kind_names()
    assert kind.summary and kind.report and kind.cost(kind.settings(), None) == 1.0


def test_looking_for_the_kinds_loads_neither_torch_nor_pandas():
    code = (
        "import sys\n"
        "from mbc_interp.analysis.registry import extra_kinds\n"
        "assert len(extra_kinds()) >= 10\n"
        "print(sorted(m for m in ('torch', 'transformer_lens', 'pandas') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
