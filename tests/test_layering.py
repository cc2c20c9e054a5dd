"""Import structure: no cycle between mbc_interp's modules (function-local imports included),
and no lower layer importing an upper one. Read from the source (AST), nothing is imported."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mbc_interp"

# lowest first; a module may import its own layer or lower ones only
LAYERS: tuple[tuple[str, ...], ...] = (
    ("store", "integrity", "progress", "runtable", "jsonsafe", "checks", "lazy"),
    ("model", "model_config", "task", "task_config", "construction", "config", "flags"),
    ("run", "evaluation"),
    ("train", "analysis"),
    ("sweep", "viz"),
    ("reproduction", "forecast_commands", "sweep.commands", "viz.commands", "verify_commands",
     "cli", "__init__"),
)
APART = (("sweep", "viz"), ("analysis", "train"))
"""Packages of one layer that must not import each other (the command layer composes them)."""


def _modules() -> dict[str, Path]:
    out = {}
    for file in PACKAGE.rglob("*.py"):
        parts = file.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[f"mbc_interp.{name}" if name else "mbc_interp"] = file
    return out


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> mbc_interp modules it imports anywhere in its source (also inside functions);
    parsed once per session (read-only)."""
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, file in modules.items():
        package = mod if file.name == "__init__.py" else mod.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(file.read_text())):
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
                    graph[mod].add(t)
    return graph


def _layer(mod: str) -> int:
    name = mod.removeprefix("mbc_interp").lstrip(".") or "__init__"
    best = None
    for i, layer in enumerate(LAYERS):
        for prefix in layer:
            inside = name == prefix or name.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[1]):
                best = (i, len(prefix))
    assert best is not None, f"{mod}: in no layer; add it to LAYERS"
    return best[0]


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


def test_the_graph_sees_function_local_and_relative_imports():
    graph = import_graph()
    assert "mbc_interp.train" in graph["mbc_interp.sweep.runner"]  # imported inside a function
    assert "mbc_interp.config" in graph["mbc_interp.run"]  # from .config import ...
    assert "mbc_interp.viz.scaling" in graph["mbc_interp.reproduction"]  # from pkg import sub


def test_no_import_cycle():
    cycle = _cycle(import_graph())
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
            if _layer(mod) == _layer(f"mbc_interp.{x}") and mod.startswith(f"mbc_interp.{x}"):
                crossed = sorted(t for t in graph[mod] if t.startswith(f"mbc_interp.{y}"))
                assert not crossed, f"{mod} imports {crossed}: {x} and {y} stay apart"
