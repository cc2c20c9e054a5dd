"""Sweep specifications: a base config and one or more grids, expanded into named run points.

A sweep file (TOML or JSON) holds shared ``[base]`` overrides of :class:`RunConfig`, an optional
``[analysis]`` section (:class:`AnalysisConfig` fields), optional ``[[passes]]`` (analyses added
to each run after that one: :class:`AnalysisPass`) and any number of ``[[grid]]`` tables.
Inside a grid, a config field given as a list is an axis; the grid is the Cartesian product of
its axes, and the sweep is the union of its grids (identical points are run once)::

    [base.train]
    steps = 12000

    [[grid]]                       # duration against D
    label = "D"
    task = { D = [125, 250, 500, 1000] }
    train = { seed = [0, 1, 2, 3] }

    [[grid]]                       # against the learning rate
    label = "lr"
    task = { D = 500 }
    train = { lr = [3e-4, 1e-3, 2e-3], seed = [0, 1, 2, 3] }

Tuple-valued fields (``train.betas``) are axes only as a list of lists. Point names extend
:func:`mbc_interp.config.run_name` with every other field that differs from the base, so names are
readable, unique and stable when grids are added; equal configs are one point.
"""

from __future__ import annotations

import itertools
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

from mbc_interp.analysis.analysis_config import AnalysisConfig
from mbc_interp.config import ConfigError, RunConfig, TrainConfig, read_mapping, run_name
from mbc_interp.model_config import ModelConfig
from mbc_interp.tasks.registry import TASKS

NAMED_FIELDS = ("task.D", "task.n_examples", "task.K", "train.lr", "train.batch_size",
                "train.seed", "task.direction", "preset", "task.name", "task.p",
                "task.train_frac")
"""Fields that :func:`~mbc_interp.config.run_name` always puts in a point's name."""

SWEEP_ANALYSIS = AnalysisConfig(n_pairs=128, n_examples=512, patch_kinds=("head_out_all_pos",))
"""Default per-run analysis in a sweep: what the summary needs (attribution, head patching over
all positions, logit lens), at about a third of the cost of the full analysis."""


def _sections() -> dict[str, tuple[type, ...]]:
    """Each section's config classes: the task's are every registered task's."""
    tasks = tuple(e.config_class for e in TASKS.values())
    return {"task": tasks, "model": (ModelConfig,), "train": (TrainConfig,)}


def _tuple_fields() -> set[str]:
    """Dotted paths of tuple-typed leaf fields (a list there is one value, not an axis)."""
    out: set[str] = set()

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp = hints[f.name]
            if is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
            elif typing.get_origin(tp) is tuple:
                out.add(prefix + f.name)

    for section, classes in _sections().items():
        for cls in classes:
            walk(cls, f"{section}.")
    return out


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}`` (nested dicts become dotted keys)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


