from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from mbc_interp import CheckpointError, RunStoreError, evaluate, load_run, resume, train
from mbc_interp.config import dz_level
from mbc_interp.training import batch_indices

from .helpers import build_cfg

# wall_time is the only column allowed to differ between two runs of the same config
TIMING = {"wall_time"}


def _rows(run, ignore=frozenset()):
    drop = TIMING | ignore
    return [{k: v for k, v in r.items() if k not in drop} for r in run.store.read_metrics()]


def test_batches_cover_each_epoch_once():
    n, b = 50, 16
    seen = np.concatenate([batch_indices(0, s, b, n) for s in range(1, 26)])  # 400 = 8 epochs
    for epoch in range(8):
        assert sorted(seen[epoch * n : (epoch + 1) * n]) == list(range(n))
    assert not np.array_equal(batch_indices(0, 1, b, n), batch_indices(1, 1, b, n))


def test_run_api(tiny_run):
    run = load_run(tiny_run.path)
    assert run.steps == sorted(run.steps) and run.steps[0] == 0 and run.steps[-1] == 120
    assert run.status == "finished" and run.manifest.stop_reason == "max_steps"
    assert torch.equal(run.task.tokens, tiny_run.task.tokens)
    assert run.task.loss_mask.shape == run.task.tokens.shape
    assert run.task.selector_positions == (run.config.task.base_len,)
    m = run.metrics
    assert {"step", "tokens", "loss", "loss_pos", "acc", "log_k", "train_loss"} <= set(m.columns)
    assert {"loss_tok", "cand_loss", "cand_acc", "dz", "dz_se", "dz_cand", "dz_cand_se"} <= set(m)
    assert (m["tokens"] == m["step"] * run.config.tokens_per_step).all()
    assert np.allclose(m["log_k"], np.log(4))
    assert set(run.steps) == set(m.loc[m["checkpoint"], "step"])
    assert run.versions["torch"] == torch.__version__
    assert len(list(run.models(run.steps[:3]))) == 3


def test_checkpoints_reproduce_logged_eval_loss(tiny_run):
    logged = tiny_run.metrics.set_index("step")
    for step in [*tiny_run.steps[::3], tiny_run.steps[-1]]:
        model = tiny_run.model(step)
        assert not model.training
        ev = evaluate(model, tiny_run.task)
        assert ev["loss"] == pytest.approx(logged.loc[step, "loss"], abs=1e-5)
        assert ev["acc"] == pytest.approx(logged.loc[step, "acc"])


def test_schedule_has_log_spaced_and_adaptive_checkpoints(tiny_run):
    steps = tiny_run.steps
    assert {0, 1, 2, 4, 8, 16, 40, 80, 120} <= set(steps)
    fixed = {0, 1, 2, 4, 8, 16, 40, 80, 120}
    m = tiny_run.metrics.set_index("step")
    log_k = tiny_run.log_k
    dz_delta = tiny_run.config.train.checkpoints.dz_delta
    # every extra checkpoint was triggered by the loss moving > loss_delta * log K, or by
    # log10 Δz moving >= dz_delta
    last = last_level = None
    for s in steps:
        level = dz_level(m.loc[s].to_dict())
        if s not in fixed:
            moved = abs(m.loc[s, "loss"] - last) > 0.1 * log_k
            assert moved or abs(level - last_level) >= dz_delta
        last, last_level = m.loc[s, "loss"], level


def test_resume_with_more_steps_equals_a_longer_run(tmp_path):
    long = train(build_cfg(steps=100), tmp_path / "long", progress=False)
    short = train(build_cfg(steps=60), tmp_path / "short", progress=False)
    resumed = resume(short.path, steps=100, progress=False)
    # the short run also checkpointed its last step (60), so only that flag may differ
    assert _rows(resumed, {"checkpoint"}) == _rows(long, {"checkpoint"})
    assert resumed.config.train.steps == 100


def test_a_crash_right_after_step_0_resumes_without_logging_step_0_twice(tmp_path, monkeypatch):
    import importlib

    train_module = importlib.import_module("mbc_interp.training.loop")

    def crash(self, step):
        raise KeyboardInterrupt  # killed before the first update finished

    monkeypatch.setattr(train_module._Loop, "_update", crash)
    with pytest.raises(KeyboardInterrupt):
        train(build_cfg(steps=30), tmp_path / "r", progress=False)
    monkeypatch.undo()
    assert load_run(tmp_path / "r").status == "running"
    resumed = resume(tmp_path / "r", progress=False)
    reference = train(build_cfg(steps=30), tmp_path / "ref", progress=False)
    steps = list(resumed.metrics["step"])
    assert steps == sorted(set(steps)) and steps[:2] == [0, 1]
    assert _rows(resumed) == _rows(reference)


