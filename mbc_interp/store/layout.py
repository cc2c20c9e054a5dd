"""Every file and directory name of a run, its analysis, a sweep and a sweep's results.

The names live here and nowhere else, so a module that reads a run or a sweep never types a
file name, and a change of layout is a change of this module::

    RUN/                                  a run directory (run_store, run, integrity)
      config.json                         CONFIG_FILE: RunConfig, versions, data fingerprint
      metrics.jsonl                       METRICS_FILE: one JSON object per evaluation
      manifest.json                       MANIFEST_FILE: the completed checkpoints
      writer.lock                         LOCK_FILE: who writes the run now
      report.html                         REPORT_FILE: ``mbc report``'s page
      checkpoints/                        CHECKPOINT_DIR: weights_file(step), trainer_file(step)
      damaged/                            DAMAGED_DIR: checkpoint files set aside as damaged
      analysis/                           ANALYSIS_DIR
        config.json                       ANALYSIS_CONFIG_FILE: the settings analysed with
        timeline.csv                      TIMELINE_FILE: every analysed row
        summary.json                      SUMMARY_FILE: the transition and progress times
        .lock                             ANALYSIS_LOCK_FILE: one analysis at a time
        steps/step00001500.json           STEPS_DIR, step_file(step): one analysed checkpoint

    SWEEP/                                a sweep directory (is_sweep_dir)
      sweep.json                          SWEEP_FILE: the spec and its points
      runs/NAME/                          RUNS_DIR, sweep_run_dir(sweep, name): a run directory
      points/NAME.json                    POINTS_DIR, point_file(sweep, name): a point's outcome

    RESULTS/                              what ``mbc fit`` writes from a sweep
      runs.csv                            RUNS_TABLE: one row per point
      fits.json, verdicts.json            FITS_FILE, VERDICTS_FILE
      report.html, figures/               REPORT_FILE, FIGURES_DIR
      records/NAME/point.json             a run's record: its files but the weights, and
                                          POINT_RECORD_FILE, the point's outcome
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "ANALYSIS_CONFIG_FILE",
    "ANALYSIS_DIR",
    "ANALYSIS_LOCK_FILE",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "DAMAGED_DIR",
    "FIGURES_DIR",
    "FITS_FILE",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "METRICS_FILE",
    "POINTS_DIR",
    "POINT_RECORD_FILE",
    "RECORD_ARCHIVE_FILE",
    "REPORT_FILE",
    "RUNS_DIR",
    "RUNS_TABLE",
    "STEPS_DIR",
    "SUMMARY_FILE",
    "SWEEP_FILE",
    "TIMELINE_FILE",
    "VERDICTS_FILE",
    "is_run_dir",
    "is_sweep_dir",
    "point_file",
    "step_file",
    "sweep_run_dir",
    "sweep_run_dirs",
    "trainer_file",
    "weights_file",
]

# -- a run -------------------------------------------------------------------------------------
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
MANIFEST_FILE = "manifest.json"
LOCK_FILE = "writer.lock"
REPORT_FILE = "report.html"
CHECKPOINT_DIR = "checkpoints"
DAMAGED_DIR = "damaged"
ANALYSIS_DIR = "analysis"

# -- a run's analysis (under ANALYSIS_DIR) -----------------------------------------------------
ANALYSIS_CONFIG_FILE = "config.json"
TIMELINE_FILE = "timeline.csv"
SUMMARY_FILE = "summary.json"
ANALYSIS_LOCK_FILE = ".lock"
STEPS_DIR = "steps"

# -- a sweep -----------------------------------------------------------------------------------
SWEEP_FILE = "sweep.json"
RUNS_DIR = "runs"
POINTS_DIR = "points"

# -- a sweep's results -------------------------------------------------------------------------
RUNS_TABLE = "runs.csv"
FITS_FILE = "fits.json"
VERDICTS_FILE = "verdicts.json"
FIGURES_DIR = "figures"
POINT_RECORD_FILE = "point.json"
RECORD_ARCHIVE_FILE = "run.tar.xz"


def weights_file(step: int) -> str:
    """A checkpoint's weights, relative to the run directory."""
    return f"{CHECKPOINT_DIR}/step{step:08d}.safetensors"


def trainer_file(step: int) -> str:
    """A checkpoint's optimiser and RNG state, relative to the run directory."""
    return f"{CHECKPOINT_DIR}/step{step:08d}.trainer.safetensors"


def step_file(step: int) -> str:
    """An analysed checkpoint's file name in ``ANALYSIS_DIR/STEPS_DIR``."""
    return f"step{step:08d}.json"


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a run (its config file)."""
    return (Path(path) / CONFIG_FILE).is_file()


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` holds a sweep (its spec file)."""
    return (Path(path) / SWEEP_FILE).is_file()


def sweep_run_dir(sweep: str | Path, name: str) -> Path:
    """The run directory of point ``name`` of ``sweep``."""
    return Path(sweep) / RUNS_DIR / name


def point_file(sweep: str | Path, name: str) -> Path:
    """The outcome file of point ``name`` of ``sweep``."""
    return Path(sweep) / POINTS_DIR / f"{name}.json"


def sweep_run_dirs(sweep: str | Path) -> Iterator[Path]:
    """Every directory under ``sweep``'s runs folder, sorted by name (none where it has no
    runs folder yet); a point's directory holds a run once it has started."""
    runs = Path(sweep) / RUNS_DIR
    if runs.is_dir():
        yield from sorted(p for p in runs.iterdir() if p.is_dir())
