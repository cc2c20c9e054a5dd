"""Nanda et al.'s (2023) Fourier progress measures of modular addition, for any prime p.

A network that has grokked ``a + b mod p`` embeds each number as ``cos(w_k x)``, ``sin(w_k x)``
for a few *key frequencies* ``w_k = 2 pi k / p`` and writes logits ``~ sum_k cos(w_k (a + b -
c))``. These functions take the model's pieces as tensors (the embedding of the numbers, the
answer logits over every pair) and know nothing else of the task:

- :func:`fourier_basis`: the real orthonormal basis of functions on ``Z_p``: the constant, then
  ``cos(2 pi k x / p)``, ``sin(2 pi k x / p)`` for ``k = 1..(p-1)/2``, each scaled to norm 1;
- :func:`frequency_norms`: a ``[p, d]`` matrix's norm per frequency (cos and sin together;
  the constant is not a frequency and is left out); of ``W_E[:p]`` it is Nanda et al.'s
  embedding spectrum, and :func:`gini` of it their Fourier sparsity;
- :func:`sum_directions`: the directions over the ``p^2`` pairs ``(a, b)`` that a key frequency
  writes in the logits: ``cos(w (a + b))``, ``sin(w (a + b))`` (the 2D basis terms of
  ``cos(w (a + b - c)) = cos(w (a + b)) cos(w c) + sin(w (a + b)) sin(w c)``), orthonormal;
- :func:`logit_frequency_energy`: the logits' energy (sum of squares over the answers ``c``) in
  each frequency's two directions; :func:`key_frequencies` reads the key set from it;
- :func:`restricted_logits` / :func:`excluded_logits`: the logits projected onto the key
  directions plus the constant (the *restricted* loss is then taken on all pairs), and with
  the key directions removed (the *excluded* loss, on the training pairs);
- :func:`fourier_measures`: all of it at one checkpoint.

Logits here are the ``p`` answer logits (the ``=`` token's logit dropped, as in Nanda et al.'s
code): every loss of this module, the clean one included, is over those ``p``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mbc_interp.analysis.fourier_settings import KEY_SHARE

__all__ = [
    "KEY_SHARE",
    "FourierMeasures",
    "basis_labels",
    "excluded_logits",
    "fourier_basis",
    "fourier_measures",
    "frequency_norms",
    "gini",
    "key_frequencies",
    "logit_frequency_energy",
    "pair_losses",
    "restricted_logits",
    "sum_directions",
]



def n_frequencies(p: int) -> int:
    """Non-zero frequencies of ``Z_p`` up to sign: ``(p - 1) / 2``."""
    if p < 3 or p % 2 == 0:
        raise ValueError(f"p = {p}: the Fourier measures need an odd modulus >= 3")
    return (p - 1) // 2


def fourier_basis(p: int) -> Float[Tensor, "p p"]:
    """Row ``0``: ``1 / sqrt(p)``; rows ``2k - 1`` and ``2k``: ``cos`` and ``sin`` of
    ``2 pi k x / p`` times ``sqrt(2 / p)``, ``k = 1..(p-1)/2``: an orthonormal basis (float64)."""
    m = n_frequencies(p)
    x = torch.arange(p, dtype=torch.float64)
    rows = [torch.full((p,), 1 / math.sqrt(p), dtype=torch.float64)]
    for k in range(1, m + 1):
        angle = 2 * math.pi * k * x / p
        rows += [angle.cos() * math.sqrt(2 / p), angle.sin() * math.sqrt(2 / p)]
    return torch.stack(rows)


def basis_labels(p: int) -> list[str]:
    """``const``, ``cos 1``, ``sin 1``, ``cos 2``... in :func:`fourier_basis`'s row order."""
    return ["const", *(f"{f} {k}" for k in range(1, n_frequencies(p) + 1) for f in ("cos", "sin"))]


def frequency_norms(matrix: Float[Tensor, "p d"]) -> Float[Tensor, " n_freq"]:
    """Norm of ``matrix``'s (rows indexed by ``x in Z_p``) component at each frequency ``k =
    1..(p-1)/2``: ``sqrt(|F_cos,k M|^2 + |F_sin,k M|^2)``; the constant row is left out."""
    p = matrix.shape[0]
    coef = fourier_basis(p) @ matrix.double()
    sq = coef[1:].pow(2).sum(-1)
    return (sq[0::2] + sq[1::2]).sqrt()


def gini(values: Float[Tensor, " n"]) -> float:
    """Gini coefficient of non-negative ``values``: ``sum_i (2i - n - 1) x_(i) / (n sum x)``
    over the ascending order; 0 when all are equal, ``1 - 1/n`` when one carries everything."""
    x = values.double().sort().values
    n = x.numel()
    total = float(x.sum())
    if n == 0 or total <= 0:
        return math.nan
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def sum_directions(
    p: int, freqs: tuple[int, ...], *, constant: bool = False
) -> Float[Tensor, "m pairs"]:
    """Orthonormal directions over the pairs (row ``a * p + b``): the constant ``1 / p`` when
    ``constant``, then for each ``k`` in ``freqs`` ``cos(w_k (a + b))`` and ``sin(w_k (a + b))``
    times ``sqrt(2) / p`` (float64)."""
    m = n_frequencies(p)
    bad = [k for k in freqs if not 1 <= k <= m]
    if bad or len(set(freqs)) != len(freqs):
        raise ValueError(f"freqs = {freqs}: distinct frequencies in 1..{m} (p = {p})")
    x = torch.arange(p, dtype=torch.float64)
    s = (x[:, None] + x[None, :]).reshape(-1)
    rows = [torch.full((p * p,), 1 / p, dtype=torch.float64)] if constant else []
    for k in freqs:
        angle = 2 * math.pi * k * s / p
        rows += [angle.cos() * math.sqrt(2) / p, angle.sin() * math.sqrt(2) / p]
    if not rows:
        return torch.zeros(0, p * p, dtype=torch.float64)
    return torch.stack(rows)


