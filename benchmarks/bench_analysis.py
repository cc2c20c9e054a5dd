"""Cost per checkpoint of each analysis, measured against the plan's cost model.

    python benchmarks/bench_analysis.py [--repeats R] [--threads T] [--presets default paper]

For the default (proxy) run's model and the paper preset's (4 layers, d_model 128, 3,000
examples), at the full default settings: the time of each analysis on one checkpoint (a model
at its initialisation: the cost does not depend on the weights), its ratio to the baseline,
the cost model's estimate (``mbc_interp.analysis.plan``) and its ratio to the measured CPU
time. Baseline: one plain forward pass of 512 examples through
the model (``model(tokens)``), the unit the cost model counts in. The plan is only as good as
its two constants (``GFLOPS``, ``TOKEN_S``): ``est/cpu`` is what to check on a new machine.

The mechanistic kinds (``kind: ...`` rows) are timed at their default settings (``llc_heads``
on one head, once), and a last line sets the cheap ones (ablation, groups, weights, probes)
against the patching and attribution patching against forward passes of its pairs.

Each row is the median of ``--repeats`` timings after one warm-up call; CPU time is printed
beside wall time, and ratios are taken in CPU time, since the machine may be shared.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path

from mbc_interp.analysis.attribution import head_attribution
from mbc_interp.analysis.logit_lens import logit_lens
from mbc_interp.analysis.patching import SITE_KINDS, patch_sites
from mbc_interp.analysis.plan import GFLOPS, TOKEN_S, cost_parts, flops_per_token
from mbc_interp.analysis.registry import get_kind
from mbc_interp.analysis.timeline import AnalysisConfig, _example_rows
from mbc_interp.analysis.zuse import head_z_use
from mbc_interp.config import PRESETS, RunConfig
from mbc_interp.model import build_model
from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask


def bench(preset: str, repeats: int) -> None:
    cfg = RunConfig() if preset == "default" else RunConfig.from_dict({"preset": preset})
    task = WindTunnelTask(cfg.task)
    model = build_model(cfg.model, cfg.task.d_vocab, cfg.task.seq_len, seed=0)
    model.eval()
    a = AnalysisConfig()
    examples = _example_rows(task, a)  # the rows `mbc analyze` uses
    pairs = task.patching_pairs(min(a.n_pairs, len(task)), a.pair_seed)
    per_tok = flops_per_token(cfg.model, task)
    batch = task.tokens[:512]
    with torch.no_grad():
        base_wall, base_cpu = timed(lambda: model(batch), repeats)
    base_tokens = 512 * task.tokens.shape[1]
    table = [("forward, 512 examples (baseline)", base_wall, base_cpu,
              base_tokens * (per_tok / GFLOPS / 1e9 + TOKEN_S))]  # fmt: skip
    estimates = cost_parts(a, cfg.model, task)
    runs: list[tuple[str, Callable[[], object]]] = [
        ("attribution", lambda: head_attribution(model, task, examples)),
        ("logit_lens", lambda: logit_lens(model, task, examples)),
        ("zuse", lambda: head_z_use(model, pairs)),
    ]
    runs += [(k.name, lambda k=k: patch_sites(model, task, k, pairs))
             for k in SITE_KINDS if k.name in estimates]  # fmt: skip
    for name, fn in runs:
        wall, cpu = timed(fn, repeats)
        table.append((name, wall, cpu, estimates[name]))
    # the mechanistic kinds at their default settings (llc_heads on one head)
    kinds = ("ablation", "atp", "groups", "weights", "probes", "essential", "llc_heads")
    extra = AnalysisConfig(kinds=kinds, extra_settings={"llc_heads": {"heads": ["L0H0"]}})
    kind_estimates = cost_parts(extra, cfg.model, task)
    for kind in kinds:
        fn = get_kind(kind).run_function()
        settings = extra.settings_of(kind)
        wall, cpu = timed(lambda fn=fn, settings=settings: fn(model, task, settings, None),
                          1 if kind == "llc_heads" else repeats)  # fmt: skip
        table.append((f"kind: {kind}", wall, cpu, kind_estimates[kind]))
    n_examples = len(task) if examples is None else len(examples)
    print(f"\n{preset}: {len(task):,} examples, {cfg.model.n_layers} layers, d_model "
          f"{cfg.model.d_model}; {pairs.clean_tokens.shape[0]} pairs, {n_examples} examples; "
          f"{per_tok / 1e6:.2f} MFLOP per token")  # fmt: skip
    print(f"{'analysis':<34}{'wall s':>9}{'cpu s':>9}{'x base':>9}{'est. s':>9}{'est/cpu':>9}")
    for name, wall, cpu, est in table:
        print(f"{name:<34}{wall:9.3f}{cpu:9.3f}{cpu / base_cpu:9.1f}{est:9.3f}{est / cpu:9.2f}")
    core = [r for r in table[1:] if not r[0].startswith("kind: ")]
    total_cpu, total_est = sum(r[2] for r in core), sum(r[3] for r in core)
    print(f"{'one checkpoint, full defaults':<34}{'':>9}{total_cpu:9.3f}{'':>9}"
          f"{total_est:9.3f}{total_est / total_cpu:9.2f}")  # fmt: skip
    cpu = {r[0]: r[2] for r in table}
    patching = sum(cpu[k.name] for k in SITE_KINDS if k.name in cpu)
    cheap = sum(cpu[f"kind: {k}"] for k in ("ablation", "groups", "weights", "probes"))
    print(f"ablation + groups + weights + probes: {cheap:.3f} s cpu = {cheap / patching:.2f}x "
          f"the patching ({patching:.3f} s); atp: "
          f"{cpu['kind: atp'] / (base_cpu * len(pairs) / 512):.1f} forward passes of its "
          f"{len(pairs)} pairs, {cpu['kind: atp'] / cpu['head_out_all_pos']:.2f}x exact head "
          "patching")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--presets", nargs="+", default=["default", *PRESETS],
                   choices=["default", *PRESETS])  # fmt: skip
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for preset in args.presets:
        bench(preset, args.repeats)


if __name__ == "__main__":
    main()