def test_stops_after_solved(tmp_path):
    run = train(
        build_cfg(steps=400, solved_frac=0.99, stop_after_solved=2), tmp_path / "r", progress=False
    )
    m = run.metrics
    assert run.steps[-1] == m["step"].iloc[-1] < 400
    assert "solved" in run.manifest.stop_reason
    solved = m["loss"] < 0.99 * run.log_k
    assert solved.iloc[-3:].all()


def test_corrupt_checkpoint_is_named(tmp_path, tiny_run):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(tiny_run.path, path)
    run = load_run(path)
    entry = run.manifest.entry(40)
    file = path / entry.file
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=rf"{entry.file}: checksum mismatch"):
        run.model(40)
    with pytest.raises(KeyError, match="no checkpoint at step 41"):
        run.model(41)


def test_changed_dataset_is_detected(tmp_path, tiny_run):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(tiny_run.path, path)
    record = json.loads((path / "config.json").read_text())
    record["task_fingerprint"] = "0" * 64
    (path / "config.json").write_text(json.dumps(record))
    with pytest.raises(RunStoreError, match="rebuilt dataset differs"):
        _ = load_run(path).task


_CHILD = """
import sys
sys.path.insert(0, {root!r})
from tests.helpers import build_cfg
from mbc_interp import train
train(build_cfg(steps=800, eval_every=5), {out!r}, progress=False)
"""


@pytest.mark.slow
def test_sigkill_mid_training_then_resume_reproduces_uninterrupted_metrics(tmp_path):
    out = tmp_path / "killed"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(root=root, out=str(out))])
    try:
        deadline = time.time() + 120
        while time.time() < deadline:  # kill once a few hundred steps are checkpointed
            manifest = out / "manifest.json"
            if manifest.exists():
                try:
                    steps = [c["step"] for c in json.loads(manifest.read_text())["checkpoints"]]
                except json.JSONDecodeError:
                    steps = []
                if steps and steps[-1] >= 200:
                    break
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    killed = load_run(out)
    assert killed.status == "running" and killed.steps[-1] < 800
    for step in killed.steps:  # every listed checkpoint is valid
        killed.state_dict(step)

    resumed = resume(out, progress=False)
    reference = train(build_cfg(steps=800, eval_every=5), tmp_path / "ref", progress=False)
    assert resumed.status == "finished"
    assert _rows(resumed) == _rows(reference)
    assert resumed.steps == reference.steps
    last = reference.steps[-1]
    ref_w, res_w = reference.state_dict(last), resumed.state_dict(last)
    assert all(torch.equal(ref_w[k], res_w[k]) for k in ref_w)


def test_resuming_a_finished_run_needs_more_steps(tmp_path, tiny_run):
    import shutil

    from mbc_interp.training import TrainingError

    shutil.copytree(tiny_run.path, tmp_path / "copy")
    with pytest.raises(TrainingError, match=r"already finished.*--steps"):
        resume(tmp_path / "copy", progress=False)
    with pytest.raises(TrainingError, match="below the step to resume from"):
        resume(tmp_path / "copy", steps=50, progress=False)


# -- non-finite values ------------------------------------------------------------------------
def _all_finite(run) -> bool:
    return all(bool(torch.isfinite(t).all()) for s in run.steps for t in run.state_dict(s).values())


def test_non_finite_training_loss_stops_the_run_at_its_step(tmp_path):
    from mbc_interp import CheckpointSchedule

    # lr 1e30: step 1's loss is finite, its update makes every later loss non-finite; the first
    # evaluation after step 0 is at step 10, so only the per-step check can name step 2
    sched = CheckpointSchedule(log_until=0, every=40, loss_delta=0.1)
    run = train(build_cfg(lr=1e30, checkpoints=sched), tmp_path / "r", progress=False)
    assert run.status == "diverged"
    assert run.manifest.stop_reason.startswith("non-finite training loss at step 2;")
    assert "last good checkpoint: step 0" in run.manifest.stop_reason
    assert run.steps == [0] and _all_finite(run)
    assert run.metrics["step"].tolist() == [0]  # no row from the diverged window


