"""Attention patterns of one example at one checkpoint, with readable token labels.

The raw input of attention views (``mbc_interp.viz.attention``): every head's full
``[dest, src]`` pattern on one sequence of the task, labelled ``b3``/``z2``/``SEP``/``a1`` by token
and ``B1``/``z``/``SEP``/``A1`` by role, so a picture can say which position is the selector.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens import HookedTransformer

from mbc_interp.analysis.heads import head_labels
from mbc_interp.tasks.protocol import Task


@dataclass(frozen=True)
class AttentionPatterns:
    """Every head's attention on one example; ``pattern[l, h, dest, src]`` rows sum to 1."""

    pattern: Float[Tensor, "layer head dest src"]
    tokens: tuple[str, ...]
    """Token label per position: ``b3``, ``z2``, ``SEP``, ``a1`` (see ``task.token_label``)."""
    positions: tuple[str, ...]
    """Role per position: ``B1``.., ``z``, ``SEP``, ``A1``.. (see ``task.position_labels``)."""
    example: int
    """Row of ``task.tokens``."""

    @property
    def head_labels(self) -> list[str]:
        return head_labels(*self.pattern.shape[:2])

    def heads(
        self, names: Sequence[str] | None = None
    ) -> tuple[Float[Tensor, "head dest src"], list[str]]:
        """The patterns of the named heads (default all, layer-major) and their labels."""
        flat = self.pattern.flatten(0, 1)
        labels = self.head_labels
        if names is None:
            return flat, labels
        index = {label: i for i, label in enumerate(labels)}
        unknown = [n for n in names if n not in index]
        if unknown:
            raise ValueError(f"unknown head {unknown[0]!r} (heads: {', '.join(labels)})")
        return flat[[index[n] for n in names]], list(names)


def attention_patterns(
    model: HookedTransformer, task: Task, example: int = 0
) -> AttentionPatterns:
    """One forward pass on ``task.tokens[example]``, caching only the attention patterns."""
    if not 0 <= example < len(task):
        raise ValueError(f"example = {example}: must be in 0..{len(task) - 1}")
    tokens = task.tokens[example]
    names = {f"blocks.{l}.attn.hook_pattern" for l in range(model.cfg.n_layers)}
    with torch.no_grad():
        _, cache = model.run_with_cache(
            tokens[None].to(model.cfg.device), names_filter=lambda n: n in names
        )
    pattern = torch.stack(
        [cache[f"blocks.{l}.attn.hook_pattern"][0] for l in range(model.cfg.n_layers)]
    )  # [layer, head, dest, src]
    return AttentionPatterns(
        pattern=pattern.float().cpu(),
        tokens=tuple(task.token_label(int(t)) for t in tokens),
        positions=tuple(task.position_labels),
        example=example,
    )
