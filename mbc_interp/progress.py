"""How progress is shown: refresh rate, and the phase of a run's loss relative to log K.

Below every layer that shows progress (training, analysis), so neither imports the other.
"""

from __future__ import annotations

import sys


def progress_interval() -> float:
    """Seconds between progress-bar refreshes: live on a terminal, sparse in a log file."""
    return 0.5 if sys.stderr.isatty() else 10.0
