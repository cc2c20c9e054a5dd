"""Every analysis over a run's checkpoints, as one tidy table written incrementally.

``RUN/analysis/`` holds ``config.json`` (the :class:`AnalysisConfig` used), one file per analysed
checkpoint under ``steps/`` (written atomically, so an interrupted analysis resumes where it
stopped) and ``timeline.csv``, the concatenation: one row per step x analysis x component x
metric, with tokens seen. Memory stays flat: one model at a time, caches limited to the hooks
each analysis needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm
from transformer_lens import HookedTransformer

from mbc_interp.analysis.attribution import head_attribution
from mbc_interp.analysis.logit_lens import logit_lens
from mbc_interp.analysis.patching import SITE_KINDS, patch_sites
from mbc_interp.analysis.summary import summarize, write_summary
from mbc_interp.analysis.zuse import head_z_use
from mbc_interp.run import Run, load_run
from mbc_interp.store import ANALYSIS_DIR, RunStoreError, atomic_write
from mbc_interp.task import WindTunnelTask
from mbc_interp.train import progress_interval

TIMELINE_FILE = "timeline.csv"
CONFIG_FILE = "config.json"
STEPS_DIR = "steps"
COLUMNS = (
    "step", "tokens", "analysis", "kind", "component", "layer", "head", "pos", "position",
    "metric", "value",
)  # fmt: skip
_KINDS = {k.name: k for k in SITE_KINDS}


@dataclass(frozen=True)
class AnalysisConfig:
    """What to compute at each checkpoint (changing it means re-analysing: ``force``)."""

    n_pairs: int = 256
    """Clean/corrupt pairs for patching (same B, different z)."""
    pair_seed: int = 0
    n_examples: int | None = 1024
    """Examples for attribution and the logit lens (``None``: all of them)."""
    patch_kinds: tuple[str, ...] = tuple(_KINDS)
    """Site kinds to patch; see ``mbc_interp.analysis.patching.SITE_KINDS``."""

    def __post_init__(self) -> None:
        if self.n_pairs < 1:
            raise ValueError(f"analysis.n_pairs = {self.n_pairs}: must be >= 1")
        if self.n_examples is not None and self.n_examples < 1:
            raise ValueError(f"analysis.n_examples = {self.n_examples}: must be >= 1 or None")
        unknown = [k for k in self.patch_kinds if k not in _KINDS]
        if unknown:
            raise ValueError(
                f"analysis.patch_kinds: unknown kind {unknown[0]!r} (known: {list(_KINDS)})"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["patch_kinds"] = list(self.patch_kinds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnalysisConfig:
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        if "patch_kinds" in data:
            data["patch_kinds"] = tuple(data["patch_kinds"])
        return cls(**data)


def analyze_checkpoint(
    model: HookedTransformer, task: WindTunnelTask, config: AnalysisConfig = AnalysisConfig()
) -> list[dict[str, Any]]:
    """All analyses of one model as tidy rows (without step/tokens)."""
    examples = _example_rows(task, config)
    rows: list[dict[str, Any]] = []
    for r in head_attribution(model, task, examples).to_records():
        rows.append({"analysis": "attribution", "kind": "", "pos": None, "position": "", **r})
    pairs = task.patching_pairs(min(config.n_pairs, len(task)), config.pair_seed)
    for r in head_z_use(model, pairs).to_records():
        rows.append({"analysis": "zuse", "kind": "", "pos": None, "position": "", **r})
    for name in config.patch_kinds:
        if name == "mlp_out" and model.cfg.attn_only:
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


def _example_rows(task: WindTunnelTask, config: AnalysisConfig) -> torch.Tensor | None:
    if config.n_examples is None or config.n_examples >= len(task):
        return None
    g = torch.Generator().manual_seed(config.pair_seed)
    return torch.randperm(len(task), generator=g)[: config.n_examples].sort().values


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
) -> pd.DataFrame:
    """Analyse ``steps`` (default: every checkpoint), skipping those already analysed, and
    return the whole timeline table (also written to ``RUN/analysis/timeline.csv``).

    Backward runs only: a forward run (``task.direction = 'forward'``) raises ValueError."""
    _check_has_selector(run)
    out = run.path / ANALYSIS_DIR
    _check_config(out, config, force)
    wanted = list(run.steps if steps is None else steps)
    done = analysed_steps(run)
    todo = [s for s in wanted if force or s not in done]
    task = run.task
    bar = tqdm(
        todo, desc="analyze", unit="ckpt", disable=not progress, mininterval=progress_interval()
    )
    for step in bar:
        model = run.model(step, device=device)
        rows = analyze_checkpoint(model, task, config)
        tokens = run.tokens_at(step)
        record = [{"step": step, "tokens": tokens, **r} for r in rows]
        atomic_write(out / STEPS_DIR / f"step{step:08d}.json", json.dumps(record).encode())
        del model
    table = load_timeline(run)
    _write_csv(out / TIMELINE_FILE, table)
    return table


def analyze(
    run: Run | str | Path,
    config: AnalysisConfig = AnalysisConfig(),
    *,
    every: int = 1,
    start: int | None = None,
    stop: int | None = None,
    force: bool = False,
    progress: bool = True,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Analyse a run (every ``every``-th checkpoint in ``[start, stop]``), then time the routing
    circuit against the loss drop; writes ``timeline.csv`` and ``summary.json``.

    Backward runs only: a forward run (``task.direction = 'forward'``) raises ValueError."""
    run = run if isinstance(run, Run) else load_run(run)
    _check_has_selector(run)
    steps = select_steps(run.steps, every, start, stop)
    table = analyze_run(run, config, steps=steps, force=force, progress=progress)
    summary = summarize(run, table)
    write_summary(run, summary)
    return table, summary


def _check_has_selector(run: Run) -> None:
    if not run.config.task.has_selector:
        raise ValueError(
            f"{run.path}: cannot analyse a forward-direction run (task.direction = 'forward'): "
            "it has no selector; analysis of selector routing applies to backward runs"
        )


def analysed_steps(run: Run) -> set[int]:
    folder = run.path / ANALYSIS_DIR / STEPS_DIR
    if not folder.is_dir():
        return set()
    listed = set(run.steps)
    return {s for f in folder.glob("step*.json") if (s := int(f.stem[4:])) in listed}


def load_timeline(run: Run) -> pd.DataFrame:
    """The tidy table of every analysed checkpoint, sorted by step."""
    folder = run.path / ANALYSIS_DIR / STEPS_DIR
    records: list[dict[str, Any]] = []
    for step in sorted(analysed_steps(run)):
        file = folder / f"step{step:08d}.json"
        try:
            records.extend(json.loads(file.read_text()))
        except json.JSONDecodeError as e:
            raise RunStoreError(f"{file}: not valid JSON ({e}); delete it to re-analyse") from None
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype({"layer": "Int64", "head": "Int64", "pos": "Int64"})


def _check_config(out: Path, config: AnalysisConfig, force: bool) -> None:
    file = out / CONFIG_FILE
    if file.is_file() and not force:
        saved = AnalysisConfig.from_dict(json.loads(file.read_text()))
        if saved != config:
            raise ValueError(
                f"{file}: earlier checkpoints were analysed with {saved}; re-run with force "
                "(`mbc analyze --force`) to recompute them all with the new settings"
            )
    atomic_write(file, (json.dumps(config.to_dict(), indent=1) + "\n").encode())


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    atomic_write(path, table.to_csv(index=False).encode())
