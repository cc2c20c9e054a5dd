"""Modular addition as a :class:`~mbc_interp.tasks.protocol.Task`: the grokking phenomenon.

Row ``a * p + b`` is ``[a, b, p, (a + b) mod p]`` (``p`` is the ``=`` token); the loss is on the
answer ``c``, predicted at the ``=`` position (``answer_pos = 2``, one target). A seeded
``train_frac`` of the rows is trained on; the rest is the test set whose loss is the transition
(grokking: the test loss falls long after the training loss has). Hidden progress is read from
the Fourier measures of Nanda et al. (2023) (:mod:`mbc_interp.analysis.fourier`), listed in
:attr:`ModularAdditionTask.progress_signals`.
"""

from __future__ import annotations

import hashlib
import math
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from mbc_interp.core.sampling import seeded_subsets
from mbc_interp.tasks.losses import logit_losses
from mbc_interp.tasks.modular_addition.config import ModularAdditionConfig
from mbc_interp.tasks.protocol import ProgressSignal, Transition

__all__ = ["ModularAdditionTask"]

EVAL_CHUNK = 4096
POSITIONS = ("a", "b", "=", "c")


class ModularAdditionTask:
    """The ``p^2`` rows of ``a + b mod p`` and their seeded train/test split."""

    name: ClassVar[str] = ModularAdditionConfig.name

    def __init__(self, config: ModularAdditionConfig):
        self.config = config

    # -- the data ------------------------------------------------------------------------------
    @property
    def modulus(self) -> int:
        return self.config.p

    @cached_property
    def tokens(self) -> Int[Tensor, "n seq"]:
        """Every pair, row ``a * p + b``: ``[a, b, =, (a + b) mod p]``."""
        p = self.config.p
        a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
        a, b = a.reshape(-1), b.reshape(-1)
        return torch.stack([a, b, torch.full_like(a, p), (a + b) % p], dim=1)

    @cached_property
    def _is_train(self) -> Bool[Tensor, " n"]:
        c = self.config
        order = np.random.default_rng(c.seed).permutation(c.n_total)
        mask = np.zeros(c.n_total, dtype=bool)
        mask[order[: c.n_train]] = True
        return torch.from_numpy(mask)

    @cached_property
    def train_rows(self) -> Int[Tensor, " n_train"]:
        """The first ``n_train`` of a ``default_rng(seed)`` permutation of the rows, sorted."""
        return torch.nonzero(self._is_train).reshape(-1)

    @cached_property
    def test_rows(self) -> Int[Tensor, " n_test"]:
        """Every row not trained on, sorted."""
        return torch.nonzero(~self._is_train).reshape(-1)

    def is_train(self, rows: Int[Tensor, " n"]) -> Bool[Tensor, " n"]:
        """Whether each row is in the training split."""
        return self._is_train[torch.as_tensor(rows)]

    def eval_rows(self, n_max: int | None, seed: int = 0) -> Int[Tensor, " n_eval"]:
        """Every row (``n_max`` None), else at most ``n_max`` of each split: a seeded subsample
        of each split larger than that, sorted together."""
        if n_max is not None and n_max < 1:
            raise ValueError(f"n_max = {n_max}: must be >= 1 or None")
        splits = (self.train_rows, self.test_rows)
        picks = seeded_subsets([len(rows) for rows in splits], n_max, seed)
        parts = [r if pick is None else r[pick] for r, pick in zip(splits, picks, strict=True)]
        return torch.cat(parts).sort().values

    def operands(self, rows: Int[Tensor, " n"]) -> tuple[Int[Tensor, " n"], Int[Tensor, " n"]]:
        """``(a, b)`` of each row."""
        t = self.tokens[torch.as_tensor(rows)]
        return t[:, 0], t[:, 1]

    def probe_targets(self, rows: Int[Tensor, " n"]) -> dict[str, Int[Tensor, " n"]]:
        """``HasProbeTargets``: the operands ``a`` and ``b`` and the answer ``c = (a + b) mod
        p``, each a label of the ``=`` position's residual stream."""
        t = self.tokens[torch.as_tensor(rows)]
        return {"a": t[:, 0], "b": t[:, 1], "c": t[:, self.answer_pos + 1]}

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the token table and the training rows."""
        h = hashlib.sha256(self.tokens.numpy().tobytes())
        h.update(self.train_rows.numpy().tobytes())
        return h.hexdigest()

    def __len__(self) -> int:
        return self.config.n_total

    def __repr__(self) -> str:
        return f"ModularAdditionTask({self.config.describe()})"

    # -- the protocol's statements ------------------------------------------------------------
    @property
    def answer_pos(self) -> int:
        """The ``=`` position, which predicts ``c``."""
        return 2

    @property
    def n_targets(self) -> int:
        return 1

    @property
    def transition(self) -> Transition:
        """The test loss's drop from its memorisation level (no fixed plateau level: the test
        loss of a memorising network rises above log p and wanders, so ``rest_level`` is None)."""
        return Transition("test_loss", self.config.log_p, rest_level=None, rest_from="loss")

    @property
    def default_kinds(self) -> tuple[str, ...]:
        """The Fourier progress measures at every checkpoint (no selector: no routing core)."""
        return ("fourier",)

    @property
    def kind_defaults(self) -> dict[str, dict[str, Any]]:
        """``HasKindDefaults``: the SGLD step size calibrated on this task
        (``examples/calibrate_llc.py`` on the grokking_cpu preset's run, checkpoints from the
        end of memorisation to after the drop): 3e-4 is the largest that settles at every one
        (1e-3 diverges once the training loss is near 0; 1e-5 to 1e-4 have not settled within
        the chains' 150 steps). The other settings are the kind's."""
        sgld = {"step_size": 3e-4}
        return {"llc": dict(sgld), "llc_heads": dict(sgld)}

    @property
    def progress_signals(self) -> tuple[ProgressSignal, ...]:
        """Nanda et al.'s progress measures (columns of the ``fourier`` analysis kind), each
        timed from where memorisation ends (``baseline = "rest"``: the change from its value at
        the plateau's start). Memorisation itself uses every frequency and moves all four, so
        their values before it say nothing about the circuit that generalises."""
        return (
            ProgressSignal(
                "excluded_gain", se="excluded_gain_se", source="fourier", direction="up",
                baseline="rest",
                description="training loss with the key frequencies' logit directions removed, "
                "minus the clean training loss: what the generalising circuit carries",
            ),
            ProgressSignal(
                "restricted_loss", source="fourier", direction="down", baseline="rest",
                description="loss on all pairs from the key frequencies' logit directions alone",
            ),
            ProgressSignal(
                "gini", source="fourier", direction="up", baseline="rest",
                description="Gini coefficient of the embedding's per-frequency Fourier norms",
            ),
            ProgressSignal(
                "weight_norm", source="fourier", direction="down", baseline="rest",
                description="L2 norm of every parameter (weight decay's pull)",
            ),
            ProgressSignal(
                "llc", se="llc_std", source="llc", direction="down", baseline="rest",
                description="local learning coefficient of the training loss (where the llc "
                "kind was analysed): its fall from the plateau's start, against 3 x the "
                "chains' spread, is the simpler generalising solution taking over",
            ),
        )  # fmt: skip

    # -- evaluation ----------------------------------------------------------------------------
    @torch.inference_mode()
    def evaluate(self, model: nn.Module, rows: Int[Tensor, " n"], **settings: Any) -> dict:
        """On the training rows among ``rows``: ``loss`` (nats; = ``loss_tok``, one target),
        ``acc`` (argmax over the whole vocabulary = c), ``loss_se``; on the test rows among
        them: ``test_loss``, ``test_acc``, ``test_loss_se``; ``eval_n``/``test_n`` the row
        counts (a split without rows among ``rows`` has NaN metrics). No settings are used."""
        rows = torch.as_tensor(rows)
        loss, hit = self.row_losses(model, rows)
        train = self.is_train(rows)
        out: dict[str, Any] = {}
        for prefix, mask in (("", train), ("test_", ~train)):
            n = int(mask.sum())
            out[f"{prefix}loss"], out[f"{prefix}loss_se"] = _mean_se(loss[mask])
            out[f"{prefix}acc"] = float(hit[mask].double().mean()) if n else math.nan
        out["loss_tok"] = out["loss"]
        out["eval_n"], out["test_n"] = int(train.sum()), int((~train).sum())
        return out

    def group_members(self, n_groups: int, seed: int = 0) -> tuple[list[str], list[Tensor]]:
        """``HasGroups``: per answer c, the held-out pairs whose sum is c (a seeded sample of
        ``n_groups`` answers, sorted; answers without held-out pairs are left out)."""
        test = self.test_rows
        answer = self.tokens[test, self.answer_pos + 1]
        present = np.sort(np.unique(answer.numpy()))
        rng = np.random.default_rng([seed, 7])
        picked = np.sort(present[rng.permutation(len(present))[: min(len(present), n_groups)]])
        return [f"c{int(c)}" for c in picked], [test[answer == int(c)] for c in picked]

    def member_scores(
        self, model: nn.Module, rows: Int[Tensor, " n"]
    ) -> tuple[Float[Tensor, " n"], Bool[Tensor, " n"]]:
        """``HasGroups``: each row's loss at the answer position and whether it is right."""
        with torch.inference_mode():
            return self.row_losses(model, rows)

    @property
    def group_loss_scale(self) -> float:
        """``HasGroups``: log p, the loss of a uniform guess among the p answers."""
        return self.config.log_p

    def row_losses(
        self, model: nn.Module, rows: Int[Tensor, " n"]
    ) -> tuple[Float[Tensor, " n"], Bool[Tensor, " n"]]:
        """Per-row loss at the answer position (nats) and whether the argmax is the answer."""
        device = next(model.parameters()).device
        losses, hits = [], []
        for chunk in self.tokens[torch.as_tensor(rows)].split(EVAL_CHUNK):
            chunk = chunk.to(device)
            logits = model(chunk[:, :-1])[:, self.answer_pos :]  # (n, 1, d_vocab)
            target = chunk[:, self.answer_pos + 1 :]  # (n, 1)
            losses.append(logit_losses(logits, target)[:, 0].double().cpu())
            hits.append((logits.argmax(-1) == target)[:, 0].cpu())
        return torch.cat(losses), torch.cat(hits)

    # -- labels --------------------------------------------------------------------------------
    def position_labels(self) -> list[str]:
        return list(POSITIONS)

    def token_label(self, token: int) -> str:
        """The number, or ``=`` for token ``p``."""
        p = self.config.p
        if not 0 <= token <= p:
            raise ValueError(f"token id {token} is outside the vocabulary (d_vocab={p + 1})")
        return "=" if token == p else str(token)


def _mean_se(x: Tensor) -> tuple[float, float]:
    """Mean and its standard error (NaN for an empty tensor; SE NaN for one value)."""
    n = x.numel()
    if n == 0:
        return math.nan, math.nan
    se = float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan
    return float(x.mean()), se
