"""Which runs of a sweep's run table a claim uses: shared by the fits (``sweep.fit``) and the
figures that draw them (``viz.scaling``), so both see the same runs and neither imports the other.
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def slice_of(table: pd.DataFrame, vary: str, reference: dict[str, Any]) -> pd.DataFrame:
    """Finished runs that differ from the reference only in ``vary`` (and the seed)."""
    keep = table.point_status == "done"
    for col, value in reference.items():
        if col != vary:
            keep &= table[col] == value
    return table[keep]


def main_runs(table: pd.DataFrame, ref: dict[str, Any]) -> pd.DataFrame:
    """Finished runs of the reference task family: any D, K, lr, batch and seed, everything
    else (direction, target length, model...) at the reference (controls are excluded)."""
    keep = table.point_status == "done"
    for col, value in ref.items():
        if col not in ("D", "K", "lr", "batch"):
            keep &= table[col] == value
    return table[keep]
