"""The documentation cannot drift from the code: every flag has help and its real default,
the README's table of flag names is the alias map, and what the READMEs' code blocks name
(commands and their flags, ``run.`` / ``task.`` attributes, metrics keys) exists."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from mbc_interp import RunConfig
from mbc_interp.cli import COMMANDS, build_parser
from mbc_interp.cli.flags import _flag_specs, _unset_defaults, flag_aliases

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
RUN_README = (ROOT / "checkpoints" / "README.md").read_text()


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_has_help_and_no_help_hides_a_default_behind_none(command):
    parser = _subparsers()[command]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        assert action.help and action.help.strip(), (command, action.option_strings)
        assert "default: None" not in action.help, (command, action.option_strings, action.help)


def test_a_field_defaulting_to_none_shows_its_effective_default():
    """D defaults to None in TaskConfig but means 1000 bases; d_head None means d_model /
    n_heads; eval_every None means one epoch clamped: the help says so, with the numbers."""
    config = RunConfig()
    effective = {
        ("task", "D"): config.task.n_bases,
        ("model", "d_head"): config.model.d_model // config.model.n_heads,
        ("train", "eval_every"): config.eval_interval,
    }
    none_fields = {(s, p) for s, p, _ in _flag_specs() if _default(config, s, p) is None}
    assert none_fields == set(_unset_defaults(config))  # each one is described
    helps = {a.dest: a.help for a in _subparsers()["train"]._actions}
    for (section, path), value in effective.items():
        text = helps[f"cfg__{section}__{path.replace('.', '__')}"]
        assert f"default: {value} " in text or f"({value} for" in text, text


def _default(config, section, path):
    node = getattr(config, section)
    for part in path.split("."):
        node = getattr(node, part)
    return node


def test_no_flag_name_keeps_a_dot_of_a_nested_field():
    flags = [o for a in _subparsers()["train"]._actions for o in a.option_strings]
    assert not [f for f in flags if "." in f]


def test_the_readme_table_of_flag_names_is_the_alias_map():
    section = README.split("**Flag names.**", 1)[1].split("\n\n", 1)[1]
    rows = re.findall(r"^\| `(--[\w-]+)` \| `([\w.]+)` \|", section, flags=re.M)
    assert dict(rows) == flag_aliases()
    flags = {o for a in _subparsers()["train"]._actions for o in a.option_strings}
    assert set(flag_aliases()) <= flags


def _mbc_lines(text: str) -> list[list[str]]:
    """Every ``mbc COMMAND ...`` line of the text's bash blocks, comments and continuations
    handled, as argument lists."""
    out = []
    for block in _code_blocks(text, "bash"):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("mbc "):
                out.append(shlex.split(line.replace("[", "").replace("]", ""))[1:])
    return out


def test_every_flag_in_the_readmes_bash_blocks_is_accepted_by_its_command():
    lines = _mbc_lines(README) + _mbc_lines(RUN_README)
    assert len(lines) > 20
    parsers = _subparsers()
    for argv in lines:
        assert argv[0] in parsers, argv
        known = {o for a in parsers[argv[0]]._actions for o in a.option_strings}
        flags = [a for a in argv[1:] if a.startswith("--")]
        assert not [f for f in flags if f.split("=")[0] not in known], argv


def test_every_flag_named_in_the_readme_prose_exists():
    """Inline ``--flag`` references in backticks, outside the code blocks."""
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    named = set(re.findall(r"`(--[a-z][\w.-]*)", prose))
    known = {o for p in _subparsers().values() for a in p._actions for o in a.option_strings}
    scripts = "".join(f.read_text() for d in ("examples", "benchmarks")
                      for f in (ROOT / d).glob("*.py"))  # fmt: skip
    known |= set(re.findall(r"[\"'](--[a-z][\w-]*)[\"']", scripts))
    known.add("--system-site-packages")  # python -m venv's (the Makefile's set-up)
    assert named - known == set()


def test_the_python_api_block_names_real_attributes(tiny_run):
    """``run.X`` and ``task.X`` in the README's Python blocks exist on a real run and task."""
    code = "\n".join(_code_blocks(README, "python"))
    task = tiny_run.task
    for obj, name in re.findall(r"\b(run|task)\.(\w+)", code):
        assert hasattr(tiny_run if obj == "run" else task, name), f"{obj}.{name}"
    prose = re.findall(r"`(task|run)\.(\w+)", re.sub(r"```.*?```", "", README, flags=re.S))
    for obj, name in prose:
        target = {"task": (task, tiny_run.config.task), "run": (tiny_run,)}[obj]
        assert any(hasattr(t, name) for t in target), f"{obj}.{name}"


def test_the_metrics_table_lists_real_keys_and_its_loss_sample_size(tiny_run):
    keys = re.findall(r"^\| `(\w+)` \|", RUN_README.split("## metrics.jsonl", 1)[1], re.M)
    row = tiny_run.store.read_metrics()[-1]
    assert keys and set(keys) <= set(row), set(keys) - set(row)
    loss = re.search(r"^\| `loss` \| (.*) \|$", RUN_README, re.M).group(1)
    assert f"{RunConfig().train.eval_examples:,}" in loss and "eval_examples" in loss
    assert "all D*K" not in loss


def test_stale_figures_are_gone():
    assert "~20 s of analysis" not in README
    assert not re.search(r"~\d+ tests", (ROOT / "Makefile").read_text())
