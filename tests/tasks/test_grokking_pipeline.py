"""Modular addition through the same pipeline as the wind tunnel: config and presets, `mbc train`,
`mbc analyze` (its own kinds, no routing core), the summary's transition and progress fields,
`mbc info` and `mbc report`, on a tiny real run."""

from __future__ import annotations

import json

import pytest

from mbc_interp import load_run
from mbc_interp.cli import build_parser, main, resolve_config
from mbc_interp.config import ConfigError, RunConfig
from mbc_interp.tasks.registry import build_task


def test_presets_are_the_published_setting():
    g = RunConfig.from_dict({"preset": "grokking"})
    assert type(g.task).name == "modular_addition"
    assert (g.task.p, g.task.train_frac) == (113, 0.3)
    assert (g.model.n_layers, g.model.d_model, g.model.n_heads, g.model.d_mlp) == (1, 128, 4, 512)
    assert (g.model.act_fn, g.model.normalization) == ("relu", "none")
    assert (g.train.lr, g.train.weight_decay, g.train.betas) == (1e-3, 1.0, (0.9, 0.98))
    cpu = RunConfig.from_dict({"preset": "grokking_cpu"})
    for c in (g, cpu):  # full batch: the batch is the whole training split
        assert c.train.batch_size == c.task.n_train == len(build_task(c.task).train_rows)


def test_config_round_trips_and_flags_select_the_task():
    c = RunConfig.from_dict({"preset": "grokking_cpu"})
    assert RunConfig.from_dict(c.to_dict()) == c
    args = build_parser().parse_args(["train", "--task", "modular_addition", "--p", "13",
                                      "--train-frac", "0.5"])  # fmt: skip
    cfg = resolve_config(args)
    assert (type(cfg.task).name, cfg.task.p, cfg.task.train_frac) == ("modular_addition", 13, 0.5)
    with pytest.raises(ConfigError, match=r"unknown field task\.p"):
        resolve_config(build_parser().parse_args(["train", "--p", "13"]))  # the wind tunnel's


@pytest.fixture(scope="module")
def grok_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grok") / "run"
    code = main(["train", "--preset", "grokking_cpu", "--p", "11", "--train-frac", "0.5",
                 "--batch-size", "60", "--d-model", "32", "--d-mlp", "64", "--steps", "60",
                 "--eval-every", "10", "--ckpt-every", "20", "--out", str(out),
                 "--no-progress"])  # fmt: skip
    assert code == 0
    return load_run(out)


def test_train_logs_the_split_and_the_transition_metric(grok_run):
    m = grok_run.metrics
    assert {"loss", "acc", "test_loss", "test_acc", "train_loss"} <= set(m.columns)
    assert "log_k" not in m.columns  # no log K plateau on this task
    assert grok_run.task.name == "modular_addition"


def test_analyze_runs_the_tasks_kinds_and_summarises_progress(grok_run, capsys):
    assert main(["analyze", str(grok_run.path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "the task's own kinds: fourier" in out and "clean/corrupt pairs" not in out
    summary = json.loads((grok_run.path / "analysis" / "summary.json").read_text())
    assert summary["transition_signal"] == "test_loss"
    assert summary["log_k"] is None and summary["loss_scale"] == pytest.approx(2.3979, abs=1e-4)
    assert summary["progress_signal"] == grok_run.task.progress_signals[0].name
    assert set(summary["progress"]) == {s.name for s in grok_run.task.progress_signals}
    assert "t_progress" in summary and "t_progress_reason" in summary
    assert summary["progress"]["llc"]["reason"].startswith("not measured")  # no llc kind
    # every signal is timed from the plateau's start: none is "above its floor" at step 0
    for name, row in summary["progress"].items():
        assert row.get("baseline", "rest") == "rest", name
        assert row["t"] is None or row["t"] >= summary["t_plateau_start"], name
    table = grok_run.path / "analysis" / "timeline.csv"
    kinds = set(__import__("pandas").read_csv(table)["analysis"])
    assert kinds == set(grok_run.task.default_kinds)  # no routing core without a selector


def test_info_and_report(grok_run, capsys):
    assert main(["info", str(grok_run.path)]) == 0
    out = capsys.readouterr().out
    assert "modular_addition" in out and "test loss" in out
    main(["analyze", str(grok_run.path), "--no-progress"])
    assert main(["report", str(grok_run.path)]) == 0
    html = (grok_run.path / "report.html").read_text()
    assert "Hidden progress" in html and "test_loss" in html


def test_the_tasks_calibrated_kind_settings_are_used_where_none_are_given(grok_run):
    """``kind_defaults`` fill what is not given; a given setting wins; both are recorded."""
    from mbc_interp.analysis.extra_settings import LLCConfig

    defaults = grok_run.task.kind_defaults["llc"]
    assert defaults["step_size"] != LLCConfig().step_size  # the task's own, not the kind's
    main(["analyze", str(grok_run.path), "--no-progress"])
    assert main(["analyze", str(grok_run.path), "--kinds", "llc", "--every", "3",
                 "--kind-setting", "llc.draws=4", "--kind-setting", "llc.burn_in=2",
                 "--kind-setting", "llc.chains=1", "--no-progress"]) == 0  # fmt: skip
    recorded = json.loads((grok_run.path / "analysis" / "config.json").read_text())
    llc = recorded["llc"] if "llc" in recorded else recorded["extra_settings"]["llc"]
    assert llc["step_size"] == defaults["step_size"]
    assert llc["draws"] == 4 and llc["chains"] == 1


def test_the_forecast_refuses_the_grokking_signal_naming_what_it_misses(grok_run, capsys):
    """The primary signal is an analysis column timed from the plateau's start: it does not fit
    the forecast's model (a logged signal growing from zero), and the refusal says so; the
    wind tunnel's Δz does fit, with the calibration made on it."""
    from mbc_interp.analysis.timing.forecast import SIGNAL, forecast_signal
    from mbc_interp.analysis.timing.forecast_runs import forecast_run
    from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask

    from ..helpers import build_cfg

    why = forecast_signal(grok_run.task)
    assert isinstance(why, str) and "'modular_addition'" in why and "'excluded_gain'" in why
    assert "'fourier' analysis" in why and "not from zero" in why and "standard error" not in why
    fc = forecast_run(grok_run)
    assert (fc.status, fc.reason) == ("not_enough_signal", why)
    assert main(["forecast", str(grok_run.path)]) == 0
    assert why in capsys.readouterr().out
    assert forecast_signal(WindTunnelTask(build_cfg().task)) == SIGNAL


def test_what_a_task_declares_decides_the_report_and_the_fit(grok_run):
    from mbc_interp.tasks.registry import entry
    from mbc_interp.viz.run_report import write_run_report

    assert entry("wind_tunnel").scaling_claims and not entry("modular_addition").scaling_claims
    main(["analyze", str(grok_run.path), "--no-progress"])
    html = write_run_report(grok_run, grok_run.path / "titled.html").read_text()
    assert f"Grokking on modular addition: {grok_run.path.name}" in html
    assert "Fourier progress measures" in html and "Residual-stream patching" not in html
