"""Cost per checkpoint of the gradient and LLC kinds on the default run's model.

    python benchmarks/bench_gradients.py [--repeats R] [--llc] [--threads T]

Baseline: one plain training step's forward + backward at batch 512 (``example_losses(...)
.sum(-1).mean().backward()`` on the default model and task), the unit every other row is
expressed in. Rows: the full-batch gradient over every example (``full_gradient``; the kind
itself takes the sampled examples' part from their per-example gradients and runs this over
the rest), the per-example gradients of the default 512-example sample (vmap, in chunks),
the whole ``gradient_diagnostics`` (the ``gradients`` kind: target <= 0.5 s on one core),
the same with the Lanczos Hessian, and with ``--llc`` one ``estimate_llc`` at the
:class:`LLCConfig` defaults. Each row is the median of ``--repeats`` timings after one warm-up
call (CPU time per call is printed beside wall time, and the ratio in CPU time beside the one
in wall time, since the machine may be shared).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path

from mbc_interp.analysis.dynamics.gradients import (
    GradientConfig,
    full_gradient,
    gradient_diagnostics,
    group_sample,
    per_example_gradient_blocks,
)
from mbc_interp.analysis.dynamics.llc import estimate_llc
from mbc_interp.config import RunConfig
from mbc_interp.model import build_model
from mbc_interp.tasks.losses import target_losses as example_losses
from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--llc", action="store_true", help="also time one LLC estimate")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = RunConfig()
    task = WindTunnelTask(cfg.task)
    model = build_model(cfg.model, cfg.task.d_vocab, cfg.task.seq_len, seed=0)
    batch = task.tokens[:512]
    first = task.answer_pos

    def train_step() -> None:
        model.zero_grad(set_to_none=True)
        example_losses(model, batch, first).sum(-1).mean().backward()

    gc = GradientConfig()
    rows = group_sample(task.base_index, gc.sample_size, gc.seed)

    def per_example() -> None:
        for lo in range(0, len(rows), gc.chunk_size):
            r = rows[lo : lo + gc.chunk_size]
            per_example_gradient_blocks(model, task.tokens[r], first)

    cases: list[tuple[str, Callable[[], object]]] = [
        ("baseline: train fwd+bwd, batch 512", train_step),
        (f"full-batch gradient ({len(task)} examples)", lambda: full_gradient(
            model, task.tokens, first)),
        (f"per-example gradients ({len(rows)}, vmap)", per_example),
        ("gradient_diagnostics (kind 'gradients')", lambda: gradient_diagnostics(model, task)),
        ("  + Hessian (Lanczos 30)", lambda: gradient_diagnostics(
            model, task, GradientConfig(hessian=True))),
    ]  # fmt: skip
    if args.llc:
        cases.append(("estimate_llc (LLCConfig defaults)", lambda: estimate_llc(model, task)))
    print(f"default model ({sum(p.numel() for p in model.parameters())} parameters), "
          f"{args.threads} thread(s), median of {args.repeats}")  # fmt: skip
    print(f"{'':45} {'wall s':>8} {'cpu s':>8} {'x baseline':>11} {'(cpu)':>6}")
    base = None
    for name, fn in cases:
        reps = 1 if "llc" in name or "Hessian" in name else args.repeats
        wall, cpu = timed(fn, reps)
        base = base or (wall, cpu)
        print(f"{name:45} {wall:8.3f} {cpu:8.3f} {wall / base[0]:11.1f} {cpu / base[1]:6.1f}")


if __name__ == "__main__":
    main()
