"""Every analysis over a run's checkpoints, as one tidy table written incrementally.

``RUN/analysis/`` holds ``config.json`` (the :class:`AnalysisConfig` used), one file per analysed
checkpoint under ``steps/`` (written atomically, so an interrupted analysis resumes where it
stopped; each records the settings it was computed with, and a timeline never mixes two
settings) and ``timeline.csv``, the concatenation: one row per step x analysis x component x
metric, with tokens seen. Memory stays flat: one model at a time, caches limited to the hooks
each analysis needs.

Kinds accumulate: an analysis asked for with an extra kind (``kinds``, e.g. ``gradients``; the
kinds are declared in :mod:`mbc_interp.analysis.registry`) on a run analysed without it
computes that kind alone on the checkpoints lacking it and adds its rows to their files, the
rows already there untouched. The settings are compared per kind of analysis
(:func:`kind_settings`): the core analyses' (attribution, z-use, patching, logit lens: the
:class:`AnalysisConfig` fields but ``kinds`` and ``extra_settings``) and each extra kind's own
(its settings dataclass with those given in ``extra_settings``, recorded in full in the step
files as ``kind_settings``); a difference is an error naming the kind, the setting and both
values (``force`` recomputes everything instead; ``redo`` recomputes named extra kinds alone,
their rows replaced and every other row kept: after a kind's code has changed). Files written
before ``kind_settings``
existed record no extra kind's settings, which are then taken as unchanged. ``config.json``
records an extra kind once its rows are written (:mod:`mbc_interp.analysis.config_record`).

One process analyses a run at a time (:mod:`mbc_interp.analysis.lock`). A checkpoint whose
file cannot be loaded or fails its checksum is skipped with a
:class:`~mbc_interp.integrity.DamagedCheckpointWarning` naming the step and the file, and
listed as ``skipped_steps`` in the summary; the others are analysed.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Collection, Iterable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from mbc_interp.analysis.analysis_config import (  # re-exported: the settings of analyze()
    DETAIL_KINDS,
    AnalysisConfig,
)
from mbc_interp.analysis.attribution import head_attribution
from mbc_interp.analysis.config_record import (  # some re-exported: the settings on disk
    CONFIG_FILE,  # noqa: F401
    CORE,
    CORE_LABEL,  # noqa: F401
    check_config,
    kind_settings,
    record_config,
    saved_config,  # noqa: F401
    settings_conflicts,
)
from mbc_interp.analysis.lock import analysis_lock
from mbc_interp.analysis.logit_lens import logit_lens
from mbc_interp.analysis.patching import SITE_KINDS, patch_sites
from mbc_interp.analysis.registry import get_kind
from mbc_interp.analysis.step_files import (  # some re-exported: the analysis on disk
    COLUMNS,  # noqa: F401
    analysed_steps,
    core_settings,
    load_timeline,  # noqa: F401
    read_step,
    write_timeline,
)
from mbc_interp.analysis.timing.summary import summarize, write_summary
from mbc_interp.analysis.zuse import head_z_use
from mbc_interp.config import ConfigError
from mbc_interp.core.files import atomic_write
from mbc_interp.core.progress import progress_interval
from mbc_interp.core.sampling import seeded_subset
from mbc_interp.store.integrity import DamagedCheckpointWarning, validate_metrics
from mbc_interp.store.layout import ANALYSIS_DIR, STEPS_DIR, step_file
from mbc_interp.store.run import OptimizerState, Run, load_run
from mbc_interp.store.run_store import CheckpointError
from mbc_interp.tasks.protocol import HasSelector, Task, require

_KINDS = {k.name: k for k in SITE_KINDS}
SUMMARY_NEEDS = "head_out_all_pos"
"""The patching kind the summary's routing head and causal onset come from."""


