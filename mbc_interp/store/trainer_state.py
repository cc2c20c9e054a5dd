"""The trainer-state file's format, written by the training loop and read back by the loop (exact
resume) and by :meth:`mbc_interp.store.run.Run.optimizer_state` (for analyses of the optimiser).

An optimiser's ``state_dict`` is kept as flat tensors named ``optim.<param index>.<key>`` (the
safetensors file) plus JSON metadata under the key ``trainer``: the parameter groups, the
non-tensor per-parameter values (``scalars``) and whatever the writer adds (the loop's
``progress`` counters)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor

from mbc_interp.store.run_store import CheckpointError

PREFIX = "optim."
"""The name prefix of the optimiser's tensors in a trainer-state file."""


def flatten(state_dict: dict[str, Any], **extra: Any) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """An optimiser's ``state_dict`` as (tensors to save, the ``trainer`` metadata record);
    ``extra`` entries (JSON-safe) join the record."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, float]] = {}
    for pid, st in state_dict["state"].items():
        for key, value in st.items():
            if isinstance(value, Tensor):
                tensors[f"{PREFIX}{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    groups = [dict(g) for g in state_dict["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars, **extra}


def unflatten(
    tensors: dict[str, Tensor], meta: dict[str, str], file: Path
) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """(per-parameter state by parameter index, tensors and scalars merged; the parameter
    groups, ``betas`` as tuples; the whole ``trainer`` record) from a file's contents;
    :class:`CheckpointError` naming ``file`` when any part is missing or malformed."""
    try:
        info = json.loads(meta["trainer"])
        state: dict[int, dict[str, Any]] = {}
        for name, value in tensors.items():
            if name.startswith(PREFIX):
                _, pid, key = name.split(".", 2)
                state.setdefault(int(pid), {})[key] = value
        for pid, scalars in info["scalars"].items():
            state.setdefault(int(pid), {}).update(scalars)
        groups = [dict(g) for g in info["param_groups"]]
        for g in groups:
            if "betas" in g:
                g["betas"] = tuple(g["betas"])
    except (KeyError, ValueError, TypeError, AttributeError) as e:
        raise CheckpointError(
            f"{file}: trainer state is incomplete or malformed ({type(e).__name__}: {e}); "
            "resume from an earlier checkpoint"
        ) from None
    return state, groups, info
