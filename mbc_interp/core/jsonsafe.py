"""JSON-safe values, one source for every JSON file the package writes from computed results."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np


def json_safe(v: Any, *, nonfinite: Literal["null", "keep"] = "null") -> Any:
    """``v`` with numpy scalars and arrays as Python numbers and lists, tuples as lists and
    numpy mapping keys as Python ones, recursively through dicts, lists and tuples.

    Non-finite floats become ``None`` (``"null"``: a run's summary, where a time that was not
    found is ``None`` in memory and ``null`` in a strict-JSON ``summary.json``), or stay NaN/inf
    (``"keep"``: ``json.dumps`` writes ``NaN``, which Python's ``json`` reads back as NaN:
    ``fits.json``, whose numbers are formatted again when the claims table is rebuilt from it,
    where ``None`` would not format)."""
    if nonfinite not in ("null", "keep"):
        raise ValueError(f"json_safe: nonfinite = {nonfinite!r}: must be 'null' or 'keep'")
    return _safe(v, nonfinite == "null")


def _safe(v: Any, null: bool) -> Any:
    if isinstance(v, dict):
        return {_key(k): _safe(x, null) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_safe(x, null) for x in v]
    if isinstance(v, np.ndarray):
        return _safe(v.tolist(), null)
    if isinstance(v, np.generic):
        v = v.item()
    if null and isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _key(k: Any) -> Any:
    return k.item() if isinstance(k, np.generic) else k