def analyze_checkpoint(
    model: HookedTransformer,
    task: Task,
    config: AnalysisConfig = AnalysisConfig(),
    optimizer_state: OptimizerState | None = None,
    *,
    detail: bool = True,
    parts: Collection[str] | None = None,
) -> list[dict[str, Any]]:
    """All analyses of one model as tidy rows (without step/tokens); ``optimizer_state`` (the
    checkpoint's, when saved) goes to the extra kinds that need it (the Adam statistics of
    ``gradients``); ``detail`` False leaves out the position-resolved patching kinds; ``parts``
    limits them to these kinds (:data:`CORE` and/or extra kinds, run in that order; default:
    the core and every kind of ``config``)."""
    parts = task_parts(task, config) if parts is None else tuple(parts)
    rows: list[dict[str, Any]] = []
    for part in parts:
        if part == CORE:
            rows.extend(_core_rows(model, task, config, detail))
            continue
        kind = get_kind(part)
        state = optimizer_state if kind.needs_optimizer_state else None
        found = kind.run_function()(model, task, config.settings_of(part), state)
        rows.extend({"analysis": part, **r} for r in found)
    return rows


def task_parts(task: Any, config: AnalysisConfig) -> tuple[str, ...]:
    """What a checkpoint of ``task`` gets: the task's own analyses (``task.default_kinds``:
    :data:`CORE`, the routing analyses, on a task with a selector to route; the progress
    measures of another task) then ``config.kinds``, each once, the core first."""
    own = tuple(getattr(task, "default_kinds", (CORE,)))
    core = (CORE,) if CORE in own else ()
    return tuple(dict.fromkeys((*core, *(k for k in own if k != CORE), *config.kinds)))


def with_task_kinds(config: AnalysisConfig, task: Any) -> AnalysisConfig:
    """``config`` with the task's own extra kinds (not :data:`CORE`) added to its kinds."""
    own = [k for k in getattr(task, "default_kinds", (CORE,)) if k != CORE]
    if all(k in config.kinds for k in own):
        return config
    return replace(config, kinds=tuple(dict.fromkeys((*own, *config.kinds))))


def resolve_settings(run: Run, config: AnalysisConfig) -> AnalysisConfig:
    """``config`` with the task's calibrated defaults under the settings given
    (:class:`~mbc_interp.tasks.protocol.HasKindDefaults`) and each kind's run-dependent
    settings filled in by its ``resolve`` (:class:`~mbc_interp.analysis.registry.ExtraKind`),
    before any checkpoint is analysed."""
    given = {k: dict(v) for k, v in config.extra_settings.items()}
    changed = False
    task_defaults = getattr(run.task, "kind_defaults", None) or {}
    for name in config.kinds:
        if name in task_defaults:
            given[name] = {**task_defaults[name], **given.get(name, {})}
            changed = True
    for name in config.kinds:
        resolve = get_kind(name).resolve_function()
        if resolve is None:
            continue
        settings = resolve(run, replace(config, extra_settings=given).settings_of(name))
        given[name] = json.loads(json.dumps(asdict(settings)))
        changed = True
    return replace(config, extra_settings=given) if changed else config


def needs_optimizer_state(parts: Iterable[str]) -> bool:
    """Whether any of these kinds (:data:`CORE` or extra) reads the optimizer state."""
    return any(p != CORE and get_kind(p).needs_optimizer_state for p in parts)


def _core_rows(
    model: HookedTransformer, task: HasSelector, config: AnalysisConfig, detail: bool
) -> list[dict[str, Any]]:
    require(task, HasSelector, f"the routing analyses ({CORE!r})")
    examples = _example_rows(task, config)
    rows: list[dict[str, Any]] = []
    for r in head_attribution(model, task, examples).to_records():
        rows.append({"analysis": "attribution", "kind": "", "pos": None, "position": "", **r})
    pairs = task.patching_pairs(min(config.n_pairs, len(task)), config.pair_seed)
    for r in head_z_use(model, pairs).to_records():
        rows.append({"analysis": "zuse", "kind": "", "pos": None, "position": "", **r})
    for name in config.patch_kinds:
        if (name == "mlp_out" and model.cfg.attn_only) or (name in DETAIL_KINDS and not detail):
            continue
        result = patch_sites(model, task, _KINDS[name], pairs)
        rows.extend({"analysis": "patching", **r} for r in result.to_records())
        gap = result.clean_logit_diff - result.corrupt_logit_diff
        rows.append(
            {"analysis": "patching", "kind": name, "component": "baseline",
             "metric": "clean_minus_corrupt", "value": gap}
        )  # fmt: skip
    for r in logit_lens(model, task, examples).to_records():
        rows.append({"analysis": "logit_lens", "kind": "", "head": None, "pos": None, **r})
    return rows


