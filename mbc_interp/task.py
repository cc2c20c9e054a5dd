"""The wind tunnel of "Marginals Before Conditionals": K-fold ambiguity resolved by a selector.

D base strings B; each has K distinct target strings A_1..A_K; selector token z_k picks A_k.
So H(A|B) = log K while H(A|B, z) = 0: a model that ignores z sits at exactly log K nats per
example, one that reads z reaches 0.

Token layout (``selector_first=False``, the default)::

    position:  0 .. L_B-1 | L_B | L_B+1 | L_B+2 .. L_B+1+L_A
    token:     B_1 .. B_LB |  z  |  SEP  | A_1 .. A_LA

With ``selector_first=True`` the selector moves to the front: ``z B_1..B_LB SEP A..``.
The loss is carried by the L_A target tokens only, i.e. by the predictions made at positions
SEP .. L_B+L_A (``loss_mask``). It is summed over those positions and averaged over examples,
so it is measured in nats per example.

``direction="forward"`` is the control: the same (B, A) pairs read A -> B, which is a function
(every A is distinct, see below), so there is no selector and nothing to be ambiguous about::

    position:  0 .. L_A-1  | L_A | L_A+1 .. L_A+L_B
    token:     A_1 .. A_LA | SEP | B_1 .. B_LB

The loss is then carried by the L_B base tokens (predictions at SEP .. L_A+L_B-1): H(B|A) = 0,
so a model can descend straight to 0 with no plateau at log K.

Vocabulary (one id range per role, so token labels are unambiguous)::

    0: SEP | 1..K: z_1..z_K | base symbols b0.. | target symbols a0..

Constructions of the targets (``construction``):

- ``"shared_pool"`` (default): the first target token of every B is one of the same K pool
  symbols; a per-B random permutation decides which selector picks which. Further target tokens
  are a B-specific stem shared by that B's K targets. Learning the marginal means memorising
  B -> stem and the pool; only z can tell the pool symbols apart. This gives a clean plateau.
- ``"distinct_random"``: each B's K targets start with K distinct symbols drawn at random from the
  target alphabet (further tokens random too). The loss rests near log(alphabet) and slides
  through log K without a plateau: what makes a plateau is itself worth exploring.

In both, the K targets of one B differ at their first token, which makes the exact marginal
predictor's loss log K by construction (see :meth:`WindTunnelTask.marginal_loss`). Whenever
``D <= n_target_symbols ** (target_len - 1)`` every A string is distinct (the draws are in
:mod:`mbc_interp.construction`), which the forward direction requires.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from functools import cached_property
from typing import Literal

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from .construction import build_targets, distinct_rows, repeated_row, targets_distinct

Construction = Literal["shared_pool", "distinct_random"]
CONSTRUCTIONS: tuple[str, ...] = ("shared_pool", "distinct_random")
Direction = Literal["backward", "forward"]
DIRECTIONS: tuple[str, ...] = ("backward", "forward")

SEP = 0
NO_SELECTOR = (
    "task.direction = 'forward': the forward direction has no selector; analysis of selector "
    "routing applies to backward runs"
)


class TaskConfigError(ValueError):
    """A task parameter is out of range; the message names the field and the limit."""


@dataclass(frozen=True)
class TaskConfig:
    """The wind-tunnel dataset: fully determined by these fields (and numpy's PCG64)."""

    D: int = 1000
    """Number of distinct base strings B."""
    K: int = 4
    """Targets per base string; also the number of selector tokens."""
    base_len: int = 4
    """L_B, the length of a base string."""
    target_len: int = 1
    """L_A, the length of a target string."""
    n_base_symbols: int = 16
    """Size of the base alphabet."""
    n_target_symbols: int = 16
    """Size of the target alphabet."""
    construction: Construction = "shared_pool"
    selector_first: bool = False
    """Place z before B instead of between B and SEP."""
    seed: int = 0
    """Data seed (independent of the training seed)."""
    direction: Direction = "backward"
    """``"backward"``: B z SEP A, loss on A (the ambiguous task). ``"forward"``: A SEP B, loss on
    B, no selector (the deterministic control; needs every A distinct)."""

    def __post_init__(self) -> None:
        def need(cond: bool, field: str, msg: str) -> None:
            if not cond:
                raise TaskConfigError(f"task.{field} = {getattr(self, field)!r}: {msg}")

        for name in ("D", "K", "base_len", "target_len", "n_base_symbols", "n_target_symbols"):
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool), name, "must be an int")
            need(value >= 1, name, "must be >= 1")
        need(isinstance(self.seed, int) and self.seed >= 0, "seed", "must be an int >= 0")
        need(self.construction in CONSTRUCTIONS, "construction", f"must be one of {CONSTRUCTIONS}")
        need(
            self.n_target_symbols >= self.K,
            "K",
            f"must be <= n_target_symbols = {self.n_target_symbols} (the K targets of one B "
            "need distinct first tokens)",
        )
        need(
            self.n_base_strings >= self.D,
            "D",
            f"must be <= n_base_symbols ** base_len = {self.n_base_strings} "
            "(the number of distinct base strings)",
        )
        need(self.direction in DIRECTIONS, "direction", f"must be one of {DIRECTIONS}")
        if self.direction == "forward":
            need(not self.selector_first, "selector_first", "the forward direction has no selector")
            args = (self.construction, self.D, self.K, self.target_len, self.n_target_symbols)
            need(
                targets_distinct(*args) is not False,
                "direction",
                f"forward needs every A to name one B, but the {self.construction} targets of "
                f"D = {self.D} B's cannot all be distinct (n_target_symbols ** (target_len - 1) "
                f"= {self.n_target_symbols ** (self.target_len - 1)}): use target_len >= 2 with "
                "D <= n_target_symbols ** (target_len - 1)",
            )

    @property
    def n_base_strings(self) -> int:
        """How many distinct base strings the alphabet allows."""
        return self.n_base_symbols**self.base_len

    @property
    def n_examples(self) -> int:
        return self.D * self.K

    @property
    def has_selector(self) -> bool:
        """Whether the sequence holds a selector token (backward) or not (forward)."""
        return self.direction == "backward"

    @property
    def log_k(self) -> float:
        """log K nats: the backward plateau height H(A|B). Forward it is still log K, as the
        reference line shared by both directions (and the scale of ``solved_frac``), although
        there H(B|A) = 0 and nothing sits at log K."""
        return math.log(self.K)

    @property
    def seq_len(self) -> int:
        """Tokens per example: B, z, SEP and A (forward: A, SEP and B)."""
        return self.base_len + self.target_len + (2 if self.has_selector else 1)

    @property
    def d_vocab(self) -> int:
        return 1 + self.K + self.n_base_symbols + self.n_target_symbols

    # id ranges of each role
    @property
    def selector_offset(self) -> int:
        return 1

    @property
    def base_offset(self) -> int:
        return 1 + self.K

    @property
    def target_offset(self) -> int:
        return 1 + self.K + self.n_base_symbols

    @property
    def selector_pos(self) -> int:
        """Position of z; raises :class:`TaskConfigError` for the forward direction."""
        if not self.has_selector:
            raise TaskConfigError(NO_SELECTOR)
        return 0 if self.selector_first else self.base_len

    @property
    def base_positions(self) -> tuple[int, ...]:
        """Positions holding the B tokens (after SEP in the forward direction)."""
        if not self.has_selector:
            return tuple(range(self.sep_pos + 1, self.seq_len))
        start = 1 if self.selector_first else 0
        return tuple(range(start, start + self.base_len))

    @property
    def sep_pos(self) -> int:
        return self.base_len + 1 if self.has_selector else self.target_len

    @property
    def target_positions(self) -> tuple[int, ...]:
        """Positions holding the A tokens (after SEP backward, before it forward)."""
        if not self.has_selector:
            return tuple(range(self.target_len))
        return tuple(range(self.sep_pos + 1, self.seq_len))

    @property
    def prediction_positions(self) -> tuple[int, ...]:
        """Positions whose next token carries the loss, SEP .. last-but-one: the predictions of
        the A tokens (backward) or of the B tokens (forward)."""
        return tuple(range(self.sep_pos, self.seq_len - 1))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PatchingPairs:
    """Clean/corrupt prompts that differ only in the selector (same B).

    Prompts end at SEP, where the first target token is predicted (``answer_pos``)."""

    clean_tokens: Int[Tensor, "n prompt"]
    corrupt_tokens: Int[Tensor, "n prompt"]
    clean_answer: Int[Tensor, " n"]
    """First target token of the clean example."""
    corrupt_answer: Int[Tensor, " n"]
    """First target token the corrupt selector picks for the same B."""
    example_index: Int[Tensor, " n"]
    """Row of the clean example in ``task.tokens``."""
    answer_pos: int

    def __len__(self) -> int:
        return int(self.clean_tokens.shape[0])


