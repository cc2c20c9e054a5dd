"""Import structure: no cycle between mbc_interp's modules (function-local imports included),
and no lower layer importing an upper one. A module's layer is read from where it sits: its
top-level directory (``mbc_interp/store/...``), or its name for the few top-level modules.
Read from the source (AST), nothing is imported."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mbc_interp"

LAYERS: dict[str, int] = {
    "core": 0,  # generic helpers: checks, JSON, lazy exports, atomic writes, sampling, progress
    "tasks": 1,  # the task protocol, the registry, each task's package
    "model_config": 1,
    "model": 1,  # every TransformerLens construction
    "config": 2,  # RunConfig: task + model + training settings, run names
    "store": 3,  # runs and sweeps on disk
    "training": 4,
    "analysis": 4,
    "sweep": 5,
    "viz": 5,
    "studies": 6,  # one study's claims, verdicts and documents
    "cli": 7,  # one module per command
    "__init__": 8,  # the package's public exports
}
"""Top-level directory or top-level module -> layer, lowest first; a module may import its own
layer or lower ones only."""
PACKAGES = {"core", "tasks", "store", "training", "analysis", "sweep", "viz", "studies", "cli"}
"""The entries of :data:`LAYERS` that are directories (the others are top-level modules)."""
APART = (("sweep", "viz"), ("analysis", "training"))
"""Packages of one layer that must not import each other (an upper layer composes them)."""


def _modules() -> dict[str, Path]:
    out = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[f"mbc_interp.{name}" if name else "mbc_interp"] = file
    return out


def _annotation_only(tree: ast.AST) -> set[int]:
    """The nodes inside ``if TYPE_CHECKING:`` blocks (imports for annotations only)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            out.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return out


def imports_of(
    mod: str, source: str, is_package: bool, modules: set[str], runtime: bool = False
) -> set[str]:
    """The modules of ``modules`` that ``mod`` (its ``source``) imports anywhere, also inside
    functions; relative imports resolved against ``mod``'s package. ``runtime``: leave out
    the imports under ``if TYPE_CHECKING:``, which are never executed."""
    package = mod if is_package else mod.rsplit(".", 1)[0]
    found: set[str] = set()
    tree = ast.parse(source)
    skip = _annotation_only(tree) if runtime else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            # `from pkg import sub` names a submodule when one exists
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                       for a in node.names]  # fmt: skip
        for t in targets:
            while t and t not in modules:  # `import a.b.c` of a non-module attribute
                t = t.rsplit(".", 1)[0] if "." in t else ""
            if t and t != mod:
                found.add(t)
    return found


@functools.cache
def import_graph(runtime: bool = False) -> dict[str, set[str]]:
    """module -> mbc_interp modules it imports anywhere in its source (also inside functions;
    ``runtime``: not those under ``if TYPE_CHECKING:``); parsed once per session (read-only)."""
    modules = _modules()
    return {
        mod: imports_of(mod, file.read_text(), file.name == "__init__.py", set(modules), runtime)
        for mod, file in modules.items()
    }


def _top(mod: str) -> str:
    """The entry of :data:`LAYERS` a module belongs to: its top-level directory or name."""
    return mod.removeprefix("mbc_interp").lstrip(".").split(".")[0] or "__init__"


def _layer(mod: str) -> int:
    return LAYERS[_top(mod)]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return [*stack[stack.index(n) :], n]
            if n not in state and (found := visit(n)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


@pytest.mark.parametrize("mod", sorted(_modules()))
def test_every_module_sits_in_a_known_place(mod):
    top = _top(mod)
    assert top in LAYERS, f"{mod}: {top!r} is neither a known directory nor a top-level module"
    nested = mod.count(".") > 1 or _modules()[mod].name == "__init__.py"
    if top != "__init__":
        assert nested == (top in PACKAGES), (
            f"{mod}: {top!r} is listed as a {'directory' if top in PACKAGES else 'module'}"
        )


def test_the_graph_sees_function_local_and_relative_imports():
    graph = import_graph()
    assert "mbc_interp.training" in graph["mbc_interp.sweep.point"]  # inside a function
    study = "mbc_interp.studies.mbc.reproduction"
    assert "mbc_interp.viz.scaling" in graph[study]  # `from pkg import sub`
    modules = {"p", "p.a", "p.q", "p.q.a", "p.q.c"}
    source = "from .a import x\nfrom .. import a\nfrom . import c\n\ndef f():\n    import p.q.a.y\n"
    assert imports_of("p.q.c", source, False, modules) == {"p.q.a", "p.a"}
    assert imports_of("p.q", "from . import c\nfrom .c import z\n", True, modules) == {"p.q.c"}
    typed = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.a import T\n"
    assert imports_of("p.q.c", typed, False, modules) == {"p.a"}
    assert imports_of("p.q.c", typed, False, modules, runtime=True) == set()


def test_no_import_cycle():
    """No cycle among the imports that run. An annotation-only import (``if TYPE_CHECKING:``)
    may point back (a task's evaluation names the task's type; the task's ``evaluate`` calls
    it); it still counts for the layers below."""
    cycle = _cycle(import_graph(runtime=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_hidden_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


@pytest.mark.parametrize("mod", sorted(_modules()))
def test_lower_layers_do_not_import_upper_ones(mod):
    graph = import_graph()
    up = sorted(t for t in graph[mod] if _layer(t) > _layer(mod))
    assert not up, f"{mod} (layer {_layer(mod)}) imports upper layer(s): {up}"
    for a, b in APART:
        for x, y in ((a, b), (b, a)):
            if _top(mod) == x:
                crossed = sorted(t for t in graph[mod] if _top(t) == y)
                assert not crossed, f"{mod} imports {crossed}: {x} and {y} stay apart"


TASK_AGNOSTIC = ("analysis", "training", "store", "viz", "sweep", "studies")
"""Layers that know a task only through its protocols (:mod:`mbc_interp.tasks.protocol`, the
generic modules beside it and a task package's ``capability`` module): none imports a task's
implementation."""


def _task_package(mod: str) -> bool:
    """Whether ``mod`` is part of one task's implementation (not its capability protocol)."""
    parts = mod.split(".")
    in_task = len(parts) > 2 and parts[1] == "tasks" and (PACKAGE / "tasks" / parts[2]).is_dir()
    return in_task and parts[-1] != "capability"


@pytest.mark.parametrize("layer", TASK_AGNOSTIC)
def test_task_agnostic_layers_import_no_task_package(layer):
    graph = import_graph()
    found = {m: sorted(t for t in deps if _task_package(t))
             for m, deps in graph.items() if _top(m) == layer}  # fmt: skip
    found = {m: deps for m, deps in found.items() if deps}
    assert not found, f"{layer} modules import a task's own package: {found}"


def test_the_task_package_check_sees_a_task_package():
    assert _task_package("mbc_interp.tasks.wind_tunnel.task")
    assert not _task_package("mbc_interp.tasks.protocol")
    assert not _task_package("mbc_interp.tasks.pairs")
    assert not _task_package("mbc_interp.tasks.modular_addition.capability")