def _pairs(logits: Float[Tensor, "p p p"]) -> Float[Tensor, "pairs p"]:
    p = logits.shape[0]
    return logits.double().reshape(p * p, p)


def logit_frequency_energy(logits: Float[Tensor, "p p p"]) -> Float[Tensor, " n_freq"]:
    """For each frequency ``k = 1..(p-1)/2``, the squared norm of the logits ``[a, b, c]`` in
    the directions ``cos(w_k (a + b))``, ``sin(w_k (a + b))``, summed over the answers ``c``."""
    p = logits.shape[0]
    coef = sum_directions(p, tuple(range(1, n_frequencies(p) + 1))) @ _pairs(logits)
    sq = coef.pow(2).sum(-1)
    return sq[0::2] + sq[1::2]


def key_frequencies(energy: Float[Tensor, " n_freq"], share: float = KEY_SHARE) -> tuple[int, ...]:
    """The key frequencies: the smallest set of frequencies, largest ``energy`` first, whose
    energies sum to at least ``share`` of the total (frequencies numbered from 1, returned in
    increasing order). ``energy`` is :func:`logit_frequency_energy` or squared
    :func:`frequency_norms`."""
    if not 0 < share <= 1:
        raise ValueError(f"share = {share}: must be in (0, 1]")
    e = energy.double()
    total = float(e.sum())
    if total <= 0:
        return ()
    order = e.argsort(descending=True)
    cumulative = e[order].cumsum(0) / total
    n = int((cumulative < share - 1e-12).sum()) + 1
    return tuple(sorted(int(k) + 1 for k in order[: min(n, len(e))]))


def restricted_logits(
    logits: Float[Tensor, "p p p"], freqs: tuple[int, ...]
) -> Float[Tensor, "p p p"]:
    """The logits projected, for every answer ``c``, onto the constant and the ``freqs``'
    directions of :func:`sum_directions`: what the key frequencies' circuit alone writes."""
    p = logits.shape[0]
    d = sum_directions(p, freqs, constant=True)
    flat = _pairs(logits)
    return (d.T @ (d @ flat)).reshape(p, p, p)


def excluded_logits(
    logits: Float[Tensor, "p p p"], freqs: tuple[int, ...]
) -> Float[Tensor, "p p p"]:
    """The logits with the ``freqs``' directions (not the constant) removed for every ``c``."""
    p = logits.shape[0]
    d = sum_directions(p, freqs)
    flat = _pairs(logits)
    return (flat - d.T @ (d @ flat)).reshape(p, p, p)


def pair_losses(logits: Float[Tensor, "p p p"]) -> Float[Tensor, " pairs"]:
    """Cross-entropy of the answer ``(a + b) mod p`` at every pair (row ``a * p + b``)."""
    p = logits.shape[0]
    x = torch.arange(p)
    answer = ((x[:, None] + x[None, :]) % p).reshape(-1)
    return F.cross_entropy(_pairs(logits), answer, reduction="none")


@dataclass(frozen=True)
class FourierMeasures:
    """The progress measures at one checkpoint (losses in nats; see the module docstring)."""

    freqs: tuple[int, ...]
    """The key frequencies the losses below were taken with."""
    embed_norms: Float[Tensor, " n_freq"]
    """:func:`frequency_norms` of the embedding of the numbers."""
    logit_energy: Float[Tensor, " n_freq"]
    """:func:`logit_frequency_energy` of the answer logits."""
    gini: float
    """:func:`gini` of ``embed_norms``."""
    clean_loss: float
    """Mean loss on the training pairs (over the ``p`` answer logits)."""
    full_loss: float
    """Mean loss on all pairs."""
    restricted_loss: float
    """Mean loss of :func:`restricted_logits` on all pairs."""
    excluded_loss: float
    """Mean loss of :func:`excluded_logits` on the training pairs."""
    excluded_gain: float
    """``excluded_loss - clean_loss`` (the mean per-pair difference)."""
    excluded_gain_se: float
    """Its standard error over the training pairs."""


def fourier_measures(
    embed: Float[Tensor, "p d_model"],
    logits: Float[Tensor, "p p p"],
    train: Bool[Tensor, " pairs"] | Int[Tensor, " n_train"],
    freqs: tuple[int, ...] | None = None,
    share: float = KEY_SHARE,
) -> FourierMeasures:
    """The measures of ``embed`` (``W_E[:p]``) and ``logits`` (``[a, b, c]``, the answer
    logits at every pair); ``train`` selects the training pairs (a mask or row indices over
    rows ``a * p + b``); ``freqs`` the key frequencies (default: :func:`key_frequencies` of
    these logits with ``share``)."""
    norms = frequency_norms(embed)
    energy = logit_frequency_energy(logits)
    freqs = key_frequencies(energy, share) if freqs is None else tuple(freqs)
    clean = pair_losses(logits)
    excluded = pair_losses(excluded_logits(logits, freqs))[train]
    gain = excluded - clean[train]
    n = gain.numel()
    return FourierMeasures(
        freqs=freqs,
        embed_norms=norms,
        logit_energy=energy,
        gini=gini(norms),
        clean_loss=float(clean[train].mean()),
        full_loss=float(clean.mean()),
        restricted_loss=float(pair_losses(restricted_logits(logits, freqs)).mean()),
        excluded_loss=float(excluded.mean()),
        excluded_gain=float(gain.mean()),
        excluded_gain_se=float(gain.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan,
    )
