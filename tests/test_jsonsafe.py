"""json_safe: one clean-up for every JSON file written from results, NaN as each file needs it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mbc_interp.core.jsonsafe import json_safe
from mbc_interp.studies.mbc import claims_table
from mbc_interp.sweep.fit import fit_sweep

ROOT = Path(__file__).resolve().parents[1]
RAW = {
    np.int64(4): {"n": np.int64(3), "mean": np.float64(0.5), "ci": (np.float32(0.25), 1.0)},
    "missing": float("nan"),
    "nested": [np.float64("inf"), {"x": np.array([1.5, np.nan])}],
    "zero_d": np.array(2),
    "name": "L1H3",
    "flag": np.bool_(True),
}


def test_null_mode_gives_strict_json_with_python_types():
    safe = json_safe(RAW)
    text = json.dumps(safe, allow_nan=False)  # strict JSON: would raise on a NaN left behind
    assert json.loads(text) == {
        "4": {"n": 3, "mean": 0.5, "ci": [0.25, 1.0]},
        "missing": None,
        "nested": [None, {"x": [1.5, None]}],
        "zero_d": 2,
        "name": "L1H3",
        "flag": True,
    }
    assert type(safe[4]["n"]) is int and type(safe["flag"]) is bool and 4 in safe


def test_keep_mode_keeps_nan_and_inf_for_python_readers():
    safe = json_safe(RAW, nonfinite="keep")
    back = json.loads(json.dumps(safe))
    assert math.isnan(back["missing"]) and back["nested"][0] == math.inf
    assert math.isnan(back["nested"][1]["x"][1]) and back["4"]["ci"] == [0.25, 1.0]
    # ValueError from json_safe; under the tests' runtime type checking, a TypeError first
    with pytest.raises((ValueError, TypeError), match=r"nonfinite.*'drop'"):
        json_safe(RAW, nonfinite="drop")


def test_fits_json_round_trip_rebuilds_the_same_claims_table():
    """``fits.json`` keeps NaN: the claims table built from the file equals the one built from
    the fits in memory (a NaN written as null would not format as a number)."""
    fits = fit_sweep(pd.read_csv(ROOT / "results/cpu/runs.csv"))
    text = json.dumps(json_safe(fits, nonfinite="keep"), indent=1)
    assert "NaN" in text  # the forward control's duration: there is no plateau to time
    pd.testing.assert_frame_equal(claims_table(json.loads(text)), claims_table(fits))
