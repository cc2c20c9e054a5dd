"""What every evaluation measures: the loss, the candidate-normalised loss and z-dependence Δz.

On the same evaluation rows (a fixed, seeded subsample when the dataset is large,
:func:`eval_rows`), :func:`evaluate` reports:

- ``loss`` (nats per example, summed over the target positions), ``loss_tok`` (the mean over
  target positions, the paper's unit), ``loss_pos``, exact-match ``acc``, ``acc_first``,
  ``loss_sd`` (the per-example loss spread);
- ``cand_loss``: for each (B, z), the model's probabilities renormalised over the K candidate
  targets of that B, ``-log p(correct)``; ``cand_acc``: the correct candidate scores highest.
  It is exactly log K when z is ignored and 0 when z is used, however well the alphabet-level
  marginal is learned. Where the K candidates differ at their first token it is the first-token
  version (one forward pass); otherwise whole candidate sequences (A and EOS) are scored, on a
  fixed subsample of ``cand_examples`` rows (``cand_n`` says how many);
- ``dz`` (raw) and ``dz_cand`` (candidate): the loss with z replaced by another selector of the
  same B (a fixed derangement within each B group) minus the clean loss, with standard errors
  over examples ``dz_se`` / ``dz_cand_se``. Δz is 0 for any model that ignores z, and defined
  (small, not undefined) on the plateau: it is what hidden progress looks like. The derangement
  is the same at every evaluation, so successive values differ only through the model.
  ``loss_zswap`` / ``loss_zswap_pos``: the raw loss (and per position) with z replaced; the
  part of the raw loss's gain that survives replacing z is what the model knows without z.
- **The marginal and the conditional, matched** (:func:`stage_measures`): on the same rows
  (the candidate rows) and from the same scores as ``cand_loss``, ``marg_loss`` is ``-log``
  of the mass the model puts on B's K candidates (whole sequences when they are scored, else
  first tokens), from its chance value ``marg_chance`` (a model that knows only the layout:
  uniform over the target alphabet at every target position) to 0; ``cand_loss`` runs from
  log K (z ignored, B's candidates scored alike: the least a model that ignores z can reach)
  to 0. ``marg_first_loss`` / ``cand_first_loss`` are the first-token versions on the same
  rows: the mass on the distinct first characters of B's candidates, and the correct one's
  share of it, whose chance values are ``marg_first_chance`` and ``cand_first_floor`` (the
  entropy of the first character given B, the least a model that ignores z can reach).
  Each comes with its standard error over the rows (``*_se``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mbc_interp.core.sampling import seeded_subset
from mbc_interp.tasks.losses import logit_losses

if TYPE_CHECKING:  # annotations only: the task's evaluate() calls this module
    from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask

EVAL_CHUNK = 4096
DERANGEMENT_SEED = 0
METRICS = (
    "loss", "loss_tok", "acc", "acc_first", "loss_sd", "cand_loss", "cand_acc", "dz", "dz_se",
    "dz_cand", "dz_cand_se", "loss_zswap", "marg_loss", "marg_chance", "marg_first_loss",
    "marg_first_chance", "cand_first_loss", "cand_first_floor",
)  # fmt: skip


def _forward(
    model: nn.Module, tokens: Int[Tensor, "n seq"], answer_pos: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Per-position loss, hits (argmax = target) and the answer position's log-probs."""
    device = next(model.parameters()).device
    losses, hits, answer = [], [], []
    for chunk in tokens.split(EVAL_CHUNK):
        chunk = chunk.to(device)
        logits = model(chunk[:, :-1])[:, answer_pos:]
        target = chunk[:, answer_pos + 1 :]
        losses.append(logit_losses(logits, target).cpu())
        hits.append((logits.argmax(-1) == target).cpu())
        answer.append(logits[:, 0].log_softmax(-1).cpu())
    return torch.cat(losses).double(), torch.cat(hits), torch.cat(answer).double()


def answer_log_probs(
    model: nn.Module, tokens: Int[Tensor, "n seq"], answer_pos: int
) -> Float[Tensor, "n d_vocab"]:
    """Log-probabilities of the first target token, at the answer position."""
    return _forward(model, tokens, answer_pos)[2]


