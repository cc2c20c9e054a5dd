"""Ablation against answers known by construction: a head that writes nothing costs nothing,
ablating no head costs nothing, and on a model trained to read z the heads it needs cost
more than the rest and suffice together."""

from __future__ import annotations

import pytest
import torch

from mbc_interp.analysis.ablation import AblationConfig, ablation_records


def _values(rows, method="mean", metric="cand_loss_increase"):
    return {r["component"]: r["value"] for r in rows
            if r["kind"] == method and r["metric"] == metric}  # fmt: skip


def test_a_head_that_writes_nothing_costs_nothing(trained, task):
    model = trained
    saved = model.blocks[1].attn.W_O.detach().clone()
    try:
        with torch.no_grad():
            model.blocks[1].attn.W_O[2].zero_()
        rows = ablation_records(model, task, AblationConfig(n_examples=64))
        for method in ("mean", "resample"):
            for metric in ("loss_increase", "cand_loss_increase"):
                assert _values(rows, method, metric)["L1H2"] == pytest.approx(0.0, abs=1e-5)
    finally:
        with torch.no_grad():
            model.blocks[1].attn.W_O.copy_(saved)


def test_necessity_and_sufficiency_on_a_model_that_reads_z(trained, task):
    every = tuple(f"L{l}H{h}" for l in range(2) for h in range(4))
    rows = ablation_records(trained, task, AblationConfig(n_examples=128, heads=every))
    label = "+".join(sorted(every))
    mean = _values(rows)
    # ablating every head is necessary; keeping every head ablates nothing
    assert mean[f"only:{label}"] == pytest.approx(0.0, abs=1e-6)
    assert mean[f"set:{label}"] > 0.3
    auto = ablation_records(trained, task, AblationConfig(n_examples=128))
    single = {k: v for k, v in _values(auto).items() if k.startswith("L")}
    chosen = next(k for k in _values(auto) if k.startswith("set:"))[4:].split("+")
    top = max(single.values())
    assert top > 0.1 and all(single[h] >= 0.5 * top for h in chosen)
    necessity = _values(auto)[f"set:{'+'.join(chosen)}"]
    assert necessity >= top - 1e-6  # the set costs at least its strongest member
    ses = _values(auto, metric="cand_loss_increase_se")
    assert all(v >= 0 for v in ses.values()) and len(ses) == len(_values(auto))


def test_the_ablation_baseline_is_the_evaluations_first_token_losses():
    """Clean (nothing ablated), the ablation's per-row marginal and candidate losses average to
    evaluate()'s ``marg_first_loss`` and ``cand_first_loss`` on the same rows, and the
    marginal's chance to its ``marg_first_chance``, on a task whose candidates share first
    tokens; ``marg_gain`` is the chance less the clean marginal."""
    from mbc_interp.analysis.ablation import _losses
    from mbc_interp.tasks.wind_tunnel.evaluation import eval_rows, evaluate
    from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask

    from .conftest import tiny_model

    task = WindTunnelTask(TaskConfig(construction="random_strings", K=5, n_examples=100,
                                     base_len=6, selector_len=2, target_len=4))  # fmt: skip
    assert not task.first_token_distinct
    model = tiny_model(task, seed=3)
    rows = eval_rows(task, 60, seed=0)
    tokens = task.tokens[rows]
    with torch.inference_mode():
        logits = model(tokens[:, :-1])
    _, marg, cand = _losses(logits, tokens, task, rows, True)
    ev = evaluate(model, task, rows, cand_examples=len(rows))
    assert float(cand.double().mean()) == pytest.approx(ev["cand_first_loss"], rel=1e-5)
    assert float(marg.double().mean()) == pytest.approx(ev["marg_first_loss"], rel=1e-5)
    chance = task.marginal_first_chance(rows)
    assert float(chance.mean()) == pytest.approx(ev["marg_first_chance"], rel=1e-9)
    assert ev["cand_first_loss"] > 0.1  # a random model is far from reading z: not vacuous
    assert ev["marg_first_loss"] > 0.1  # nor has it learned B's candidates
    gain = _values(ablation_records(model, task, AblationConfig(n_examples=60)), "mean",
                   "marg_gain")["clean"]  # fmt: skip
    assert gain == pytest.approx(float((chance - marg.double()).mean()), abs=1e-5)


def test_the_marginal_separates_reading_the_context_from_reading_z(trained, task):
    """Every head mean-ablated, each row gets the same prediction. On the shared pool every B
    has the same candidates, so that costs the candidate loss but not the marginal; on random
    strings each B has its own, and it undoes the marginal's gain too. Keeping every head
    costs nothing."""
    from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask

    from .conftest import tiny_model, train

    def every_head(model, task):
        heads = tuple(f"L{l}H{h}" for l in range(2) for h in range(4))
        rows = ablation_records(model, task, AblationConfig(n_examples=128, heads=heads))
        label = "+".join(sorted(heads))
        marg, cand = _values(rows, metric="marg_loss_increase"), _values(rows)
        gain = _values(rows, metric="marg_gain")["clean"]
        assert marg[f"only:{label}"] == pytest.approx(0.0, abs=1e-6)
        return marg[f"set:{label}"], cand[f"set:{label}"], gain

    marg, cand, gain = every_head(trained, task)
    assert gain > 0.5 and cand > 0.3  # it knows the pool and reads z ...
    assert abs(marg) < 0.1 * gain  # ... and needs no head to know the pool
    strings = WindTunnelTask(TaskConfig(construction="random_strings", K=4, n_examples=128,
                                        base_len=4, selector_len=1, target_len=2))  # fmt: skip
    torch.manual_seed(0)
    model = tiny_model(strings)
    train(model, strings, steps=150)
    marg, cand, gain = every_head(model, strings)
    assert gain > 0.5  # it has learned which answers each B allows ...
    assert marg > 0.5 * gain  # ... by reading B, which ablating every head removes


