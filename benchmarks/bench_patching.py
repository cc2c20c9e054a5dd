"""Batched activation patching against TransformerLens' loop, and what ``mbc analyze`` costs.

    python benchmarks/bench_patching.py [--checkpoints N] [--pairs 256] [--threads 1]

Checkpoints: ``--checkpoints`` models of the default :class:`ModelConfig` on the default
:class:`TaskConfig` (fresh seeds, or a chain trained ``--train-steps`` steps apart), saved into a
temporary run directory with :class:`mbc_interp.store.run_store.RunStore` and read back with
:meth:`mbc_interp.store.run.Run.model`, as ``mbc analyze`` does. Timings do not depend on the
weights.

1. Head-output patching over all heads (``get_act_patch_attn_head_out_all_pos``) on ``--pairs``
   clean/corrupt pairs: our batched engine (:func:`patch_head_out_all_pos`) against
   ``transformer_lens.patching``'s one-forward-per-head loop, both from the tokens (clean cache and
   baselines included in both). ``max |diff|`` is the largest disagreement between the two, on
   the raw effect (patched minus corrupt mean logit difference, in logits; defined even where
   the normalised one is not). Then the same ratio against the number of pairs.
2. Full analysis per checkpoint: ``analyze_checkpoint(model, task, AnalysisConfig())`` (all that
   ``mbc analyze`` computes per checkpoint), loading included, broken down by timing its parts
   (``head_attribution``, ``patch_sites`` per kind, ``logit_lens``) separately; median over the
   checkpoints.

Timing: one torch thread by default (as ``bench_train.py``); CPU time (``time.process_time``),
which other jobs on a shared machine disturb much less than wall time, with wall time alongside.
Section 1 interleaves the two implementations and keeps the best of ``--repeats``.

Why the ratio depends on the number of pairs: both implementations do about the same arithmetic
per patched copy (ours skips the blocks below a site's layer: 3/4 of TL's block work for this
2-layer model), so once a forward pass is big enough to be arithmetic-bound on a CPU, the gain
shrinks towards that; the batching gain is in the per-call overhead (TL: one ``run_with_hooks``
per head, i.e. n_layers x n_heads forward passes, against ours: one per layer), which dominates
at small batches.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # TL's per-site progress bar

import torch
import transformer_lens.patching as tlp

from mbc_interp.analysis import logit_diff, patch_head_out_all_pos
from mbc_interp.analysis.attribution import head_attribution
from mbc_interp.analysis.logit_lens import logit_lens
from mbc_interp.analysis.patching import SITE_KINDS, patch_sites
from mbc_interp.analysis.timeline import AnalysisConfig, _example_rows, analyze_checkpoint
from mbc_interp.config import RunConfig
from mbc_interp.model import build_model, model_state
from mbc_interp.store.run import Run, load_run
from mbc_interp.store.run_store import RunStore
from mbc_interp.tasks.wind_tunnel.task import PatchingPairs, WindTunnelTask, sequence_nll

TARGET = 5.0
PAIR_COUNTS = (16, 64, 256)


# -- the reference ------------------------------------------------------------------------------
def tl_head_out_all_pos(model, pairs: PatchingPairs) -> torch.Tensor:
    """TL's one-forward-per-head loop; returns the raw effect (patched - corrupt, logits)."""
    with torch.no_grad():
        _, clean_cache = model.run_with_cache(pairs.clean_tokens)
        corrupt = logit_diff(model(pairs.corrupt_tokens), pairs).mean()
        return tlp.get_act_patch_attn_head_out_all_pos(
            model,
            pairs.corrupt_tokens,
            clean_cache,
            lambda logits: logit_diff(logits, pairs).mean() - corrupt,
        )


def ours_head_out_all_pos(model, task: WindTunnelTask, pairs: PatchingPairs) -> torch.Tensor:
    return patch_head_out_all_pos(model, task, pairs, threshold=0).raw


# -- timing -------------------------------------------------------------------------------------
def timed(fn: Callable, *args, **kwargs) -> tuple[float, float, Any]:
    """(wall ms, CPU ms, result) of one call."""
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - w0) * 1e3, (time.process_time() - c0) * 1e3, result


def race(repeats: int, ours: Callable, tl: Callable) -> dict[str, Any]:
    """Interleaved best-of-``repeats`` (wall and CPU separately) of two zero-argument calls."""
    best = {k: float("inf") for k in ("ours_wall", "ours_cpu", "tl_wall", "tl_cpu")}
    out: dict[str, Any] = {}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("tl", tl)):
            wall, cpu, out[name] = timed(fn)
            best[f"{name}_wall"] = min(best[f"{name}_wall"], wall)
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], cpu)
    return {**best, "diff": float((out["ours"] - out["tl"]).abs().max())}


