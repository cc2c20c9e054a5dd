"""Which runs of a sweep's run table (``runs.csv``, one row per point) a claim uses: shared by
the fits (``sweep.fit``) and the figures that draw them (``viz.scaling``), so both see the same
runs and neither imports the other.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

SIZES = ("D", "n_examples")
"""One quantity in two units (bases, examples): a slice over D or K lets both vary."""


def slice_of(table: pd.DataFrame, vary: str, reference: dict[str, Any]) -> pd.DataFrame:
    """Finished runs that differ from the reference only in ``vary`` (and the seed). Sizes:
    a D slice holds K; a K slice holds whichever size unit is constant among its runs (bases in
    the proxy sweeps, total examples in the paper's)."""
    keep = table.point_status == "done"
    free = {vary, *SIZES} if vary in (*SIZES, "K") else {vary}
    for col, value in reference.items():
        if col not in free:
            keep &= table[col] == value
    rows = table[keep]
    if vary == "K":  # the size unit held fixed is the one that leaves the most K values
        slices = [rows[rows[c] == reference[c]] for c in SIZES if c in rows and c in reference]
        rows = max(slices, key=lambda r: r["K"].nunique(), default=rows.iloc[:0])
    elif vary in SIZES:
        rows = rows[rows["K"] == reference["K"]]
    return rows


def main_runs(table: pd.DataFrame, ref: dict[str, Any]) -> pd.DataFrame:
    """Finished runs of the reference task family: any D, K, lr, batch and seed, everything
    else (direction, target length, model...) at the reference (controls are excluded)."""
    keep = table.point_status == "done"
    for col, value in ref.items():
        if col not in (*SIZES, "K", "lr", "batch"):
            keep &= table[col] == value
    return table[keep]
