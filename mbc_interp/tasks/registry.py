"""Tasks by name: a run's config names its task (``task.name``), and this is where the name is
turned into a config class and a task. Config classes import neither torch nor TransformerLens
(configs and the command line need them early); task classes are imported on first use.

A new task is one package under ``tasks/`` plus one :class:`TaskEntry` line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

DEFAULT_TASK = "wind_tunnel"
"""The task of a config that names none (every run made before tasks had names)."""


class UnknownTaskError(ValueError):
    """A config names a task that is not registered; the message lists the known ones."""


@dataclass(frozen=True)
class TaskEntry:
    """Where a task's config class and task class live (``module:attribute``)."""

    name: str
    config: str
    task: str
    summary: str

    def _load(self, ref: str) -> Any:
        module, attr = ref.split(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def config_class(self) -> type:
        return self._load(self.config)

    @property
    def task_class(self) -> type:
        return self._load(self.task)


TASKS: dict[str, TaskEntry] = {
    e.name: e
    for e in (
        TaskEntry(
            "wind_tunnel",
            "mbc_interp.tasks.wind_tunnel.config:TaskConfig",
            "mbc_interp.tasks.wind_tunnel.task:WindTunnelTask",
            "K-fold ambiguity resolved by a selector (Marginals Before Conditionals)",
        ),
        TaskEntry(
            "modular_addition",
            "mbc_interp.tasks.modular_addition.config:ModularAdditionConfig",
            "mbc_interp.tasks.modular_addition.task:ModularAdditionTask",
            "a + b mod p with a held-out split (grokking)",
        ),
    )
}


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
