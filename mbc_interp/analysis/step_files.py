"""A run's analysis on disk: one file per analysed checkpoint under ``analysis/steps/`` (its
settings, the extra kinds' settings and its rows) and the timeline table they make together
(``analysis/timeline.csv``). Reading them needs neither torch nor TransformerLens."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from mbc_interp.core.files import write_if_changed
from mbc_interp.store.layout import ANALYSIS_DIR, STEPS_DIR, TIMELINE_FILE, step_file
from mbc_interp.store.run_store import RunStoreError

if TYPE_CHECKING:
    from mbc_interp.analysis.analysis_config import AnalysisConfig
    from mbc_interp.store.run import Run

COLUMNS = (
    "step", "tokens", "analysis", "kind", "component", "layer", "head", "pos", "position",
    "metric", "value",
)  # fmt: skip
STEP_FILE = re.compile(r"step(\d{8})\.json")


def analysed_steps(run: Run, config: AnalysisConfig | None = None) -> set[int]:
    """Checkpointed steps with an analysis file (computed with ``config``, when given).

    Any other file in ``analysis/steps/`` is an error naming it (hidden temporary files of an
    interrupted write excepted)."""
    folder = run.path / ANALYSIS_DIR / STEPS_DIR
    if not folder.is_dir():
        return set()
    listed = set(run.steps)
    found = {}
    for f in folder.iterdir():
        if f.name.startswith("."):
            continue
        m = STEP_FILE.fullmatch(f.name)
        if m is None or not f.is_file():
            raise RunStoreError(
                f"{f}: unexpected in {folder} (only stepNNNNNNNN.json files written by "
                "`mbc analyze` belong there); move it elsewhere"
            )
        if int(m.group(1)) in listed:
            found[int(m.group(1))] = f
    if config is None:
        return set(found)
    wanted = config.step_settings()
    return {s for s, f in found.items() if read_step_settings(f)[0] == wanted}


def read_step_settings(file: Path) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """``(settings, rows)``; files from before settings were recorded give ``None``."""
    settings, rows, _ = read_step(file)
    return settings, rows


def read_step(
    file: Path,
) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(settings, rows, kind_settings)`` of a step file (``kind_settings`` empty in files
    written before it was recorded)."""
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise RunStoreError(f"{file}: not valid JSON ({e}); delete it to re-analyse") from None
    if isinstance(data, list):
        return None, data, {}
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise RunStoreError(f"{file}: not an analysis file; delete it to re-analyse")
    settings = data.get("settings")
    if isinstance(settings, dict):  # written before detail_every existed: every checkpoint
        settings = {**settings, "detail_every": settings.get("detail_every", 1)}
    recorded = data.get("kind_settings")
    return settings, data["rows"], recorded if isinstance(recorded, dict) else {}


def load_timeline(run: Run, config: AnalysisConfig | None = None) -> pd.DataFrame:
    """The tidy table of every analysed checkpoint, sorted by step.

    Refuses (naming two files) a folder whose files were computed with different core settings,
    or with settings other than ``config`` when given: ``mbc analyze --force`` recomputes them.
    A step's extra kinds may be fewer than the others' (an expensive kind added with
    ``--every`` or ``--start``/``--stop``), never ones ``config`` lacks."""
    folder = run.path / ANALYSIS_DIR / STEPS_DIR
    records: list[dict[str, Any]] = []
    first: tuple[Path, Any] | None = None
    want = None if config is None else config.step_settings()
    for step in sorted(analysed_steps(run)):
        file = folder / step_file(step)
        settings, rows = read_step_settings(file)
        if want is not None and not _within(settings, want):
            raise RunStoreError(f"{file}: computed with settings {settings}, not {config}; "
                                "re-run `mbc analyze --force`")  # fmt: skip
        if first is None:
            first = (file, settings)
        elif core_settings(settings) != core_settings(first[1]):
            raise RunStoreError(
                f"{folder}: files computed with different settings ({first[0].name}: {first[1]}; "
                f"{file.name}: {settings}); re-run `mbc analyze --force` to recompute them all"
            )
        records.extend(rows)
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    return frame.astype({"layer": "Int64", "head": "Int64", "pos": "Int64"})


def write_timeline(run: Run, config: AnalysisConfig | None = None) -> pd.DataFrame:
    """:func:`load_timeline`, also written to ``analysis/timeline.csv`` (rewritten only when it
    changed): the one place the file is made, so a run restored from a record without it gets
    the same bytes back."""
    table = load_timeline(run, config)
    _write_csv(run.path / ANALYSIS_DIR / TIMELINE_FILE, table)
    return table


def core_settings(settings: dict[str, Any] | None) -> dict[str, Any] | None:
    """A step file's settings less its list of extra kinds."""
    return None if settings is None else {k: v for k, v in settings.items() if k != "kinds"}


def _within(settings: dict[str, Any] | None, want: dict[str, Any]) -> bool:
    """Whether a step computed with ``settings`` belongs to an analysis with ``want``: the same
    core settings, and extra kinds among ``want``'s."""
    if settings is None:
        return False
    same = core_settings(settings) == core_settings(want)
    return same and set(settings.get("kinds", ())) <= set(want["kinds"])


def _write_csv(path: Path, table: pd.DataFrame) -> None:
    write_if_changed(path, table.to_csv(index=False).encode())
