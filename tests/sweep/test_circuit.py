"""The circuit's claims over a sweep: per-run fields from a summary, and the verdict rules on
known tables (necessity, sufficiency, a collective transition; >= 3 runs or underpowered)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mbc_interp.sweep.circuit import CIRCUIT_COLUMNS, circuit_fields, circuit_verdicts


def test_fields_read_the_summary_and_scale_by_log_k():
    log_k = math.log(20)
    summary = {
        "ablation": {"step": 900.0, "heads": ["L0H0", "L1H2"], "necessity": 2.4,
                     "sufficiency": 0.3, "costliest_head": "L0H0",
                     "costliest_head_increase": 1.2},
        "groups": {"collective_score": 0.12, "collective": "collective", "solved_at_half": 0.0,
                   "n_groups": 64, "n_solved_groups": 64},
    }  # fmt: skip
    f = circuit_fields(summary, log_k)
    assert set(f) == set(CIRCUIT_COLUMNS)
    assert f["ablation_heads"] == "L0H0+L1H2" and f["ablation_step"] == 900.0
    assert f["necessity_frac"] == pytest.approx(2.4 / log_k)
    assert f["sufficiency_frac"] == pytest.approx(0.3 / log_k)
    assert f["single_frac"] == pytest.approx(1.2 / log_k)
    assert f["collective"] == "collective" and f["n_solved_groups"] == 64
    assert f["marginal_undone"] is None  # analysed before the marginal was recorded
    marginal = {**summary["ablation"], "necessity_marginal": 0.3, "marginal_gain": 1.2,
                "costliest_head_marginal": 0.06}
    f = circuit_fields({**summary, "ablation": marginal}, log_k)
    assert f["marginal_undone"] == pytest.approx(0.25) and f["marginal_gain"] == 1.2
    assert f["single_marginal_undone"] == pytest.approx(0.05)
    empty = circuit_fields({}, log_k)  # not analysed for it: every field None
    assert all(v is None for v in empty.values())


def test_a_set_is_z_specific_when_its_ablation_keeps_the_marginal():
    def runs(undone):
        return pd.DataFrame([circuit_fields({"ablation": {
            "step": 1.0, "heads": ["L0H0"], "necessity": 2.0, "sufficiency": 0.1,
            "necessity_marginal": u * 1.5, "marginal_gain": 1.5}}, 1.0) for u in undone])

    specific = circuit_verdicts(runs([0.05, 0.1, 0.08]))["specific"]
    assert specific["verdict"] == "z-specific" and specific["single"] is None
    assert circuit_verdicts(runs([0.9, 0.95, 0.85]))["specific"]["verdict"] == "not z-specific"
    assert circuit_verdicts(runs([0.1, 0.9, 0.5]))["specific"]["verdict"] == "underpowered"
    assert circuit_verdicts(runs([0.05, 0.1]))["specific"]["verdict"] == "underpowered"
    old = circuit_verdicts(_runs([0.9, 0.95, 0.85], [0.1] * 3, [0.1] * 3))  # no marginal
    assert old["specific"]["verdict"] == "not tested"


def _runs(nec, suf, coll):
    rows = [circuit_fields({"ablation": {"step": 1.0, "heads": ["L0H0"], "necessity": n,
                                         "sufficiency": s, "costliest_head": "L0H0",
                                         "costliest_head_increase": n},
                            "groups": {"collective_score": c, "solved_at_half": 0.0,
                                       "collective": "collective" if c < 0.25 else "staggered"}},
                           1.0) for n, s, c in zip(nec, suf, coll, strict=True)]  # fmt: skip
    return pd.DataFrame(rows)


def test_verdicts_follow_the_rules():
    runs = _runs([0.9, 0.95, 0.85, 0.9], [0.1, 0.05, 0.15, 0.1], [0.1, 0.12, 0.08, 0.1])
    v = circuit_verdicts(runs)
    assert (v["necessary"]["verdict"], v["sufficient"]["verdict"],
            v["collective"]["verdict"]) == ("reproduced",) * 3  # fmt: skip
    assert v["necessary"]["head_sets"] == {"L0H0": 4}
    assert v["collective"]["by_run"] == {"collective": 4}
    assert v["collective"]["solved_at_half"]["mean"] == 0.0
    v = circuit_verdicts(_runs([0.1, 0.2, 0.15], [0.9, 0.8, 0.85], [0.6, 0.7, 0.65]))
    assert (v["necessary"]["verdict"], v["sufficient"]["verdict"],
            v["collective"]["verdict"]) == ("not reproduced",) * 3  # fmt: skip
    two = circuit_verdicts(_runs([0.9, 0.95], [0.1, 0.1], [0.1, 0.1]))
    assert two["necessary"]["verdict"] == "underpowered" and "fewer than the 3" in two[
        "necessary"]["why"]  # fmt: skip
    wide = circuit_verdicts(_runs([0.1, 0.9, 0.5], [0.5, 0.5, 0.5], [0.1, 0.4, 0.3]))
    assert wide["necessary"]["verdict"] == "underpowered"
    none = circuit_verdicts(pd.DataFrame({"name": ["a"]}))
    assert none["necessary"]["verdict"] == "not tested"


def test_z_alone_reads_the_ablation_z_entry_and_follows_the_same_rules():
    """6a and 6b with z alone removed: read from the summary's ``ablation_z`` entry (the mean
    ablation's fields untouched), judged by the necessity and sufficiency rules, with the set
    found, the costliest head and the marginal's gain undone beside them."""

    def runs(nec, suf, undone=0.02):
        return pd.DataFrame([circuit_fields({
            "ablation": {"step": 1.0, "heads": ["L0H0", "L0H1"], "necessity": 2.5,
                         "sufficiency": 1.4},
            "ablation_z": {"step": 1.0, "heads": ["L0H2"], "necessity": n, "sufficiency": s,
                           "costliest_head": "L0H2", "costliest_head_increase": n,
                           "necessity_marginal": undone * 2.0, "marginal_gain": 2.0}}, 2.0)
            for n, s in zip(nec, suf, strict=True)])  # fmt: skip

    table = runs([1.8, 1.9, 1.7], [0.1, 0.2, 0.15])
    table["routing_head"] = ["L0H2", "L0H1", None]  # the patching's: in, out, not found
    row = table.iloc[0]
    assert row.ablation_heads_z == "L0H2" and row.ablation_heads == "L0H0+L0H1"
    assert row.necessity_z_frac == pytest.approx(0.9) and row.necessity_frac == pytest.approx(1.25)
    assert row.sufficiency_z_frac == pytest.approx(0.05)
    assert row.marginal_undone_z == pytest.approx(0.02) and row.marginal_undone is None
    v = circuit_verdicts(table)
    assert (v["necessary_z"]["verdict"], v["sufficient_z"]["verdict"]) == ("reproduced",) * 2
    assert v["necessary_z"]["head_sets"] == {"L0H2": 3}
    assert v["necessary_z"]["single"]["mean"] == pytest.approx(0.9)
    assert v["necessary_z"]["marginal_undone"]["mean"] == pytest.approx(0.02)
    assert v["necessary_z"]["routing_head_in_set"] == {"n": 1, "of": 2}
    v = circuit_verdicts(runs([0.2, 0.3, 0.25], [1.5, 1.6, 1.4]))
    assert (v["necessary_z"]["verdict"], v["sufficient_z"]["verdict"]) == ("not reproduced",) * 2
    old = circuit_verdicts(_runs([0.9, 0.95, 0.85], [0.1] * 3, [0.1] * 3))  # no ablation_z
    assert old["necessary_z"]["verdict"] == "not tested"
    assert old["necessary"]["verdict"] == "reproduced"


