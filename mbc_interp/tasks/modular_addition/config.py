"""What defines a modular-addition dataset: the modulus, the training fraction, the split seed.

Rows are every pair ``(a, b)`` of ``0..p-1`` as the sequence ``a b = c`` with ``c = (a + b) mod
p``: the numbers are tokens ``0..p-1`` and ``=`` is token ``p`` (``d_vocab = p + 1``). A seeded
``train_frac`` of the ``p^2`` rows is trained on, the rest held out (Nanda et al. 2023: p = 113,
30%). No torch here: configs load without it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any, ClassVar

from mbc_interp.core.checks import check_field, is_int
from mbc_interp.core.strict import build_dataclass

SEQ_LEN = 4
"""``a, b, =, c``."""


class ModularAdditionConfigError(ValueError):
    """A modular-addition parameter is out of range; the message names the field and value."""


def is_prime(n: int) -> bool:
    """Trial division (moduli are a few hundred at most)."""
    return n >= 2 and all(n % d for d in range(2, math.isqrt(n) + 1))


@dataclass(frozen=True)
class ModularAdditionConfig:
    """The dataset ``a + b mod p``, fully determined by these fields (and numpy's PCG64)."""

    name: ClassVar[str] = "modular_addition"

    p: int = 113
    """The modulus, a prime >= 3 (prime: every non-zero frequency of Z_p is a generator, the
    setting in which Nanda et al.'s Fourier algorithm is stated)."""
    train_frac: float = 0.3
    """Share of the ``p^2`` pairs trained on, in (0, 1); ``int(train_frac * p^2)`` rows."""
    seed: int = 0
    """Seed of the train/test split (independent of the training seed)."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="task", error=ModularAdditionConfigError)

        need(is_int(self.p) and self.p >= 3 and is_prime(self.p), "p", "must be a prime >= 3")
        frac = self.train_frac
        need(
            isinstance(frac, int | float) and not isinstance(frac, bool) and 0 < frac < 1,
            "train_frac",
            "must be a number in (0, 1)",
        )
        need(
            1 <= self.n_train < self.n_total,
            "train_frac",
            f"leaves {self.n_train} of the p^2 = {self.n_total} pairs to train on: both splits "
            "need at least one pair",
        )
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")

    @property
    def n_total(self) -> int:
        """Every pair: ``p^2``."""
        return self.p * self.p

    @property
    def n_train(self) -> int:
        """Rows trained on: ``int(train_frac * p^2)``."""
        return int(self.train_frac * self.n_total)

    @property
    def n_test(self) -> int:
        return self.n_total - self.n_train

    @property
    def log_p(self) -> float:
        """log p nats: the loss of the uniform guess over the p answers (the chance level)."""
        return math.log(self.p)

    @property
    def d_vocab(self) -> int:
        """The numbers ``0..p-1`` and ``=``."""
        return self.p + 1

    @property
    def seq_len(self) -> int:
        return SEQ_LEN

    def short_name(self) -> str:
        """The data in a run name: ``p59_f0.4`` (with ``_d<seed>`` for another split seed)."""
        return f"p{self.p}_f{self.train_frac:g}" + (f"_d{self.seed}" if self.seed else "")

    def run_name(self, training: str) -> str:
        return f"{self.short_name()}_{training}"

    def describe(self) -> str:
        """One line naming the dataset (available without building it)."""
        return (
            f"a+b mod p={self.p}, train={self.n_train}/{self.n_total} "
            f"(train_frac={self.train_frac:g}), split seed={self.seed}, log_p={self.log_p:.4f}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModularAdditionConfig:
        """From :meth:`to_dict`'s record (``name``, when present, must be this task's),
        strictly (:func:`~mbc_interp.core.strict.build_dataclass`): an unknown key or a value
        of the wrong type is an error naming it."""
        data = dict(data)
        name = data.pop("name", cls.name)
        if name != cls.name:
            raise ModularAdditionConfigError(f"task.name = {name!r}: expected {cls.name!r}")
        return build_dataclass(cls, data, "modular_addition record", prefix="task.",
                               error=ModularAdditionConfigError)  # fmt: skip
