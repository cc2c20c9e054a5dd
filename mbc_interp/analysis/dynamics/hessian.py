"""The loss Hessian's extreme eigenvalues by Lanczos on Hessian-vector products.

Double-backward autograd gives ``H v`` without forming H; ``iters`` Lanczos steps with full
re-orthogonalisation give Ritz values whose extremes converge first. Off by default in
:class:`mbc_interp.analysis.dynamics.gradients.GradientConfig` (``hessian=True``): each step costs
about two backward passes over the probed examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class HessianResult:
    """Extreme Ritz values and how the gradient lines up with the lowest Ritz vector."""

    max_eig: float
    min_eig: float
    grad_cos_min: float
    """|cos| between the gradient and the lowest eigenvector (sign is arbitrary)."""
    iters: int

    def metrics(self) -> dict[str, float]:
        return {
            "hessian_max": self.max_eig,
            "hessian_min": self.min_eig,
            "hessian_grad_cos_min": self.grad_cos_min,
        }


def lanczos(
    hvp: Callable[[Tensor], Tensor], dim: int, iters: int, *, seed: int = 0, dtype=torch.float64
) -> tuple[Float[Tensor, " k"], Float[Tensor, "dim k"]]:
    """Ritz values (ascending) and vectors of a symmetric operator after ``iters`` steps."""
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(dim, generator=g, dtype=dtype)
    q /= q.norm()
    Q = [q]
    alphas, betas = [], []
    for j in range(min(iters, dim)):
        w = hvp(Q[j]).to(dtype)
        alpha = torch.dot(w, Q[j])
        alphas.append(alpha)
        basis = torch.stack(Q, 1)
        w = w - basis @ (basis.T @ w)  # full re-orthogonalisation (twice is enough)
        w = w - basis @ (basis.T @ w)
        beta = w.norm()
        if j == min(iters, dim) - 1 or beta < 1e-10 * (alpha.abs() + 1):
            break
        betas.append(beta)
        Q.append(w / beta)
    k = len(alphas)
    T = torch.diag(torch.stack(alphas))
    if k > 1:
        off = torch.stack(betas[: k - 1])
        T += torch.diag(off, 1) + torch.diag(off, -1)
    evals, evecs = torch.linalg.eigh(T)
    return evals, torch.stack(Q[:k], 1) @ evecs


def hessian_extremes(
    loss_fn: Callable[[], Tensor],
    params: list[Tensor],
    gradient: Float[Tensor, " p"],
    iters: int,
    *,
    seed: int = 0,
) -> HessianResult:
    """Lanczos on the Hessian of ``loss_fn()`` w.r.t. ``params`` (flattened in order)."""
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    flat = torch.cat([g.flatten() for g in grads])

    def hvp(v: Tensor) -> Tensor:
        v = v.to(flat)
        hv = torch.autograd.grad(torch.dot(flat, v), params, retain_graph=True, allow_unused=True)
        return (
            torch.cat(
                [
                    (h if h is not None else torch.zeros_like(p)).flatten()
                    for h, p in zip(hv, params, strict=True)
                ]
            )
            .detach()
            .cpu()
        )

    evals, evecs = lanczos(hvp, flat.numel(), iters, seed=seed)
    low = evecs[:, 0]
    gd = gradient.detach().cpu().double()
    cos = float((low @ gd).abs() / (low.norm() * gd.norm()).clamp_min(1e-300))
    return HessianResult(float(evals[-1]), float(evals[0]), cos, len(evals))
