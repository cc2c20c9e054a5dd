"""What the evaluation during training costs, and what sharing each prompt across its
candidates saves.

    python benchmarks/bench_eval.py [--repeats R] [--threads T] [--n-examples N]

On the paper preset (4 layers, d_model 128, K = 20 candidates of 4 characters + EOS, scored as
whole sequences because they share first characters), at the sweep's settings (512 evaluation
rows, 128 candidate rows, ``eval_every = 50``):

- ``candidates, whole sequences``: the baseline, the K candidate sequences of 128 rows run
  through the model whole (what ``candidate_scores`` ran before prompts were shared);
- ``candidates, shared prompts``: the same scores through
  :func:`mbc_interp.model.shared_prefix_losses` (each prompt once, its keys and values shared
  by its K candidates), with the largest difference from the baseline's scores;
- ``evaluate()``: the whole evaluation (the clean and z-swapped candidates, both forwards);
- ``50 training steps``: what the evaluation is amortised over; the evaluation's share of the
  time is printed, and beside it the share with the candidates run whole (the evaluation's
  time plus, for its clean and its z-swapped candidates, the baseline's extra time).

Each time is the median of ``--repeats`` timings after one warm-up call; ratios are taken in
CPU time, since the machine may be shared.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path

from mbc_interp.config import RunConfig
from mbc_interp.model import build_model, shared_prefix_losses
from mbc_interp.tasks.losses import target_losses
from mbc_interp.tasks.registry import build_task
from mbc_interp.training.optim import make_optimizer


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--n-examples", type=int, default=20_000)
    p.add_argument("--cand-examples", type=int, default=128, help="(sweeps/paper_regime.toml)")
    p.add_argument("--eval-every", type=int, default=50, help="(sweeps/paper_regime.toml)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = RunConfig.from_dict({
        "preset": "paper", "task": {"n_examples": args.n_examples},
        "train": {"cand_examples": args.cand_examples, "eval_every": args.eval_every},
    })  # fmt: skip
    task = build_task(cfg.task)
    model = build_model(cfg.model, cfg.task.d_vocab, cfg.task.seq_len, seed=0)
    tc = cfg.train
    rows = torch.arange(tc.cand_examples)
    a, k = task.answer_pos, task.K
    prompts, cands = task.tokens[rows, : a + 1], task.candidates(rows)

    def whole() -> torch.Tensor:
        seqs = torch.cat([prompts[:, None].expand(-1, k, -1), cands], -1).reshape(len(rows) * k, -1)
        logits = model(seqs[:, :-1])[:, a:]
        losses = F.cross_entropy(logits.transpose(1, 2), seqs[:, a + 1 :], reduction="none")
        return -losses.reshape(len(rows), k, -1).sum(-1)

    def shared() -> torch.Tensor:
        return -shared_prefix_losses(model, prompts, cands).sum(-1)

    eval_rows = task.eval_rows(tc.eval_examples)
    optimizer = make_optimizer(model, cfg)
    batch = task.tokens[task.train_rows[: tc.batch_size]]

    def steps() -> None:
        for _ in range(tc.eval_every):
            loss = target_losses(model, batch, a).sum(-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    model.eval()
    with torch.inference_mode():
        diff = float((whole() - shared()).abs().max())
        table = [
            ("candidates, whole sequences (baseline)", *timed(whole, args.repeats)),
            ("candidates, shared prompts", *timed(shared, args.repeats)),
            ("evaluate()", *timed(lambda: task.evaluate(
                model, eval_rows, cand_examples=tc.cand_examples), args.repeats)),
        ]  # fmt: skip
    model.train()
    table.append((f"{tc.eval_every} training steps", *timed(steps, max(1, args.repeats // 2))))
    base = table[0][2]
    print(f"paper preset: N = {len(task):,}, K = {k}, {len(rows)} candidate rows, "
          f"{len(eval_rows)} evaluation rows, batch {tc.batch_size}; {args.threads} thread(s)")
    print(f"{'':<42}{'wall s':>9}{'cpu s':>9}{'x base':>9}")
    for name, wall, cpu in table:
        print(f"{name:<42}{wall:9.3f}{cpu:9.3f}{cpu / base:9.2f}")
    ev, train = table[2][2], table[3][2]
    print(f"largest score difference, shared vs whole: {diff:.2e} nats")
    before = ev + 2 * (table[0][2] - table[1][2])  # its clean and z-swapped candidates whole
    print(f"evaluation per {tc.eval_every} steps: {ev / (ev + train):.0%} of the time "
          f"({before / (before + train):.0%} with whole candidate sequences)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
