"""What defines a wind-tunnel dataset: :class:`TaskConfig`, its size units and token layout.

Two constructions share one layout machinery (:class:`Layout`, a list of segments):

- the proxy tasks (``"shared_pool"``, ``"distinct_random"``): one token per role id range
  (``SEP | z_1..z_K | base symbols | target symbols``), a one-token selector, layout
  ``B z SEP A`` (``selector_first``: ``z B SEP A``);
- the paper's task (``"random_strings"``): B (6), z (2) and A (4) are random strings over one
  alphabet of 36 characters (``a-z0-9``) plus BOS, SEP, EOS; layout ``BOS B SEP z SEP A EOS``;
  the loss is on A and EOS. Variants: selectors drawn per B (``selectors = "per_base"``) and the
  K targets of each B with distinct first characters (``distinct_first``).

``selector_gap`` puts that many filler tokens (PAD) between z and the answer position (the SEP
that predicts the first target token), so attention from the answer position to z is no longer
attention to the previous position. ``direction = "forward"`` reads the same pairs A -> B.

Size: ``D`` is the number of distinct base strings, ``n_examples`` the total number of
(B, z, A) examples, ``n_examples = K x D`` (the paper's "D" is this total). Give either; with
neither, D = 1000. :attr:`TaskConfig.n_bases` and :attr:`TaskConfig.n_total` are the resolved
values.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from typing import ClassVar, Literal

from mbc_interp.core.checks import check_field, is_int

Construction = Literal["shared_pool", "distinct_random", "random_strings"]
CONSTRUCTIONS: tuple[str, ...] = ("shared_pool", "distinct_random", "random_strings")
Direction = Literal["backward", "forward"]
DIRECTIONS: tuple[str, ...] = ("backward", "forward")
Selectors = Literal["shared", "per_base"]
SELECTORS: tuple[str, ...] = ("shared", "per_base")
DEFAULT_D = 1000
CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
"""The paper's alphabet, shared by B, z and A."""
PAPER_LENGTHS = {"base_len": 6, "selector_len": 2, "target_len": 4}


class TaskConfigError(ValueError):
    """A task parameter is out of range; the message names the field and the limit."""


@dataclass(frozen=True)
class Layout:
    """Where each role sits in a sequence: segments ``(role, length)`` in order."""

    segments: tuple[tuple[str, int], ...]

    @cached_property
    def roles(self) -> tuple[str, ...]:
        """Role of every position: bos, base, sep, selector, pad, target, eos."""
        return tuple(r for r, n in self.segments for _ in range(n))

    @property
    def seq_len(self) -> int:
        return len(self.roles)

    def positions(self, role: str) -> tuple[int, ...]:
        return tuple(i for i, r in enumerate(self.roles) if r == role)

    @property
    def answer_pos(self) -> int:
        """The last SEP: the position that predicts the first token after it."""
        return self.positions("sep")[-1]


