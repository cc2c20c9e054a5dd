"""Does modular addition grok here, and when do Nanda et al.'s progress measures move?

Trains a one-layer ReLU transformer (no LayerNorm) full batch on a seeded share of ``a + b mod
p`` with AdamW (lr 1e-3, weight decay 1.0, betas (0.9, 0.98); Nanda et al. 2023 use p = 113,
30% with the same optimiser), the loss only at the answer position (:func:`target_losses`).
Every ``--every`` steps it prints the training/test loss and accuracy and the Fourier measures
with the checkpoint's own key frequencies (``each``: nothing from the future). At the end it
re-measures every snapshot with the *final* model's key frequencies (Nanda et al.'s choice)
and prints the timeline of events, each read as the first evaluation from which the condition
holds at every later one ("held"):

- train acc = 1; test acc >= 0.5; test acc >= 0.99;
- excluded_gain > 3 SE (final frequencies);
- restricted loss below half its initial value (final frequencies), below 0.1 nats.

Usage: ``python examples/grokking_check.py [--p 59] [--steps 6000] [--seed 0] [--lr 1e-3]``
(one torch thread; ~10 steps/s on a laptop core at the defaults).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from mbc_interp.analysis.fourier import fourier_measures, key_frequencies, logit_frequency_energy
from mbc_interp.analysis.fourier_kind import _train_mask, answer_logits
from mbc_interp.analysis.weights import weight_records
from mbc_interp.tasks.losses import target_losses
from mbc_interp.model import ModelConfig, build_model
from mbc_interp.tasks.modular_addition.config import ModularAdditionConfig
from mbc_interp.tasks.modular_addition.task import ModularAdditionTask

ARCH = ModelConfig(n_layers=1, d_model=128, n_heads=4, d_mlp=512, act_fn="relu",
                   normalization="none")  # fmt: skip


def weight_norm(model: torch.nn.Module) -> float:
    return next(r["value"] for r in weight_records(model)
                if r["metric"] == "norm" and r["component"] == "all")  # fmt: skip


def measure(model, task, freqs=None):
    p = task.modulus
    return fourier_measures(model.W_E[:p].detach(), answer_logits(model, task),
                            _train_mask(task), freqs)  # fmt: skip


def held(steps: list[int], ok: list[bool]) -> int | None:
    """The first step from which ``ok`` holds at every later evaluation."""
    first = None
    for s, good in zip(steps, ok, strict=True):
        if not good:
            first = None
        elif first is None:
            first = s
    return first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=59)
    ap.add_argument("--train-frac", type=float, default=0.4)
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0, help="model initialisation seed")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--every", type=int, default=250)
    args = ap.parse_args()
    torch.set_num_threads(1)

    task = ModularAdditionTask(ModularAdditionConfig(args.p, args.train_frac, args.split_seed))
    print(task)
    model = build_model(ARCH, task.config.d_vocab, n_ctx=3, seed=args.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd,
                            betas=(0.9, 0.98))  # fmt: skip
    train_tokens = task.tokens[task.train_rows]
    everything = torch.arange(len(task))
    snapshots: dict[int, dict[str, torch.Tensor]] = {}
    evals: dict[int, dict] = {}
    print(f"{'step':>6} {'train_l':>8} {'train_a':>7} {'test_l':>8} {'test_a':>6} | each: "
          f"{'gini':>5} {'restr':>7} {'excl':>7} {'gain':>8} {'±se':>7} {'|w|':>6}  key freqs")
    t0 = time.time()
    for step in range(args.steps + 1):
        if step % args.every == 0:
            model.eval()
            ev = task.evaluate(model, everything)
            m = measure(model, task)
            evals[step] = ev
            snapshots[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            print(f"{step:6d} {ev['loss']:8.4f} {ev['acc']:7.3f} {ev['test_loss']:8.4f} "
                  f"{ev['test_acc']:6.3f} |       {m.gini:5.3f} {m.restricted_loss:7.3f} "
                  f"{m.excluded_loss:7.3f} {m.excluded_gain:8.4f} {m.excluded_gain_se:7.4f} "
                  f"{weight_norm(model):6.2f}  {list(m.freqs) if len(m.freqs) <= 8 else len(m.freqs)}",
                  flush=True)  # fmt: skip
            model.train()
        if step == args.steps:
            break
        loss = target_losses(model, train_tokens, task.answer_pos).sum(-1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    print(f"trained {args.steps} steps in {time.time() - t0:.0f} s")

    final_logits = answer_logits(model, task)
    energy = logit_frequency_energy(final_logits)
    freqs = key_frequencies(energy)
    share = energy / energy.sum()
    top = share.argsort(descending=True)[:10]
    print(f"final key frequencies (>= 95% of the logits' frequency energy): {list(freqs)}")
    print("final top logit shares: " + ", ".join(f"k{int(k) + 1}:{float(share[k]):.4f}"
                                                 for k in top))  # fmt: skip
    embed_sq = measure(model, task).embed_norms.pow(2)
    print(f"final key frequencies of the embedding by the same rule: "
          f"{list(key_frequencies(embed_sq))}")
    print(f"\nwith the final key frequencies {list(freqs)}:")
    print(f"{'step':>6} {'test_a':>6} {'gini':>5} {'restr':>7} {'excl':>7} {'gain':>8} "
          f"{'±se':>7} {'gain/se':>8} {'|w|':>6}")
    steps, rows = sorted(snapshots), []
    for step in steps:
        model.load_state_dict(snapshots[step])
        m = measure(model, task, freqs)
        rows.append((m, weight_norm(model)))
        print(f"{step:6d} {evals[step]['test_acc']:6.3f} {m.gini:5.3f} {m.restricted_loss:7.3f} "
              f"{m.excluded_loss:7.3f} {m.excluded_gain:8.4f} {m.excluded_gain_se:7.4f} "
              f"{m.excluded_gain / m.excluded_gain_se:8.1f} {rows[-1][1]:6.2f}")  # fmt: skip
    r0 = rows[0][0].restricted_loss
    events = {
        "train acc = 1": [evals[s]["acc"] == 1.0 for s in steps],
        "excluded_gain > 3 SE": [m.excluded_gain > 3 * m.excluded_gain_se for m, _ in rows],
        "restricted loss < half its initial": [m.restricted_loss < r0 / 2 for m, _ in rows],
        "restricted loss < 0.1": [m.restricted_loss < 0.1 for m, _ in rows],
        "test acc >= 0.5": [evals[s]["test_acc"] >= 0.5 for s in steps],
        "test acc >= 0.99": [evals[s]["test_acc"] >= 0.99 for s in steps],
        "test loss < log p / 2": [evals[s]["test_loss"] < math.log(args.p) / 2 for s in steps],
    }
    print("\ntimeline (first evaluation from which it holds to the end):")
    for name, ok in events.items():
        print(f"  {name:36s} {held(steps, ok)}")


if __name__ == "__main__":
    main()
