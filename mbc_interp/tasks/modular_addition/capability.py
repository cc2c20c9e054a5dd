"""The capability an analysis of modular arithmetic needs: the modulus and each row's operands.

A task with :class:`HasModularInputs` states that its rows are ``a b = c`` over ``Z_p`` with
the number ``x`` as token ``x`` (so ``W_E[:p]`` embeds the numbers and the first ``p`` logits
score the answers). The Fourier analysis (:mod:`mbc_interp.analysis.fourier`) checks for it with
:func:`mbc_interp.tasks.protocol.require`. Torch-free at import (annotations only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from jaxtyping import Int
    from torch import Tensor

__all__ = ["HasModularInputs"]


@runtime_checkable
class HasModularInputs(Protocol):
    """Rows are pairs of numbers mod ``modulus``, the number ``x`` being token ``x``."""

    @property
    def modulus(self) -> int: ...

    def operands(self, rows: Int[Tensor, " n"]) -> tuple[Int[Tensor, " n"], Int[Tensor, " n"]]:
        """The two operands ``(a, b)`` of each row."""
        ...
