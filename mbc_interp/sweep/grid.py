"""Sweep specifications: a base config and one or more grids, expanded into named run points.

A sweep file (TOML or JSON) holds shared ``[base]`` overrides of :class:`RunConfig`, an optional
``[analysis]`` section (:class:`AnalysisConfig` fields) and any number of ``[[grid]]`` tables.
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
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from mbc_interp.analysis.analysis_config import AnalysisConfig
from mbc_interp.config import ConfigError, RunConfig, TrainConfig, read_mapping, run_name
from mbc_interp.model_config import ModelConfig
from mbc_interp.tasks.wind_tunnel.config import TaskConfig

NAMED_FIELDS = ("task.D", "task.n_examples", "task.K", "train.lr", "train.batch_size",
                "train.seed", "task.direction", "preset", "task.name", "task.p",
                "task.train_frac")
"""Fields that :func:`~mbc_interp.config.run_name` always puts in a point's name."""

SWEEP_ANALYSIS = AnalysisConfig(n_pairs=128, n_examples=512, patch_kinds=("head_out_all_pos",))
"""Default per-run analysis in a sweep: what the summary needs (attribution, head patching over
all positions, logit lens), at about a third of the cost of the full analysis."""


def _sections() -> dict[str, type]:
    return {"task": TaskConfig, "model": ModelConfig, "train": TrainConfig}


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

    for section, cls in _sections().items():
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
class SweepSpec:
    """What a sweep runs: ``base`` overrides shared by all grids, and the grids themselves
    (each a nested dict of config overrides whose list values are axes)."""

    grids: tuple[dict[str, Any], ...]
    base: dict[str, Any] = field(default_factory=dict)
    analysis: AnalysisConfig | None = SWEEP_ANALYSIS
    """Per-run analysis (``None``: train only)."""
    source: str = "sweep spec"

    def __post_init__(self) -> None:
        if not self.grids:
            raise ConfigError(f"{self.source}: no [[grid]] given (nothing to sweep)")
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
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "sweep spec") -> SweepSpec:
        unknown = set(data) - {"base", "analysis", "grid"}
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(unknown)} (expected base, analysis, grid)"
            )
        grids = data.get("grid", [])
        if isinstance(grids, dict):
            grids = [grids]
        analysis = data.get("analysis", SWEEP_ANALYSIS.to_dict())
        where = f"{source}: [analysis]"
        analysis_cfg = None if analysis is None else AnalysisConfig.from_dict(analysis, where)
        return cls(
            grids=tuple(grids), base=data.get("base", {}), analysis=analysis_cfg, source=source
        )

    @classmethod
    def from_file(cls, path: str | Path) -> SweepSpec:
        return cls.from_dict(read_mapping(path, "sweep file"), source=str(path))

    def with_grid_overrides(self, overrides: dict[str, Any]) -> SweepSpec:
        """Every grid with ``overrides`` (nested; lists are axes) laid over it: flags win."""
        flat = flatten(overrides)
        grids = tuple(unflatten({**flatten(g), **flat}) for g in self.grids)
        return SweepSpec(grids=grids, base=self.base, analysis=self.analysis, source=self.source)


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
