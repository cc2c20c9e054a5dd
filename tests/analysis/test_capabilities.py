"""What each kind needs of its task: declared in the registry, checked before any checkpoint is
analysed with an error naming the kind, the task and the capability; the kinds that need
nothing a task lacks (ablation, probes) run on modular addition too."""

from __future__ import annotations

import shutil

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, load_timeline
from mbc_interp.analysis.registry import get_kind, kind_names
from mbc_interp.tasks.protocol import TaskProtocolError

MECHANISTIC = ("ablation", "atp", "groups", "weights", "probes", "llc_heads", "essential")


@pytest.fixture
def grok(tmp_path, grok_run):
    shutil.copytree(grok_run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


def test_each_kind_accepts_the_tasks_that_have_what_it_needs(task, grok_task):
    for name in MECHANISTIC:
        get_kind(name).check(task)  # the wind tunnel has pairs, groups, candidates, labels
    for name in (k for k in MECHANISTIC if k != "atp"):
        get_kind(name).check(grok_task)
    with pytest.raises(TaskProtocolError) as e:
        get_kind("atp").check(grok_task)
    assert str(e.value) == ("analysis kind 'atp' needs a task with HasPatchingPairs; task "
                            "'modular_addition' does not provide it")  # fmt: skip
    with pytest.raises(TaskProtocolError, match="'fourier' needs a task with HasModularInputs"):
        get_kind("fourier").check(task)
    assert set(MECHANISTIC) <= set(kind_names())
    for name in (*MECHANISTIC, "ablation_z", "fourier"):  # supports() is check() as a yes/no
        for t in (task, grok_task):
            try:
                get_kind(name).check(t)
                passes = True
            except TaskProtocolError:
                passes = False
            assert get_kind(name).supports(t) is passes, (name, t.name)
    assert not get_kind("ablation_z").supports(grok_task) and get_kind("groups").supports(grok_task)


def test_analyze_refuses_a_kind_the_task_cannot_serve_before_any_checkpoint(grok):
    with pytest.raises(TaskProtocolError, match="analysis kind 'atp' needs a task with "
                       "HasPatchingPairs; task 'modular_addition'"):  # fmt: skip
        analyze(grok, AnalysisConfig(kinds=("atp",)), progress=False)
    steps = grok.path / "analysis" / "steps"
    assert not steps.exists() or not any(steps.iterdir())


def test_the_command_says_so_in_one_line(grok, capsys):
    from mbc_interp.cli import main

    assert main(["analyze", str(grok.path), "--kinds", "atp", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("mbc analyze: error: analysis kind 'atp' needs a task with ")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_ablation_and_probes_run_on_a_grokking_run(grok):
    settings = {"ablation": {"n_examples": 8, "methods": ["mean"]}, "probes": {"n_examples": 12}}
    config = AnalysisConfig(kinds=("ablation", "probes"), extra_settings=settings)
    table, summary = analyze(grok, config, progress=False)
    for kind in ("ablation", "probes"):
        assert set(table[table.analysis == kind].step) == set(grok.steps), kind
    probes = table[(table.analysis == "probes") & (table.metric == "probe_acc")]
    assert set(probes.kind) == {"a", "b", "c"}
    assert set(table[table.analysis == "ablation"].metric) == {"loss_increase",
                                                               "loss_increase_se"}  # fmt: skip
    a = summary["ablation"]
    assert a["metric"] == "loss_increase" and a["heads"] and a["step"] == grok.steps[-1]
    assert len(load_timeline(grok)) == len(table)
