"""``RUN/analysis/config.json``: the settings of a run's analysis, checked and recorded.

The file holds the :class:`AnalysisConfig` later calls continue with (``mbc analyze RUN``
without flags, ``mbc report``). A new call is checked against it per kind of analysis
(:func:`kind_settings`, :func:`settings_conflicts`) before anything is computed. An extra kind
is recorded only once its rows are written at every checkpoint asked for
(:func:`record_config`): an analysis interrupted before then leaves the kind unrecorded, so a
rerun may ask for it again, with the same settings or others, and computes it where missing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbc_interp.analysis.analysis_config import AnalysisConfig
from mbc_interp.analysis.registry import settings_record
from mbc_interp.core.files import write_if_changed
from mbc_interp.store.layout import ANALYSIS_CONFIG_FILE as CONFIG_FILE
from mbc_interp.store.layout import ANALYSIS_DIR
from mbc_interp.store.run_store import RunStoreError

if TYPE_CHECKING:
    from mbc_interp.store.run import Run

CORE = "core"
"""The analyses every checkpoint gets: attribution, z-use, patching, logit lens."""
CORE_LABEL = "core analyses (attribution, zuse, patching, logit_lens)"


def kind_settings(config: AnalysisConfig) -> dict[str, dict[str, Any]]:
    """Per kind of analysis ``config`` computes, the settings its rows depend on (as JSON
    values): :data:`CORE`'s are the config's fields but ``kinds`` and ``extra_settings``; an
    extra kind's every field of its settings dataclass (its defaults, with those given)."""
    core = {k: v for k, v in config.step_settings().items() if k != "kinds"}
    out = {CORE: core}
    for kind in config.kinds:
        out[kind] = settings_record(kind, config.extra_settings.get(kind))
    return out


def settings_conflicts(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[str]:
    """One line per setting that differs between two :func:`kind_settings` records, for the
    kinds both have: ``kind: name was OLD, now NEW``."""
    lines = []
    for kind in (k for k in new if k in old):
        names = list(dict.fromkeys([*old[kind], *new[kind]]))
        for name in names:
            a, b = old[kind].get(name), new[kind].get(name)
            if a != b:
                label = CORE_LABEL if kind == CORE else kind
                lines.append(f"{label}: {name} was {a!r}, now {b!r}")
    return lines


def saved_config(run: Run) -> AnalysisConfig | None:
    """The settings in ``RUN/analysis/config.json`` (``None`` before any analysis)."""
    file = run.path / ANALYSIS_DIR / CONFIG_FILE
    return read_config(file) if file.is_file() else None


def read_config(file: Path) -> AnalysisConfig:
    """The settings of a ``config.json``; an error naming the file when it is not one."""
    try:
        data = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise RunStoreError(f"{file}: not valid JSON ({e})") from None
    return AnalysisConfig.from_dict(data, str(file), stored=True)


def check_config(out: Path, config: AnalysisConfig, force: bool) -> AnalysisConfig:
    """The settings of the run's analysis from now on: ``config`` with the extra kinds of the
    earlier analysis (and their settings) added (``force``: ``config`` alone). Settings other
    than the earlier analysis' are an error naming each (old and new value). Writes
    ``config.json`` with the core settings and the kinds recorded already; the new kinds wait
    for :func:`record_config`. An earlier analysis of an older ``version`` is recomputed, as
    with ``force``: its files are never mixed with the new ones."""
    file = out / CONFIG_FILE
    recorded: tuple[str, ...] = ()
    saved = read_config(file) if file.is_file() and not force else None
    if saved is not None and saved.version >= config.version:
        conflicts = settings_conflicts(kind_settings(saved), kind_settings(config))
        if conflicts:
            raise ValueError(
                f"{file}: earlier checkpoints were analysed with other settings "
                f"({'; '.join(conflicts)}); give the earlier values, or re-run with force "
                "(`mbc analyze --force`) to recompute them all with the new settings"
            )
        recorded = saved.kinds
        kept = {k: v for k, v in saved.extra_settings.items() if k not in config.kinds}
        config = replace(
            config,
            kinds=tuple(dict.fromkeys((*saved.kinds, *config.kinds))),
            extra_settings={**kept, **config.extra_settings},
        )
    record_config(out, _only_kinds(config, recorded))
    return config


def record_config(out: Path, config: AnalysisConfig) -> None:
    """Write ``config`` as ``config.json`` (unchanged bytes are not rewritten): once every
    checkpoint asked for has its rows, so that its kinds are recorded as computed."""
    write_if_changed(out / CONFIG_FILE, (json.dumps(config.to_dict(), indent=1) + "\n").encode())


def _only_kinds(config: AnalysisConfig, kinds: tuple[str, ...]) -> AnalysisConfig:
    keep = tuple(k for k in config.kinds if k in kinds)
    given = {k: v for k, v in config.extra_settings.items() if k in keep}
    return replace(config, kinds=keep, extra_settings=given)
