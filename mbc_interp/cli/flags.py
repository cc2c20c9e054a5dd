"""Config flags, generated from the config dataclasses (one flag per field), for every command
that takes a config (``mbc train``, ``mbc sweep``): the CLI can never drift from the config."""

from __future__ import annotations

import argparse
import ast
import functools
import inspect
import itertools
import re
import typing
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, Literal

from mbc_interp.config import PRESETS, RunConfig, TrainConfig, merge_config, read_mapping
from mbc_interp.model_config import ModelConfig
from mbc_interp.tasks.registry import DEFAULT_TASK, TASKS
from mbc_interp.tasks.wind_tunnel.config import TaskConfig

# (section, field path) -> flag name, where the plain field name would be ambiguous or unclear
_RENAMES = {
    ("task", "seed"): "data-seed",
    ("train", "checkpoints.log_until"): "ckpt-log-until",
    ("train", "checkpoints.every"): "ckpt-every",
    ("train", "checkpoints.loss_delta"): "ckpt-loss-delta",
    ("train", "checkpoints.dz_delta"): "ckpt-dz-delta",
}
_SECTIONS: dict[str, type] = {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


# -- config flags, generated from the dataclasses ---------------------------------------------
def _flag_specs() -> list[tuple[str, str, Any]]:
    """``(section, dotted field path, annotation)`` for every leaf config field."""
    specs = []

    def walk(section: str, cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp = hints[f.name]
            if is_dataclass(tp):
                walk(section, tp, f"{prefix}{f.name}.")
            else:
                specs.append((section, prefix + f.name, tp))

    for section, cls in _SECTIONS.items():
        walk(section, cls, "")
    return specs


@functools.cache
def _other_task_fields() -> tuple[tuple[str, str, Any, type], ...]:
    """``(task, field, annotation, config class)`` of every registered task's config field the
    default task's config lacks (``--p``, ``--train-frac``): flags for whichever task is run."""
    have = {f.name for f in fields(TaskConfig)}
    out = []
    for name, entry in TASKS.items():
        if name == DEFAULT_TASK:
            continue
        cls = entry.config_class
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name not in have:
                out.append((name, f.name, hints[f.name], cls))
                have.add(f.name)
    return tuple(out)


def _flag_name(section: str, path: str) -> str:
    return _RENAMES.get((section, path), path.replace("_", "-"))


def flag_aliases() -> dict[str, str]:
    """``--flag`` -> ``section.field`` for every flag whose name is not the field's own (the
    README's table of flag names lists exactly these)."""
    return {f"--{name}": f"{section}.{path}" for (section, path), name in _RENAMES.items()}


def _unset_defaults(defaults: RunConfig) -> dict[tuple[str, str], str]:
    """What a field whose default is ``None`` means when it is not given: its effective
    default, shown in the help instead of "None"."""
    return {
        ("task", "D"): f"{defaults.task.n_bases} unless --n-examples is given",
        ("task", "n_examples"): "K x D",
        ("model", "d_head"): "d_model / n_heads "
        f"({defaults.model.d_model // defaults.model.n_heads} for the default model)",
        ("train", "eval_every"): f"one epoch clamped to 5..25 steps ({defaults.eval_interval} "
        "for the default task)",
    }


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """A dataclass's field docstrings (the string literal after each field), whitespace
    collapsed: the help text of the flags, so help and code are one text."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, nxt in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)):  # fmt: skip
            text = re.sub(r":\w+:`~?([^`]+)`", r"\1", nxt.value.value)  # :attr:`X` -> X
            docs[node.target.id] = " ".join(text.replace("``", "").split())
    return docs


def _field_doc(section: str, path: str) -> str:
    cls: Any = _SECTIONS[section]
    *parents, leaf = path.split(".")
    for part in parents:
        cls = typing.get_type_hints(cls)[part]
    return field_docs(cls).get(leaf, "")


def _dest(section: str, path: str) -> str:
    return f"cfg__{section}__{path.replace('.', '__')}"


def parse_optional(inner: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        return None if text.lower() in ("none", "null") else inner(text)

    parse.__name__ = getattr(inner, "__name__", "value")
    return parse


def add_config_flags(parser: argparse.ArgumentParser, multi: bool = False) -> None:
    """One flag per config field; ``multi=True`` lets each take several values (a grid)."""
    groups = {s: parser.add_argument_group(f"{s} config") for s in _SECTIONS}
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        nargs="+" if multi else None,
        default=argparse.SUPPRESS,
        help="start from named settings (paper: the paper's task, model and optimiser); "
        "a config file and flags override it",
    )
    defaults = RunConfig()
    unset = _unset_defaults(defaults)
    groups["task"].add_argument(
        "--task",
        dest="cfg__task__name",
        choices=list(TASKS),
        default=argparse.SUPPRESS,
        nargs="+" if multi else None,
        help=f"the task (task.name; default: {DEFAULT_TASK}); "
        + "; ".join(f"{n}: {e.summary}" for n, e in TASKS.items()),
    )
    for task, name, tp, cls in _other_task_fields():
        group = parser.add_argument_group(f"task config ({task})")
        doc = field_docs(cls).get(name, "")
        default = getattr(cls(), name)
        kwargs = {"dest": _dest("task", name), "default": argparse.SUPPRESS,
                  "type": tp if isinstance(tp, type) else float, "metavar": name.upper(),
                  "help": f"{doc} (task.{name}, {task} only; default: {default})"
                  .replace("%", "%%")}  # fmt: skip
        if multi:
            kwargs["nargs"] = "+"
        group.add_argument(f"--{name.replace('_', '-')}", **kwargs)
    for section, path, tp in _flag_specs():
        # SUPPRESS: an unset flag leaves no attribute, so an explicit 'none' stays distinct
        kwargs: dict[str, Any] = {"dest": _dest(section, path), "default": argparse.SUPPRESS}
        args = typing.get_args(tp)
        optional = type(None) in args
        core = next((a for a in args if a is not type(None)), tp) if optional else tp
        if typing.get_origin(core) is Literal:
            kwargs["choices"] = list(typing.get_args(core))
        elif typing.get_origin(core) is tuple:
            kwargs.update(type=float, nargs=len(typing.get_args(core)), metavar="X")
        elif core is bool:
            if multi:
                kwargs.update(type=_parse_bool, nargs="+")
            else:
                kwargs["action"] = argparse.BooleanOptionalAction
            help_ = _help(section, path, _default_of(defaults, section, path), unset, False)
            groups[section].add_argument(f"--{_flag_name(section, path)}", help=help_, **kwargs)
            continue
        else:
            kwargs["type"] = core
        if optional and "type" in kwargs:
            kwargs["type"] = parse_optional(kwargs["type"])
        if multi and "nargs" not in kwargs:
            kwargs["nargs"] = "+"
        if "choices" not in kwargs:
            kwargs.setdefault("metavar", path.rsplit(".", 1)[-1].upper())
        help_ = _help(section, path, _default_of(defaults, section, path), unset, optional)
        groups[section].add_argument(f"--{_flag_name(section, path)}", help=help_, **kwargs)


def _help(
    section: str, path: str, default: Any, unset: dict[tuple[str, str], str], optional: bool
) -> str:
    """``<field doc> (section.field; default: X)``; a ``None`` default shows what it means."""
    if default is None:
        if (section, path) not in unset:
            raise ValueError(f"{section}.{path}: defaults to None; say what that means in "
                             "flags._unset_defaults")  # fmt: skip
        default = unset[(section, path)]
    doc = _field_doc(section, path)
    none = "; 'none' to unset" if optional else ""
    text = f"{doc} ({section}.{path}; default: {default}{none})" if doc else (
        f"{section}.{path} (default: {default}{none})")  # fmt: skip
    return text.replace("%", "%%")  # argparse formats help with %


def _default_of(defaults: RunConfig, section: str, path: str) -> Any:
    node: Any = getattr(defaults, section)
    for part in path.split("."):
        node = getattr(node, part)
    return node


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields set on the command line, as nested ``{section: {field: value}}``."""
    out: dict[str, Any] = {}
    if hasattr(args, "preset"):
        out["preset"] = args.preset
    extra = [("task", "name", str), *(("task", n, tp) for _, n, tp, _ in _other_task_fields())]
    for section, path, _ in (*_flag_specs(), *extra):
        if not hasattr(args, _dest(section, path)):
            continue
        value = getattr(args, _dest(section, path))
        if isinstance(value, list) and not path.endswith("betas"):
            pass  # grids (multi=True) are expanded by the caller
        elif isinstance(value, list):
            value = tuple(value)
        node = out.setdefault(section, {})
        *parents, leaf = path.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """Defaults < ``--preset`` < ``--config`` file < flags; a size given in one unit (``D`` or
    ``n_examples``) replaces one given in the other."""
    overrides = config_overrides(args)
    data: dict[str, Any] = {"preset": overrides.pop("preset")} if "preset" in overrides else {}
    if args.config:
        data = merge_config(data, read_mapping(args.config, "config file"))
        RunConfig.from_dict(data, str(args.config))  # errors name the file
    return RunConfig.from_dict(merge_config(data, overrides), "command-line flags")
