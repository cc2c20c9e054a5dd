"""Modular addition ``a + b mod p`` with a held-out split: the grokking task of Power et al.
(2022) and Nanda et al. (2023). :mod:`.config` (no torch), :mod:`.task`, :mod:`.capability`."""

from mbc_interp.tasks.protocol import TaskEntry

TASK = TaskEntry(
    "modular_addition",
    "mbc_interp.tasks.modular_addition.config:ModularAdditionConfig",
    "mbc_interp.tasks.modular_addition.task:ModularAdditionTask",
    "a + b mod p with a held-out split (grokking)",
    title="Grokking on modular addition",
)
"""This package's entry in :data:`mbc_interp.tasks.registry.TASKS`."""