def _example_rows(task: Task, config: AnalysisConfig) -> torch.Tensor | None:
    return seeded_subset(len(task), config.n_examples, config.pair_seed)


def detail_steps(run_steps: list[int], steps: Iterable[int], every: int) -> list[int]:
    """Which of ``steps`` get the position-resolved kinds: those at an index of ``run_steps`` (the
    run's checkpoints) divisible by ``every``, and the last of ``steps``. By index, so the choice
    of a checkpoint does not change as a run still training adds later ones."""
    steps = sorted(steps)
    index = {s: i for i, s in enumerate(sorted(run_steps))}
    return [s for s in steps if index.get(s, 0) % every == 0 or s == steps[-1]]


def select_steps(
    steps: list[int], every: int = 1, start: int | None = None, stop: int | None = None
) -> list[int]:
    """Every ``every``-th checkpoint in ``[start, stop]``; the last one in range is always kept."""
    if every < 1:
        raise ValueError(f"every = {every}: must be >= 1")
    inside = [s for s in steps if (start is None or s >= start) and (stop is None or s <= stop)]
    chosen = inside[::every]
    if inside and chosen[-1] != inside[-1]:
        chosen.append(inside[-1])
    return chosen


def analyze_run(
    run: Run,
    config: AnalysisConfig = AnalysisConfig(),
    *,
    steps: Iterable[int] | None = None,
    force: bool = False,
    progress: bool = True,
    device: str | torch.device | None = "cpu",
    redo: Collection[str] = (),
) -> pd.DataFrame:
    """Analyse ``steps`` (default: every checkpoint), skipping those already analysed, and
    return the whole timeline table (also written to ``RUN/analysis/timeline.csv``).

    Backward runs only: a forward run (``task.direction = 'forward'``) raises ValueError. The
    metrics are validated first: a bad line is an error before any checkpoint is analysed.
    Holds the run's analysis lock; a damaged checkpoint is skipped with a warning."""
    _preflight(run)
    with analysis_lock(run.path):
        return _analyze_steps(run, config, steps, force, progress, device, redo)[0]


def _analyze_steps(
    run: Run,
    config: AnalysisConfig,
    steps: Iterable[int] | None,
    force: bool,
    progress: bool,
    device: str | torch.device | None,
    redo: Collection[str] = (),
) -> tuple[pd.DataFrame, list[int]]:
    """:func:`analyze_run`'s work: the timeline table, and the steps skipped as damaged."""
    _preflight(run)  # again under the lock: another process may have written meanwhile
    config = resolve_settings(run, with_task_kinds(config, run.task))
    out = run.path / ANALYSIS_DIR
    config = check_config(out, config, force)
    wanted = list(run.steps if steps is None else steps)
    todo = _todo(run, config, wanted, force, redo)
    detailed = set(detail_steps(run.steps, wanted, config.detail_every))
    task = run.task
    record_settings = {k: v for k, v in kind_settings(config).items() if k != CORE}
    skipped: list[int] = []
    bar = tqdm(
        list(todo), desc="analyze", unit="ckpt", disable=not progress,
        mininterval=progress_interval(),
    )  # fmt: skip
    for step in bar:
        parts, kept = todo[step]
        try:
            model = run.model(step, device=device)
            state = run.optimizer_state(step) if needs_optimizer_state(parts) else None
        except CheckpointError as e:  # the message names the file
            warnings.warn(f"step {step}: {e}; skipped, not analysed", DamagedCheckpointWarning,
                          stacklevel=3)  # fmt: skip
            skipped.append(step)
            continue
        rows = analyze_checkpoint(model, task, config, state, detail=step in detailed, parts=parts)
        tokens = run.tokens_at(step)
        record = kept + [{"step": step, "tokens": tokens, **r} for r in rows]
        data = {"settings": config.step_settings(), "kind_settings": record_settings,
                "rows": record}  # fmt: skip
        atomic_write(out / STEPS_DIR / step_file(step), json.dumps(data).encode())
        del model
    record_config(out, config)  # every step asked for has its rows: its kinds are computed
    return write_timeline(run, config), skipped


