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
  the direction turns; -1: it goes back), reported at ``c`` (:func:`update_cosines`).

So that each checkpoint is analysed on its own (and incrementally), the update cosine is read
from a fixed linear sketch of the parameters stored at every checkpoint (``param_sketch`` rows,
``component = "s{i}"``): a count sketch (Charikar et al. 2002) adds ``sign_j theta_j`` into
bucket ``bucket_j`` for every parameter entry ``j`` (parameters in name order; bucket and
sign fixed by :data:`SKETCH_SEED`), over :data:`SKETCH_SIZE` buckets. Being linear, the sketch
of an update is the difference of two checkpoints' sketches, and inner products are kept in
expectation: a cosine of 1 or -1 is read exactly, any other to within about
``sqrt((1 + cos^2) / SKETCH_SIZE)`` (0.06 to 0.09).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mbc_interp.analysis.records import head_record, record

if TYPE_CHECKING:
    from jaxtyping import Float
    from torch import Tensor, nn

SKETCH_SIZE = 256
"""Buckets of the parameter sketch (rows per checkpoint; the update cosine's error ~ 1/16)."""
SKETCH_SEED = 0
"""Fixes every parameter entry's bucket and sign: the same at every checkpoint of a run."""


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
        for i, v in enumerate(parameter_sketch(model).tolist()):
            rows.append(record("weights", "param_sketch", v, component=f"s{i}"))
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


def parameter_sketch(
    model: nn.Module, size: int = SKETCH_SIZE, seed: int = SKETCH_SEED
) -> Float[Tensor, " size"]:
    """The count sketch of every parameter entry (see the module docstring), float64."""
    import torch

    with torch.no_grad():
        flat = torch.cat([p.detach().double().reshape(-1).cpu()
                          for _, p in sorted(model.named_parameters())])  # fmt: skip
    g = torch.Generator().manual_seed(seed)
    bucket = torch.randint(0, size, (flat.numel(),), generator=g)
    sign = torch.randint(0, 2, (flat.numel(),), generator=g).double() * 2 - 1
    return torch.zeros(size, dtype=torch.float64).index_add_(0, bucket, sign * flat)


def update_cosines(states: list[dict[str, Tensor]]) -> list[float]:
    """For successive state dicts ``a, b, c`` (parameters, or one ``{"sketch": ...}`` each),
    the cosine between ``b - a`` and ``c - b`` (one value per state from the third on; NaN
    where an update is zero)."""
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
