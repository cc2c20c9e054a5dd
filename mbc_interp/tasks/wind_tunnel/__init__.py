"""The "Marginals Before Conditionals" wind tunnel: K-fold ambiguity resolved by a selector.

:mod:`~mbc_interp.tasks.wind_tunnel.config` (the settings, importable without torch),
:mod:`~mbc_interp.tasks.wind_tunnel.construction` (how the strings are drawn),
:mod:`~mbc_interp.tasks.wind_tunnel.task` (the example table and the task protocol) and
:mod:`~mbc_interp.tasks.wind_tunnel.evaluation` (what every evaluation measures)."""

from mbc_interp.tasks.protocol import TaskEntry

TASK = TaskEntry(
    "wind_tunnel",
    "mbc_interp.tasks.wind_tunnel.config:TaskConfig",
    "mbc_interp.tasks.wind_tunnel.task:WindTunnelTask",
    "K-fold ambiguity resolved by a selector (Marginals Before Conditionals)",
    title="Marginals before conditionals",
    scaling_claims=True,
)
"""This package's entry in :data:`mbc_interp.tasks.registry.TASKS`."""
