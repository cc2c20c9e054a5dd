"""The mechanistic kinds' run functions, in the registry's calling convention
``(model, task, settings, optimizer_state) -> rows`` (the optimizer state is not used)."""

from __future__ import annotations

from typing import Any

from mbc_interp.analysis.ablation import ablation_records
from mbc_interp.analysis.atp import atp_records
from mbc_interp.analysis.dynamics.essential import projected_records
from mbc_interp.analysis.dynamics.llc_heads import head_llc_records
from mbc_interp.analysis.dynamics.weights import weight_records
from mbc_interp.analysis.groups import group_records
from mbc_interp.analysis.probes import probe_records

Rows = list[dict[str, Any]]


def groups(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return group_records(model, task, settings)


def weights(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return weight_records(model)


def ablation(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return ablation_records(model, task, settings)


def ablation_z(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return ablation_records(model, task, settings, analysis="ablation_z")


def probes(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return probe_records(model, task, settings)


def atp(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return atp_records(model, task, n_pairs=settings.n_pairs, seed=settings.seed)


def llc_heads(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return head_llc_records(model, task, settings.heads, settings)


def essential(model: Any, task: Any, settings: Any, state: object = None) -> Rows:
    return projected_records(model, task, settings)