def eval_rows(task: WindTunnelTask, n_max: int | None, seed: int = 0) -> Int[Tensor, " n"]:
    """The rows an evaluation uses: all, or a fixed seeded subsample of ``n_max`` (sorted)."""
    rows = seeded_subset(len(task), n_max, seed)
    return torch.arange(len(task)) if rows is None else rows


def candidate_scores(
    model: nn.Module, task: WindTunnelTask, rows: Int[Tensor, " n"], tokens: Tensor
) -> Float[Tensor, "n K"]:
    """log p(candidate k | the context of ``tokens``) for the K candidates of each row's B,
    summed over every target token (A and EOS): whole candidate sequences teacher-forced
    after the prompt of ``tokens`` (which may carry another row's selector), each prompt run
    once for its K candidates (:func:`~mbc_interp.model.shared_prefix_losses`)."""
    from mbc_interp.model import shared_prefix_losses

    k, a = task.K, task.answer_pos
    cands = task.candidates(rows)  # [n, K, T]
    prompts = tokens[:, : a + 1]
    per = max(1, EVAL_CHUNK // k)  # rows per chunk: at most EVAL_CHUNK sequences
    scores = [
        -shared_prefix_losses(model, p, c).double().sum(-1).cpu()
        for p, c in zip(prompts.split(per), cands.split(per), strict=True)
    ]
    return torch.cat(scores)


def row_candidate_scores(
    model: nn.Module,
    task: WindTunnelTask,
    rows: Int[Tensor, " n"],
    tokens: Int[Tensor, "n seq"],
    answer: Float[Tensor, "n d_vocab"] | None = None,
) -> Float[Tensor, "n K"]:
    """The scores the candidate-normalised loss is taken over: the answer position's
    log-probabilities of B's K candidates' first tokens where those are distinct (from
    ``answer``, the log-probs of a forward already run on ``tokens``, when given), else whole
    candidate sequences (:func:`candidate_scores`)."""
    if not task.first_token_distinct:
        return candidate_scores(model, task, rows, tokens)
    if answer is None:
        answer = answer_log_probs(model, tokens, task.answer_pos)
    return answer.gather(-1, task.candidate_first(rows).to(answer.device))


def candidate_loss(scores: Float[Tensor, "n K"], k_true: Int[Tensor, " n"]) -> Float[Tensor, " n"]:
    """``-log`` of the selected candidate's share of the K candidates' scores."""
    return -scores.log_softmax(-1).gather(-1, k_true[:, None]).squeeze(-1)


def _mean_se(x: Tensor) -> tuple[float, float]:
    n = x.numel()
    se = float(x.std(unbiased=True) / math.sqrt(n)) if n > 1 else float("nan")
    return float(x.mean()), se


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    task: WindTunnelTask,
    rows: Int[Tensor, " n"] | None = None,
    *,
    cand_examples: int = 256,
) -> dict[str, Any]:
    """Every evaluation metric on ``rows`` (default: all examples); see the module docstring."""
    rows = torch.arange(len(task)) if rows is None else torch.as_tensor(rows)
    a = task.answer_pos
    clean_tokens = task.tokens[rows]
    pos_loss, hits, answer = _forward(model, clean_tokens, a)
    loss = pos_loss.sum(-1)
    out: dict[str, Any] = {
        "loss": float(loss.mean()),
        "loss_tok": float(loss.mean()) / task.n_targets,
        "loss_pos": [float(x) for x in pos_loss.mean(0)],
        "acc": float(hits.all(-1).double().mean()),
        "acc_first": float(hits[:, 0].double().mean()),
        "loss_sd": float(loss.std()) if len(rows) > 1 else 0.0,
        "eval_n": len(rows),
    }
    if not task.has_selector or task.K < 2:
        return out
    donors = task.derangement(rows, DERANGEMENT_SEED)
    corrupt_tokens = task.with_selector_of(rows, donors)
    corrupt_loss, _, corrupt_answer = _forward(model, corrupt_tokens, a)
    out["dz"], out["dz_se"] = _mean_se(corrupt_loss.sum(-1) - loss)
    out["loss_zswap"] = float(corrupt_loss.sum(-1).mean())
    out["loss_zswap_pos"] = [float(x) for x in corrupt_loss.mean(0)]

    seq_len = 1 if task.first_token_distinct else task.config.target_len
    if not task.first_token_distinct:  # whole sequences: scored on a fixed subsample
        sub = _subsample(len(rows), cand_examples)
        rows, answer, clean_tokens, corrupt_tokens = (
            rows[sub], answer[sub], clean_tokens[sub], corrupt_tokens[sub]
        )
    k_true = task.selector_index[rows]
    clean_s = row_candidate_scores(model, task, rows, clean_tokens, answer)
    corrupt_s = row_candidate_scores(model, task, rows, corrupt_tokens, corrupt_answer)
    clean_c, corrupt_c = candidate_loss(clean_s, k_true), candidate_loss(corrupt_s, k_true)
    n_cand = len(rows)
    out["cand_loss"], out["cand_loss_se"] = _mean_se(clean_c)
    out.update(stage_measures(clean_s, answer, task.candidate_first(rows), k_true,
                              task.config.n_target_chars, seq_len))  # fmt: skip
    out["cand_acc"] = float((clean_s.argmax(-1) == k_true).double().mean())
    out["dz_cand"], out["dz_cand_se"] = _mean_se(corrupt_c - clean_c)
    out["cand_n"] = n_cand
    return out


