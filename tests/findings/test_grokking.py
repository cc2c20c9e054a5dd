"""Findings of the grokking sweep, recomputed from its committed verdicts."""

from __future__ import annotations

from .prose import README, ci2, f2, runs, stated, verdicts


def test_grokking_collective_in_the_readme():
    g = verdicts("grokking_cpu")["collective"]
    assert g["verdict"] == "reproduced"
    stated(f"solve spread is {f2(g['mean']['mean'])} {ci2(g['mean']['ci'])} of the plateau", README)


def test_grokking_findings():
    v = verdicts("grokking_cpu")
    table = runs("grokking_cpu")
    (level,) = v["levels"].values()
    stated(f"train fraction {table.train_frac.iloc[0]:g}, {v['n_runs']} seeds")
    assert set(table.train_frac) == {0.4} and len(table) == v["n_runs"]
    stated(f"memorisation ends at about step {level['times']['t_plateau_start']['mean']:.0f}")
    t = table.t_loss
    stated(f"(t_loss {t.min():,.0f} to {t.max():,.0f} across seeds)")
    names = {"excluded_gain": "excluded loss", "restricted_loss": "restricted loss",
             "gini": "Gini sparsity", "weight_norm": "weight norm"}  # fmt: skip
    for key, name in names.items():
        sig = level["signals"][key]
        assert sig["verdict"] == "leads", key
        stated(f"{name} {f2(sig['lead']['mean'])} {ci2(sig['lead']['ci'])}")
    assert level["signals"]["llc"]["verdict"] == "underpowered"
    assert (table.phase_llc != "plateau").sum() == 1
    stated("The LLC is *underpowered* (one of three runs has no onset on the plateau)")
    c = v["collective"]
    assert c["verdict"] == "reproduced" and c["solved_at_half"]["mean"] == 0
    stated(f"solve spread is {f2(c['mean']['mean'])} {ci2(c['mean']['ci'])} of")
    h = v["collective_halfway"]
    assert h["verdict"] == "underpowered" and h["n_runs"] == 3
    assert h["by_run"] == {"collective": 2, "intermediate": 1}
    stated(f"the spread is {f2(h['mean']['mean'])} {ci2(h['mean']['ci'])}: *underpowered* at "
           "three runs, one of them intermediate")
