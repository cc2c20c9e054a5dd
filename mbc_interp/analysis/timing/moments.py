"""Which checkpoints to look at: before the log K plateau, on it, and after the transition.

Pictures of one checkpoint (attention patterns, patching heatmaps) only mean something side by
side with the same picture at other moments of the run. :func:`key_steps` picks those moments
from a run's summary (``summary.json``), among the checkpoints that were analysed:

- ``before plateau``: the checkpoint nearest ``t_plateau_start / 2``, among those before
  ``t_plateau_start`` (the model is still learning the marginal);
- ``on plateau``: the checkpoint nearest the middle of ``[t_plateau_start, t_plateau_end]``;
- ``after transition``: the last checkpoint, if it comes after ``t_loss`` (the final circuit).

Moments the run has not reached are left out; if it is still on the plateau the last checkpoint
is added as ``latest``. A run without a plateau gets ``first``, ``middle`` (nearest the
middle in time) and ``last``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, SupportsInt

BEFORE, ON, AFTER = "before plateau", "on plateau", "after transition"


def key_steps(summary: Mapping[str, Any], steps: Iterable[SupportsInt]) -> dict[str, int]:
    """Label -> step for the moments worth comparing, in time order (see the module doc)."""
    steps = sorted(int(s) for s in steps)
    if not steps:
        raise ValueError("no checkpoints to choose from")
    start, end, drop = (summary.get(k) for k in ("t_plateau_start", "t_plateau_end", "t_loss"))
    if start is None:
        return _spread(steps)
    out: dict[str, int] = {}
    before = [s for s in steps if s < start]
    if before:
        out[BEFORE] = _nearest(before, start / 2)
    on = [s for s in steps if start <= s <= (end if end is not None else steps[-1])]
    if on:
        out[ON] = _nearest(on, (start + (end if end is not None else on[-1])) / 2)
    if drop is not None and steps[-1] > drop:
        out[AFTER] = steps[-1]
    elif steps[-1] not in out.values():
        out["latest"] = steps[-1]
    return out


def _nearest(steps: Sequence[int], t: float) -> int:
    return min(steps, key=lambda s: (abs(s - t), s))


def _spread(steps: Sequence[int]) -> dict[str, int]:
    middle = _nearest(steps, (steps[0] + steps[-1]) / 2)
    out = {"first": steps[0], "middle": middle, "last": steps[-1]}
    seen: dict[int, str] = {}
    for label, step in out.items():
        seen.setdefault(step, label)
    return {label: step for step, label in seen.items()}