def test_z_resampling_costs_nothing_where_the_selector_is_invisible(trained, task):
    """With every selector token embedded alike, the row with another selector of the same B is
    the same input to the model: z resampling changes no activation and costs exactly nothing,
    while mean ablation (which removes what the heads say about B too) still costs."""
    selectors = task.tokens[:, list(task.selector_positions)].unique()
    assert len(selectors) == task.K  # the shared pool's K selector tokens
    saved = trained.embed.W_E.detach().clone()
    try:
        with torch.no_grad():
            trained.embed.W_E[selectors] = trained.embed.W_E[selectors[0]].clone()
        rows = ablation_records(trained, task,
                                AblationConfig(n_examples=64, methods=("z_resample", "mean")))
        for metric in ("loss_increase", "cand_loss_increase", "marg_loss_increase"):
            z = _values(rows, "z_resample", metric)
            assert len(z) == 8 + 2 and all(v == pytest.approx(0.0, abs=1e-6) for v in z.values())
        assert max(_values(rows, "mean", "loss_increase").values()) > 0.05
    finally:
        with torch.no_grad():
            trained.embed.W_E.copy_(saved)


def test_z_resampling_every_head_removes_z_and_keeps_what_b_says():
    """On random strings, where each B has its own candidates: mean-ablating every head undoes
    the marginal's gain (test above), z-resampling every head leaves the model predicting from
    the same B with another z, so the candidate loss rises while the marginal keeps its gain."""
    from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask

    from .conftest import tiny_model, train

    strings = WindTunnelTask(TaskConfig(construction="random_strings", K=4, n_examples=128,
                                        base_len=4, selector_len=1, target_len=2))  # fmt: skip
    torch.manual_seed(0)
    model = tiny_model(strings)
    train(model, strings, steps=300)
    heads = tuple(f"L{l}H{h}" for l in range(2) for h in range(4))
    label = "+".join(sorted(heads))
    rows = ablation_records(model, strings, AblationConfig(n_examples=128, heads=heads,
                                                           methods=("z_resample",)))  # fmt: skip
    cand = _values(rows, "z_resample")[f"set:{label}"]
    marg = _values(rows, "z_resample", "marg_loss_increase")[f"set:{label}"]
    gain = _values(rows, "z_resample", "marg_gain")["clean"]
    assert gain > 0.5 and cand > 0.3  # it knows B's candidates and reads z ...
    assert abs(marg) < 0.2 * gain  # ... and another z of the same B keeps the candidates


def test_z_resampling_needs_a_selector(grok_model, grok_task):
    from mbc_interp.tasks.protocol import TaskProtocolError

    with pytest.raises(TaskProtocolError, match=r"z_resample.*HasSelector"):
        ablation_records(grok_model, grok_task, AblationConfig(n_examples=16,
                                                               methods=("z_resample",)))


def test_on_a_task_without_candidates_only_the_answer_loss_is_read(grok_model, grok_task):
    """Modular addition has no candidates: the rows are the answer loss's increase alone, its
    clean value the task's own per-row loss, and the head-set rules still hold."""
    from mbc_interp.analysis.ablation import _losses

    rows = grok_task.eval_rows(16, seed=0)
    tokens = grok_task.tokens[rows]
    with torch.inference_mode():
        loss, marg, cand = _losses(grok_model(tokens[:, :-1]), tokens, grok_task, rows, False)
    assert marg is None and cand is None
    assert torch.allclose(loss.double(), grok_task.row_losses(grok_model, rows)[0], atol=1e-5)
    model = grok_model
    saved = model.blocks[0].attn.W_O.detach().clone()
    try:
        with torch.no_grad():
            model.blocks[0].attn.W_O[1].zero_()
        every = ("L0H0", "L0H1")
        out = ablation_records(model, grok_task, AblationConfig(n_examples=16, heads=every))
    finally:
        with torch.no_grad():
            model.blocks[0].attn.W_O.copy_(saved)
    assert {r["metric"] for r in out} == {"loss_increase", "loss_increase_se"}
    for method in ("mean", "resample"):
        d = _values(out, method, "loss_increase")
        assert d["L0H1"] == pytest.approx(0.0, abs=1e-5)  # writes nothing
        assert d["only:L0H0+L0H1"] == pytest.approx(0.0, abs=1e-6)  # nothing else to ablate
        assert d["set:L0H0+L0H1"] == pytest.approx(d["L0H0"], abs=1e-5)  # L0H1 adds nothing