def stage_measures(
    scores: Float[Tensor, "n K"],
    answer_logp: Float[Tensor, "n d_vocab"],
    first: Int[Tensor, "n K"],
    k_true: Int[Tensor, " n"],
    n_chars: int,
    seq_len: int,
) -> dict[str, float]:
    """The matched marginal and conditional measures of the module docstring, on one set of
    rows: ``scores`` are log p of each row's K candidates (whole sequences over ``seq_len``
    characters, or first tokens with ``seq_len = 1``), ``answer_logp`` the log-probs at the
    answer position, ``first`` the candidates' first tokens, ``n_chars`` the target alphabet."""
    k = scores.shape[-1]
    out: dict[str, float] = {}
    out["marg_loss"], out["marg_loss_se"] = _mean_se(-scores.logsumexp(-1))
    out["marg_chance"] = seq_len * math.log(n_chars) - math.log(k)
    count = torch.zeros_like(answer_logp).scatter_add_(-1, first, torch.ones_like(first).double())
    marg_first, cand_first = first_token_losses(answer_logp, first, k_true)
    out["marg_first_loss"], out["marg_first_loss_se"] = _mean_se(marg_first)
    out["cand_first_loss"], out["cand_first_loss_se"] = _mean_se(cand_first)
    share = count / k
    floor = -(share * share.clamp_min(1e-300).log()).sum(-1)
    out["marg_first_chance"] = float(first_token_chance(first, n_chars).mean())
    out["cand_first_floor"] = float(floor.mean())
    return out


def first_token_losses(
    answer_logp: Float[Tensor, "n d_vocab"],
    first: Int[Tensor, "n K"],
    k_true: Int[Tensor, " n"],
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Per row, from the log-probs at the answer position: ``-log`` of the mass on the distinct
    first tokens of the row's K candidates (``marg_first_loss``) and the correct candidate's
    ``-log`` share of that mass (``cand_first_loss``, the first-token candidate loss). A first
    token shared by several candidates counts once. The one definition of both, for the
    evaluation and the analyses (ablation)."""
    present = torch.zeros_like(answer_logp, dtype=torch.bool).scatter_(-1, first, True)
    mass = answer_logp.masked_fill(~present, -math.inf).logsumexp(-1)
    right = answer_logp.gather(-1, first.gather(-1, k_true[:, None])).squeeze(-1)
    return -mass, mass - right


def first_token_chance(first: Int[Tensor, "n K"], n_chars: int) -> Float[Tensor, " n"]:
    """Per row, ``marg_first_loss`` of the layout-only model (uniform over the ``n_chars``
    target characters): ``log n_chars - log`` (distinct first tokens of the row's candidates)."""
    distinct = (first.sort(-1).values.diff(dim=-1) != 0).sum(-1) + 1
    return math.log(n_chars) - distinct.double().log()


def _subsample(n: int, m: int) -> Int[Tensor, " m"]:
    """A fixed, evenly spread subset of ``min(n, m)`` of ``n`` positions."""
    if m >= n:
        return torch.arange(n)
    return torch.linspace(0, n - 1, m).round().long().unique()