@dataclass(frozen=True)
class Point:
    """One run of a sweep: its directory name, config and the grids it belongs to."""

    name: str
    config: RunConfig
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnalysisPass:
    """Extra analysis kinds added to each run of a sweep once its analysis is done, before the
    run's record is kept: at every ``every``-th checkpoint, or at the last one only
    (``at = "last"``: an ablation read where the circuit is formed). In a file::

        [[passes]]
        kinds = ["groups"]             # every checkpoint
        [[passes]]
        kinds = ["ablation"]
        at = "last"
        [[passes]]
        kinds = ["llc"]
        every = 20
        llc = { draws = 100 }          # a kind's settings, as in [analysis]

    Passes run in order; since a run's analysis keeps every kind it was given, a pass at every
    checkpoint goes before one at the last only."""

    kinds: tuple[str, ...]
    every: int = 1
    at: str = "every"
    """``"every"`` (every ``every``-th checkpoint) or ``"last"`` (the last checkpoint only)."""
    settings: dict[str, Any] = field(default_factory=dict, hash=False)
    """Per kind of ``kinds``, its settings (``{"llc": {"draws": 100}}``)."""

    def __post_init__(self) -> None:
        from mbc_interp.analysis import registry

        where = f"[[passes]] {list(self.kinds)}"
        known = registry.kind_names()
        if not self.kinds or any(k not in known for k in self.kinds):
            raise ConfigError(f"{where}: kinds must name registered kinds (known: {known})")
        if type(self.every) is not int or self.every < 1:
            raise ConfigError(f"{where}: every = {self.every!r}: must be an integer >= 1")
        if self.at not in ("every", "last"):
            raise ConfigError(f"{where}: at = {self.at!r}: must be 'every' or 'last'")
        extra = sorted(set(self.settings) - set(self.kinds))
        if extra:
            raise ConfigError(f"{where}: settings for {extra}, which it does not compute")

    def config(self, base: AnalysisConfig) -> AnalysisConfig:
        """``base`` with this pass's kinds (and their settings) added."""
        data = {**base.to_dict(), **self.settings}
        data["kinds"] = list(dict.fromkeys((*base.kinds, *self.kinds)))
        return AnalysisConfig.from_dict(data, f"[[passes]] {list(self.kinds)}")

    def to_dict(self) -> dict[str, Any]:
        return {"kinds": list(self.kinds), "every": self.every, "at": self.at, **self.settings}

    @classmethod
    def from_dict(cls, data: Any, source: str) -> AnalysisPass:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: each [[passes]] entry must be a table, got {data!r}")
        kinds = data.get("kinds")
        if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
            raise ConfigError(f"{source}: [[passes]] kinds = {kinds!r}: must be a list of names")
        settings = {k: v for k, v in data.items() if k not in ("kinds", "every", "at")}
        bad = next((k for k, v in settings.items() if not isinstance(v, dict)), None)
        if bad is not None:
            raise ConfigError(f"{source}: [[passes]] {bad} = {settings[bad]!r}: unknown key, or "
                              "not a table of settings")  # fmt: skip
        return cls(tuple(kinds), data.get("every", 1), data.get("at", "every"), settings)


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs: ``base`` overrides shared by all grids, and the grids themselves
    (each a nested dict of config overrides whose list values are axes)."""

    grids: tuple[dict[str, Any], ...]
    base: dict[str, Any] = field(default_factory=dict)
    analysis: AnalysisConfig | None = SWEEP_ANALYSIS
    """Per-run analysis (``None``: train only)."""
    source: str = "sweep spec"
    passes: tuple[AnalysisPass, ...] = ()
    """Kinds added to each run after its analysis (:class:`AnalysisPass`), in order."""

    def __post_init__(self) -> None:
        if not self.grids:
            raise ConfigError(f"{self.source}: no [[grid]] given (nothing to sweep)")
        if self.passes and self.analysis is None:
            raise ConfigError(f"{self.source}: [[passes]] need the runs' [analysis]")
        unknown = set(self.base) - set(_sections()) - {"preset"}
        if unknown:
            raise ConfigError(f"{self.source}: [base] has unknown section(s) {sorted(unknown)}")
        self.points  # noqa: B018  (expand now: any invalid point fails at construction)

    @property
    def points(self) -> tuple[Point, ...]:
        """Every distinct point, in grid order, validated (errors name the grid and value)."""
        return _expand(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "analysis": None if self.analysis is None else self.analysis.to_dict(),
            "grid": [dict(g) for g in self.grids],
            **({"passes": [p.to_dict() for p in self.passes]} if self.passes else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "sweep spec") -> SweepSpec:
        unknown = set(data) - {"base", "analysis", "grid", "passes"}
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {sorted(unknown)} (expected base, "
                              "analysis, passes, grid)")  # fmt: skip
        grids = data.get("grid", [])
        if isinstance(grids, dict):
            grids = [grids]
        analysis = data.get("analysis", SWEEP_ANALYSIS.to_dict())
        where = f"{source}: [analysis]"
        analysis_cfg = None if analysis is None else AnalysisConfig.from_dict(analysis, where)
        passes = data.get("passes", [])
        if not isinstance(passes, list):
            raise ConfigError(f"{source}: passes = {passes!r}: must be a list of [[passes]]")
        return cls(
            grids=tuple(grids), base=data.get("base", {}), analysis=analysis_cfg, source=source,
            passes=tuple(AnalysisPass.from_dict(p, source) for p in passes),
        )  # fmt: skip

    @classmethod
    def from_file(cls, path: str | Path) -> SweepSpec:
        return cls.from_dict(read_mapping(path, "sweep file"), source=str(path))

    def with_grid_overrides(self, overrides: dict[str, Any]) -> SweepSpec:
        """Every grid with ``overrides`` (nested; lists are axes) laid over it: flags win."""
        flat = flatten(overrides)
        grids = tuple(unflatten({**flatten(g), **flat}) for g in self.grids)
        return replace(self, grids=grids)


def _axes(grid: dict[str, Any], tuples: set[str]) -> tuple[list[str], list[list[Any]]]:
    keys, values = [], []
    for key, value in flatten({k: v for k, v in grid.items() if k != "label"}).items():
        is_axis = isinstance(value, list) and (
            key not in tuples or (value and isinstance(value[0], list | tuple))
        )
        keys.append(key)
        values.append(list(value) if is_axis else [value])
    return keys, values


def _expand(spec: SweepSpec) -> tuple[Point, ...]:
    tuples = _tuple_fields()
    base_flat = flatten(spec.base)
    found: dict[str, tuple[RunConfig, list[str]]] = {}
    order: list[RunConfig] = []
    configs: dict[RunConfig, list[str]] = {}
    for i, grid in enumerate(spec.grids):
        if not isinstance(grid, dict):
            raise ConfigError(f"{spec.source}: grid {i} must be a table, got {grid!r}")
        label = str(grid.get("label", f"grid{i}"))
        keys, values = _axes(grid, tuples)
        for i_val, combo in enumerate(itertools.product(*values)):
            flat = {**base_flat, **dict(zip(keys, combo, strict=True))}
            flat = {k: tuple(v) if k in tuples else v for k, v in flat.items()}
            where = f"{spec.source}: grid {label!r}, point {i_val} ({_describe(keys, combo)})"
            config = RunConfig.from_dict(unflatten(flat), where)
            if config not in configs:
                configs[config] = []
                order.append(config)
            if label not in configs[config]:
                configs[config].append(label)
    base = flatten(RunConfig.from_dict(spec.base, f"{spec.source}: [base]").to_dict())
    points = []
    for config in order:
        name = point_name(config, base)
        if name in found and found[name][0] != config:
            raise ConfigError(f"{spec.source}: two different points share the name {name!r}")
        found[name] = (config, configs[config])
        points.append(Point(name=name, config=config, labels=tuple(configs[config])))
    return tuple(points)


def _describe(keys: list[str], combo: tuple) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in zip(keys, combo, strict=True))


def point_name(config: RunConfig, base: dict[str, Any] | None = None) -> str:
    """``run_name(config)`` plus ``_<field><value>`` for each other field that differs from
    ``base`` (a flattened config; default: ``RunConfig()``). Names depend only on the point and
    the sweep's base, so adding grids to a sweep never renames its existing points."""
    base = flatten(RunConfig().to_dict()) if base is None else base
    flat = flatten(config.to_dict())
    parts = [run_name(config)]
    for key, value in flat.items():
        if key in NAMED_FIELDS or repr(value) == repr(base.get(key)):
            continue
        leaf = key.rsplit(".", 1)[-1]
        text = "-".join(f"{v:g}" for v in value) if isinstance(value, tuple | list) else value
        text = f"{text:g}" if isinstance(text, float) else str(text)
        parts.append(f"{leaf}{text}" if text[:1].isdigit() else f"{leaf}-{text}")
    return "_".join(parts)
