"""Tasks are found by looking: every package under ``tasks/`` that declares ``TASK`` is
registered, so a new task is one package and no list is edited."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import pytest

import mbc_interp.tasks
from mbc_interp.tasks.registry import DEFAULT_TASK, TASKS, UnknownTaskError, _discover, entry


def test_every_task_package_is_registered_under_its_config_name():
    packages = [m.name for m in pkgutil.iter_modules(mbc_interp.tasks.__path__) if m.ispkg]
    assert sorted(TASKS) == sorted(packages) and len(TASKS) >= 2
    assert next(iter(TASKS)) == DEFAULT_TASK
    for name, e in TASKS.items():
        assert e.config_class.name == name
        assert e.summary


def test_a_new_package_is_found_without_editing_the_registry(tmp_path, monkeypatch):
    pkg = tmp_path / "toy_task"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "from mbc_interp.tasks.protocol import TaskEntry\n"
        "TASK = TaskEntry('toy', 'mbc_interp.tasks.toy_task.config:ToyConfig',\n"
        "                 'mbc_interp.tasks.toy_task.task:ToyTask', 'a toy')\n"
    )
    (pkg / "config.py").write_text("class ToyConfig:\n    name = 'toy'\n")
    (tmp_path / "no_task").mkdir()  # a package without TASK is not a task
    (tmp_path / "no_task" / "__init__.py").write_text("")
    monkeypatch.setattr(mbc_interp.tasks, "__path__", [*mbc_interp.tasks.__path__, str(tmp_path)])
    try:
        found = _discover()
        assert next(iter(found)) == DEFAULT_TASK
        assert set(found) == {*TASKS, "toy"}
        assert found["toy"].config_class.__name__ == "ToyConfig"
    finally:
        for mod in [m for m in sys.modules if m.startswith(("mbc_interp.tasks.toy_task",
                                                            "mbc_interp.tasks.no_task"))]:
            del sys.modules[mod]
        importlib.invalidate_caches()


def test_an_unknown_task_lists_the_known_ones():
    with pytest.raises(UnknownTaskError, match="known: \\['modular_addition', 'wind_tunnel'\\]"):
        entry("nope")
