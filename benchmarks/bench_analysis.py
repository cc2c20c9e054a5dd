"""Cost per checkpoint of each analysis, measured against the plan's cost model and the bounds
the analyses are held to.

    python benchmarks/bench_analysis.py [--repeats R] [--threads T] [--presets default paper]

For the default (proxy) run's model and the paper preset's (4 layers, d_model 128, 3,000
examples), at the full default settings: the time of each analysis on one checkpoint (a model
at its initialisation: the cost does not depend on the weights), its ratio to the baseline,
the cost model's estimate (``mbc_interp.analysis.plan``) and its ratio to the measured CPU
time. Baseline: one plain forward pass of 512 examples through the model (``model(tokens)``),
the unit the cost model counts in. The plan is only as good as its two constants (``GFLOPS``,
``TOKEN_S``): ``est/cpu`` is what to check on a new machine. The mechanistic kinds (``kind:``
rows) are timed at their default settings (``llc_heads`` on one head, once); a kind the task
cannot serve is left out.

Then the bounds, each with PASS or FAIL (the exit status is 1 when any fails):

- ``atp``: at most 3 forward-equivalents: its time over one plain forward of the same pairs'
  prompts (the tokens it runs on), the two timed in turn; the plan's declared ``ATP_PASSES``
  is printed beside it;
- ``ablation + groups + weights + probes``: together at most the exact activation patching at
  its default site kinds.

Each time is the median of ``--repeats`` timings after one warm-up call; CPU time is printed
beside wall time, and ratios are taken in CPU time, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path

from mbc_interp.analysis.attribution import head_attribution
from mbc_interp.analysis.kinds.atp import ATP_PASSES
from mbc_interp.analysis.logit_lens import logit_lens
from mbc_interp.analysis.patching import SITE_KINDS, patch_sites
from mbc_interp.analysis.plan import GFLOPS, TOKEN_S, cost_parts, flops_per_token
from mbc_interp.analysis.registry import get_kind
from mbc_interp.analysis.timeline import AnalysisConfig, _example_rows
from mbc_interp.analysis.zuse import head_z_use
from mbc_interp.config import PRESETS, RunConfig
from mbc_interp.model import build_model
from mbc_interp.tasks.protocol import TaskProtocolError
from mbc_interp.tasks.registry import build_task

KINDS = ("ablation", "atp", "groups", "weights", "probes", "essential", "llc_heads")
CHEAP = ("ablation", "groups", "weights", "probes")
ATP_BOUND = 3.0
"""Forward-equivalents of its pairs attribution patching may cost."""
CHEAP_BOUND = 1.0
"""The cheap kinds' time together over the exact patching's."""
Row = tuple[str, float, float, float]
Check = tuple[str, float, float, str]


def bench(preset: str, repeats: int, kinds: list[str]) -> list[Check]:
    """Print the preset's timings and return its bounds' checks ``(name, measured, bound,
    note)``."""
    cfg = RunConfig() if preset == "default" else RunConfig.from_dict({"preset": preset})
    task = build_task(cfg.task)
    model = build_model(cfg.model, cfg.task.d_vocab, cfg.task.seq_len, seed=0)
    model.eval()
    a = AnalysisConfig()
    per_tok = flops_per_token(cfg.model, task)
    batch = task.tokens[:512]
    with torch.no_grad():
        base_wall, base_cpu = timed(lambda: model(batch), repeats)
    base_tokens = len(batch) * task.tokens.shape[1]
    table: list[Row] = [("forward, 512 examples (baseline)", base_wall, base_cpu,
                         base_tokens * (per_tok / GFLOPS / 1e9 + TOKEN_S))]  # fmt: skip
    estimates = cost_parts(a, cfg.model, task)
    runs: list[tuple[str, Callable[[], object]]] = []
    pairs = None
    if "core" in getattr(task, "default_kinds", ()):
        examples = _example_rows(task, a)  # the rows `mbc analyze` uses
        pairs = task.patching_pairs(min(a.n_pairs, len(task)), a.pair_seed)
        runs += [("attribution", lambda: head_attribution(model, task, examples)),
                 ("logit_lens", lambda: logit_lens(model, task, examples)),
                 ("zuse", lambda: head_z_use(model, pairs))]  # fmt: skip
        runs += [(k.name, lambda k=k: patch_sites(model, task, k, pairs))
                 for k in SITE_KINDS if k.name in estimates]  # fmt: skip
    for name, fn in runs:
        wall, cpu = timed(fn, repeats)
        table.append((name, wall, cpu, estimates[name]))
    kinds = [k for k in kinds if _serves(k, task)]
    one_head = {"llc_heads": {"heads": ["L0H0"]}} if "llc_heads" in kinds else {}
    extra = AnalysisConfig(kinds=tuple(kinds), extra_settings=one_head)
    kind_estimates = cost_parts(extra, cfg.model, task)
    for kind in kinds:
        fn = get_kind(kind).run_function()
        settings = extra.settings_of(kind)
        wall, cpu = timed(lambda fn=fn, settings=settings: fn(model, task, settings, None),
                          1 if kind == "llc_heads" else repeats)  # fmt: skip
        table.append((f"kind: {kind}", wall, cpu, kind_estimates[kind]))
    print(f"\n{preset}: {len(task):,} examples, {cfg.model.n_layers} layers, d_model "
          f"{cfg.model.d_model}; {per_tok / 1e6:.2f} MFLOP per token")  # fmt: skip
    print(f"{'analysis':<34}{'wall s':>9}{'cpu s':>9}{'x base':>9}{'est. s':>9}{'est/cpu':>9}")
    for name, wall, cpu, est in table:
        print(f"{name:<34}{wall:9.3f}{cpu:9.3f}{cpu / base_cpu:9.1f}{est:9.3f}{est / cpu:9.2f}")
    core = [r for r in table[1:] if not r[0].startswith("kind: ")]
    if core:
        total_cpu, total_est = sum(r[2] for r in core), sum(r[3] for r in core)
        print(f"{'one checkpoint, full defaults':<34}{'':>9}{total_cpu:9.3f}{'':>9}"
              f"{total_est:9.3f}{total_est / total_cpu:9.2f}")  # fmt: skip
    return _checks(preset, {r[0]: r[2] for r in table}, model, task, pairs, repeats)


def _serves(kind: str, task: object) -> bool:
    try:
        get_kind(kind).check(task)
    except TaskProtocolError:
        return False
    return True


def _checks(
    preset: str, cpu: dict[str, float], model: Any, task: Any, pairs: Any, repeats: int
) -> list[Check]:
    """The bounds of the module docstring, where the preset's task has what they compare."""
    out: list[Check] = []
    if pairs is not None and "kind: atp" in cpu:
        atp = get_kind("atp").run_function()
        settings = AnalysisConfig(kinds=("atp",)).settings_of("atp")

        def forward() -> None:
            with torch.no_grad():
                model(pairs.clean_tokens)

        ratio = _interleaved(lambda: atp(model, task, settings, None), forward, max(repeats, 9))
        out.append((f"{preset}: atp, forwards of its pairs", ratio, ATP_BOUND,
                    f"declared {ATP_PASSES:g}"))  # fmt: skip
    patching = sum(cpu[k.name] for k in SITE_KINDS if k.name in cpu)
    if patching > 0 and all(f"kind: {k}" in cpu for k in CHEAP):
        cheap = sum(cpu[f"kind: {k}"] for k in CHEAP)
        out.append((f"{preset}: {' + '.join(CHEAP)} / patching", cheap / patching,
                    CHEAP_BOUND, f"{cheap:.2f} s vs {patching:.2f} s"))  # fmt: skip
    return out


def _interleaved(fn: Callable[[], object], unit: Callable[[], object], repeats: int) -> float:
    """Median CPU time of ``fn`` over the median of ``unit``, the two timed in turn (after a
    warm-up call each), so that a load on the machine weighs on both alike."""
    fn(), unit()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for f, out in ((fn, times[0]), (unit, times[1])):
            c0 = time.process_time()
            f()
            out.append(time.process_time() - c0)
    return statistics.median(times[0]) / statistics.median(times[1])


def report(checks: list[Check]) -> bool:
    """Print the bounds' table; whether every one passes."""
    print(f"\n{'bound':<58}{'measured':>9}{'at most':>9}  {'':<5} note")
    ok = True
    for name, measured, bound, note in checks:
        passed = measured <= bound
        ok &= passed
        print(f"{name:<58}{measured:9.2f}{bound:9.2f}  {'PASS' if passed else 'FAIL':<5} {note}")
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--presets", nargs="+", default=["default", *PRESETS],
                   choices=["default", *PRESETS])  # fmt: skip
    p.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS,
                   help="the mechanistic kinds to time (llc_heads is the slow one)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    checks = [c for preset in args.presets for c in bench(preset, args.repeats, args.kinds)]
    return 0 if report(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
