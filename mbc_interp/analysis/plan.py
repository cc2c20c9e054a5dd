"""What an analysis will cost, and a plan that fits a run's analysis into a time budget.

The cost of every analysis is counted in forward passes of the run's model (activation patching:
one per site and pair; attribution, logit lens and z-use: a few per example or pair; each extra
kind: what its declaration in :mod:`mbc_interp.analysis.registry` says, backward passes counted
as two forwards), and forward passes in
floating-point operations from the architecture. Two constants turn them into seconds of one
CPU core: :data:`GFLOPS` for the arithmetic and :data:`TOKEN_S` per token for the rest, fitted
to ``benchmarks/bench_analysis.py`` on the development machine, where the estimates land within
about 30% of the measured time for the proxy model and the paper's 4-layer d_model 128 model
(the benchmark prints both; rerun it on a new machine).

:func:`plan_analysis` keeps the measurements the summary times the circuit with (attribution,
z-use, head patching over all positions, the logit lens) at every checkpoint and spends what is
left of the budget on the position-resolved patching maps (layer x position pictures), every
``detail_every``-th checkpoint; only when that is not enough does it use fewer pairs and
examples. The plan is a pure function of the run's size, never of a timing, so the same run
always gets the same analysis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mbc_interp.analysis.analysis_config import DETAIL_KINDS, AnalysisConfig
from mbc_interp.analysis.registry import CostContext, get_kind
from mbc_interp.analysis.sites import SITE_KINDS
from mbc_interp.model_config import ModelConfig
from mbc_interp.store.run import Run

if TYPE_CHECKING:  # the constants (BUDGET_S) are read by `mbc analyze --help`: no torch here
    from mbc_interp.tasks.protocol import Task

GFLOPS = 75.0
"""Floating-point throughput of one CPU core on the analyses' batched forward passes."""
TOKEN_S = 3.3e-6
"""Seconds per token of a forward pass on top of its arithmetic (memory traffic and the like,
which dominates small models). With :data:`GFLOPS`, fitted to the patching rows of
``benchmarks/bench_analysis.py`` for the default model and the paper preset's."""
BUDGET_S = 240.0
"""Default budget of :func:`plan_analysis`: four minutes of one core for the checkpoints (the
issue's target is five for the whole command, loading and summary included)."""
LEVELS: tuple[tuple[int, int], ...] = ((256, 1024), (128, 512), (64, 256))
"""(patching pairs, attribution/logit-lens examples), most precise first."""
MIN_DETAIL = 8
"""The plan gives the position-resolved maps to at least this many checkpoints (or all)."""

# forward passes per example or pair, measured against a plain forward (bench_analysis.py)
_PER_EXAMPLE = {"attribution": 1.6, "logit_lens": 1.8}
_PER_PAIR_ZUSE = 2.5


def flops_per_token(m: ModelConfig, task: Task) -> float:
    """Forward floating-point operations per token: two per weight of every matrix the token
    goes through, plus attention over the context."""
    width = m.n_heads * m.head_dim
    per_layer = 4 * m.d_model * width + (2 * m.d_model * m.d_mlp if m.d_mlp else 0)
    seq = task.tokens.shape[1]
    attention = 2 * seq * width
    return 2.0 * (m.n_layers * (per_layer + attention) + m.d_model * task.config.d_vocab)


def cost_context(m: ModelConfig, task: Task) -> CostContext:
    """What the extra kinds' costs read of model ``m`` and ``task`` (K = 1 and no candidates
    on a task without a selector)."""
    distinct = getattr(task, "first_token_distinct", False)
    prompt_frac = (task.answer_pos + 1) / task.tokens.shape[1]
    return CostContext(n_layers=m.n_layers, n_heads=m.n_heads, k=getattr(task, "K", 1),
                       n_examples=len(task), first_token_distinct=distinct,
                       prompt_frac=prompt_frac)  # fmt: skip


@dataclass(frozen=True)
class Cost:
    """Estimated seconds of one core, split by what pays for them."""

    core_s: float
    """Per checkpoint: attribution, logit lens, z-use, head patching over all positions."""
    detail_s: float
    """Per detail checkpoint: the position-resolved patching kinds."""
    extra_s: float
    """Per checkpoint: the extra kinds (``kinds``) asked for."""


