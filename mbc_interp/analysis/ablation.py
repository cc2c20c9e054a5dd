"""Ablation: which heads does the model need, and which suffice?

A head is ablated by replacing its output (``hook_z``, before ``W_O``) at every position:

- ``mean``: by its mean over the evaluation rows at that position (the head's average
  contribution stays; what it says about this example is removed);
- ``resample``: by its output on another row (a fixed seeded permutation of the rows);
- ``z_resample``: by its output on the same row with another selector of the same B (the task's
  seeded derangement, :class:`~mbc_interp.tasks.protocol.HasSelector`): what the head carries
  about the context stays and only what it carries about the selector goes, so the increases
  measure the use of z alone (the ``ablation_z`` kind).

Metrics, each the ablated value minus the clean one on the same rows (nats), with its standard
error over rows: ``loss_increase`` on the task's answer loss (summed over the positions from
``answer_pos`` on), on any task; and, on a task whose answers have candidates
(:class:`~mbc_interp.tasks.protocol.HasCandidates`), ``cand_loss_increase`` on the first-token
candidate loss (the right candidate's share of the mass on the candidates' first tokens: the
wind tunnel's ``cand_first_loss``, what reading the selector buys) and ``marg_loss_increase``
on the first-token marginal (``-log`` of the mass on the candidates' first tokens: the wind
tunnel's ``marg_first_loss``, what knowing the candidates buys). With them, ``marg_gain``
(component ``clean``) is the clean model's marginal gain over the layout-only model (its
``marginal_first_chance`` minus its marginal loss): a set whose ablation costs the candidate
loss but only a small share of ``marg_gain`` routes the selector; one that costs both takes
the reading of the context with it.

Per head alone (``component = "L{l}H{h}"``), and per set of heads: *necessity* of a set is the
increase when the set is ablated (``set:<heads>``), *sufficiency* the increase when every
*other* head is ablated (``only:<heads>``): near 0 when the set alone carries the behaviour.
The set is given, or (``heads = ()``) the heads whose single-head increase under the method is
at least half of the largest at this checkpoint (of the candidate loss where there is one, else
of the answer loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Literal

from mbc_interp.analysis.records import record
from mbc_interp.core.checks import check_field, is_int
from mbc_interp.tasks.protocol import HasCandidates, HasSelector, require, supports

if TYPE_CHECKING:
    from torch import Tensor

    from mbc_interp.tasks.protocol import Task

Method = Literal["mean", "resample", "z_resample"]
METHODS = ("mean", "resample", "z_resample")
METRICS = ("loss_increase", "marg_loss_increase", "cand_loss_increase")
"""The answer loss's increase (any task); the first-token marginal's and candidate loss's (a
task with candidates)."""
SELECT_BY = "cand_loss_increase"
"""What picks the head set where the task has candidates (else ``loss_increase``)."""


@dataclass(frozen=True)
class AblationConfig:
    """Rows, methods and the head set of :mod:`mbc_interp.analysis.ablation`."""

    n_examples: int = 256
    methods: tuple[str, ...] = ("mean", "resample")
    heads: tuple[str, ...] = ()
    """The head set for necessity and sufficiency (``()``: chosen per checkpoint, see above)."""
    seed: int = 0

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="ablation")

        need(is_int(self.n_examples) and self.n_examples >= 2, "n_examples", "must be an int >= 2")
        need(bool(self.methods) and all(m in METHODS for m in self.methods), "methods",
             f"one or more of {METHODS}")  # fmt: skip
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")


def _losses(
    logits: Tensor, tokens: Tensor, task: Task, rows: Tensor, candidates: bool
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Per row, in :data:`METRICS`' order: the answer loss and (``candidates``: the task has
    them) the first-token marginal and candidate losses."""
    a = task.answer_pos
    logp = logits[:, a:].log_softmax(-1)
    target = tokens[:, a + 1 :].to(logp.device)
    loss = -logp.gather(-1, target[..., None]).squeeze(-1).sum(-1)
    if not candidates:
        return loss, None, None
    return loss, *task.candidate_first_losses(logp[:, 0], rows)