@dataclass(frozen=True)
class TaskConfig:
    """The wind-tunnel dataset: fully determined by these fields (and numpy's PCG64)."""

    name: ClassVar[str] = "wind_tunnel"

    D: int | None = None
    """Number of distinct base strings B (default 1000 unless ``n_examples`` is given)."""
    K: int = 4
    """Targets per base string; also the number of selectors per base string."""
    n_examples: int | None = None
    """Total number of (B, z, A) examples, ``K x D`` (the paper's D); give it or ``D``."""
    base_len: int = 4
    """L_B, the length of a base string (``random_strings``: 6 by the paper)."""
    target_len: int = 1
    """L_A, the length of a target string (``random_strings``: 4)."""
    n_base_symbols: int = 16
    """Size of the base alphabet (proxy tasks; ``random_strings`` uses 36 characters)."""
    n_target_symbols: int = 16
    """Size of the target alphabet (proxy tasks)."""
    construction: Construction = "shared_pool"
    """How targets are made: ``shared_pool`` (the proxy with a clean plateau at log K),
    ``distinct_random`` (K distinct random first tokens per B) or ``random_strings`` (the
    paper's task: characters a-z0-9)."""
    selector_first: bool = False
    """Place z before B instead of between B and SEP (proxy tasks)."""
    seed: int = 0
    """Data seed (independent of the training seed)."""
    direction: Direction = "backward"
    """``"backward"``: B z SEP A, loss on A (the ambiguous task). ``"forward"``: A SEP B, loss on
    B, no selector (the deterministic control; needs every A distinct)."""
    selector_len: int = 1
    """Characters per selector string (``random_strings`` only; the proxy's z is one token)."""
    selector_gap: int = 0
    """Filler tokens between z and the answer position (0: z right before it, proxy default)."""
    selectors: Selectors = "shared"
    """``random_strings``: one set of K selector strings for every B, or K drawn per B."""
    distinct_first: bool = False
    """``random_strings``: the K targets of each B start with K distinct characters (instead
    of every A string being distinct across the dataset)."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="task", error=TaskConfigError)

        for name in ("K", "base_len", "target_len", "n_base_symbols", "n_target_symbols",
                     "selector_len"):  # fmt: skip
            need(is_int(getattr(self, name)) and getattr(self, name) >= 1, name, "an int >= 1")
        for name in ("D", "n_examples"):
            v = getattr(self, name)
            need(v is None or (is_int(v) and v >= 1), name, "must be an int >= 1 or null")
        need(is_int(self.selector_gap) and self.selector_gap >= 0, "selector_gap", "an int >= 0")
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")
        need(self.construction in CONSTRUCTIONS, "construction", f"must be one of {CONSTRUCTIONS}")
        need(self.direction in DIRECTIONS, "direction", f"must be one of {DIRECTIONS}")
        need(self.selectors in SELECTORS, "selectors", f"must be one of {SELECTORS}")
        if self.n_examples is not None:
            need(
                self.n_examples % self.K == 0,
                "n_examples",
                f"must be divisible by K = {self.K} (n_examples = K x number of base strings)",
            )
            need(
                self.D is None or self.n_examples == self.D * self.K,
                "D",
                f"disagrees with n_examples = {self.n_examples} (n_examples = K x D; give one)",
            )
        if self.strings:
            self._check_strings(need)
        else:
            self._check_proxy(need)
        need(
            self.n_bases <= self.n_base_strings,
            "D" if self.n_examples is None else "n_examples",
            f"needs {self.n_bases} distinct base strings but the alphabet allows "
            f"{self.n_base_strings} (alphabet ** base_len)",
        )

    def _check_proxy(self, need) -> None:
        from mbc_interp.tasks.wind_tunnel.construction import targets_distinct

        need(self.selector_len == 1, "selector_len", "the proxy tasks use a one-token selector")
        need(self.selectors == "shared", "selectors", "'per_base' needs random_strings")
        need(not self.distinct_first, "distinct_first", "only for random_strings")
        need(
            self.n_target_symbols >= self.K,
            "K",
            f"must be <= n_target_symbols = {self.n_target_symbols} (the K targets of one B "
            "need distinct first tokens)",
        )
        need(
            not (self.selector_first and self.selector_gap),
            "selector_gap",
            "with selector_first, z is already far from the answer position",
        )
        if self.direction == "forward":
            need(not self.selector_first, "selector_first", "the forward direction has no selector")
            args = (self.construction, self.n_bases, self.K, self.target_len, self.n_target_symbols)
            need(
                targets_distinct(*args) is not False,
                "direction",
                f"forward needs every A to name one B, but the {self.construction} targets of "
                f"D = {self.n_bases} B's cannot all be distinct (n_target_symbols ** "
                f"(target_len - 1) = {self.n_target_symbols ** (self.target_len - 1)}): use "
                "target_len >= 2 with D <= n_target_symbols ** (target_len - 1)",
            )

    def _check_strings(self, need) -> None:
        a = len(CHARS)
        need(not self.selector_first, "selector_first", "random_strings uses the paper's layout")
        need(
            a**self.selector_len >= self.K,
            "K",
            f"must be <= 36 ** selector_len = {a**self.selector_len} (distinct selector strings)",
        )
        if self.distinct_first:
            need(a >= self.K, "K", f"must be <= {a} with distinct_first (distinct first chars)")
            need(self.direction == "backward", "direction", "forward needs globally distinct A's")
        else:
            need(
                self.n_total <= a**self.target_len,
                "n_examples",
                f"needs {self.n_total} distinct A strings but 36 ** target_len = "
                f"{a**self.target_len}",
            )

    # -- size -----------------------------------------------------------------------------------
    @property
    def strings(self) -> bool:
        """The paper's construction (one character alphabet, BOS/SEP/EOS)."""
        return self.construction == "random_strings"

    @property
    def n_bases(self) -> int:
        """Number of distinct base strings (``D``, or ``n_examples / K``)."""
        if self.n_examples is not None:
            return self.n_examples // self.K
        return DEFAULT_D if self.D is None else self.D

    @property
    def n_total(self) -> int:
        """Total number of examples, ``K x n_bases`` (the paper's D)."""
        return self.n_bases * self.K

    @property
    def n_train(self) -> int:
        """Every example is trained on: the wind tunnel has no held-out split."""
        return self.n_total

    @property
    def n_base_strings(self) -> int:
        """How many distinct base strings the alphabet allows."""
        return (len(CHARS) if self.strings else self.n_base_symbols) ** self.base_len

    @property
    def n_target_chars(self) -> int:
        """Size of the alphabet each target character is drawn from."""
        return len(CHARS) if self.strings else self.n_target_symbols

    @property
    def format_loss_tok(self) -> float | None:
        """Per-token loss over the target positions (A and EOS) of a model that knows the layout
        (where EOS goes) and nothing about which characters: ``target_len log 36 /
        (target_len + 1)``; ``None`` for the proxy constructions (no EOS)."""
        if not self.strings:
            return None
        return self.target_len * math.log(len(CHARS)) / (self.target_len + 1)

    @property
    def has_selector(self) -> bool:
        return self.direction == "backward"

    @property
    def log_k(self) -> float:
        """log K nats: the backward plateau height H(A|B) (forward: the shared reference line)."""
        return math.log(self.K)

    # -- layout and vocabulary ------------------------------------------------------------------
    @property
    def layout(self) -> Layout:
        sel_len = self.selector_len if self.strings else 1
        base, target = ("base", self.base_len), ("target", self.target_len)
        if self.strings:
            if not self.has_selector:
                segs = [("bos", 1), target, ("sep", 1), base, ("eos", 1)]
            else:
                segs = [("bos", 1), base, ("sep", 1), ("selector", sel_len),
                        ("pad", self.selector_gap), ("sep", 1), target, ("eos", 1)]  # fmt: skip
        elif not self.has_selector:
            segs = [target, ("sep", 1), base]
        elif self.selector_first:
            segs = [("selector", 1), base, ("sep", 1), target]
        else:
            segs = [base, ("selector", 1), ("pad", self.selector_gap), ("sep", 1), target]
        return Layout(tuple((r, n) for r, n in segs if n > 0))

    @property
    def seq_len(self) -> int:
        return self.layout.seq_len

    @property
    def d_vocab(self) -> int:
        return len(self.vocab)

    @property
    def vocab(self) -> tuple[str, ...]:
        """Token labels by id. Proxy: ``SEP z1..zK b0.. a0.. [PAD]``; strings: ``a..9 BOS SEP
        EOS [PAD]``. PAD exists only with a selector gap, so older runs keep their ids."""
        pad = ("PAD",) if self.selector_gap else ()
        if self.strings:
            return (*CHARS, "BOS", "SEP", "EOS", *pad)
        return (
            "SEP",
            *(f"z{k + 1}" for k in range(self.K)),
            *(f"b{i}" for i in range(self.n_base_symbols)),
            *(f"a{i}" for i in range(self.n_target_symbols)),
            *pad,
        )

    def run_name(self, training: str) -> str:
        """``D<bases>`` (or ``N<examples>`` when sized by examples), ``K<K>``, the training
        part, and ``_forward`` for the forward-direction control."""
        size = f"D{self.n_bases}" if self.n_examples is None else f"N{self.n_total}"
        return f"{size}_K{self.K}_{training}" + ("_forward" if self.direction == "forward" else "")

    def describe(self) -> str:
        """One line naming the dataset: construction, size, K, layout, direction and log K (the
        task's ``repr``, available without building the data)."""
        return (
            f"construction={self.construction!r}, bases={self.n_bases}, K={self.K}, "
            f"examples={self.n_total}, layout={' '.join(r for r, _ in self.layout.segments)!r}, "
            f"direction={self.direction!r}, log_k={self.log_k:.4f}"
        )

    def to_dict(self) -> dict:
        return {"name": self.name, **asdict(self)}