def cost_parts(config: AnalysisConfig, m: ModelConfig, task: Task) -> dict[str, float]:
    """Estimated seconds of each analysis ``config`` asks for at one checkpoint of model ``m``
    on ``task``: ``attribution``, ``logit_lens``, ``zuse``, each patching kind and each extra
    kind (see the module doc; the benchmark checks them against measurements)."""
    per_tok = flops_per_token(m, task) / (GFLOPS * 1e9) + TOKEN_S
    prompt, full = task.answer_pos + 1, task.tokens.shape[1]
    n = len(task)
    examples = n if config.n_examples is None else min(config.n_examples, n)
    pairs = min(config.n_pairs, n)
    sites = {"layer": m.n_layers, "pos": prompt, "head": m.n_heads}
    axes = {k.name: k.axes for k in SITE_KINDS}
    own = tuple(getattr(task, "default_kinds", ("core",)))
    parts: dict[str, float] = {}
    if "core" in own:  # the routing analyses, on a task with a selector
        parts = {name: per * examples * full * per_tok for name, per in _PER_EXAMPLE.items()}
        parts["zuse"] = _PER_PAIR_ZUSE * pairs * prompt * per_tok
        for kind in config.patch_kinds:
            if not (kind == "mlp_out" and m.d_mlp is None):
                n_sites = math.prod(sites[a] for a in axes[kind])
                parts[kind] = (n_sites + 2) * pairs * prompt * per_tok
    context = cost_context(m, task)
    for kind in _kinds(config, own):
        passes = get_kind(kind).cost(config.settings_of(kind), context)
        parts[kind] = passes * full * per_tok
    return parts


def task_kinds(task: Task) -> tuple[str, ...]:
    """The task's own analyses (``core``: the routing analyses; or its own kinds)."""
    return tuple(getattr(task, "default_kinds", ("core",)))


def _kinds(config: AnalysisConfig, own: tuple[str, ...]) -> tuple[str, ...]:
    """The extra kinds a checkpoint gets: the task's own (not ``core``), then ``config``'s."""
    return tuple(dict.fromkeys((*(k for k in own if k != "core"), *config.kinds)))


def estimate_cost(config: AnalysisConfig, m: ModelConfig, task: Task) -> Cost:
    """Seconds per checkpoint of ``config`` for model ``m`` on ``task``, by who pays them."""
    return _split(config, cost_parts(config, m, task), task)


def _split(config: AnalysisConfig, parts: dict[str, float], task: Task) -> Cost:
    detail = sum(v for k, v in parts.items() if k in DETAIL_KINDS)
    extra = sum(v for k, v in parts.items() if k in _kinds(config, task_kinds(task)))
    return Cost(float(sum(parts.values()) - detail - extra), float(detail), float(extra))


@dataclass(frozen=True)
class AnalysisPlan:
    """The settings chosen for a run, the checkpoints they apply to and what they should cost."""

    config: AnalysisConfig
    steps: tuple[int, ...]
    detail: tuple[int, ...]
    """The analysed checkpoints that get the position-resolved kinds."""
    seconds: float
    """Estimated seconds of one core for all of ``steps``."""
    budget_s: float | None
    """``None``: the settings were not chosen (see ``source``)."""
    source: str = "chosen"
    """Where the settings come from: chosen for the budget, given, the run's earlier analysis."""
    own_kinds: tuple[str, ...] = ("core",)
    """The task's own analyses (:func:`task_kinds`): ``core`` is the routing analyses."""
    kind_s: tuple[tuple[str, float], ...] = ()
    """Each extra kind's estimated seconds of one core per checkpoint (:func:`cost_parts`)."""

    @property
    def fits(self) -> bool:
        return self.budget_s is None or self.seconds <= self.budget_s

    def describe(self) -> str:
        c = self.config
        examples = "all" if c.n_examples is None else f"{c.n_examples:,}"
        detail = [k for k in c.patch_kinds if k in DETAIL_KINDS]
        core = [k for k in c.patch_kinds if k not in DETAIL_KINDS]
        how = self.source if self.budget_s is None else f"chosen for a {self.budget_s:.0f} s budget"
        own = [k for k in self.own_kinds if k != "core"]
        if "core" in self.own_kinds:
            lines = [
                f"{len(self.steps)} checkpoints; {c.n_pairs} clean/corrupt pairs (seed "
                f"{c.pair_seed}) for z-use and patching ({', '.join(core) or 'none'}); "
                f"{examples} examples for attribution and the logit lens",
                f"position-resolved patching ({', '.join(detail) or 'none'}) at "
                f"{len(self.detail)} of them ({_every(c.detail_every)})",
            ]
        else:
            lines = [f"{len(self.steps)} checkpoints; no routing analyses (the task has no "
                     "selector)"]  # fmt: skip
        seconds = dict(self.kind_s)
        if own:
            lines.append(f"the task's own kinds: {_with_costs(c, own, seconds)}")
        extra = [k for k in c.kinds if k not in own]
        lines += [
            f"extra kinds: {_with_costs(c, extra, seconds) or 'none'}",
            f"settings {how}; estimated {self.seconds / 60:.1f} min of one core"
            + ("" if self.fits else " (over budget even at the cheapest settings)"),
        ]
        return "\n".join(lines)