# -- checkpoints --------------------------------------------------------------------------------
def train_steps(model, task: WindTunnelTask, steps: int, lr: float = 1e-3) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = sequence_nll(model(task.tokens).log_softmax(-1), task.tokens, task.loss_mask)
        opt.zero_grad()
        loss.mean().backward()
        opt.step()


def write_run(path: Path, config: RunConfig, task: WindTunnelTask, n: int, steps: int) -> Run:
    """A run directory holding ``n`` checkpoints (steps 0..n-1) of the default model."""
    store = RunStore(path)
    store.create({"format": 1, "config": config.to_dict(), "task_fingerprint": task.fingerprint})
    model = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=0)
    for i in range(n):
        if steps and i:
            train_steps(model, task, steps)
        elif i:
            model = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=i)
        store.save_checkpoint(i, i * config.tokens_per_step, model_state(model), None)
    return load_run(path)


# -- sections -----------------------------------------------------------------------------------
def head_patching(run: Run, task: WindTunnelTask, n_pairs: int, repeats: int) -> float:
    pairs = task.patching_pairs(n_pairs)
    header = f"{'checkpoint':>10} {'ours ms':>9} {'TL ms':>9} {'ratio':>7} {'max |diff|':>11}"
    print(
        f"\n== head_out_all_pos patching, {n_pairs} pairs: CPU ms, best of {repeats}, "
        "ours and TL interleaved =="
    )
    print(header)
    print("-" * len(header))
    totals = dict.fromkeys(("ours_wall", "ours_cpu", "tl_wall", "tl_cpu"), 0.0)
    worst = 0.0
    for step in run.steps:
        model = run.model(step, device="cpu")
        r = race(
            repeats,
            lambda m=model: ours_head_out_all_pos(m, task, pairs),
            lambda m=model: tl_head_out_all_pos(m, pairs),
        )
        for k in totals:
            totals[k] += r[k]
        worst = max(worst, r["diff"])
        print(
            f"{step:>10} {r['ours_cpu']:>9.1f} {r['tl_cpu']:>9.1f} "
            f"{r['tl_cpu'] / r['ours_cpu']:>6.2f}x {r['diff']:>11.2e}"
        )
    print("-" * len(header))
    ratio = totals["tl_cpu"] / totals["ours_cpu"]
    print(
        f"{'total':>10} {totals['ours_cpu']:>9.1f} {totals['tl_cpu']:>9.1f} {ratio:>6.2f}x "
        f"{worst:>11.2e}"
    )
    print("max |diff|: largest |ours - TL| raw patching effect over the heads, in logits")
    print(
        f"wall clock: ours {totals['ours_wall']:.1f} ms, TL {totals['tl_wall']:.1f} ms, "
        f"ratio {totals['tl_wall'] / totals['ours_wall']:.2f}x"
    )
    return ratio


