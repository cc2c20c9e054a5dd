"""The local learning coefficient restricted to one attention head's weights.

The same localised SGLD as :mod:`mbc_interp.analysis.dynamics.llc` (same settings, same loss), with
every weight frozen except head ``L{l}H{h}``'s slices of ``W_Q``, ``W_K``, ``W_V``, ``W_O`` and
its query/key/value biases (devinterp's weight restrictions): the head's own contribution to
the degeneracy of the loss around the checkpoint. Comparing the routing heads with a control
head tells whether the transition is carried by the circuit's weights.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from mbc_interp.analysis.dynamics.llc import LLCConfig, LLCResult, sgld_llc, training_tokens
from mbc_interp.analysis.records import head_record
from mbc_interp.tasks.losses import target_losses

HEAD_PARAMS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V")


def parse_head(label: str) -> tuple[int, int]:
    """``"L1H2"`` -> ``(1, 2)``; a ValueError naming the label otherwise."""
    try:
        layer, head = label[1:].split("H")
        return int(layer), int(head)
    except ValueError:
        raise ValueError(f"head {label!r}: expected L<layer>H<head>, e.g. L0H1") from None


def default_heads(run: Any) -> tuple[str, ...]:
    """The routing heads of the run's ``summary.json`` and, as a control, the head with the
    lowest routing score; a ValueError when the run has no routing heads yet."""
    import json

    from mbc_interp.analysis.timing.summary import SUMMARY_FILE
    from mbc_interp.store.run_store import ANALYSIS_DIR

    path = run.path / ANALYSIS_DIR / SUMMARY_FILE
    summary = json.loads(path.read_text()) if path.exists() else {}
    heads, scores = summary.get("routing_heads") or [], summary.get("routing_scores") or {}
    if not heads:
        raise ValueError(f"{path}: no routing heads to restrict the LLC to; analyse the run "
                         "first, or give them: --kind-setting "
                         "'llc_heads.heads=[\"L0H0\"]'")  # fmt: skip
    others = [h for h in scores if h not in heads]
    control = min(others, key=scores.get) if others else None
    return (*heads, *([control] if control else []))


def head_llc(model: Any, task: Any, head: str, config: LLCConfig = LLCConfig()) -> LLCResult:
    """The LLC over ``head``'s weights only (the model itself is left untouched)."""
    layer, h = parse_head(head)
    if not (0 <= layer < model.cfg.n_layers and 0 <= h < model.cfg.n_heads):
        raise ValueError(f"head {head!r}: the model has {model.cfg.n_layers} layers x "
                         f"{model.cfg.n_heads} heads")  # fmt: skip
    work = copy.deepcopy(model)
    attn = work.blocks[layer].attn
    params, masks = [], []
    for name in HEAD_PARAMS:
        p = getattr(attn, name, None)
        if p is None or not p.requires_grad:
            continue
        mask = torch.zeros_like(p)
        mask[h] = 1.0
        params.append(p)
        masks.append(mask)
    device = next(work.parameters()).device
    tokens, a = training_tokens(task).to(device), task.answer_pos
    for p in work.parameters():  # gradients only where the chain moves
        p.requires_grad_(any(p is q for q in params))

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        return target_losses(work, tokens[rows.to(device)], a).sum(-1).mean()

    with torch.no_grad():
        init = sum(float(target_losses(work, t, a).sum()) for t in tokens.split(2048))
    return sgld_llc(params, batch_loss, len(tokens), init / len(tokens), config, masks=masks)


def head_llc_records(
    model: Any, task: Any, heads: tuple[str, ...], config: LLCConfig = LLCConfig()
) -> list[dict[str, Any]]:
    """Tidy rows (``analysis = "llc_heads"``, ``component`` the head) of each head's LLC."""
    out = []
    for head in heads:
        r = head_llc(model, task, head, config)
        layer, h = parse_head(head)
        out += [head_record("llc_heads", "llc", r.llc, layer, h),
                head_record("llc_heads", "llc_std", r.llc_std, layer, h)]
    return out
