from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from mbc_interp.core.files import atomic_write
from mbc_interp.store.run_store import (
    LOCK_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    CheckpointError,
    RunLockedError,
    RunStore,
    RunStoreError,
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


def test_last_metrics_reads_the_last_complete_row_from_the_end(store):
    assert store.last_metrics() is None  # created, nothing logged yet
    rows = [{"step": s, "loss": 1.0 / (s + 1), "pad": "x" * 50} for s in range(0, 500, 5)]
    store.append_metrics(rows)
    assert store.last_metrics() == rows[-1]
    with open(store.path / METRICS_FILE, "a") as f:
        f.write('{"step": 500, "lo')  # torn by a write in progress
    assert store.last_metrics()["step"] == 495
    size = len(json.dumps(rows[-1])) + len('{"step": 500, "lo') + 20  # into the row before
    assert store.last_metrics(tail=size)["step"] == 495  # whose cut start is skipped
    assert RunStore(store.path / "missing").last_metrics() is None


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
from mbc_interp.store.run_store import RunStore
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


def _truncate(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_verify_names_damaged_and_missing_files_and_quick_check_sees_truncation(store):
    from mbc_interp.store.integrity import quick_check, verify_checkpoints

    for step in (10, 20, 30, 40):
        store.save_checkpoint(step, step, _weights(step), 1.0, {"optim.0.x": torch.ones(2)},
                              keep_trainer="all")  # fmt: skip
    assert verify_checkpoints(store) == [] and quick_check(store) == []
    m = store.read_manifest()
    _truncate(store.path / m.entry(20).file)
    _flip_last_byte(store.path / m.entry(30).file)  # same size: only the checksum sees it
    (store.path / m.entry(40).trainer_file).unlink()
    found = {(p.step, p.kind, p.problem.split(" (")[0]) for p in verify_checkpoints(store)}
    assert found == {(20, "weights", "checksum mismatch"), (30, "weights", "checksum mismatch"),
                     (40, "trainer", "missing")}  # fmt: skip
    quick = {(p.step, p.kind, p.problem.split(" (")[0]) for p in quick_check(store)}
    assert quick == {(20, "weights", "truncated"), (40, "trainer", "missing")}


def test_drop_damaged_moves_files_aside_and_rewrites_the_manifest(store):
    from mbc_interp.store.integrity import DAMAGED_DIR, drop_damaged, verify_checkpoints

    for step in (10, 20, 30):
        store.save_checkpoint(step, step, _weights(step), 1.0, {"optim.0.x": torch.ones(2)},
                              keep_trainer="all")  # fmt: skip
    store.append_metrics([{"step": 10, "loss": 1.0}, {"step": 20, "loss": 0.5}])
    metrics = (store.path / METRICS_FILE).read_bytes()
    m = store.read_manifest()
    _truncate(store.path / m.entry(20).file)
    _flip_last_byte(store.path / m.entry(30).trainer_file)
    repair = drop_damaged(store)
    assert repair.dropped == (20,) and repair.trainer_dropped == (30,)
    after = store.read_manifest()
    assert after.steps == [10, 30] and after.status == m.status
    assert after.entry(10) == m.entry(10)  # everything else kept as it was
    assert after.entry(30).trainer_file is None and after.entry(30).sha256 == m.entry(30).sha256
    moved = {p.relative_to(store.path / DAMAGED_DIR).as_posix() for p in repair.moved}
    assert moved == {m.entry(20).file, m.entry(20).trainer_file, m.entry(30).trainer_file}
    assert all(p.is_file() for p in repair.moved)  # kept, not deleted
    assert not (store.path / m.entry(20).file).exists()
    assert verify_checkpoints(store) == []
    assert (store.path / METRICS_FILE).read_bytes() == metrics
    assert drop_damaged(store).moved == ()  # nothing left to do


def test_nearest_step_and_a_missing_step_names_the_nearest_checkpoints(tiny_run):
    steps = tiny_run.steps  # 0, 1, 2, 4, 8, 16, 40, ...
    assert tiny_run.nearest_step(steps[-1] + 1000) == steps[-1]
    assert tiny_run.nearest_step(-5) == 0
    assert tiny_run.nearest_step(3) == 2  # a tie: the earlier one
    assert tiny_run.nearest_step(30) == 40 and tiny_run.nearest_step(16) == 16
    with pytest.raises(KeyError) as e:
        tiny_run.model(30)
    assert "no checkpoint at step 30" in str(e.value) and "nearest checkpoint(s): 16, 40" in str(
        e.value
    )
    with pytest.raises(KeyError, match=rf"nearest checkpoint\(s\): {steps[-1]} "):
        tiny_run.model(steps[-1] + 1)
