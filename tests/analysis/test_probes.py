"""Linear probes against answers known by construction."""

from __future__ import annotations

import pytest
import torch

from mbc_interp.analysis.probes import ProbeConfig, probe_accuracy, probe_records


def test_probe_reads_a_planted_label_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (400,), generator=g)
    onehot = torch.nn.functional.one_hot(labels, 5).double()
    planted = onehot + 0.1 * torch.randn(400, 5, generator=g)
    train, test = torch.arange(300), torch.arange(300, 400)
    acc, chance = probe_accuracy(torch.cat([planted, torch.randn(400, 20, generator=g)], 1),
                                 labels, train, test)  # fmt: skip
    assert acc == 1.0 and chance < 0.4
    noise_acc, _ = probe_accuracy(torch.randn(400, 20, generator=g), labels, train, test)
    assert noise_acc < 0.4


def test_probes_on_a_model_that_reads_z(trained, task):
    rows = probe_records(trained, task, ProbeConfig(n_examples=256))
    acc = {(r["component"], r["kind"]): r["value"] for r in rows if r["metric"] == "probe_acc"}
    chance = {(r["component"], r["kind"]): r["value"] for r in rows
              if r["metric"] == "probe_chance"}  # fmt: skip
    # the answer position holds the same token at the same place in every row: before any
    # layer, its residual cannot tell the rows apart
    assert acc[("resid_pre L0", "z")] <= chance[("resid_pre L0", "z")] + 1e-9
    # after the last layer the model predicts the first target token: a probe reads it
    assert acc[("resid_post final", "first")] > 0.9
    assert len(acc) == 2 * (trained.cfg.n_layers + 1)


def test_probe_config_is_validated():
    with pytest.raises(ValueError, match="n_examples"):
        ProbeConfig(n_examples=2)


def test_probes_read_the_tasks_own_labels_on_modular_addition(grok_model, grok_task):
    rows = probe_records(grok_model, grok_task, ProbeConfig(n_examples=24))
    acc = {(r["component"], r["kind"]): r["value"] for r in rows if r["metric"] == "probe_acc"}
    chance = {(r["component"], r["kind"]): r["value"] for r in rows
              if r["metric"] == "probe_chance"}  # fmt: skip
    assert {k for _, k in acc} == {"a", "b", "c"}
    assert len(acc) == 3 * (grok_model.cfg.n_layers + 1)
    # the '=' position before any layer is the same token at the same place in every row
    for label in ("a", "b", "c"):
        assert acc[("resid_pre L0", label)] <= chance[("resid_pre L0", label)] + 1e-9
    assert all(r["pos"] == grok_task.answer_pos for r in rows)