def test_half_way_collectiveness_is_its_own_verdict_by_the_same_rule():
    """Groups that escape together and settle apart: staggered by solve times, collective by
    the half-way crossings; the two verdicts side by side, neither replacing the other."""

    def runs(solve, half):
        return pd.DataFrame([circuit_fields({"groups": {
            "collective_score": c, "collective": "staggered", "solved_at_half": 0.0,
            "halfway_score": h, "halfway": "collective" if h < 0.25 else "staggered",
            "n_halfway_groups": 64}}, 1.0) for c, h in zip(solve, half, strict=True)])

    v = circuit_verdicts(runs([0.6, 0.55, 0.65], [0.05, 0.08, 0.06]))
    half = v["collective_halfway"]
    assert v["collective"]["verdict"] == "not reproduced" and half["verdict"] == "reproduced"
    assert half["by_run"] == {"collective": 3} and half["n_runs"] == 3
    assert half["mean"]["mean"] == pytest.approx(0.19 / 3)
    v = circuit_verdicts(runs([0.6, 0.55, 0.65], [0.6, 0.5, 0.7]))
    assert v["collective_halfway"]["verdict"] == "not reproduced"
    before = circuit_verdicts(_runs([0.9] * 3, [0.1] * 3, [0.1] * 3))  # no half-way times
    assert before["collective"]["verdict"] == "reproduced"
    assert before["collective_halfway"]["verdict"] == "not tested"
