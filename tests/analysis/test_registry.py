"""The analysis registry: a kind declared in a test runs through everything that handles kinds
(analysis, plan, command line, timeline, summary, report), and the built-in kinds' settings are
configurable and recorded."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, fields, replace

import pytest

from mbc_interp import load_run
from mbc_interp.analysis import AnalysisConfig, analyze, load_timeline
from mbc_interp.analysis.ablation import AblationConfig
from mbc_interp.analysis.dynamics.essential import EssentialConfig
from mbc_interp.analysis.extra_settings import GradientConfig, LLCConfig, LLCHeadsConfig
from mbc_interp.analysis.groups import GroupsConfig
from mbc_interp.analysis.kinds.atp import AtpConfig
from mbc_interp.analysis.plan import (
    GFLOPS,
    TOKEN_S,
    cost_parts,
    estimate_cost,
    fixed_plan,
    flops_per_token,
)
from mbc_interp.analysis.probes import ProbeConfig
from mbc_interp.analysis.registry import (
    RESERVED,
    ExtraKind,
    extra_kinds,
    kind_names,
    parse_setting,
    register_kind,
    settings_record,
    unregister_kind,
)
from mbc_interp.analysis.timeline import STEPS_DIR, analyze_run
from mbc_interp.cli import build_parser, main
from mbc_interp.config import ConfigError

SMALL = AnalysisConfig(n_pairs=16, n_examples=32, patch_kinds=("head_out_all_pos",))
PASSES_PER_EXAMPLE = 2.0


@dataclass(frozen=True)
class NormSettings:
    scale: float = 1.0
    """Multiplies the reported norm (a setting whose effect the test can see)."""


def _norm(model) -> float:
    return sum(float(p.detach().double().pow(2).sum()) for p in model.parameters()) ** 0.5


def _norm_rows(model, task, settings: NormSettings, optimizer_state) -> list[dict]:
    had_state = float(optimizer_state is not None)
    return [
        {"kind": "", "component": "all", "metric": "weight_norm",
         "value": settings.scale * _norm(model)},
        {"kind": "", "component": "all", "metric": "had_optimizer_state", "value": had_state},
    ]  # fmt: skip


def _norm_entry(table, summary):
    rows = table[table.metric == "weight_norm"]
    return {"last": float(rows.value.iloc[-1]), "t_loss": summary["t_loss"]}


def _norm_section(run, table, summary):
    from mbc_interp.viz.report import Section

    rows = table[table.analysis == "weight_norm"]
    return Section("Weight norm", text=f"{rows.step.nunique()} checkpoints with a weight norm")


@pytest.fixture
def weight_norm():
    """A tiny extra kind, registered for one test only."""
    kind = register_kind(ExtraKind(
        name="weight_norm", run=_norm_rows, settings=NormSettings,
        cost=lambda s, c: PASSES_PER_EXAMPLE * c.n_examples, needs_optimizer_state=True,
        summary=_norm_entry, report=_norm_section, title="Weight norm",
        help="L2 norm of every weight",
    ))  # fmt: skip
    yield kind
    unregister_kind("weight_norm")
    assert "weight_norm" not in kind_names()


@pytest.fixture
def run(tmp_path, tiny_run):
    shutil.copytree(tiny_run.path, tmp_path / "run")
    return load_run(tmp_path / "run")


def _steps(run, stop: int = 8) -> list[int]:
    return [s for s in run.steps if s <= stop]


def test_a_kind_registered_in_a_test_runs_through_the_analysis_and_the_timeline(run, weight_norm):
    given = {"weight_norm": {"scale": 2}}
    config = replace(SMALL, kinds=("weight_norm",), extra_settings=given)
    steps = [*_steps(run), run.steps[-1]]  # the last checkpoint keeps its optimizer state
    table = analyze_run(run, config, steps=steps, progress=False)
    norms = table[(table.analysis == "weight_norm") & (table.metric == "weight_norm")]
    assert sorted(norms.step) == steps
    for step, value in zip(norms.step, norms.value, strict=True):
        assert value == pytest.approx(2 * _norm(run.model(int(step))))
    # it asked for the optimizer state and got it where the checkpoint kept one
    had = table[table.metric == "had_optimizer_state"].set_index("step")["value"]
    assert all(had[s] == float(run.optimizer_state(s) is not None) for s in steps)
    assert had[run.steps[-1]] == 1.0
    # its resolved settings are recorded per kind in every step file, the core settings apart
    data = json.loads((run.path / "analysis" / STEPS_DIR / "step00000000.json").read_text())
    assert data["kind_settings"]["weight_norm"] == {"scale": 2.0}
    assert data["settings"] == SMALL.to_dict() | {"kinds": ["weight_norm"]}
    assert len(load_timeline(run)) == len(table)


def test_a_registered_kind_appears_in_the_plan_with_its_cost(run, weight_norm):
    config = AnalysisConfig(kinds=("weight_norm",))
    m, task = run.config.model, run.task
    per_example = task.tokens.shape[1] * (flops_per_token(m, task) / (GFLOPS * 1e9) + TOKEN_S)
    parts = cost_parts(config, m, task)
    assert parts["weight_norm"] == pytest.approx(PASSES_PER_EXAMPLE * len(task) * per_example)
    assert estimate_cost(config, m, task).extra_s == pytest.approx(parts["weight_norm"])
    without = fixed_plan(run, run.steps, AnalysisConfig())
    plan = fixed_plan(run, run.steps, config)
    assert plan.seconds - without.seconds == pytest.approx(len(run.steps) * parts["weight_norm"])
    assert "extra kinds: weight_norm" in plan.describe()


def test_the_command_line_accepts_a_registered_kind_and_its_settings(run, weight_norm, capsys):
    args = build_parser().parse_args(["analyze", str(run.path), "--kinds", "weight_norm"])
    assert args.kinds == ["weight_norm"]
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "weight_norm (L2 norm of every weight)" in " ".join(capsys.readouterr().out.split())
    analyze(run, SMALL, stop=8, progress=False)
    flags = ["--kinds", "weight_norm", "--kind-setting", "weight_norm.scale=3", "--no-progress"]
    assert main(["analyze", str(run.path), "--stop", "8", *flags]) == 0
    assert "extra kinds: weight_norm (scale=3)" in capsys.readouterr().out
    table = load_timeline(run)
    norms = table[table.metric == "weight_norm"]
    assert sorted(norms.step) == _steps(run)
    assert norms.value.iloc[0] == pytest.approx(3 * _norm(run.model(int(norms.step.iloc[0]))))
    saved = json.loads((run.path / "analysis" / "config.json").read_text())
    assert saved["kinds"] == ["weight_norm"] and saved["weight_norm"] == {"scale": 3}
    # asked again without the setting: the earlier analysis' value is kept, nothing recomputed
    folder = run.path / "analysis" / STEPS_DIR
    mtimes = {f.name: f.stat().st_mtime_ns for f in folder.iterdir()}
    assert main(["analyze", str(run.path), "--stop", "8", "--no-progress"]) == 0
    assert {f.name: f.stat().st_mtime_ns for f in folder.iterdir()} == mtimes
    # another value: the per-kind check names the kind, the setting and both values
    flags[3] = "weight_norm.scale=4"
    assert main(["analyze", str(run.path), "--stop", "8", *flags]) == 2
    assert "weight_norm: scale was 3.0, now 4.0" in capsys.readouterr().err


def test_a_registered_kind_gets_its_summary_entry_and_report_section(run, weight_norm):
    from mbc_interp.viz.run_report import run_report

    config = replace(SMALL, kinds=("weight_norm",))
    table, summary = analyze(run, config, progress=False)
    norms = table[table.metric == "weight_norm"]
    # the summary function saw the timeline and the summary's own entries before it
    assert summary["weight_norm"] == {"last": norms.value.iloc[-1], "t_loss": summary["t_loss"]}
    assert list(summary).index("weight_norm") == list(summary).index("n_checkpoints_analysed") - 1
    sections = {s.heading: s for s in run_report(run)}
    assert sections["Weight norm"].text == f"{len(run.steps)} checkpoints with a weight norm"
    assert "Gradient noise" not in sections  # a kind without rows gets no section


def test_a_sweep_files_analysis_table_takes_a_kinds_settings():
    data = {"kinds": ["llc"], "llc": {"draws": 200, "step_size": 1}}
    config = AnalysisConfig.from_dict(data, "sweep.toml: [analysis]")
    assert config.settings_of("llc") == LLCConfig(draws=200, step_size=1.0)
    assert AnalysisConfig.from_dict(config.to_dict()) == config
    assert config.to_dict()["llc"] == {"draws": 200, "step_size": 1}
    # without settings given, the record is what it always was: no key for any kind
    plain = AnalysisConfig(kinds=("gradients", "llc"))
    assert set(plain.to_dict()) == {f.name for f in fields(AnalysisConfig)} - {"extra_settings"}
    assert plain.settings_of("gradients") == GradientConfig()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kinds": ["llc"], "llc": {"drawz": 2}}, "llc.drawz: unknown setting"),
        ({"kinds": ["llc"], "llc": {"draws": "many"}}, "llc.draws = 'many': must be an integer"),
        ({"kinds": ["llc"], "llc": {"draws": 0}}, "llc.draws = 0: must be >= 1"),
        ({"kinds": ["llc"], "llc": 3}, "llc = 3: must be a table"),
        ({"llc": {"draws": 5}}, "settings for a kind not computed (add 'llc' to kinds)"),
        ({"kinds": ["gradients"], "gradients": {"adam_quantiles": 0.5}}, "must be a list"),
        ({"kinds": ["nope"]}, "unknown kind 'nope'"),
        (
            {"kinds": ["atp"], "atp": {"n_pairs": 0}},
            "analysis.atp.n_pairs = 0: must be an int >= 1",
        ),
        ({"nope": {}}, "unknown key 'nope'"),
    ],
)
def test_bad_kind_settings_are_errors_naming_them(data, message):
    with pytest.raises(ConfigError, match=r"^src: ") as e:
        AnalysisConfig.from_dict(data, "src")
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("cls", "given", "message"),
    [
        (AblationConfig, {"n_examples": 1}, "ablation.n_examples = 1: must be an int >= 2"),
        (AblationConfig, {"methods": ("mean", "zero")}, "ablation.methods = ('mean', 'zero'): "),
        (AblationConfig, {"methods": ()}, "ablation.methods = (): one or more of"),
        (GroupsConfig, {"n_groups": True}, "groups.n_groups = True: must be an int >= 1"),
        (ProbeConfig, {"seed": -1}, "probes.seed = -1: must be an int >= 0"),
        (EssentialConfig, {"window": 0}, "essential.window = 0: must be an int >= 1"),
        (AtpConfig, {"n_pairs": 0}, "atp.n_pairs = 0: must be an int >= 1"),
        (LLCHeadsConfig, {}, "llc_heads.heads = (): give the heads"),
        (LLCHeadsConfig, {"heads": ("L0H0",), "draws": 0}, "llc_heads.draws = 0: must be >= 1"),
        (LLCConfig, {"draws": 0}, "llc.draws = 0: must be >= 1"),
        (AnalysisConfig, {"n_examples": 0}, "analysis.n_examples = 0: must be >= 1 or None"),
        (AnalysisConfig, {"kinds": ("nope",)}, "analysis.kinds = ('nope',): unknown kind 'nope'"),
    ],
)  # fmt: skip
def test_each_settings_dataclass_names_its_kind_the_field_and_the_value(cls, given, message):
    with pytest.raises(ValueError) as e:
        cls(**given)
    assert str(e.value).startswith(message)


def test_kind_setting_flags_parse_as_json_values():
    assert parse_setting("llc.draws=200") == ("llc", "draws", 200)
    assert parse_setting("gradients.full_batch_cap=none") == ("gradients", "full_batch_cap", None)
    assert parse_setting("gradients.adam_quantiles=[0.5, 0.9]")[2] == [0.5, 0.9]
    assert settings_record("gradients", {"adam_quantiles": [0.5, 0.9]})["adam_quantiles"] == [
        0.5, 0.9
    ]  # fmt: skip
    with pytest.raises(ValueError, match=r"expected KIND\.NAME=VALUE"):
        parse_setting("llc=200")


def test_the_built_in_kinds_resolve_and_record_their_defaults():
    kinds = extra_kinds()
    assert list(kinds) == ["gradients", "llc", "groups", "weights", "ablation", "ablation_z",
                           "probes", "atp", "llc_heads", "essential", "fourier"]  # fmt: skip
    for kind in kinds.values():
        assert callable(kind.run_function()) and callable(kind.report_function())
    assert kinds["gradients"].needs_optimizer_state and not kinds["llc"].needs_optimizer_state
    # the record of the defaults: what step files written before the registry hold
    assert settings_record("gradients") == json.loads(json.dumps(asdict(GradientConfig())))
    assert settings_record("llc") == asdict(LLCConfig())


def test_a_kind_cannot_take_a_reserved_or_taken_name():
    assert {f.name for f in fields(AnalysisConfig)} <= RESERVED
    for name in ("core", "zuse", "n_pairs", "Bad-Name"):
        with pytest.raises(ValueError, match="a name must be"):
            ExtraKind(name=name, run=_norm_rows, cost=lambda s, c: 0.0)
    with pytest.raises(ValueError, match="registered already"):
        register_kind(ExtraKind(name="llc", run=_norm_rows, cost=lambda s, c: 0.0))


def test_llc_settings_reach_the_estimator_through_the_command_line(run):
    analyze(run, SMALL, stop=2, progress=False)
    settings = ["llc.chains=1", "llc.draws=4", "llc.burn_in=0", "llc.batch_size=16"]
    flags = [x for s in settings for x in ("--kind-setting", s)]
    assert main(["analyze", str(run.path), "--stop", "2", "--kinds", "llc", *flags,
                 "--no-progress"]) == 0  # fmt: skip
    data = json.loads((run.path / "analysis" / STEPS_DIR / "step00000000.json").read_text())
    assert data["kind_settings"]["llc"] == asdict(LLCConfig(chains=1, draws=4, burn_in=0,
                                                            batch_size=16))  # fmt: skip
    table = load_timeline(run)
    assert set(table[table.analysis == "llc"].step) == set(_steps(run, 2))


def test_an_expensive_kind_added_at_every_other_checkpoint_then_filled_in(run):
    """``--kinds llc --every 2`` on an analysed run: llc at the chosen checkpoints only, the
    others keep their rows, the timeline and summary load; a later call fills in the rest."""
    analyze(run, SMALL, stop=8, progress=False)
    steps = _steps(run, 8)
    tiny = [x for s in ("llc.chains=1", "llc.draws=2", "llc.burn_in=0")
            for x in ("--kind-setting", s)]  # fmt: skip
    assert main(["analyze", str(run.path), "--stop", "8", "--every", "2", "--kinds", "llc",
                 *tiny, "--no-progress"]) == 0  # fmt: skip
    table = load_timeline(run)
    chosen = set(steps[::2]) | {steps[-1]}
    assert set(table[table.analysis == "llc"].step) == chosen < set(steps)
    assert set(table[table.analysis == "patching"].step) == set(steps)  # nothing lost
    assert (run.path / "analysis" / "summary.json").is_file()
    assert main(["analyze", str(run.path), "--stop", "8", "--kinds", "llc", *tiny,
                 "--no-progress"]) == 0  # fmt: skip
    assert set(load_timeline(run).query("analysis == 'llc'").step) == set(steps)