def _with_settings(c: AnalysisConfig, kinds: list[str]) -> list[str]:
    """Each of ``kinds``, with the settings given for it (``llc (draws=200)``)."""
    out = []
    for kind in kinds:
        given = ", ".join(f"{k}={v!r}" for k, v in c.extra_settings.get(kind, {}).items())
        out.append(f"{kind} ({given})" if given else kind)
    return out


def _with_costs(c: AnalysisConfig, kinds: list[str], seconds: dict[str, float]) -> str:
    """``kinds`` with their settings and estimated seconds (``llc (draws=200) ~12 s``)."""
    if not kinds:
        return ""
    named = [f"{label} ~{_seconds(seconds[k])}" if k in seconds else label
             for k, label in zip(kinds, _with_settings(c, kinds), strict=True)]  # fmt: skip
    return ", ".join(named) + (" (per checkpoint, one core)" if seconds else "")


def _seconds(s: float) -> str:
    """Seconds to 2 significant figures, at least 0.01 shown (``<0.01 s``)."""
    return "<0.01 s" if s < 0.01 else f"{s:.2g} s" if s < 100 else f"{s:.0f} s"


def _every(n: int) -> str:
    if n == 1:
        return "every checkpoint"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"every {n}{suffix} checkpoint and the last"


def plan_analysis(
    run: Run,
    steps: list[int],
    *,
    given: dict[str, object] | None = None,
    budget_s: float | None = BUDGET_S,
) -> AnalysisPlan:
    """Settings for analysing ``steps`` of ``run`` within ``budget_s`` seconds of one core.

    Fields in ``given`` are kept as they are; the others are chosen, most precise first (see the
    module doc). ``budget_s=None`` takes the defaults of :class:`AnalysisConfig` unchanged."""
    given = dict(given or {})
    if budget_s is None:
        return fixed_plan(run, steps, AnalysisConfig(**given))
    run_steps = run.steps  # the manifest, read once for every candidate
    most = max(1, math.ceil(len(steps) / MIN_DETAIL))
    every = [given["detail_every"]] if "detail_every" in given else range(1, most + 1)
    candidates = [
        AnalysisConfig(**({"n_pairs": pairs, "n_examples": examples} | given | {"detail_every": d}))
        for pairs, examples in LEVELS
        for d in every
    ]
    plans = [_plan(run, run_steps, steps, c, budget_s, "chosen") for c in dict.fromkeys(candidates)]
    return next((p for p in plans if p.fits), min(plans, key=lambda p: p.seconds))


def _plan(
    run: Run,
    run_steps: list[int],
    steps: list[int],
    config: AnalysisConfig,
    budget_s: float | None,
    source: str,
) -> AnalysisPlan:
    from mbc_interp.analysis.timeline import detail_steps

    parts = cost_parts(config, run.config.model, run.task)
    cost = _split(config, parts, run.task)
    detail = detail_steps(run_steps, steps, config.detail_every)
    seconds = len(steps) * (cost.core_s + cost.extra_s) + len(detail) * cost.detail_s
    own = task_kinds(run.task)
    kind_s = tuple((k, parts[k]) for k in _kinds(config, own))
    return AnalysisPlan(config, tuple(steps), tuple(detail), seconds, budget_s, source,
                        own_kinds=own, kind_s=kind_s)  # fmt: skip


def fixed_plan(
    run: Run, steps: list[int], config: AnalysisConfig, source: str = "given"
) -> AnalysisPlan:
    """The plan of settings fixed in full (nothing chosen), with its estimated cost."""
    return _plan(run, run.steps, steps, config, None, source)
