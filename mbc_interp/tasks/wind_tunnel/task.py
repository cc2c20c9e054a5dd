"""The wind tunnel of "Marginals Before Conditionals": K-fold ambiguity resolved by a selector.

Each base string B has K distinct target strings A_1..A_K and selector z_k picks A_k, so
H(A|B) = log K while H(A|B, z) = 0: a model that ignores z sits at log K nats per example, one
that reads z reaches 0. The constructions and the layout are in
:mod:`mbc_interp.tasks.wind_tunnel.config`; this module is the **task protocol** every analysis goes
through, whatever the construction:

- ``tokens`` / ``loss_mask`` (the data and where the loss is), ``answer_pos`` (the position
  predicting the first target token), ``selector_positions``, ``base_positions``,
  ``target_positions``, ``prediction_positions``;
- ``group_rows`` (the K examples sharing each example's B), ``candidates`` (their target
  sequences), ``first_token_distinct`` (whether the candidates differ at the first token);
- ``derangement`` (z replaced by another selector of the same B) and ``patching_pairs``;
- ``token_label`` / ``labels`` / ``position_labels``; the exact marginal predictor.

Rows: row ``b * K + k`` holds base string ``b`` with its target ``A_{k+1}`` (picked by the
``k``-th selector backward); both directions hold the same pairs in the same rows.
"""

from __future__ import annotations

import functools
import hashlib
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from mbc_interp.tasks.pairs import PatchingPairs
from mbc_interp.tasks.protocol import NotProvided, ProgressSignal, Transition
from mbc_interp.tasks.wind_tunnel.config import (
    CHARS,
    CONSTRUCTIONS,
    DIRECTIONS,
    Layout,
    TaskConfig,
    TaskConfigError,
)
from mbc_interp.tasks.wind_tunnel.construction import (
    build_random_strings,
    build_targets,
    distinct_rows,
    repeated_row,
)
from mbc_interp.tasks.wind_tunnel.corruption import (
    derangement_table,
    patching_pairs,
    with_selector_of,
)
from mbc_interp.tasks.wind_tunnel.reference import marginal_log_probs, sequence_nll

__all__ = [
    "CONSTRUCTIONS",
    "DIRECTIONS",
    "NO_SELECTOR",
    "NoSelectorError",
    "PatchingPairs",
    "TaskConfig",
    "TaskConfigError",
    "WindTunnelTask",
    "sequence_nll",
]

NO_SELECTOR = (
    "task.direction = 'forward': the forward direction has no selector; analysis of selector "
    "routing applies to backward runs"
)


class NoSelectorError(TaskConfigError, NotProvided):
    """A selector member asked of a forward-direction task (which has none): a config error,
    and to :func:`~mbc_interp.tasks.protocol.supports` the capability missing."""


