"""Clean/corrupt prompt pairs: what activation and attribution patching run on.

A task that provides them (:class:`~mbc_interp.tasks.protocol.HasPatchingPairs`) builds them from
its own rows; the patching analyses read only this record, whatever the task.
"""

from __future__ import annotations

from dataclasses import dataclass

from jaxtyping import Int
from torch import Tensor

__all__ = ["PatchingPairs"]


@dataclass(frozen=True)
class PatchingPairs:
    """Clean/corrupt prompts that differ in one input (the wind tunnel's selector, same B),
    ending at the answer position, where the first target token is predicted (``answer_pos``)."""

    clean_tokens: Int[Tensor, "n prompt"]
    corrupt_tokens: Int[Tensor, "n prompt"]
    clean_answer: Int[Tensor, " n"]
    """First target token of the clean example."""
    corrupt_answer: Int[Tensor, " n"]
    """First target token the corrupt input picks (always a different one)."""
    example_index: Int[Tensor, " n"]
    """Row of the clean example in ``task.tokens``."""
    corrupt_index: Int[Tensor, " n"]
    """Row whose input the corrupt prompt carries."""
    answer_pos: int

    def __len__(self) -> int:
        return int(self.clean_tokens.shape[0])

    def subset(self, rows: Int[Tensor, " m"]) -> PatchingPairs:
        return PatchingPairs(
            self.clean_tokens[rows], self.corrupt_tokens[rows], self.clean_answer[rows],
            self.corrupt_answer[rows], self.example_index[rows], self.corrupt_index[rows],
            self.answer_pos,
        )  # fmt: skip