def ablation_records(
    model: Any, task: Task, config: AblationConfig = AblationConfig(), analysis: str = "ablation"
) -> list[dict[str, Any]]:
    """Tidy rows (``analysis``: the kind's name) of every head alone and of the head set's
    necessity and sufficiency, for each method (see the module docstring)."""
    import torch

    rows = task.eval_rows(config.n_examples, seed=config.seed)
    tokens = task.tokens[rows]
    n_layers, n_heads = model.cfg.n_layers, model.cfg.n_heads
    candidates = supports(task, HasCandidates)
    names = [f"blocks.{l}.attn.hook_z" for l in range(n_layers)]
    inputs = tokens[:, :-1]
    out: list[dict[str, Any]] = []

    def increase(ablated: tuple[Tensor, Tensor | None], clean) -> dict[str, Tensor]:
        return {m: x - c for m, x, c in zip(METRICS, ablated, clean, strict=True) if x is not None}

    with torch.inference_mode():
        logits, cache = model.run_with_cache(inputs, names_filter=lambda n: n in names)
        clean = _losses(logits, tokens, task, rows, candidates)
        gain = task.marginal_first_chance(rows).to(clean[1]) - clean[1] if candidates else None
        heads = [(l, h) for l in range(n_layers) for h in range(n_heads)]
        for method in config.methods:
            repl = _replacements(method, model, task, rows, cache, names, config.seed)
            if gain is not None:
                out += _rows(analysis, "clean", method, {"marg_gain": gain})

            def run(ablate: set[tuple[int, int]], repl=repl) -> dict[str, Tensor]:
                hooks = [(names[l], _hook(repl[names[l]], [h for (ll, h) in ablate if ll == l]))
                         for l in range(n_layers) if any(ll == l for ll, _ in ablate)]  # fmt: skip
                logits = model.run_with_hooks(inputs, fwd_hooks=hooks)
                return increase(_losses(logits, tokens, task, rows, candidates), clean)

            single = {}
            for head in heads:
                found = run({head})
                single[head] = float(found[SELECT_BY if candidates else METRICS[0]].mean())
                out += _rows(analysis, f"L{head[0]}H{head[1]}", method, found)
            chosen = _head_set(config.heads, single, n_heads)
            label = "+".join(f"L{l}H{h}" for l, h in sorted(chosen))
            for prefix, ablate in (("set", chosen), ("only", set(heads) - chosen)):
                out += _rows(analysis, f"{prefix}:{label}", method, run(ablate))
    return out


def _replacements(
    method: str, model: Any, task: Task, rows: Tensor, cache: Any, names: list[str], seed: int
) -> dict[str, Tensor]:
    """Per hook name, what an ablated head's ``hook_z`` is replaced by under ``method``."""
    import torch

    if method == "mean":
        return {n: cache[n].mean(0, keepdim=True).expand_as(cache[n]) for n in names}
    if method == "resample":
        perm = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))
        return {n: cache[n][perm] for n in names}
    require(task, HasSelector, "ablation method 'z_resample'")
    donors = task.derangement(rows, seed)
    inputs = task.with_selector_of(rows, donors)[:, :-1]
    _, other = model.run_with_cache(inputs, names_filter=lambda n: n in names)
    return {n: other[n] for n in names}


def _head_set(
    given: tuple[str, ...], single: dict[tuple[int, int], float], n_heads: int
) -> set[tuple[int, int]]:
    if given:
        return {(int(h[1 : h.index("H")]), int(h[h.index("H") + 1 :])) for h in given}
    top = max(single.values())
    if not top > 0:
        return {max(single, key=single.get)}
    return {h for h, v in single.items() if v >= 0.5 * top}


def _hook(replacement: Tensor, heads: list[int]):
    def hook(z: Tensor, hook) -> Tensor:
        z = z.clone()
        z[:, :, heads] = replacement[:, :, heads]
        return z

    return hook


def _rows(
    analysis: str, component: str, method: str, found: dict[str, Tensor]
) -> list[dict[str, Any]]:
    where: dict[str, Any] = {"kind": method, "component": component}
    if component.startswith("L"):
        where.update(layer=int(component[1 : component.index("H")]),
                     head=int(component[component.index("H") + 1 :]))  # fmt: skip
    out = []
    for metric, x in found.items():
        n = x.numel()
        se = float(x.std() / math.sqrt(n)) if n > 1 else float("nan")
        out += [record(analysis, metric, float(x.mean()), **where),
                record(analysis, f"{metric}_se", se, **where)]  # fmt: skip
    return out