def ratio_vs_pairs(run: Run, task: WindTunnelTask, repeats: int) -> None:
    model = run.model(run.steps[0], device="cpu")
    sites = model.cfg.n_layers * model.cfg.n_heads
    print(
        f"\n== the same against the number of pairs (checkpoint {run.steps[0]}; TL: {sites} "
        f"forward passes, one per head; ours: {model.cfg.n_layers}, one per layer) =="
    )
    header = (
        f"{'pairs':>6} {'repeats':>8} {'ours ms':>9} {'TL ms':>9} {'ratio':>7} "
        f"{'ours ms/pair':>13} {'TL ms/pair':>11}"
    )
    print(header)
    print("-" * len(header))
    for n in PAIR_COUNTS:
        pairs = task.patching_pairs(n)
        reps = min(50, repeats * max(1, 256 // n))  # small batches are fast: time them more
        r = race(
            reps,
            lambda p=pairs: ours_head_out_all_pos(model, task, p),
            lambda p=pairs: tl_head_out_all_pos(model, p),
        )
        print(
            f"{n:>6} {reps:>8} {r['ours_cpu']:>9.2f} {r['tl_cpu']:>9.2f} "
            f"{r['tl_cpu'] / r['ours_cpu']:>6.2f}x {r['ours_cpu'] / n:>13.3f} "
            f"{r['tl_cpu'] / n:>11.3f}"
        )
    print(
        "CPU ms, best of the repeats. Per-call overhead dominates at few pairs, where batching\n"
        "the heads of a layer into one forward pass pays most; at many pairs both are bound by\n"
        "the same arithmetic (ours skips the blocks below a head's layer) and the ratio falls."
    )


def full_analysis(run: Run, task: WindTunnelTask) -> None:
    config = AnalysisConfig()
    print(
        "\n== full analysis per checkpoint: analyze_checkpoint(model, task, AnalysisConfig()) "
        f"==\n{config.n_pairs} patching pairs, {config.n_examples} examples for attribution and "
        f"the logit lens, patch kinds {', '.join(config.patch_kinds)}"
    )
    examples = _example_rows(task, config)
    pairs = task.patching_pairs(min(config.n_pairs, len(task)), config.pair_seed)
    kinds = {k.name: k for k in SITE_KINDS}
    # the parts, as analyze_checkpoint calls them
    parts: dict[str, Callable] = {
        "attribution (head_attribution)": lambda m: head_attribution(m, task, examples)
    }
    for name in config.patch_kinds:
        if not (name == "mlp_out" and run.config.model.attn_only):
            parts[f"patching {name} (patch_sites)"] = lambda m, k=kinds[name]: patch_sites(
                m, task, k, pairs
            )
    parts["logit lens (logit_lens)"] = lambda m: logit_lens(m, task, examples)

    load, whole, rest = "load checkpoint (Run.model)", "analyze_checkpoint", "rest"
    cpu: dict[str, list[float]] = {k: [] for k in (load, whole, *parts, rest)}
    wall: dict[str, list[float]] = {k: [] for k in cpu}

    def record(name: str, w: float, c: float) -> None:
        wall[name].append(w)
        cpu[name].append(c)

    for step in run.steps:
        w, c, model = timed(run.model, step, device="cpu")
        record(load, w, c)
        w, c, _ = timed(analyze_checkpoint, model, task, config)
        record(whole, w, c)
        for name, fn in parts.items():
            record(name, *timed(fn, model)[:2])
        record(
            rest,
            wall[whole][-1] - sum(wall[k][-1] for k in parts),
            cpu[whole][-1] - sum(cpu[k][-1] for k in parts),
        )

    med = {k: statistics.median(v) for k, v in cpu.items()}
    med_wall = {k: statistics.median(v) for k, v in wall.items()}
    total = med[load] + med[whole]
    width = max(len(k) for k in cpu) + 2
    header = f"{'part':<{width}} {'CPU ms/ckpt':>12} {'wall ms/ckpt':>13} {'share':>7}"
    print(
        f"median over {len(run.steps)} checkpoints; share = of CPU time per checkpoint "
        "(load + analyze_checkpoint)"
    )
    print(header)
    print("-" * len(header))

    def row(name: str, label: str | None = None) -> None:
        print(
            f"{label or name:<{width}} {med[name]:>12.1f} {med_wall[name]:>13.1f} "
            f"{med[name] / total:>7.1%}"
        )

    row(load)
    row(whole)
    for name in (*parts, rest):
        row(name, f"  {name}")
    print("-" * len(header))
    print(
        f"{'per checkpoint':<{width}} {total:>12.1f} "
        f"{med_wall[load] + med_wall[whole]:>13.1f} {1:>7.1%}"
    )
    print(
        f"=> about {1e3 / total:.2f} checkpoints/s on {torch.get_num_threads()} thread(s). The "
        "parts were timed separately; 'rest' is\nanalyze_checkpoint minus their sum (tidy rows; "
        "drawing pairs and examples), negative only by timing noise."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=int, default=4, help="default 4")
    parser.add_argument("--pairs", type=int, default=256, help="patching pairs (default 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many (default 3)")
    parser.add_argument("--train-steps", type=int, default=0, help="steps between checkpoints")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    config = RunConfig()
    task = WindTunnelTask(config.task)
    m = config.model
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu | {task!r} | "
        f"model {m.n_layers}L d_model {m.d_model} {m.n_heads} heads d_mlp {m.d_mlp} | "
        f"{args.checkpoints} checkpoints"
        + (f", {args.train_steps} training steps apart" if args.train_steps else " (fresh seeds)")
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_patching_") as tmp:
        run = write_run(Path(tmp) / "run", config, task, args.checkpoints, args.train_steps)
        # warm-up both paths once (first-call allocation, lazy imports)
        warm = run.model(run.steps[0], device="cpu")
        warm_pairs = task.patching_pairs(args.pairs)
        ours_head_out_all_pos(warm, task, warm_pairs)
        tl_head_out_all_pos(warm, warm_pairs)

        ratio = head_patching(run, task, args.pairs, args.repeats)
        ratio_vs_pairs(run, task, args.repeats)
        full_analysis(run, task)
    print(f"\n(benchmark took {time.perf_counter() - start:.0f} s)")
    print(
        f"batched head patching vs transformer_lens.patching loop: {ratio:.1f}x "
        f"(target >= {TARGET:g}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
