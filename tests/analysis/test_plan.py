"""The analysis plan: the cost model, the budget, the detail checkpoints, and `mbc analyze`."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze
from mbc_interp.analysis.plan import (
    GFLOPS,
    LEVELS,
    TOKEN_S,
    cost_parts,
    estimate_cost,
    flops_per_token,
    plan_analysis,
)
from mbc_interp.analysis.timeline import DETAIL_KINDS, STEPS_DIR, detail_steps
from mbc_interp.cli import main
from mbc_interp.model import ModelConfig
from mbc_interp.tasks.wind_tunnel.task import TaskConfig, WindTunnelTask


@pytest.fixture
def run(tmp_path, tiny_run):
    shutil.copytree(tiny_run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


def test_detail_steps_are_chosen_by_index_in_the_run_and_include_the_last():
    run_steps = [0, 1, 2, 4, 8, 16, 32, 64, 100]
    assert detail_steps(run_steps, run_steps, 1) == run_steps
    assert detail_steps(run_steps, run_steps, 3) == [0, 4, 32, 100]
    # a sub-range keeps the run's indices (16 is index 5: not a detail step), plus its last step
    assert detail_steps(run_steps, [8, 16, 32, 64], 3) == [32, 64]
    # a run still training: the earlier choices do not move when checkpoints are added
    assert set(detail_steps(run_steps[:6], run_steps[:6], 3)) - {16} <= {0, 4, 32, 100}


def test_cost_grows_with_the_model_and_the_settings(tiny_run):
    base = AnalysisConfig()
    cost = estimate_cost(base, tiny_run.config.model, tiny_run.task)
    assert cost.core_s > 0 and cost.detail_s > 0 and cost.extra_s == 0
    fewer = estimate_cost(
        replace(base, n_pairs=64, n_examples=128), tiny_run.config.model, tiny_run.task
    )
    assert fewer.core_s < cost.core_s and fewer.detail_s < cost.detail_s
    with_extra = estimate_cost(
        replace(base, kinds=("gradients", "llc")), tiny_run.config.model, tiny_run.task
    )
    assert with_extra.extra_s > 0 and with_extra.core_s == pytest.approx(cost.core_s)
    # two operations per weight of each matrix a token meets, plus attention over the context
    paper = ModelConfig(n_layers=4, d_model=128, d_mlp=512)
    seq, vocab = tiny_run.task.tokens.shape[1], tiny_run.task.config.d_vocab
    by_hand = 2 * (4 * (4 * 128 * 128 + 2 * 128 * 512 + 2 * seq * 128) + 128 * vocab)
    assert flops_per_token(paper, tiny_run.task) == by_hand
    assert flops_per_token(paper, tiny_run.task) > 10 * flops_per_token(
        tiny_run.config.model, tiny_run.task
    )


def _passes(config: AnalysisConfig, m: ModelConfig, task, kind: str) -> float:
    """The plan's estimate for ``kind`` in forward passes of one whole example."""
    per_example = task.tokens.shape[1] * (flops_per_token(m, task) / (GFLOPS * 1e9) + TOKEN_S)
    return cost_parts(config, m, task)[kind] / per_example


def test_the_kinds_estimates_scale_with_the_heads_and_k():
    """The ablation ablates every head alone (its cost grows with the heads in all); groups
    score each member's K candidate sequences (K^2 per group) or, where the candidates differ
    at their first token, one pass per member (K per group)."""
    config = AnalysisConfig(
        kinds=("ablation", "groups"),
        extra_settings={"ablation": {"n_examples": 64, "methods": ["mean"]},
                        "groups": {"n_groups": 4}},
    )  # fmt: skip
    task = WindTunnelTask(TaskConfig(D=64, K=4))
    for n_layers, n_heads in ((1, 2), (2, 4), (4, 4)):
        m = ModelConfig(n_layers=n_layers, d_model=32, n_heads=n_heads)
        assert _passes(config, m, task, "ablation") == pytest.approx(
            64 * (1 + n_layers * n_heads + 2)
        )
    small, large = ModelConfig(n_heads=2), ModelConfig(n_heads=8)  # same width, 4x the heads
    extra = [estimate_cost(config, m, task).extra_s for m in (small, large)]
    groups = [cost_parts(config, m, task)["groups"] for m in (small, large)]
    assert extra[1] - groups[1] > 2 * (extra[0] - groups[0])
    m = ModelConfig()
    assert task.first_token_distinct and _passes(config, m, task, "groups") == pytest.approx(4 * 4)
    for k in (4, 8):
        strings = WindTunnelTask(TaskConfig(construction="random_strings", K=k, n_examples=64,
                                            base_len=6, selector_len=2, target_len=4))  # fmt: skip
        assert not strings.first_token_distinct
        assert _passes(config, m, strings, "groups") == pytest.approx(4 * k * k)


