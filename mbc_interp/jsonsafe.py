"""JSON-safe values, one source: numpy scalars to Python, NaN/inf to null, tuples to lists."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def json_safe(v: Any) -> Any:
    """``v`` with numpy scalars as Python numbers and non-finite floats as ``None``, recursively
    through dicts, lists and tuples."""
    if isinstance(v, dict):
        return {k: json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
