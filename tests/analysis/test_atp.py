"""Attribution patching against the derivative it estimates and against exact patching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbc_interp.analysis.atp import atp_records, rank_agreement
from mbc_interp.analysis.patching import logit_diff, patch_head_out_all_pos


def _values(rows, kind, metric="atp_raw"):
    return {r["component"]: r["value"] for r in rows if r["kind"] == kind
            and r["metric"] == metric}  # fmt: skip


def test_estimate_is_the_derivative_of_a_small_patch(trained, task):
    """(patch a step eps of the way from corrupt to clean) / eps -> the attribution estimate."""
    pairs = task.patching_pairs(32, 0)
    est = _values(atp_records(trained, task, pairs), "head_out_all_pos")
    name = "blocks.1.attn.hook_z"
    with torch.no_grad():
        _, clean = trained.run_with_cache(pairs.clean_tokens, names_filter=lambda n: n == name)
        base = logit_diff(trained(pairs.corrupt_tokens), pairs).double().mean()
        eps = 1e-3
        for h in range(trained.cfg.n_heads):
            def hook(z, hook, h=h):
                z = z.clone()
                z[:, :, h] += eps * (clean[name][:, :, h] - z[:, :, h])
                return z

            moved = logit_diff(trained.run_with_hooks(pairs.corrupt_tokens,
                                                      fwd_hooks=[(name, hook)]), pairs)  # fmt: skip
            slope = float((moved.double().mean() - base) / eps)
            assert est[f"L1H{h}"] == pytest.approx(slope, rel=0.05, abs=0.02)


def test_positions_where_clean_and_corrupt_agree_get_nothing_and_heads_rank_like_exact(
    trained, task
):
    pairs = task.patching_pairs(64, 0)
    rows = atp_records(trained, task, pairs)
    resid = {r["pos"]: r["value"] for r in rows if r["kind"] == "resid_pre"
             and r["metric"] == "atp_raw" and r["component"].startswith("L0 ")}  # fmt: skip
    z_pos = set(task.selector_positions)
    assert all(v == 0.0 for p, v in resid.items() if p not in z_pos)
    assert any(abs(resid[p]) > 0.1 for p in z_pos)
    est = _values(rows, "head_out_all_pos")
    exact = patch_head_out_all_pos(trained, task, pairs).raw.flatten().numpy()
    order = [f"L{l}H{h}" for l in range(2) for h in range(4)]
    rho = rank_agreement(np.array([est[k] for k in order]), exact)
    assert rho > 0.5
    assert np.isnan(rank_agreement(np.ones(3), np.arange(3.0)))


def test_estimates_are_the_first_order_term_of_two_full_runs(trained, task):
    """The runs' shortcuts (the clean run from the first position where the prompts differ,
    stopped at the last site; the corrupt run narrowed to the answer position) leave every
    estimate as two full runs and a full backward give it."""
    pairs = task.patching_pairs(32, 0)
    rows = atp_records(trained, task, pairs)
    heads, resid = _values(rows, "head_out_all_pos"), _values(rows, "resid_pre")
    is_site = lambda name: name.endswith(("hook_z", "hook_resid_pre"))  # noqa: E731
    with torch.no_grad():
        _, clean = trained.run_with_cache(pairs.clean_tokens, names_filter=is_site)
    acts = {}

    def keep(act, hook):
        acts[hook.name] = act

    logits = trained.run_with_hooks(pairs.corrupt_tokens, fwd_hooks=[(is_site, keep)])
    grads = torch.autograd.grad(logit_diff(logits, pairs).sum(), list(acts.values()))
    full = {k: ((clean[k] - a.detach()) * g).mean(0)
            for (k, a), g in zip(acts.items(), grads, strict=True)}  # fmt: skip
    labels = task.position_labels
    for l in range(trained.cfg.n_layers):
        z = full[f"blocks.{l}.attn.hook_z"].sum(dim=(0, 2))
        r = full[f"blocks.{l}.hook_resid_pre"].sum(-1)
        assert [heads[f"L{l}H{h}"] for h in range(len(z))] == pytest.approx(z.tolist(), abs=1e-5)
        assert [resid[f"L{l} {labels[p]}"] for p in range(len(r))] == pytest.approx(
            r.tolist(), abs=1e-5
        )