def analyze(
    run: Run | str | Path,
    config: AnalysisConfig = AnalysisConfig(),
    *,
    every: int = 1,
    start: int | None = None,
    stop: int | None = None,
    force: bool = False,
    progress: bool = True,
    exclude: Iterable[int] = (),
    redo: Collection[str] = (),
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Analyse a run (every ``every``-th checkpoint in ``[start, stop]``, less ``exclude``:
    damaged checkpoints, say), then time the routing circuit against the loss drop; writes
    ``timeline.csv`` and ``summary.json`` (with ``skipped_steps``: the checkpoints skipped as
    damaged, see the module docstring); ``redo``: extra kinds to recompute where already
    analysed.

    Backward runs only: a forward run (``task.direction = 'forward'``) raises ValueError."""
    run = run if isinstance(run, Run) else load_run(run)
    _preflight(run)
    # fail before hours of analysis, not after
    if CORE in task_parts(run.task, config) and SUMMARY_NEEDS not in config.patch_kinds:
        raise ConfigError(
            f"patch_kinds {list(config.patch_kinds)}: the summary needs {SUMMARY_NEEDS!r} "
            "(the routing head's causal effect); add it"
        )
    skip = set(exclude)
    steps = select_steps([s for s in run.steps if s not in skip], every, start, stop)
    with analysis_lock(run.path):
        table, skipped = _analyze_steps(run, config, steps, force, progress, "cpu", redo)
        summary = {**summarize(run, table), "skipped_steps": skipped}
        write_summary(run, summary)
    return table, summary


def _preflight(run: Run) -> None:
    """The checks that need no lock, made before it is taken, so that bad input leaves the
    run's files as they were (no lock file, no ``analysis/`` folder): the task is analysable,
    every metrics line is valid, and ``analysis/steps/`` holds only step files."""
    _check_analysable(run)
    validate_metrics(run.store)
    analysed_steps(run)


def _check_analysable(run: Run) -> None:
    """A task with no analyses of its own (the wind tunnel's forward direction) is an error."""
    if not task_parts(run.task, AnalysisConfig()):
        raise ValueError(
            f"{run.path}: cannot analyse a forward-direction run (task.direction = 'forward'): "
            "it has no selector; analysis of selector routing applies to backward runs"
        )


def _todo(
    run: Run, config: AnalysisConfig, wanted: list[int], force: bool,
    redo: Collection[str] = (),
) -> dict[int, tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """step -> (kinds to compute, rows kept) for the ``wanted`` steps that need work: every kind
    where the step has no file, a file from other core settings or with kinds ``config`` lacks
    (or ``force``); else the extra kinds its file lacks and those of ``redo`` (extra kinds of
    ``config``), its other kinds' rows kept. A kind whose recorded settings differ from
    ``config``'s is an error naming it (see the module docstring)."""
    stray = sorted(set(redo) - set(config.kinds))
    if stray:
        raise ConfigError(f"redo {stray[0]!r}: not an extra kind of this analysis "
                          f"(kinds: {list(config.kinds)}); add it with kinds")  # fmt: skip
    folder = run.path / ANALYSIS_DIR / STEPS_DIR
    every = task_parts(run.task, config)
    new = kind_settings(config)
    todo: dict[int, tuple[tuple[str, ...], list[dict[str, Any]]]] = {}
    for step in wanted:
        file = folder / step_file(step)
        if force or not file.is_file():
            todo[step] = (every, [])
            continue
        settings, rows, recorded = read_step(file)
        if settings is None or core_settings(settings) != new[CORE]:
            todo[step] = (every, [])
            continue
        have = list(settings.get("kinds", ()))
        if any(k not in config.kinds for k in have):
            todo[step] = (every, [])
            continue
        conflicts = settings_conflicts(recorded, new)
        if conflicts:
            raise ValueError(
                f"{file}: computed with other settings ({'; '.join(conflicts)}); re-run with "
                "force (`mbc analyze --force`) to recompute them all"
            )
        missing = tuple(k for k in config.kinds if k not in have or k in redo)
        if missing:
            todo[step] = (missing, [r for r in rows if r.get("analysis") not in redo])
    return todo


