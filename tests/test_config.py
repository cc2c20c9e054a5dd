from __future__ import annotations

import json

import pytest

from mbc_interp.config import CheckpointSchedule, ConfigError, RunConfig, TrainConfig


def test_round_trips_through_json_and_toml(tmp_path):
    cfg = RunConfig().with_overrides({"task": {"D": 500, "K": 8}, "train": {"lr": 1e-3}})
    path = tmp_path / "c.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert RunConfig.from_file(path) == cfg
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[task]\nD = 500\nK = 8\n[train]\nlr = 1e-3\nbetas = [0.9, 0.95]\n"
        "[train.checkpoints]\nevery = 50\nloss_delta = 0.02\n"
    )
    loaded = RunConfig.from_file(toml)
    assert loaded.task.D == 500 and loaded.train.betas == (0.9, 0.95)
    assert loaded.train.checkpoints == CheckpointSchedule(every=50, loss_delta=0.02)


def test_model_d_mlp_null_makes_attention_only(tmp_path):
    cfg = RunConfig.from_dict({"model": {"d_mlp": None}})
    assert cfg.model.attn_only


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"task": {"DD": 3}}, "unknown field task.DD"),
        ({"tsk": {}}, "unknown field tsk"),
        ({"train": {"checkpoints": {"evry": 3}}}, "unknown field train.checkpoints.evry"),
        ({"train": {"lr": "fast"}}, "field train.lr = 'fast'"),
        ({"train": {"lr": -1.0}}, "train.lr = -1.0: must be a finite number > 0"),
        ({"train": {"betas": [0.9]}}, "field train.betas"),
        ({"model": {"d_model": 30, "n_heads": 4}}, "model.d_model = 30"),
        ({"train": {"checkpoints": {"loss_delta": 2.0}}}, "loss_delta = 2.0"),
        ({"task": {"direction": "sideways"}}, "field task.direction = 'sideways': must be one of"),
        ({"task": {"direction": "forward"}}, "task.direction = 'forward': forward needs every A"),
        (
            {"task": {"direction": "forward", "target_len": 2, "D": 300}},
            "use target_len >= 2 with D <= n_target_symbols ** (target_len - 1)",
        ),
    ],
)
def test_bad_config_names_file_and_field(tmp_path, data, needle):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        RunConfig.from_file(path)
    assert str(path) in str(err.value) and needle in str(err.value)


def test_unparseable_and_missing_files(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("[task\n")
    with pytest.raises(ConfigError, match=r"x\.toml: not valid toml"):
        RunConfig.from_file(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        RunConfig.from_file(tmp_path / "missing.json")


def test_schedule_is_log_spaced_then_even():
    s = CheckpointSchedule(log_until=64, every=100)
    fixed = [t for t in range(0, 401) if s.is_fixed(t)]
    assert fixed == [0, 1, 2, 4, 8, 16, 32, 64, 100, 200, 300, 400]


def test_schedule_adapts_to_loss_moves():
    s = CheckpointSchedule(loss_delta=0.05)
    assert s.moved(1.0, 1.1, log_k=1.0) and not s.moved(1.0, 1.04, log_k=1.0)
    assert not s.moved(1.0, None, log_k=1.0)
    assert not CheckpointSchedule(loss_delta=None).moved(0.0, 5.0, log_k=1.0)


def test_warmup_then_constant_lr():
    tc = TrainConfig(lr=1e-3, warmup_steps=10)
    assert tc.lr_at(5) == pytest.approx(5e-4) and tc.lr_at(10) == tc.lr_at(500) == 1e-3


def test_tokens_per_step_counts_whole_sequences():
    cfg = RunConfig()
    assert cfg.tokens_per_step == cfg.train.batch_size * cfg.task.seq_len


def test_forward_direction_round_trips_through_toml_and_json(tmp_path):
    toml = tmp_path / "f.toml"
    toml.write_text('[task]\nD = 200\ntarget_len = 3\ndirection = "forward"\n')
    cfg = RunConfig.from_file(toml)
    assert cfg.task.direction == "forward" and not cfg.task.has_selector
    path = tmp_path / "f.json"
    path.write_text(json.dumps(cfg.to_dict()))
    assert RunConfig.from_file(path) == cfg


# -- the task a config names ------------------------------------------------------------------
def test_config_names_its_task_and_old_records_load():
    c = RunConfig()
    d = c.to_dict()
    assert d["task"]["name"] == "wind_tunnel"
    old = {**d, "task": {k: v for k, v in d["task"].items() if k != "name"}}
    assert RunConfig.from_dict(old) == c  # run directories made before tasks had names


def test_unknown_task_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"task.name = 'nope'.*known: \['modular_addition', "):
        RunConfig.from_dict({"task": {"name": "nope"}}, "x.toml")
