"""Weight dynamics at a checkpoint: norms per parameter group and per head, and the effective
rank of each head's OV and QK circuits; across checkpoints, the cosine between successive
updates.

Definitions:

- ``norm`` of a parameter group (``embed``, ``pos_embed``, ``unembed``, ``L{l}.attn``,
  ``L{l}.mlp``, ``L{l}.ln``): the Frobenius norm of all its tensors together; ``head_norm`` of
  head ``L{l}H{h}``: of its W_Q, W_K, W_V and W_O slices.
- ``ov_rank`` / ``qk_rank``: the effective rank ``exp(H(p))`` of ``W_V W_O`` and ``W_Q W_K^T``,
  ``p`` the singular values normalised to sum 1 (Roy & Vetterli 2007): ``r`` for a circuit with
  ``r`` equal singular values, 1 for rank one; ``ov_top_frac``: the largest singular value's
  share of their sum.
- ``update_cosine`` between checkpoints ``a < b < c``: the cosine between the flattened
  updates ``theta_b - theta_a`` and ``theta_c - theta_b`` (1: training moves along a line; ~0:
  the direction turns), reported at ``c``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mbc_interp.analysis.records import head_record, record

if TYPE_CHECKING:
    from torch import Tensor, nn


def effective_rank(matrix: Tensor) -> tuple[float, float]:
    """``exp(entropy)`` of the normalised singular values, and the top one's share."""
    import torch

    s = torch.linalg.svdvals(matrix.double())
    total = s.sum()
    if total <= 0:
        return 0.0, 0.0
    p = s / total
    entropy = -(p * p.clamp_min(1e-300).log()).sum()
    return float(entropy.exp()), float(p.max())


def parameter_group(name: str) -> str:
    """The group a TransformerLens parameter name belongs to (``blocks.0.attn.W_Q`` ->
    ``L0.attn``)."""
    parts = name.split(".")
    if parts[0] == "blocks":
        kind = parts[2]
        return f"L{parts[1]}.{'ln' if kind.startswith('ln') else kind}"
    return {"embed": "embed", "pos_embed": "pos_embed", "unembed": "unembed"}.get(parts[0], "ln")


def weight_records(model: nn.Module) -> list[dict[str, Any]]:
    """Tidy rows (``analysis = "weights"``) of the norms and circuit ranks above."""
    import torch

    rows: list[dict[str, Any]] = []
    sq: dict[str, float] = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = parameter_group(name)
            sq[g] = sq.get(g, 0.0) + float(p.double().pow(2).sum())
        for g, v in sq.items():
            rows.append(record("weights", "norm", v**0.5, component=g))
        rows.append(record("weights", "norm", sum(sq.values()) ** 0.5))
        cfg = model.cfg
        for layer in range(cfg.n_layers):
            attn = model.blocks[layer].attn
            for h in range(cfg.n_heads):
                q, k, v, o = attn.W_Q[h], attn.W_K[h], attn.W_V[h], attn.W_O[h]
                norm = sum(float(w.double().pow(2).sum()) for w in (q, k, v, o)) ** 0.5
                ov_rank, ov_top = effective_rank(v @ o)
                qk_rank, _ = effective_rank(q @ k.T)
                for metric, value in (("head_norm", norm), ("ov_rank", ov_rank),
                                      ("qk_rank", qk_rank), ("ov_top_frac", ov_top)):  # fmt: skip
                    rows.append(head_record("weights", metric, value, layer, h))
    return rows


def update_cosines(states: list[dict[str, Tensor]]) -> list[float]:
    """For successive state dicts ``a, b, c``, the cosine between ``b - a`` and ``c - b``
    (one value per state from the third on)."""
    import torch

    def flat(s: dict[str, Tensor]) -> Tensor:
        return torch.cat([s[k].double().reshape(-1) for k in sorted(s)])

    vecs = [flat(s) for s in states]
    out = []
    for a, b, c in zip(vecs, vecs[1:], vecs[2:], strict=False):
        u, w = b - a, c - b
        denom = float(u.norm() * w.norm())
        out.append(float(u @ w) / denom if denom > 0 else float("nan"))
    return out


def run_update_cosines(run: Any, steps: list[int] | None = None) -> list[tuple[int, float]]:
    """``(step, cosine)`` of successive updates over a run's checkpoints (``steps``: a subset,
    default all), loading one state at a time beside the two before it."""
    from mbc_interp.model import model_state

    steps = list(run.steps if steps is None else steps)
    out, window = [], []
    for step in steps:
        state = model_state(run.model(step))
        window = [*window[-2:], {k: v.detach().clone() for k, v in state.items()}]
        if len(window) == 3:
            out.append((step, update_cosines(window)[0]))
    return out
