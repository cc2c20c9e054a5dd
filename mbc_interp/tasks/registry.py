"""Tasks by name: a run's config names its task (``task.name``), and this is where the name is
turned into a config class and a task. Config classes import neither torch nor TransformerLens
(configs and the command line need them early); task classes are imported on first use.

A new task is one package under ``tasks/`` whose ``__init__`` declares ``TASK``, a
:class:`~mbc_interp.tasks.protocol.TaskEntry` (it must stay light: no torch); it is found here
by looking, with no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from mbc_interp.tasks.protocol import TaskEntry

DEFAULT_TASK = "wind_tunnel"
"""The task of a config that names none (every run made before tasks had names)."""


class UnknownTaskError(ValueError):
    """A config names a task that is not registered; the message lists the known ones."""


def _discover() -> dict[str, TaskEntry]:
    """Every package under ``tasks/`` that declares a ``TASK`` entry, the default first."""
    found = {}
    for info in pkgutil.iter_modules(importlib.import_module("mbc_interp.tasks").__path__):
        if info.ispkg:
            task = getattr(importlib.import_module(f"mbc_interp.tasks.{info.name}"), "TASK", None)
            if isinstance(task, TaskEntry):
                found[task.name] = task
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != DEFAULT_TASK, kv[0])))


TASKS: dict[str, TaskEntry] = _discover()
"""The registered tasks by name: every task package's ``TASK``."""


def entry(name: str | None) -> TaskEntry:
    """The registered task ``name`` (``None``: the default); unknown names list the known."""
    name = DEFAULT_TASK if name is None else name
    if name not in TASKS:
        raise UnknownTaskError(f"task.name = {name!r}: unknown task; known: {sorted(TASKS)}")
    return TASKS[name]


def config_from_dict(data: dict[str, Any]) -> Any:
    """A task config from its record (``name`` picks the task, absent: the default)."""
    data = dict(data)
    cls = entry(data.pop("name", None)).config_class
    return cls.from_dict(data) if hasattr(cls, "from_dict") else cls(**data)


def build_task(config: Any) -> Any:
    """The task a config determines."""
    return entry(type(config).name).task_class(config)
