"""Head labels, one source: ``L{layer}H{head}`` built and parsed here only."""

from __future__ import annotations

import re

from jaxtyping import Float
from torch import Tensor

_LABEL = re.compile(r"L(\d+)H(\d+)")


def head_label(layer: int, head: int) -> str:
    return f"L{layer}H{head}"


def head_labels(n_layers: int, n_heads: int) -> list[str]:
    """Every head's label, layer-major (the order of a flattened ``[layer, head]`` tensor)."""
    return [head_label(l, h) for l in range(n_layers) for h in range(n_heads)]


def parse_head_label(label: str) -> tuple[int, int]:
    """``"L1H2"`` -> ``(1, 2)``; ValueError naming the label otherwise."""
    m = _LABEL.fullmatch(label)
    if m is None:
        raise ValueError(f"{label!r} is not a head label (expected L<layer>H<head>)")
    return int(m.group(1)), int(m.group(2))


def head_records(metrics: dict[str, Float[Tensor, "layer head"]]) -> list[dict]:
    """Tidy rows ``component, layer, head, metric, value`` for per-head ``[layer, head]`` values."""
    rows = []
    for metric, values in metrics.items():
        n_layers, n_heads = values.shape
        for l in range(n_layers):
            for h in range(n_heads):
                rows.append({"component": head_label(l, h), "layer": l, "head": h,
                             "metric": metric, "value": float(values[l, h])})  # fmt: skip
    return rows
