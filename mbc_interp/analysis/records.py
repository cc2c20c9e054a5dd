"""One tidy timeline row, as every analysis writes it (the columns of ``timeline.csv`` but
``step`` and ``tokens``, which the driver adds)."""

from __future__ import annotations

from typing import Any


def record(
    analysis: str,
    metric: str,
    value: float | int,
    *,
    kind: str = "",
    component: str = "all",
    layer: int | None = None,
    head: int | None = None,
    pos: int | None = None,
    position: str = "",
) -> dict[str, Any]:
    """A row; a head's ``component`` is its label ``L{layer}H{head}``."""
    return {"analysis": analysis, "kind": kind, "component": component, "layer": layer,
            "head": head, "pos": pos, "position": position, "metric": metric,
            "value": float(value)}  # fmt: skip


def head_record(analysis: str, metric: str, value: float | int, layer: int, head: int,
                kind: str = "") -> dict[str, Any]:  # fmt: skip
    """A row about head ``L{layer}H{head}``."""
    return record(analysis, metric, value, kind=kind, component=f"L{layer}H{head}", layer=layer,
                  head=head)  # fmt: skip
