"""Training throughput of our update step against a plain-PyTorch transformer of identical math.

    python benchmarks/bench_train.py [--steps N] [--threads T] [--repeats R] [--no-diag]

"Ours" is exactly what :mod:`mbc_interp.training.loop` runs per update (``_Loop._update``):
``build_model`` on the default :class:`ModelConfig` / :class:`TaskConfig` (TL ``LayerNorm``
swapped for :class:`mbc_interp.model.FastLayerNorm`), ``make_optimizer`` (AdamW, fused where
supported, else foreach), ``batch_indices`` -> ``example_losses(...).sum(-1).mean()`` ->
``zero_grad(set_to_none=True)`` -> ``backward`` -> ``step``. The baseline is a hand-written causal
transformer with the same shape and math (pre-LN blocks, per-head Q/K/V/O with biases, causal
mask, 1/sqrt(d_head), gelu MLP, final LN, unembed with bias, learned positions), driven by the
very same step code and given its optimiser by the very same ``make_optimizer`` call, so the
ratio compares the models, not the optimisers.

Before timing, the script copies the HookedTransformer's (perturbed) weights into the plain model
and asserts that logits and gradients agree, that ``FastLayerNorm`` gives TL's stock LayerNorm
logits, and that the hooks the analyses use still fire and patch, so the comparison is like for
like.

Timing: every implementation gets its own model and optimiser, warm-up steps, then ``--repeats``
rounds in which the implementations are interleaved (so background load hits them alike); each
round times ``--steps`` consecutive updates; the table shows the median round. ``cpu ms`` is
process CPU time per step (less sensitive to other jobs on a shared machine than wall time).

Rows:

- ``plain PyTorch``: the baseline, with ``make_optimizer``'s AdamW (the ratio's denominator).
- ``plain PyTorch, foreach AdamW``: the baseline with ``AdamW(foreach=True)``, for reference.
- ``ours (train.py as is)``: ``build_model`` + ``make_optimizer``, exactly as the loop uses them.
- ``[diag] ours with TL's stock LayerNorm``: the FastLayerNorm swap undone (what it buys).
- ``[diag] ours, foreach AdamW``: ``AdamW(foreach=True)`` instead of fused (what fused buys).
- ``[diag] ours, hook points bypassed``: not a usable model: every ``HookPoint`` call is
  short-circuited, to measure what TL's ~30 hook-point module calls per forward still cost.

After the table, ``--preset paper``'s model (4 layers, d_model 128) is timed eager and with
``train.compile`` (the loop's own ``training_forward``), interleaved rounds, median: the
steps/s ratio, and the compile time (the first compiled update less an eager one) with an empty
inductor cache and again with the cache the first compile left (what a second run on the same
machine pays). ``--no-compile`` skips it (a few minutes on a busy CPU). Measured twice on the
shared 2-core machine (torch 2.13, one thread): 1.04x / 1.07x wall (1.03x / 1.08x CPU time),
668 -> 644 and 667 -> 621 ms/step; compile 183 s / 139 s cold, 33 s / 19 s from the cache; the
eager step is ~75% matrix products (aten::mm, addmm, bmm), which the compiled graph still calls.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformer_lens.components import LayerNorm as TLLayerNorm
from transformer_lens.hook_points import HookPoint

from mbc_interp.config import RunConfig
from mbc_interp.model import FastLayerNorm, build_model
from mbc_interp.tasks.losses import target_losses as example_losses
from mbc_interp.tasks.wind_tunnel.evaluation import eval_rows, evaluate
from mbc_interp.tasks.wind_tunnel.task import WindTunnelTask
from mbc_interp.training import batch_indices, make_optimizer, training_forward

BASELINE = "plain PyTorch"
OURS = "ours (train.py as is)"


# -- the baseline: a plain causal transformer with TL's exact math ------------------------------
class PlainBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_head: int, d_mlp: int, n_ctx: int, eps: float):
        super().__init__()
        self.n_heads, self.d_head = n_heads, d_head
        self.ln1 = nn.LayerNorm(d_model, eps=eps)
        self.q = nn.Linear(d_model, n_heads * d_head)
        self.k = nn.Linear(d_model, n_heads * d_head)
        self.v = nn.Linear(d_model, n_heads * d_head)
        self.o = nn.Linear(n_heads * d_head, d_model)
        self.ln2 = nn.LayerNorm(d_model, eps=eps)
        self.fc_in = nn.Linear(d_model, d_mlp)
        self.fc_out = nn.Linear(d_mlp, d_model)
        causal = torch.tril(torch.ones(n_ctx, n_ctx, dtype=torch.bool))
        self.register_buffer("masked", ~causal, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(b, p, self.n_heads, self.d_head).transpose(1, 2)
        k = self.k(h).view(b, p, self.n_heads, self.d_head).transpose(1, 2)
        v = self.v(h).view(b, p, self.n_heads, self.d_head).transpose(1, 2)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.d_head)
        pattern = scores.masked_fill(self.masked[:p, :p], float("-inf")).softmax(-1)
        z = (pattern @ v).transpose(1, 2).reshape(b, p, self.n_heads * self.d_head)
        x = x + self.o(z)
        return x + self.fc_out(F.gelu(self.fc_in(self.ln2(x))))


class PlainTransformer(nn.Module):
    def __init__(self, d_vocab, n_ctx, d_model, n_heads, d_head, d_mlp, n_layers, eps=1e-5):
        super().__init__()
        self.embed = nn.Embedding(d_vocab, d_model)
        self.pos = nn.Parameter(torch.randn(n_ctx, d_model) * 0.02)
        self.blocks = nn.ModuleList(
            PlainBlock(d_model, n_heads, d_head, d_mlp, n_ctx, eps) for _ in range(n_layers)
        )
        self.ln_final = nn.LayerNorm(d_model, eps=eps)
        self.unembed = nn.Linear(d_model, d_vocab)

    @classmethod
    def like(cls, tl) -> PlainTransformer:
        c = tl.cfg
        return cls(c.d_vocab, c.n_ctx, c.d_model, c.n_heads, c.d_head, c.d_mlp, c.n_layers, c.eps)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens) + self.pos[: tokens.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))


def param_map(plain: PlainTransformer, tl) -> list[tuple[torch.Tensor, torch.Tensor, Callable]]:
    """(plain param, TL param, TL-layout -> plain-layout) for every parameter."""
    h, dm, dh = tl.cfg.n_heads, tl.cfg.d_model, tl.cfg.d_head

    def qkv(w):  # [head, d_model, d_head] -> [(head d_head), d_model]
        return w.permute(0, 2, 1).reshape(h * dh, dm)

    ident, flat, tr = (lambda w: w), (lambda b: b.reshape(-1)), (lambda w: w.T)
    out = [(plain.embed.weight, tl.embed.W_E, ident), (plain.pos, tl.pos_embed.W_pos, ident)]
    for pb, tb in zip(plain.blocks, tl.blocks, strict=True):
        a = tb.attn
        out += [
            (pb.ln1.weight, tb.ln1.w, ident),
            (pb.ln1.bias, tb.ln1.b, ident),
            (pb.q.weight, a.W_Q, qkv),
            (pb.q.bias, a.b_Q, flat),
            (pb.k.weight, a.W_K, qkv),
            (pb.k.bias, a.b_K, flat),
            (pb.v.weight, a.W_V, qkv),
            (pb.v.bias, a.b_V, flat),
            (pb.o.weight, a.W_O, lambda w: w.reshape(h * dh, dm).T),
            (pb.o.bias, a.b_O, ident),
            (pb.ln2.weight, tb.ln2.w, ident),
            (pb.ln2.bias, tb.ln2.b, ident),
            (pb.fc_in.weight, tb.mlp.W_in, tr),
            (pb.fc_in.bias, tb.mlp.b_in, ident),
            (pb.fc_out.weight, tb.mlp.W_out, tr),
            (pb.fc_out.bias, tb.mlp.b_out, ident),
        ]
    out += [
        (plain.ln_final.weight, tl.ln_final.w, ident),
        (plain.ln_final.bias, tl.ln_final.b, ident),
        (plain.unembed.weight, tl.unembed.W_U, tr),
        (plain.unembed.bias, tl.unembed.b_U, ident),
    ]
    assert len(out) == len(list(plain.parameters())) == len(list(tl.parameters())), "param count"
    return out


@torch.no_grad()
def copy_weights(plain: PlainTransformer, tl) -> None:
    for p, t, f in param_map(plain, tl):
        p.copy_(f(t))


# -- diagnostics ----------------------------------------------------------------------------------
def use_stock_layernorm(model) -> None:
    """[diagnostic] undo ``build_model``'s swap: TL's own ``LayerNorm`` code on every LN."""
    for m in model.modules():
        if type(m) is FastLayerNorm:
            m.__class__ = TLLayerNorm


class _BypassHookPoints:
    """[diagnostic] HookPoint.__call__ -> identity: skips ~30 nn.Module calls per forward."""

    def __enter__(self):
        self.saved = HookPoint.__call__
        HookPoint.__call__ = lambda self, x: x

    def __exit__(self, *exc):
        HookPoint.__call__ = self.saved


# -- checks ---------------------------------------------------------------------------------------
def check_equivalence(task: WindTunnelTask, config: RunConfig) -> dict[str, float]:
    tl = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=1)
    n_fast = sum(type(m) is FastLayerNorm for m in tl.modules())
    assert n_fast == 2 * tl.cfg.n_layers + 1, f"build_model gave {n_fast} FastLayerNorms"
    with torch.no_grad():  # move LN scales/biases and zero-initialised biases off their init
        for p in tl.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    plain = PlainTransformer.like(tl)
    copy_weights(plain, tl)
    tokens = task.tokens[:512]
    fp = task.answer_pos
    with torch.no_grad():
        ref = tl(tokens[:, :-1])
        logit_diff = (ref - plain(tokens[:, :-1])).abs().max().item()
    assert logit_diff < 1e-5, f"plain model logits differ from TL's by {logit_diff:.2e}"
    # gradients of the training loss, mapped into plain layout
    losses = []
    for m in (tl, plain):
        m.zero_grad(set_to_none=True)
        loss = example_losses(m, tokens, fp).sum(-1).mean()
        loss.backward()
        losses.append(loss.item())
    # relative to the largest gradient overall: b_K's gradient is zero in exact arithmetic
    # (softmax is shift invariant), so a per-tensor relative error would compare rounding noise
    pairs = param_map(plain, tl)
    scale = max(t.grad.abs().max().item() for _, t, _ in pairs)
    grad_diff = max((f(t.grad) - p.grad).abs().max().item() for p, t, f in pairs) / scale
    assert abs(losses[0] - losses[1]) < 1e-5, f"losses differ: {losses}"
    assert grad_diff < 1e-4, f"gradients differ (max relative {grad_diff:.2e})"
    # the adopted fix: FastLayerNorm gives TL's stock LayerNorm logits, and all the hooks we
    # rely on still fire (and patch)
    stock = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=1)
    stock.load_state_dict(tl.state_dict())
    use_stock_layernorm(stock)
    assert not any(isinstance(m, FastLayerNorm) for m in stock.modules())
    with torch.no_grad():
        fast_diff = (stock(tokens[:, :-1]) - ref).abs().max().item()
        _, cache = tl.run_with_cache(tokens[:, :-1])
    assert fast_diff < 1e-5, f"FastLayerNorm logits differ from TL's LayerNorm by {fast_diff:.2e}"
    needed = ["hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"]
    for layer in range(tl.cfg.n_layers):
        needed += [
            f"blocks.{layer}.{n}"
            for n in (
                "hook_resid_pre",
                "hook_resid_post",
                "hook_attn_out",
                "hook_mlp_out",
                "attn.hook_z",
                "attn.hook_pattern",
                "ln1.hook_scale",
                "ln2.hook_normalized",
            )
        ]
    missing = [n for n in needed if n not in cache]
    assert not missing, f"hooks did not fire with FastLayerNorm: {missing}"

    def zero_head(z, hook):
        z[:, :, 0] = 0.0
        return z

    def double_scale(s, hook):
        return s * 2

    with torch.no_grad():
        patched = tl.run_with_hooks(tokens[:, :-1], fwd_hooks=[("blocks.1.attn.hook_z", zero_head)])
        ln_patched = tl.run_with_hooks(
            tokens[:, :-1], fwd_hooks=[("blocks.0.ln1.hook_scale", double_scale)]
        )
        again = tl(tokens[:, :-1])  # hooks removed -> fast path again, same logits
    assert (patched - ref).abs().max() > 1e-3, "activation patching via hook_z had no effect"
    assert (ln_patched - ref).abs().max() > 1e-3, "a hook on ln1.hook_scale had no effect"
    assert (again - ref).abs().max() < 1e-5
    return {"logits": logit_diff, "grads_rel": grad_diff, "fast_ln_logits": fast_diff}


# -- timing ---------------------------------------------------------------------------------------
warnings.filterwarnings(  # train.py's `float(loss)`, torch >= 2.13; mirrored here on purpose
    "ignore", message=r"Converting a tensor with requires_grad=True", category=UserWarning
)


def make_runner(model, optimizer, task: WindTunnelTask, config: RunConfig, ctx=None):
    """Times ``n`` updates exactly as ``_Loop._update`` does them."""
    tc = config.train
    tokens, fp, n_rows = task.tokens, task.answer_pos, len(task)
    state = {"step": 0}

    def update() -> float:
        state["step"] += 1
        step = state["step"]
        for group in optimizer.param_groups:
            group["lr"] = tc.lr_at(step)
        idx = torch.from_numpy(batch_indices(tc.seed, step, tc.batch_size, n_rows))
        batch = tokens[idx]
        loss = example_losses(model, batch, fp).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss)

    def run(n: int) -> tuple[float, float]:
        if ctx is not None:
            ctx.__enter__()
        try:
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n):
                update()
            return (time.perf_counter() - w0) / n * 1e3, (time.process_time() - c0) / n * 1e3
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)

    return run


def adamw(model, config: RunConfig, **kind):
    tc = config.train
    return torch.optim.AdamW(
        model.parameters(), lr=tc.lr, betas=tc.betas, weight_decay=tc.weight_decay, **kind
    )


def optimizer_kind(optimizer: torch.optim.Optimizer) -> str:
    d = optimizer.defaults
    return "fused" if d.get("fused") else "foreach" if d.get("foreach") else "for-loop"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=20, help="timed updates per round (default 20)")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved rounds (default 7)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed updates first (default 10)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--no-diag", action="store_true", help="skip the diagnostic rows")
    ap.add_argument("--no-compile", action="store_true",
                    help="skip the compiled-vs-eager rows on the paper preset")  # fmt: skip
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    config = RunConfig()
    task = WindTunnelTask(config.task)
    device = torch.device("cpu")
    tc = config.train
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu | "
        f"model {config.model.n_layers}L d_model {config.model.d_model} "
        f"{config.model.n_heads} heads "
        f"d_mlp {config.model.d_mlp} | batch {tc.batch_size} x seq {task.config.seq_len} "
        f"(d_vocab {task.config.d_vocab}) | AdamW lr {tc.lr} betas {tc.betas} wd {tc.weight_decay}"
    )
    diffs = check_equivalence(task, config)
    print(
        "equivalence: max |logit diff| TL vs plain {logits:.1e}, max relative grad diff "
        "{grads_rel:.1e}; FastLayerNorm vs TL's stock LayerNorm logits {fast_ln_logits:.1e}; "
        "hooks fire and patch".format(**diffs)
    )

    def ours(seed=0, stock_ln=False):
        m = build_model(
            config.model, task.config.d_vocab, task.config.seq_len, seed=seed, device=device
        )
        if stock_ln:
            use_stock_layernorm(m)
        return m

    def plain():
        return PlainTransformer.like(ours())

    rows: dict[str, Callable] = {}
    m = plain()
    # the loop's own optimiser construction (it only reads model.parameters())
    opt = make_optimizer(m, config)
    kind = optimizer_kind(opt)
    rows[BASELINE] = make_runner(m, opt, task, config)
    print(f"optimizer: make_optimizer -> {kind} AdamW (baseline and ours alike)")
    m = plain()
    rows["plain PyTorch, foreach AdamW"] = make_runner(
        m, adamw(m, config, foreach=True), task, config
    )
    m = ours()
    opt = make_optimizer(m, config)
    assert optimizer_kind(opt) == kind
    rows[OURS] = make_runner(m, opt, task, config)
    if not args.no_diag:
        m = ours(stock_ln=True)
        rows["[diag] ours with TL's stock LayerNorm"] = make_runner(
            m, make_optimizer(m, config), task, config
        )
        m = ours()
        rows["[diag] ours, foreach AdamW"] = make_runner(
            m, adamw(m, config, foreach=True), task, config
        )
        m = ours()
        rows["[diag] ours, hook points bypassed"] = make_runner(
            m, make_optimizer(m, config), task, config, ctx=_BypassHookPoints()
        )

    for run in rows.values():
        run(args.warmup)
    wall: dict[str, list[float]] = {k: [] for k in rows}
    cpu: dict[str, list[float]] = {k: [] for k in rows}
    for _ in range(args.repeats):
        for name, run in rows.items():
            w, c = run(args.steps)
            wall[name].append(w)
            cpu[name].append(c)

    tokens_per_step = tc.batch_size * task.config.seq_len
    base = statistics.median(wall[BASELINE])
    width = max(len(k) for k in rows)
    print(
        f"\n{args.repeats} rounds x {args.steps} steps (median round; +- = half the "
        f"min-max spread); {tokens_per_step} tokens/step"
    )
    cbase = statistics.median(cpu[BASELINE])
    head = (
        f"{'implementation':<{width}}  {'ms/step':>13}  {'steps/s':>7}  {'tokens/s':>8}  "
        f"{'vs baseline':>11}  {'cpu ms':>6}  {'cpu ratio':>9}"
    )
    print(head)
    print("-" * len(head))
    for name in rows:
        med = statistics.median(wall[name])
        spread = (max(wall[name]) - min(wall[name])) / 2
        cmed = statistics.median(cpu[name])
        print(
            f"{name:<{width}}  {med:7.2f} +-{spread:4.1f}  {1e3 / med:7.1f}  "
            f"{tokens_per_step * 1e3 / med:8.0f}  {base / med:10.2f}x  "
            f"{cmed:6.2f}  {cbase / cmed:8.2f}x"
        )
    print(
        f"vs baseline: throughput ratio from wall time (implementation / plain PyTorch, both\n"
        f"with make_optimizer's {kind} AdamW); cpu ms / cpu ratio: the same from CPU time."
    )
    busy = statistics.median(wall[BASELINE]) / cbase
    if busy > 1.15:
        print(
            f"note: wall time is {busy:.2f}x CPU time for the baseline - the machine is busy with "
            "other work; the cpu ratio is the steadier comparison."
        )
    ratio = base / statistics.median(wall[OURS])
    print(f"ours / plain PyTorch: {ratio:.2f}x throughput (target >= 0.8x)")
    step_ms = statistics.median(wall[OURS])  # ms per step
    eval_overhead(config, step_ms, args.repeats)
    paper_preset(args.steps, args.repeats)
    if not args.no_compile:
        paper_compiled(args.steps, args.repeats)
    return 0


def eval_overhead(config: RunConfig, step_ms: float, repeats: int) -> None:
    """What one evaluation (loss, candidate loss, Δz: two forward passes over the evaluation
    rows) costs against the training steps between two evaluations, at default settings."""
    task = WindTunnelTask(config.task)
    model = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=0)
    rows = eval_rows(task, config.train.eval_examples)
    def timed(fn) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            with torch.inference_mode():
                fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    ms = timed(lambda: evaluate(model, task, rows, cand_examples=config.train.cand_examples))
    old = timed(lambda: example_losses(model, task.tokens, task.answer_pos))  # before Δz
    every = config.eval_interval
    train_ms = every * step_ms
    print(
        f"evaluation (loss + cand_loss + Δz on {len(rows)} examples): {ms:.1f} ms every {every} "
        f"steps = {ms / train_ms:.0%} of training wall time; the loss-only evaluation on all "
        f"{len(task)} examples it replaced: {old:.1f} ms = {old / train_ms:.0%}; extra cost of "
        f"the new measures: {(ms - old) / train_ms:+.0%} (target <= 30%)"
    )


def paper_preset(steps: int, repeats: int) -> None:
    """Training steps/s of ``--preset paper`` (4 layers, d_model 128, 36 + 3 tokens)."""
    config = RunConfig.from_dict({"preset": "paper"})
    task = WindTunnelTask(config.task)
    model = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=0)
    run = make_runner(model, make_optimizer(model, config), task, config)
    run(2)
    med = statistics.median(run(max(steps // 4, 3))[0] for _ in range(repeats))  # ms per step
    print(f"--preset paper: {1e3 / med:.1f} steps/s at batch {config.train.batch_size} "
          f"({med:.0f} ms/step, one thread)")


def paper_compiled(steps: int, repeats: int) -> None:
    """``--preset paper`` trained eager and with ``train.compile``: steps/s of each (median of
    interleaved rounds), their ratio, and the compile time cold and with a warm cache."""
    config = RunConfig.from_dict({"preset": "paper"})
    task = WindTunnelTask(config.task)

    def runner(compiled: bool):
        model = build_model(config.model, task.config.d_vocab, task.config.seq_len, seed=0)
        forward = training_forward(model, compiled)
        return make_runner(forward, make_optimizer(model, config), task, config)

    eager = runner(False)
    eager(2)
    first_eager = statistics.median(eager(1)[0] for _ in range(3)) / 1e3  # s per update
    compile_s = {}
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # cold: nothing compiled before
        for kind in ("cold cache", "warm cache"):
            torch._dynamo.reset()  # forget in-process code: the second compile reads the cache
            t0 = time.perf_counter()
            compiled = runner(True)
            compiled(1)
            compile_s[kind] = time.perf_counter() - t0 - first_eager
        compiled(2)
        n = max(steps // 4, 3)
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        cpu: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(repeats):
            for kind, run in (("eager", eager), ("compiled", compiled)):
                w, c = run(n)
                times[kind].append(w)
                cpu[kind].append(c)
    if previous is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous
    med = {k: statistics.median(v) for k, v in times.items()}  # ms per step
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    saved = (med["eager"] - med["compiled"]) / 1e3  # seconds saved per step
    print(f"\n--preset paper, eager vs train.compile ({repeats} interleaved rounds x {n} steps, "
          "median, one thread):")
    print(f"{'mode':<10}  {'ms/step':>8}  {'steps/s':>7}  {'vs eager':>8}  {'cpu ms':>6}  "
          f"{'cpu ratio':>9}")
    for kind in ("eager", "compiled"):
        print(f"{kind:<10}  {med[kind]:8.0f}  {1e3 / med[kind]:7.2f}  "
              f"{med['eager'] / med[kind]:7.2f}x  {cmed[kind]:6.0f}  "
              f"{cmed['eager'] / cmed[kind]:8.2f}x")
    print(f"compile time: {compile_s['cold cache']:.0f} s with an empty inductor cache, "
          f"{compile_s['warm cache']:.0f} s with the cache it left; break-even after "
          + (f"{compile_s['cold cache'] / saved:.0f} steps (cold)" if saved > 0 else "never"))


if __name__ == "__main__":
    sys.exit(main())