class WindTunnelTask:
    """The full example set of a :class:`TaskConfig`, built deterministically from its seed."""

    name: ClassVar[str] = "wind_tunnel"

    def __init__(self, config: TaskConfig):
        self.config = config
        self.layout: Layout = config.layout
        c = config
        rng = np.random.default_rng(c.seed)
        if c.strings:
            lengths = (c.base_len, c.selector_len, c.target_len)
            per_base = c.selectors == "per_base"
            self._bases, self._selectors, self._targets = build_random_strings(
                rng, c.n_bases, c.K, lengths, len(CHARS), per_base, c.distinct_first
            )
        else:
            self._bases = distinct_rows(rng, c.n_bases, c.base_len, c.n_base_symbols)
            self._targets = build_targets(
                rng, c.construction, c.n_bases, c.K, c.target_len, c.n_target_symbols
            )
            self._selectors = np.broadcast_to(np.arange(c.K)[None, :, None], (c.n_bases, c.K, 1))
        if not c.has_selector:
            self._check_targets_distinct()

    def _check_targets_distinct(self) -> None:
        c = self.config
        repeat = repeated_row(self._targets.reshape(c.n_total, c.target_len))
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
    def _special(self, label: str) -> int:
        return self.config.vocab.index(label)

    @cached_property
    def tokens(self) -> Int[Tensor, "n seq"]:
        """Every example's full token sequence (the training and the evaluation set)."""
        c = self.config
        n = c.n_total
        if c.strings:
            offsets = dict.fromkeys(("base", "selector", "target"), 0)
        else:
            offsets = {"selector": 1, "base": 1 + c.K, "target": 1 + c.K + c.n_base_symbols}
        strings = {
            "base": np.repeat(self._bases, c.K, axis=0),
            "selector": self._selectors.reshape(n, -1),
            "target": self._targets.reshape(n, c.target_len),
        }
        parts = []
        for role, length in self.layout.segments:
            if role in strings:
                parts.append(strings[role] + offsets[role])
            else:
                parts.append(np.full((n, length), self._special(role.upper())))
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.int64))

    @cached_property
    def loss_mask(self) -> Bool[Tensor, "n seq"]:
        """True at positions whose next token carries the loss (everything after the answer
        position: A backward (and EOS), B forward)."""
        mask = torch.zeros(len(self), self.config.seq_len, dtype=torch.bool)
        mask[:, list(self.prediction_positions)] = True
        return mask

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the token table: identical configs give identical data on every machine."""
        return hashlib.sha256(self.tokens.numpy().tobytes()).hexdigest()

    def __len__(self) -> int:
        return self.config.n_total

    # -- the task protocol (mbc_interp.tasks.protocol) -------------------------------------------
    @cached_property
    def train_rows(self) -> Int[Tensor, " n"]:
        """Every row: the wind tunnel trains and evaluates on the same examples."""
        return torch.arange(len(self))

    def eval_rows(self, n_max: int | None, seed: int = 0) -> Int[Tensor, " n_eval"]:
        """All rows, or a fixed seeded subsample of ``n_max`` (sorted)."""
        from mbc_interp.tasks.wind_tunnel.evaluation import eval_rows

        return eval_rows(self, n_max, seed)

    def evaluate(self, model: nn.Module, rows: Int[Tensor, " n"], **settings: Any) -> dict:
        """Every metric of :mod:`~mbc_interp.tasks.wind_tunnel.evaluation` on ``rows``
        (``cand_examples``)."""
        from mbc_interp.tasks.wind_tunnel.evaluation import evaluate

        return evaluate(model, self, rows, **settings)

    @property
    def transition(self) -> Transition:
        """The loss's drop from its log K plateau; timed on the candidate loss where the raw
        loss rests at an alphabet-level value instead (the paper's random strings)."""
        scale = self.log_k if self.log_k > 0 else 1.0
        return Transition("loss", scale, rest_level=self.log_k, fallback="cand_loss")

    @property
    def default_kinds(self) -> tuple[str, ...]:
        """The routing analyses (``core``: attribution, z-use, patching, logit lens) where
        there is a selector to route; none in the forward direction."""
        return ("core",) if self.has_selector else ()

    @property
    def progress_signals(self) -> tuple[ProgressSignal, ...]:
        """Δz (raw, then candidate-normalised): the loss's rise when z is replaced by another
        selector of the same B; 0 for any model that ignores z. None without a selector."""
        if not self.has_selector or self.K < 2:
            return ()
        return (
            ProgressSignal("dz", "dz_se", description="loss with z deranged minus clean loss"),
            ProgressSignal(
                "dz_cand", "dz_cand_se", description="the same on the candidate-normalised loss"
            ),
        )

    def __repr__(self) -> str:
        return f"WindTunnelTask({self.config.describe()})"

    # -- layout ----------------------------------------------------------------------------------
    @property
    def has_selector(self) -> bool:
        return self.config.has_selector

    @property
    def log_k(self) -> float:
        return self.config.log_k

    @property
    def K(self) -> int:
        return self.config.K

    @property
    def answer_pos(self) -> int:
        """The position that predicts the first target token (the SEP before A)."""
        return self.layout.answer_pos

    @property
    def selector_positions(self) -> tuple[int, ...]:
        """Positions of z; raises :class:`TaskConfigError` for the forward direction."""
        if not self.has_selector:
            raise NoSelectorError(NO_SELECTOR)
        return self.layout.positions("selector")

    @property
    def base_positions(self) -> tuple[int, ...]:
        return self.layout.positions("base")

    @property
    def target_positions(self) -> tuple[int, ...]:
        """Positions holding the A tokens (backward) or the B tokens and EOS (forward): every
        token whose prediction carries the loss."""
        return tuple(range(self.answer_pos + 1, self.config.seq_len))

    @property
    def prediction_positions(self) -> tuple[int, ...]:
        """Positions whose next token carries the loss: answer position .. last-but-one."""
        return tuple(range(self.answer_pos, self.config.seq_len - 1))

    @property
    def n_targets(self) -> int:
        """Tokens per example that carry the loss (the paper reports the loss per token)."""
        return len(self.prediction_positions)

    # -- groups, candidates, corruptions ---------------------------------------------------------
    @property
    def base_index(self) -> Int[Tensor, " n"]:
        """Which base string each example uses."""
        return torch.arange(len(self)) // self.K

    @property
    def selector_index(self) -> Int[Tensor, " n"]:
        """Which of its B's K selectors each example carries (forward: which of its B's K
        targets the A is, though no selector is shown)."""
        return torch.arange(len(self)) % self.K

    def group_rows(self, rows: Int[Tensor, " n"]) -> Int[Tensor, "n K"]:
        """The K rows sharing each row's base string, in selector order."""
        rows = torch.as_tensor(rows)
        return (rows // self.K)[:, None] * self.K + torch.arange(self.K)[None, :]

    def group_members(self, n_groups: int, seed: int = 0) -> tuple[list[str], list[Tensor]]:
        """``HasGroups``: a seeded sample of ``n_groups`` base strings (sorted), each with its K
        rows in selector order."""
        n = len(self) // self.K
        rng = np.random.default_rng([seed, 7])
        picked = np.sort(rng.permutation(n)[: min(n, n_groups)])
        rows = self.group_rows(torch.as_tensor(picked, dtype=torch.long) * self.K)
        return [f"B{int(g)}" for g in picked], list(rows)

    def member_scores(
        self, model: nn.Module, rows: Int[Tensor, " n"]
    ) -> tuple[Float[Tensor, " n"], Bool[Tensor, " n"]]:
        """``HasGroups``: the candidate-normalised loss of each row (its selected candidate's
        share among B's K, scored on whole sequences, or on first tokens where those are
        distinct) and whether the selected candidate scores highest."""
        from mbc_interp.tasks.wind_tunnel.evaluation import candidate_loss, row_candidate_scores

        rows = torch.as_tensor(rows)
        k_true = self.selector_index[rows]
        with torch.inference_mode():
            scores = row_candidate_scores(model, self, rows, self.tokens[rows]).cpu()
        return candidate_loss(scores, k_true), scores.argmax(-1) == k_true

    @property
    def group_loss_scale(self) -> float:
        """``HasGroups``: log K, the candidate loss of a model that ignores z."""
        return self.log_k

    def candidates(self, rows: Int[Tensor, " n"]) -> Int[Tensor, "n K target"]:
        """Target token sequences (everything after the answer position) of the K candidates
        of each row's B; candidate ``k`` is the one the ``k``-th selector picks."""
        return self.tokens[self.group_rows(rows)][..., self.answer_pos + 1 :]

    def candidate_first(self, rows: Int[Tensor, " n"]) -> Int[Tensor, "n K"]:
        """First target token of each row's K candidates."""
        return self.candidates(rows)[..., 0]

    def candidate_first_losses(
        self, answer_logp: Float[Tensor, "n d_vocab"], rows: Int[Tensor, " n"]
    ) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
        """``HasCandidates``: each row's first-token marginal and candidate losses (the
        evaluation's ``marg_first_loss`` and ``cand_first_loss``) from the log-probabilities
        at the answer position."""
        from mbc_interp.tasks.wind_tunnel.evaluation import first_token_losses

        rows = torch.as_tensor(rows)
        device = answer_logp.device
        first, k_true = self.candidate_first(rows).to(device), self.selector_index[rows].to(device)
        return first_token_losses(answer_logp, first, k_true)

    def marginal_first_chance(self, rows: Int[Tensor, " n"]) -> Float[Tensor, " n"]:
        """``HasCandidates``: each row's first-token marginal loss under the layout-only model
        (the evaluation's ``marg_first_chance``)."""
        from mbc_interp.tasks.wind_tunnel.evaluation import first_token_chance

        return first_token_chance(self.candidate_first(torch.as_tensor(rows)),
                                  self.config.n_target_chars)  # fmt: skip

    def probe_targets(self, rows: Int[Tensor, " n"]) -> dict[str, Int[Tensor, " n"]]:
        """``HasProbeTargets``: ``z`` (which of B's K selectors the row carries) and ``first``
        (its first target token, what the answer position predicts)."""
        rows = torch.as_tensor(rows)
        return {"z": self.selector_index[rows], "first": self.tokens[rows, self.answer_pos + 1]}

    @cached_property
    def first_token_distinct(self) -> bool:
        """Whether the K candidates of every B differ at their first target token (then the
        candidate-normalised loss needs one forward pass; else whole sequences are scored)."""
        first = self.tokens[:, self.answer_pos + 1].view(-1, self.K)
        return bool((first.sort(-1).values.diff(dim=-1) != 0).all())

    def derangement(self, rows: Int[Tensor, " n"], seed: int = 0) -> Int[Tensor, " n"]:
        """For each row, a row of the same B with another selector: a random cyclic
        derangement within each B group (one per ``seed``, fixed; needs K >= 2)."""
        self._need_pairs()
        return self._derangement(seed)[torch.as_tensor(rows)]

    @functools.lru_cache(maxsize=4)  # noqa: B019  (a few seeds per task, for its lifetime)
    def _derangement(self, seed: int) -> Int[Tensor, " n"]:
        return derangement_table(self.config.seed, self.K, len(self), seed)

    def with_selector_of(
        self, rows: Int[Tensor, " n"], donors: Int[Tensor, " n"]
    ) -> Int[Tensor, "n seq"]:
        """``tokens[rows]`` with the selector tokens of ``donors`` (same B: a z corruption)."""
        self._need_pairs()
        return with_selector_of(self, rows, donors)

    def patching_pairs(self, n: int | None = None, seed: int = 0) -> PatchingPairs:
        """``HasPatchingPairs``: clean/corrupt prompt pairs, the same B and another selector
        whose target starts with another token (so the first-token logit difference is
        defined), drawn uniformly among those; ``n`` clean rows without replacement (all rows
        when ``None``). Rows whose B has no such selector are skipped. Backward runs only,
        K >= 2 (:mod:`~mbc_interp.tasks.wind_tunnel.corruption`)."""
        self._need_pairs()
        return patching_pairs(self, n, seed)

    def _need_pairs(self) -> None:
        if not self.has_selector:
            raise NoSelectorError(NO_SELECTOR)
        if self.K < 2:
            raise TaskConfigError(f"task.K = {self.K}: z corruptions need K >= 2")

    # -- labels --------------------------------------------------------------------------------
    def token_label(self, token: int) -> str:
        """Readable name of a token id: proxy ``SEP``, ``z1``.., ``b0``.., ``a0``..; strings: the
        character, ``BOS``, ``SEP``, ``EOS``; ``PAD`` for the filler."""
        vocab = self.config.vocab
        if not 0 <= token < len(vocab):
            raise ValueError(f"token id {token} is outside the vocabulary (d_vocab={len(vocab)})")
        return vocab[token]

    def labels(self, tokens: Int[Tensor, " seq"]) -> list[str]:
        return [self.token_label(int(t)) for t in tokens]

    @property
    def position_labels(self) -> list[str]:
        """Role of every position: ``B1``.., ``z`` (``z1``.. when longer), ``SEP``, ``A1``..;
        also ``BOS``, ``EOS``, ``PAD``."""
        names, counts = [], {}
        lengths = dict(self.layout.segments) | {"sep": 1}
        short = {"base": "B", "target": "A", "selector": "z", "pad": "PAD"}
        for role in self.layout.roles:
            counts[role] = counts.get(role, 0) + 1
            single = role in ("selector", "pad") and lengths[role] == 1
            if role in ("bos", "sep", "eos") or single:
                names.append(short.get(role, role.upper()))
            else:
                names.append(f"{short[role]}{counts[role]}")
        return names

    # -- reference predictors ------------------------------------------------------------------
    def marginal_log_probs(self) -> Float[Tensor, "n seq d_vocab"]:
        """The exact predictor that ignores the selector
        (:func:`~mbc_interp.tasks.wind_tunnel.reference.marginal_log_probs`)."""
        return marginal_log_probs(self)

    def marginal_loss(self) -> float:
        """Loss (nats/example) of the exact predictor that ignores the selector: log K
        backward (the plateau), 0 forward (H(B|A) = 0)."""
        logp = self.marginal_log_probs()
        return float(sequence_nll(logp, self.tokens, self.loss_mask).mean())

