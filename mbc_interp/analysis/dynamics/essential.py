"""Essential dynamics: the model's outputs across checkpoints, reduced by PCA, and where the
trajectory turns.

Each checkpoint is one vector: its log-probabilities at every target position of a fixed probe
set (the task's seeded ``eval_rows`` of :attr:`EssentialConfig.n_examples`), all vocabulary entries
concatenated. So that each checkpoint is analysed on its own (and incrementally), the vector is
stored as its projection on :attr:`EssentialConfig.n_projections` fixed seeded Gaussian
directions (scaled by ``1/sqrt(n)``: distances are kept to within a few percent,
Johnson-Lindenstrauss). The projected vectors of all checkpoints are centred and reduced by PCA
(SVD) to :attr:`EssentialConfig.n_components` components. Rule for the turn (fixed before use): the
trajectory's direction at checkpoint ``i`` is the displacement from ``i - w`` to ``i`` against
the one from ``i`` to ``i + w`` in the leading components (``w`` = :attr:`window`); the turn is
the checkpoint where the angle between them is largest, among those where both displacements
exceed :data:`MIN_MOVE` of the trajectory's total path length (a still trajectory has no
direction). A transition between two solutions shows as a sharp turn.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mbc_interp.analysis.records import record
from mbc_interp.core.checks import check_field, is_int

if TYPE_CHECKING:
    from torch import Tensor

    from mbc_interp.tasks.protocol import Task

MIN_MOVE = 0.02


@dataclass(frozen=True)
class EssentialConfig:
    n_examples: int = 64
    n_projections: int = 64
    n_components: int = 3
    window: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="essential")

        for name in ("n_examples", "n_projections", "n_components", "window"):
            value = getattr(self, name)
            need(is_int(value) and value >= 1, name, "must be an int >= 1")
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")


def output_vector(model: Any, task: Task, config: EssentialConfig) -> Tensor:
    """One checkpoint's log-probabilities at the target positions of the probe set, flat."""
    import torch

    rows = task.eval_rows(config.n_examples, seed=config.seed)
    tokens = task.tokens[rows]
    with torch.inference_mode():
        logits = model(tokens[:, :-1])[:, task.answer_pos :]
    return logits.log_softmax(-1).double().reshape(-1).cpu()


def projected_records(
    model: Any, task: Task, config: EssentialConfig = EssentialConfig()
) -> list[dict[str, Any]]:
    """Tidy rows (``analysis = "essential"``, ``component = "p<i>"``) of the output vector's
    projection (see the module docstring)."""
    import torch

    v = output_vector(model, task, config)
    g = torch.Generator().manual_seed(config.seed)
    basis = torch.randn(config.n_projections, v.numel(), generator=g, dtype=torch.float64)
    proj = basis @ v / config.n_projections**0.5
    return [record("essential", "projection", x, component=f"p{i}")
            for i, x in enumerate(proj.tolist())]  # fmt: skip


def pca_trajectory(vectors: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """``[checkpoint, component]`` coordinates and each component's share of the variance."""
    x = vectors - vectors.mean(0, keepdims=True)
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    k = min(n_components, len(s))
    total = float((s**2).sum())
    share = (s[:k] ** 2) / total if total > 0 else np.zeros(k)
    return u[:, :k] * s[:k], share


def turn(steps: np.ndarray, coords: np.ndarray, window: int) -> dict[str, Any]:
    """The turn of the trajectory by the module docstring's rule: its step, the angle
    (degrees) and every checkpoint's angle (NaN where undefined)."""
    n = len(coords)
    path = float(np.linalg.norm(np.diff(coords, axis=0), axis=1).sum()) if n > 1 else 0.0
    angles = np.full(n, np.nan)
    for i in range(window, n - window):
        u, w = coords[i] - coords[i - window], coords[i + window] - coords[i]
        nu, nw = np.linalg.norm(u), np.linalg.norm(w)
        if path > 0 and min(nu, nw) > MIN_MOVE * path:
            angles[i] = np.degrees(np.arccos(np.clip(u @ w / (nu * nw), -1, 1)))
    if np.all(np.isnan(angles)):
        return {"t_turn": None, "turn_angle": None, "angles": angles}
    i = int(np.nanargmax(angles))
    return {"t_turn": float(steps[i]), "turn_angle": float(angles[i]), "angles": angles}
