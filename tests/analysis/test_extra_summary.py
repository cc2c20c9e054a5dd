"""The summary's reading of the extra kinds' rows, on tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mbc_interp.analysis.records import head_record, record
from mbc_interp.analysis.timing.extra_summary import (
    ablation_summary,
    atp_summary,
    essential_summary,
)


def _table(rows, step):
    return pd.DataFrame([{"step": step, "tokens": 0, **r} for r in rows])


def test_atp_agreement_is_one_when_estimates_rank_like_exact_patching():
    rows = []
    for step in (10, 20):
        for h in range(4):
            rows += [{**head_record("atp", "atp_raw", h, 0, h, kind="head_out_all_pos"),
                      "step": step},
                     {**head_record("patching", "patch_raw", 10 * h + 1, 0, h,
                                    kind="head_out_all_pos"), "step": step}]  # fmt: skip
    out = atp_summary(pd.DataFrame(rows))
    assert set(out) == {"heads"}  # no residual rows
    assert out["heads"]["n_checkpoints"] == 2
    assert out["heads"]["rank_agreement_median"] == pytest.approx(1.0)
    assert atp_summary(pd.DataFrame(rows[::2])) is None  # no exact patching beside it


def test_atp_residual_agreement_joins_on_layer_and_position_and_leaves_out_zeros():
    """Estimates ranking opposite to the exact effects at the positions that differ give -1;
    the positions where both are 0 (before the corruption) would pull it up if counted."""
    from mbc_interp.analysis.atp import rank_agreement

    rows, pairs = [], []
    for layer in range(2):
        for pos in range(5):
            moved = pos >= 2  # clean and corrupt differ from position 2 on
            est = float(10 * layer + pos) if moved else 0.0
            exact = 100.0 - est if moved else 1e-9  # an exact "zero" with float noise
            pairs.append((est, exact))
            rows += [{**record("atp", "atp_raw", est, kind="resid_pre", component=f"L{layer} "
                               f"p{pos}", layer=layer, pos=pos), "step": 5},
                     {**record("patching", "patch_raw", exact, kind="resid_pre",
                               component=f"L{layer}", layer=layer, pos=pos), "step": 5}]
    out = atp_summary(pd.DataFrame(rows))
    assert set(out) == {"resid_pre"}
    assert out["resid_pre"]["n_checkpoints"] == 1
    assert out["resid_pre"]["rank_agreement_median"] == pytest.approx(-1.0)
    assert rank_agreement(*np.array(pairs).T) > -0.5  # the zeros counted: far from -1


def test_ablation_reads_the_last_checkpoint():
    def rows(step, top):
        return _table([head_record("ablation", "cand_loss_increase", v, 0, h, kind="mean")
                       for h, v in enumerate(top)]
                      + [record("ablation", "cand_loss_increase", 2.0, kind="mean",
                                component="set:L0H1"),
                         record("ablation", "cand_loss_increase", 0.1, kind="mean",
                                component="only:L0H1")], step)  # fmt: skip

    out = ablation_summary(pd.concat([rows(10, [0.5, 0.1]), rows(20, [0.1, 1.5])]))
    assert out["step"] == 20 and out["costliest_head"] == "L0H1"
    assert out["heads"] == ["L0H1"] and out["necessity"] == 2.0 and out["sufficiency"] == 0.1
    assert "necessity_marginal" not in out  # rows from before the marginal was recorded

    def marginal(step, increase, gain):
        return _table([record("ablation", "marg_loss_increase", increase, kind="mean",
                              component="set:L0H1"),
                       record("ablation", "marg_gain", gain, kind="mean", component="clean"),
                       record("ablation", "marg_gain", 9.0, kind="resample",
                              component="clean")], step)  # fmt: skip

    both = pd.concat([rows(10, [0.5, 0.1]), rows(20, [0.1, 1.5]),
                      marginal(10, 5.0, 6.0), marginal(20, 0.3, 1.2)])  # fmt: skip
    out = ablation_summary(both)
    assert out["necessity_marginal"] == 0.3 and out["marginal_gain"] == 1.2  # mean, last step
    assert out["costliest_head_marginal"] is None  # no single head's marginal in these rows
    # the ablation_z kind's rows (analysis ablation_z, method z_resample) are read apart
    z = rows(20, [2.5, 0.2]).assign(analysis="ablation_z", kind="z_resample")
    with_z = pd.concat([both, z])
    assert ablation_summary(with_z)["costliest_head"] == "L0H1"  # mean ablation's: unchanged
    out_z = ablation_summary(with_z, "ablation_z", "z_resample")
    assert out_z["costliest_head"] == "L0H0" and out_z["costliest_head_increase"] == 2.5
    assert "necessity_marginal" not in out_z  # the marginal's rows are the mean ablation's


def test_essential_turn_against_t_loss():
    a, b = np.eye(8)[0], np.eye(8)[1]
    rows = []
    for i, step in enumerate(range(0, 200, 10)):
        v = min(i, 10) * a + max(i - 10, 0) * b
        rows += [{**record("essential", "projection", x, component=f"p{j}"), "step": step}
                 for j, x in enumerate(v)]  # fmt: skip
    out = essential_summary(pd.DataFrame(rows), t_loss=120.0)
    assert out["t_turn"] == 100.0 and out["turn_minus_t_loss"] == -20.0
    assert sum(out["variance_share"]) == pytest.approx(1.0)