def test_non_finite_weights_never_reach_a_checkpoint_and_the_last_good_one_resumes(tmp_path):
    run = train(build_cfg(lr=1e30), tmp_path / "r", progress=False)  # step 1 is evaluated
    assert run.status == "diverged"
    assert "non-finite eval loss or weights at step 1" in run.manifest.stop_reason
    assert run.steps == [0] and _all_finite(run)
    assert run.manifest.latest_resumable().step == 0
    again = resume(run.path, steps=60, progress=False)  # resumable, and exactly reproducible
    assert again.status == "diverged" and again.manifest.stop_reason == run.manifest.stop_reason


# -- files on resume ---------------------------------------------------------------------------
def test_altered_trainer_state_is_named_on_resume_and_nothing_changes(tmp_path, tiny_run):
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(tiny_run.path, path)
    entry = load_run(path).manifest.latest_resumable()
    before = {f: (path / f).read_bytes() for f in ("config.json", "manifest.json", "metrics.jsonl")}
    file = path / entry.trainer_file
    data = file.read_bytes()
    for altered in (data[: len(data) // 2], data[:-1] + bytes([data[-1] ^ 1])):
        file.write_bytes(altered)
        with pytest.raises(CheckpointError, match=rf"{entry.trainer_file}: checksum mismatch"):
            resume(path, steps=200, progress=False)
        after = {f: (path / f).read_bytes() for f in before}
        assert after == before  # config.json not rewritten with steps=200


def test_garbled_weights_with_a_matching_checksum_are_named_on_load(tmp_path, tiny_run):
    import hashlib
    import shutil

    path = tmp_path / "copy"
    shutil.copytree(tiny_run.path, path)
    manifest = json.loads((path / "manifest.json").read_text())
    entry = manifest["checkpoints"][1]
    garbled = b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}..."
    (path / entry["file"]).write_bytes(garbled)
    entry["sha256"] = hashlib.sha256(garbled).hexdigest()
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=rf"{entry['file']}: not a readable safetensors"):
        load_run(path).model(entry["step"])


def test_metrics_are_fsynced_before_each_checkpoint_is_written(tmp_path, monkeypatch):
    import mbc_interp.store.run_store as store_mod

    synced: list[str] = []
    real = os.fsync

    def spy(fd):
        synced.append(os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
        return real(fd)

    monkeypatch.setattr(store_mod.os, "fsync", spy)
    run = train(build_cfg(steps=40), tmp_path / "r", progress=False)
    weights = [i for i, name in enumerate(synced) if ".safetensors.tmp" in name
               and ".trainer." not in name]  # fmt: skip
    assert len(weights) == len(run.steps)
    for i in weights:  # the metrics row of this checkpoint was made durable just before
        assert synced[i - 1] == "metrics.jsonl", synced[max(0, i - 3) : i + 1]


def test_the_optimizer_implementation_is_recorded(tiny_run):
    record = tiny_run.record()["optimizer"]
    assert record["adamw"] in ("fused", "foreach")
    assert (record["adamw"] == "foreach") == ("note" in record)


def test_progress_words_show_the_loss_against_log_k_and_its_phase():
    from mbc_interp.core.progress import loss_phase, train_postfix

    log_k = float(np.log(4))
    assert loss_phase(2.5, log_k, 0.05) == "descending"
    assert loss_phase(log_k * 1.01, log_k, 0.05) == "on the plateau"
    assert loss_phase(log_k * 0.5, log_k, 0.05) == "dropping"
    assert loss_phase(log_k * 0.01, log_k, 0.05) == "solved"
    assert train_postfix(log_k, log_k, 0.25, 0.05).startswith("loss 1.3863 = 1.00 log K (on the")


def test_the_progress_bar_shows_the_cap_as_a_cap_without_an_eta(tmp_path, capsys):
    train(build_cfg(steps=30), tmp_path / "r", progress=True)
    err = capsys.readouterr().err
    assert "of at most 30" in err and "log K (" in err
    assert "<" not in err.replace("<bound", "")  # tqdm's "elapsed<remaining": no ETA


def test_a_run_with_a_damaged_checkpoint_dropped_loads_and_resumes(tiny_run, tmp_path):
    import shutil

    from mbc_interp.store.integrity import drop_damaged

    path = tmp_path / "run"
    shutil.copytree(tiny_run.path, path)
    run = load_run(path)
    middle = run.steps[len(run.steps) // 2]
    file = path / run.manifest.entry(middle).file
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="mbc verify"):
        run.model(middle)
    assert drop_damaged(run.store).dropped == (middle,)
    assert middle not in run.steps and len(run.steps) == len(tiny_run.steps) - 1
    run.model(run.nearest_step(middle))
    resumed = resume(path, steps=run.steps[-1] + 20, progress=False)
    assert resumed.status == "finished" and resumed.steps[-1] == tiny_run.steps[-1] + 20