class WindTunnelTask:
    """The full example set of a :class:`TaskConfig`, built deterministically from its seed.

    Row ``b * K + k`` holds base string ``b`` with its target ``A_{k+1}`` (picked by ``z_{k+1}``
    backward); both directions hold the same pairs in the same rows.
    """

    def __init__(self, config: TaskConfig):
        self.config = config
        c = config
        rng = np.random.default_rng(c.seed)
        self._bases = distinct_rows(rng, c.D, c.base_len, c.n_base_symbols)
        self._targets = build_targets(
            rng, c.construction, c.D, c.K, c.target_len, c.n_target_symbols
        )
        if not c.has_selector:
            self._check_targets_distinct()

    def _check_targets_distinct(self) -> None:
        c = self.config
        repeat = repeated_row(self._targets.reshape(c.n_examples, c.target_len))
        if repeat is not None:
            i, j = repeat
            raise TaskConfigError(
                f"task.direction = 'forward': forward needs every A to name one B, but with "
                f"seed = {c.seed} the A of example {i} (B #{i // c.K}) repeats as the A of example "
                f"{j} (B #{j // c.K}): use target_len >= 2 with D <= n_target_symbols ** "
                f"(target_len - 1) = {c.n_target_symbols ** (c.target_len - 1)} "
                "(guaranteed), or another seed"
            )

    # -- the data ------------------------------------------------------------------------------
    @cached_property
    def tokens(self) -> Int[Tensor, "n seq"]:
        """Every example's full token sequence (the training and the evaluation set)."""
        c = self.config
        base = np.repeat(self._bases, c.K, axis=0) + c.base_offset
        z = np.tile(np.arange(c.K), c.D)[:, None] + c.selector_offset
        sep = np.full((c.n_examples, 1), SEP)
        target = self._targets.reshape(c.n_examples, c.target_len) + c.target_offset
        if not c.has_selector:
            parts = [target, sep, base]
        else:
            parts = [z, base, sep, target] if c.selector_first else [base, z, sep, target]
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.int64))

    @cached_property
    def loss_mask(self) -> Bool[Tensor, "n seq"]:
        """True at positions whose next token carries the loss (A backward, B forward)."""
        mask = torch.zeros(self.config.n_examples, self.config.seq_len, dtype=torch.bool)
        mask[:, list(self.config.prediction_positions)] = True
        return mask

    @property
    def selector_pos(self) -> int:
        """Position of z; raises :class:`TaskConfigError` for the forward direction."""
        return self.config.selector_pos

    @property
    def has_selector(self) -> bool:
        return self.config.has_selector

    @property
    def log_k(self) -> float:
        return self.config.log_k

    @property
    def base_index(self) -> Int[Tensor, " n"]:
        """Which base string each example uses."""
        return torch.arange(self.config.n_examples) // self.config.K

    @property
    def selector_index(self) -> Int[Tensor, " n"]:
        """Which selector (0..K-1) picks each example's A (forward: which of its B's K targets
        the A is, though no selector is shown)."""
        return torch.arange(self.config.n_examples) % self.config.K

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the token table: identical configs give identical data on every machine."""
        return hashlib.sha256(self.tokens.numpy().tobytes()).hexdigest()

    def __len__(self) -> int:
        return self.config.n_examples

    def __repr__(self) -> str:
        c = self.config
        return (
            f"WindTunnelTask(D={c.D}, K={c.K}, L_B={c.base_len}, L_A={c.target_len}, "
            f"construction={c.construction!r}, direction={c.direction!r}, log_k={c.log_k:.4f})"
        )

    # -- labels --------------------------------------------------------------------------------
    def token_label(self, token: int) -> str:
        """Readable name of a token id: ``SEP``, ``z1``..``zK``, ``b0``.., ``a0``.."""
        c = self.config
        if token == SEP:
            return "SEP"
        if token < c.base_offset:
            return f"z{token - c.selector_offset + 1}"
        if token < c.target_offset:
            return f"b{token - c.base_offset}"
        if token < c.d_vocab:
            return f"a{token - c.target_offset}"
        raise ValueError(f"token id {token} is outside the vocabulary (d_vocab={c.d_vocab})")

    def labels(self, tokens: Int[Tensor, " seq"]) -> list[str]:
        return [self.token_label(int(t)) for t in tokens]

    @property
    def position_labels(self) -> list[str]:
        """Role of every position: ``B1``.., ``z``, ``SEP``, ``A1``.. (forward: ``A1``.., ``SEP``,
        ``B1``..)."""
        c = self.config
        names = [""] * c.seq_len
        for i, p in enumerate(c.base_positions):
            names[p] = f"B{i + 1}"
        if c.has_selector:
            names[c.selector_pos] = "z"
        names[c.sep_pos] = "SEP"
        for i, p in enumerate(c.target_positions):
            names[p] = f"A{i + 1}"
        return names

    # -- reference predictors ------------------------------------------------------------------
    def marginal_log_probs(self) -> Float[Tensor, "n seq d_vocab"]:
        """Log-probabilities of the exact predictor of the next token from every input token but
        the selector: backward the marginal P(next | B, target prefix), forward P(next | A,
        base prefix), which is deterministic (A names one B).

        Shape [n, seq, d_vocab]; only rows at ``loss_mask`` positions are meaningful."""
        c = self.config
        tokens = self.tokens.numpy()
        out = np.full((c.n_examples, c.seq_len, c.d_vocab), -np.inf)
        skip = c.selector_pos if c.has_selector else -1
        for p in c.prediction_positions:
            # context without z: everything up to position p (B, SEP and the target prefix)
            ctx_cols = [q for q in range(p + 1) if q != skip]
            ctx = tokens[:, ctx_cols]
            nxt = tokens[:, p + 1]
            _, group = np.unique(ctx, axis=0, return_inverse=True)
            group = group.reshape(-1)
            counts = np.zeros((group.max() + 1, c.d_vocab))
            np.add.at(counts, (group, nxt), 1.0)
            probs = counts / counts.sum(axis=1, keepdims=True)
            with np.errstate(divide="ignore"):
                out[:, p] = np.log(probs[group])
        return torch.from_numpy(out)

    def marginal_loss(self) -> float:
        """Loss (nats/example) of the exact predictor that ignores the selector: log K by
        construction backward (the plateau), 0 forward (H(B|A) = 0: no plateau to sit on)."""
        logp = self.marginal_log_probs()
        return float(sequence_nll(logp, self.tokens, self.loss_mask).mean())

    # -- analysis inputs -----------------------------------------------------------------------
    def patching_pairs(self, n: int | None = None, seed: int = 0) -> PatchingPairs:
        """Clean/corrupt prompt pairs: the same B, a different selector (needs K >= 2).

        The corrupt selector is drawn uniformly from the other K-1; ``n`` examples are drawn
        without replacement (all examples when ``None``). Backward runs only."""
        c = self.config
        if not c.has_selector:
            raise TaskConfigError(NO_SELECTOR)
        if c.K < 2:
            raise TaskConfigError(f"task.K = {c.K}: patching pairs need K >= 2")
        if n is not None and not 1 <= n <= c.n_examples:
            raise ValueError(f"n = {n}: must be in 1..{c.n_examples} (the number of examples)")
        rng = np.random.default_rng([c.seed, seed, 1])
        rows = (
            np.arange(c.n_examples)
            if n is None
            else np.sort(rng.choice(c.n_examples, size=n, replace=False))
        )
        shift = rng.integers(1, c.K, size=len(rows))
        other = (rows // c.K) * c.K + (rows % c.K + shift) % c.K
        rows_t, other_t = torch.from_numpy(rows), torch.from_numpy(other)
        prompt = slice(0, c.sep_pos + 1)
        first = c.sep_pos + 1
        return PatchingPairs(
            clean_tokens=self.tokens[rows_t, prompt],
            corrupt_tokens=self.tokens[other_t, prompt],
            clean_answer=self.tokens[rows_t, first],
            corrupt_answer=self.tokens[other_t, first],
            example_index=rows_t,
            answer_pos=c.sep_pos,
        )


def sequence_nll(
    log_probs: Float[Tensor, "n pos d_vocab"],
    tokens: Int[Tensor, "n seq"],
    loss_mask: Bool[Tensor, "n seq"],
) -> Float[Tensor, " n"]:
    """Per-example loss in nats, summed over the target positions.

    ``log_probs[:, p]`` predicts ``tokens[:, p + 1]``; it may cover ``seq`` or ``seq - 1``
    positions."""
    n_pred = tokens.shape[1] - 1
    lp = log_probs[:, :n_pred]
    picked = lp.gather(-1, tokens[:, 1:, None]).squeeze(-1)
    mask = loss_mask[:, :n_pred]
    return torch.where(mask, -picked, torch.zeros((), dtype=picked.dtype)).sum(-1)
