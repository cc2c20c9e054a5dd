"""How progress is shown: refresh rate, and the phase of a run's loss relative to log K.

Below every layer that shows progress (training, analysis), so neither imports the other.
"""

from __future__ import annotations

import sys


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, sparse in a log file."""
    return 0.5 if sys.stderr.isatty() else 10.0


PLATEAU_BAND = 0.05
"""Within this fraction of log K, the loss is on the plateau."""


def loss_phase(loss: float, log_k: float, solved_frac: float) -> str:
    """Where a loss stands: ``descending`` (above the plateau), ``on the plateau`` (at log K),
    ``dropping`` (below it, not solved yet) or ``solved`` (below ``solved_frac`` x log K)."""
    if loss < solved_frac * log_k:
        return "solved"
    ratio = loss / log_k if log_k > 0 else float("inf")
    if ratio > 1 + PLATEAU_BAND:
        return "descending"
    return "on the plateau" if ratio >= 1 - PLATEAU_BAND else "dropping"


def train_postfix(
    loss: float, log_k: float, acc: float, solved_frac: float, metric: str = "loss"
) -> str:
    """The progress bar's words: the transition metric against its scale (log K on the wind
    tunnel) and its phase (no ETA: a run stops by itself once solved, long before its cap)."""
    unit = "log K" if metric == "loss" else "scale"
    return (f"{metric} {loss:.4f} = {loss / log_k:.2f} {unit} "
            f"({loss_phase(loss, log_k, solved_frac)}), accuracy {acc:.2f}")  # fmt: skip
