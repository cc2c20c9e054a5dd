"""Findings of the gradient-noise sweeps, recomputed from their committed verdicts."""

from __future__ import annotations

from .prose import f2, i0, pct, runs, span, stated, verdicts

# ---------------------------------------------------------------- gradient noise


def test_noise_on_the_proxy():
    t = runs("noise_cpu")
    v = verdicts("noise_cpu")
    a = v["a"]
    stated(
        f"B_simple / batch = {a['ratio_min']:.1f}-{a['ratio_max']:.1f} (median "
        f"{a['ratio_median']:.1f}; B_simple {round(t.b_simple.min(), -1):.0f}-"
        f"{round(t.b_simple.max(), -1):.0f})"
    )
    stated(f"The coherence sits at {a['coherence_over_null']:.1f}x its 1/n null")
    stated(f"{a['group_ratio_over_null']:.2f}x of 1/sqrt(K-1)")
    d_slice = t[t.labels.str.split(",").apply(lambda x: "D" in x)]
    stated(f"The plateau |G| is {span(d_slice.grad_norm)} at every D")
    by_d = d_slice.groupby("D").duration_steps.mean()
    stated(f"the duration grows {by_d[1000] / by_d[250]:.0f}x from D = 250 to 1000")
    b = v["b"]
    stated(
        f"(ρ = {f2(b['rho'])}, p = {f2(b['p'])}); B_simple does not order them either "
        f"(ρ = {f2(b['b_simple']['rho'])})"
    )
    stated(f"tr Σ is {span(d_slice.tr_sigma, i0)} at every D")
    ep = d_slice.duration_steps * d_slice.batch / d_slice.n_examples
    stated(f"({span(ep, i0)} epochs, as in the main sweep)")
    c = v["c"]
    stated(
        f"T_adam at lr 2e-3 is {c['noise']['ratio_largest_over_smallest']:.1f}x that at 3e-4, "
        f"close to the lr ratio ({2e-3 / 3e-4:.1f}x)"
    )
    lv = c["levels"]
    stated(f"(tr Σ {i0(lv['0.0003']['tr_sigma'])} -> {i0(lv['0.002']['tr_sigma'])})")
    stated(f"is {f2(c['duration']['ratio_largest_over_smallest'])}x longer at 2e-3")
    assert c["mechanism"] == "supports the paper's reading"
    stated(f"({f2(lv['0.001']['duration_tokens'] / lv['0.0003']['duration_tokens'])}x of 3e-4's)")
    d = v["d"]
    dominated = pct(d["levels"]["0.0001"]["eps_dominated_frac"], 1)
    stated(
        f"eps = 1e-4 ({dominated} of the denominators, "
        f"against {pct(d['reference']['eps_dominated_frac'], 1)} at 1e-8)"
    )
    stated(f"(t_loss {f2(d['levels']['0.0001']['ratio'])}x")
    stated(f"eps = 1e-3 ({pct(d['levels']['0.001']['eps_dominated_frac'])} of the denominators")
    stated(f"delays the escape {f2(d['levels']['0.001']['ratio'])}x in both seeds")
    sgd = t[t.optimizer == "sgd"]
    adam250 = t[(t.optimizer == "adamw") & (t.D == 250)]
    stated(f"B_simple / batch {span(sgd.b_ratio, lambda x: f'{x:.1f}')}")
    stated(f"tr Σ ~{i0(sgd.tr_sigma.mean())}")
    stated(
        f"escape at step ~{round(sgd.t_loss.mean(), -2):,.0f} "
        f"({sgd.t_loss.mean() / adam250.t_loss.mean():.1f}x AdamW at the same D)"
    )


def test_noise_llc():
    t = runs("noise_llc").dropna(subset=["llc"])
    llc = t.set_index("D").llc
    parts = [" and ".join(f"{x:.1f}" for x in llc[d]) for d in (250, 500, 1000)]
    stated(f"{parts[0]} at D = 250, {parts[1]} at 500, {parts[2]} at 1000")
    stated(f"is {span(llc, i0)} in all six runs")
    b = verdicts("noise_llc")["b"]["llc"]
    stated(f"ρ(LLC, duration) = {f2(b['rho'])}, p = {f2(b['p'])}: **not ordered**")
    assert b["verdict"] == "not ordered"
    n_ckpt = int(runs("noise_llc").dropna(subset=["llc"]).n_plateau_ckpts.sum())
    assert abs(n_ckpt - 60) <= 2  # "~60 plateau checkpoints"


def test_noise_on_the_paper_task():
    t = runs("paper_noise")
    v = verdicts("paper_noise")
    a = v["a"]
    with_plateau = int((t.status == "transitioned").sum())
    stated(f"{a['n_runs']} measurable runs, of the {with_plateau} with a plateau)")
    stated(
        f"B_simple / batch {a['ratio_min']:.1f}-{a['ratio_max']:.1f} (median "
        f"{a['ratio_median']:.2f})"
    )
    stated(f"({f2(a['group_ratio_over_null'])}x of 1/sqrt(K-1))")
    b = v["b"]
    stated(
        f"(ρ = {f2(b['rho'])} over {b['n_runs']} runs at {len(b['D_values'])} sizes, "
        f"p = {f2(b['p'])})"
    )
    lr3 = t[(t.lr == 3e-3)]
    assert sorted(lr3.n_plateau_ckpts) == [2, 10]
    stated("has only 2 checkpoints in its plateau")
    lv = v["c"]["levels"]
    stated(f"T_adam {lv['0.003']['t_adam'] / lv['0.001']['t_adam']:.1f}x higher at 3e-3")
    d = v["d"]
    late = ", ".join(i0(x) for x in d["levels"]["0.001"]["t_loss"])
    ref = ", ".join(i0(x) for x in d["reference"]["t_loss"])
    stated(
        f"eps = 1e-3 delays the drop {f2(d['levels']['0.001']['ratio'])}x (t_loss "
        f"{late.replace(', ', ' and ')} against {ref.replace(', ', ' and ')} steps"
    )
    stated(
        f"({f2(d['levels']['0.0001']['ratio'])}x); on the proxy "
        f"{f2(verdicts('noise_cpu')['d']['levels']['0.001']['ratio'])}x and "
        f"{f2(verdicts('noise_cpu')['d']['levels']['0.0001']['ratio'])}x"
    )
