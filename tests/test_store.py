from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from mbc_interp.store import (
    LOCK_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    CheckpointError,
    RunLockedError,
    RunStore,
    RunStoreError,
    atomic_write,
)


@pytest.fixture
def store(tmp_path):
    s = RunStore(tmp_path / "run")
    s.create({"config": {}})
    return s


def _weights(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"a.W": torch.randn(4, 3, generator=g), "b": torch.randn(5, generator=g)}


def test_checkpoint_round_trip_and_manifest(store):
    store.save_checkpoint(10, 700, _weights(0), 1.5, {"optim.0.exp_avg": torch.ones(2)}, {"x": 1})
    store.save_checkpoint(20, 1400, _weights(1), 1.2, {"optim.0.exp_avg": torch.ones(2)}, {"x": 2})
    m = store.read_manifest()
    assert m.steps == [10, 20]
    e = m.entry(20)
    tensors, meta = store.load_tensors(e.file, e.sha256)
    assert all(torch.equal(tensors[k], v) for k, v in _weights(1).items())
    assert meta["step"] == "20"
    # only the latest checkpoint keeps optimiser state; the older file is gone
    assert m.entry(10).trainer_file is None and m.latest_resumable().step == 20
    assert not (store.path / "checkpoints/step00000010.trainer.safetensors").exists()
    _, tmeta = store.load_tensors(e.trainer_file, e.trainer_sha256)
    assert json.loads(tmeta["trainer"]) == {"x": 2}


def test_keep_all_trainer_states(store):
    for step in (1, 2, 3):
        store.save_checkpoint(
            step, step, _weights(step), 1.0, {"t": torch.ones(1)}, {}, keep_trainer="all"
        )
    assert all(c.trainer_file for c in store.read_manifest().checkpoints)


def test_truncated_checkpoint_names_file(store):
    e = store.save_checkpoint(5, 5, _weights(0), 1.0)
    path = store.path / e.file
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(CheckpointError, match=r"step00000005\.safetensors: checksum mismatch"):
        store.load_tensors(e.file, e.sha256)


def test_garbage_checkpoint_without_checksum_names_file(store):
    (store.path / "checkpoints/bad.safetensors").write_bytes(
        b"\x08\x00\x00\x00\x00\x00\x00\x00{bad"
    )
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: not a readable safetensors"):
        store.load_tensors("checkpoints/bad.safetensors", None)


def test_missing_checkpoint_file(store):
    e = store.save_checkpoint(5, 5, _weights(0), 1.0)
    (store.path / e.file).unlink()
    with pytest.raises(CheckpointError, match="listed in the manifest but missing"):
        store.load_tensors(e.file, e.sha256)


def test_refuses_to_overwrite_a_run(store):
    with pytest.raises(RunStoreError, match=r"already holds a run.*--resume"):
        RunStore(store.path).create({})


def test_not_a_run_directory(tmp_path):
    with pytest.raises(RunStoreError, match="not a run directory"):
        RunStore(tmp_path / "nothing").read_manifest()


def test_torn_last_metrics_line_is_skipped_but_inner_garbage_is_an_error(store):
    store.append_metrics([{"step": 0, "loss": 1.0}, {"step": 5, "loss": 0.5}])
    with open(store.path / METRICS_FILE, "a") as f:
        f.write('{"step": 10, "lo')
    assert [r["step"] for r in store.read_metrics()] == [0, 5]
    store.truncate_metrics(0)
    assert [r["step"] for r in store.read_metrics()] == [0]
    (store.path / METRICS_FILE).write_text('{"step": 0}\nnot json\n{"step": 1}\n')
    with pytest.raises(RunStoreError, match="line 2 is not valid JSON"):
        store.read_metrics()


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / MANIFEST_FILE
    atomic_write(path, b"old")

    def boom(*_):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == [MANIFEST_FILE]  # no temp file left behind


# -- one writer per run (two real processes) ---------------------------------------------------
_HOLDER = """
import sys, time
sys.path.insert(0, {root!r})
from mbc_interp.store import RunStore
with RunStore({path!r}).writer():
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold_lock(path) -> subprocess.Popen:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    child = subprocess.Popen(
        [sys.executable, "-c", _HOLDER.format(root=root, path=str(path))],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout.readline().strip() == "locked"
    return child


def test_a_second_writer_is_refused_naming_the_holder_and_a_dead_holder_frees_it(tmp_path):
    from mbc_interp import resume, train

    from .helpers import build_cfg

    run = train(build_cfg(steps=20), tmp_path / "run", progress=False)
    child = _hold_lock(run.path)
    try:
        before = (run.path / MANIFEST_FILE).read_bytes()
        with pytest.raises(RunLockedError, match=rf"already being written by pid {child.pid} "):
            resume(run.path, steps=40, progress=False)
        with pytest.raises(RunLockedError, match=f"pid {child.pid}"):
            train(build_cfg(steps=20), tmp_path / "run", progress=False)
        assert (run.path / MANIFEST_FILE).read_bytes() == before
    finally:
        child.send_signal(signal.SIGKILL)  # no clean-up: its pid stays in the lock file
        child.wait(timeout=30)
    assert str(child.pid) in (run.path / LOCK_FILE).read_text()  # a stale lock
    resumed = resume(run.path, steps=40, progress=False)
    assert resumed.status == "finished" and resumed.steps[-1] == 40
    assert (run.path / LOCK_FILE).read_text() == ""  # released on the way out


def test_the_lock_is_reentrant_within_one_process(store):
    with store.writer(), store.writer():
        assert str(os.getpid()) in (store.path / LOCK_FILE).read_text()
    assert (store.path / LOCK_FILE).read_text() == ""