def test_the_plan_fits_its_budget_by_detail_first_then_pairs(tiny_run):
    steps = tiny_run.steps
    generous = plan_analysis(tiny_run, steps, budget_s=1e6)
    assert generous.fits and generous.config.detail_every == 1
    assert (generous.config.n_pairs, generous.config.n_examples) == LEVELS[0]
    assert generous.detail == generous.steps
    full = generous.seconds
    # a budget a little below the full cost: fewer detail checkpoints, same precision
    tight = plan_analysis(tiny_run, steps, budget_s=0.8 * full)
    assert tight.fits and tight.config.detail_every > 1 and tight.seconds <= 0.8 * full
    assert (tight.config.n_pairs, tight.config.n_examples) == LEVELS[0]
    assert len(tight.detail) < len(steps) and tight.detail[-1] == steps[-1]
    # a budget nothing fits: the cheapest plan, said to be over budget
    tiny = plan_analysis(tiny_run, steps, budget_s=1e-6)
    assert not tiny.fits and "over budget" in tiny.describe()
    assert (tiny.config.n_pairs, tiny.config.n_examples) == LEVELS[-1]
    # given fields are kept whatever the budget
    kept = plan_analysis(tiny_run, steps, given={"n_pairs": 200, "detail_every": 1}, budget_s=1e-6)
    assert kept.config.n_pairs == 200 and kept.config.detail_every == 1
    # no budget: the defaults unchanged
    assert plan_analysis(tiny_run, steps, budget_s=None).config == AnalysisConfig()


def test_detail_every_limits_the_position_resolved_kinds_to_the_detail_steps(run):
    config = AnalysisConfig(
        n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos", "resid_pre"), detail_every=3
    )
    table, summary = analyze(run, config, progress=False)
    patching = table[table["analysis"] == "patching"]
    with_resid = set(patching.loc[patching["kind"] == "resid_pre", "step"])
    assert with_resid == set(detail_steps(run.steps, run.steps, 3))
    assert set(patching.loc[patching["kind"] == "head_out_all_pos", "step"]) == set(run.steps)
    assert summary["n_checkpoints_analysed"] == len(run.steps)
    files = list((run.path / "analysis" / STEPS_DIR).iterdir())
    assert all(json.loads(f.read_text())["settings"]["detail_every"] == 3 for f in files)
    assert "resid_pre" in DETAIL_KINDS and "head_out_all_pos" not in DETAIL_KINDS


def test_step_files_from_before_detail_every_still_load(run):
    config = AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos",))
    analyze(run, config, progress=False)
    for f in (run.path / "analysis" / STEPS_DIR).iterdir():  # as an older version wrote them
        data = json.loads(f.read_text())
        del data["settings"]["detail_every"]
        f.write_text(json.dumps(data))
    before = {f.name: f.stat().st_mtime_ns for f in (run.path / "analysis" / STEPS_DIR).iterdir()}
    analyze(run, config, progress=False)  # nothing recomputed
    after = {f.name: f.stat().st_mtime_ns for f in (run.path / "analysis" / STEPS_DIR).iterdir()}
    assert before == after


def test_cli_prints_its_plan_and_a_second_call_continues_with_the_same_settings(run, capsys):
    args = ["analyze", str(run.path), "--n-pairs", "16", "--patch-kinds", "head_out_all_pos",
            "--n-examples", "32", "--budget", "30", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "16 clean/corrupt pairs" in out and "chosen for a 30 s budget" in out
    saved = json.loads((run.path / "analysis" / "config.json").read_text())
    # no flags: the run's earlier settings, not a new plan (which would refuse to mix)
    assert main(["analyze", str(run.path), "--no-progress"]) == 0
    assert "settings of the run's earlier analysis" in capsys.readouterr().out
    assert json.loads((run.path / "analysis" / "config.json").read_text()) == saved
    assert main(["analyze", str(run.path), "--detail-every", "2", "--no-progress"]) == 2
    assert "force" in capsys.readouterr().err
    assert main(["analyze", str(run.path), "--budget", "0"]) == 2
    assert "--budget 0.0: must be > 0" in capsys.readouterr().err


def test_the_plan_prints_each_kinds_estimated_seconds_beside_its_name(tiny_run, grok_run):
    from mbc_interp.analysis.plan import fixed_plan

    settings = {"ablation": {"methods": ["mean"]}, "llc": {"draws": 20}}
    config = AnalysisConfig(kinds=("ablation", "weights", "llc"), extra_settings=settings)
    parts = cost_parts(config, tiny_run.config.model, tiny_run.task)
    text = fixed_plan(tiny_run, tiny_run.steps, config).describe()
    line = next(x for x in text.splitlines() if x.startswith("extra kinds: "))
    want = [f"ablation (methods=['mean']) ~{parts['ablation']:.2g} s",
            f"llc (draws=20) ~{parts['llc']:.2g} s"]  # fmt: skip
    assert all(w in line for w in want), line
    assert "weights ~<0.01 s" in line and parts["weights"] < 0.01
    assert line.endswith("(per checkpoint, one core)")
    # the task's own kinds are priced the same way (modular addition: the Fourier measures)
    own = fixed_plan(grok_run, grok_run.steps, AnalysisConfig()).describe()
    fourier = cost_parts(AnalysisConfig(), grok_run.config.model, grok_run.task)["fourier"]
    assert fourier < 0.01 and "the task's own kinds: fourier ~<0.01 s (per checkpoint" in own


def test_atp_is_priced_in_passes_of_its_pairs_prompts():
    """Attribution patching runs on the pairs' prompts (up to the answer position), not on
    whole examples: ATP_PASSES forwards of each, in whole-example units."""
    from mbc_interp.analysis.kinds.atp import ATP_PASSES

    task = WindTunnelTask(TaskConfig(D=64, K=4))
    config = AnalysisConfig(kinds=("atp",), extra_settings={"atp": {"n_pairs": 100}})
    share = (task.answer_pos + 1) / task.tokens.shape[1]
    assert share < 1
    assert _passes(config, ModelConfig(), task, "atp") == pytest.approx(ATP_PASSES * share * 100)
