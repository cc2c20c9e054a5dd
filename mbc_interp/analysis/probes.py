"""Linear probes: what the residual stream at the answer position says, layer by layer.

For each layer's input (``resid_pre`` of layers 0..L-1) and the final residual
(``resid_post`` of the last layer), a ridge-regression probe onto one-hot targets (a linear
classifier: least squares with an intercept and an L2 penalty of :data:`RIDGE` x the
features' mean variance, the predicted class the largest output) is fitted on a fixed seeded
75% of the task's evaluation rows and scored on the other 25%. Targets: the task's named labels
(:class:`~mbc_interp.tasks.protocol.HasProbeTargets`; the wind tunnel's ``z``, which of B's K
selectors the row carries, and ``first``, the first target token; modular addition's ``a``,
``b`` and ``c``), the row's ``kind``. ``probe_acc`` is the held-out accuracy; ``probe_chance``
the accuracy of always predicting the training split's most common class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from mbc_interp.analysis.records import record
from mbc_interp.core.checks import check_field, is_int
from mbc_interp.tasks.protocol import HasProbeTargets, require

if TYPE_CHECKING:
    from jaxtyping import Float, Int
    from torch import Tensor

RIDGE = 1e-2
TRAIN_FRAC = 0.75


@dataclass(frozen=True)
class ProbeConfig:
    """Rows probed (``n_examples``: the task's ``eval_rows`` bound) and the split's seed."""

    n_examples: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="probes")

        need(is_int(self.n_examples) and self.n_examples >= 8, "n_examples", "must be an int >= 8")
        need(is_int(self.seed) and self.seed >= 0, "seed", "must be an int >= 0")


def probe_accuracy(
    features: Float[Tensor, "n d"],
    labels: Int[Tensor, " n"],
    train: Int[Tensor, " n_train"],
    test: Int[Tensor, " n_test"],
) -> tuple[float, float]:
    """Held-out accuracy of the ridge probe, and the majority-class baseline's."""
    import torch

    x = features.double()
    mu = x[train].mean(0)
    x = x - mu
    classes, y = labels.unique(return_inverse=True)
    onehot = torch.nn.functional.one_hot(y, len(classes)).double()
    xt = x[train]
    penalty = RIDGE * max(float(xt.pow(2).mean()), 1e-12) * len(train)
    eye = torch.eye(x.shape[1], dtype=x.dtype)
    prior = onehot[train].mean(0)
    w = torch.linalg.solve(xt.T @ xt + penalty * eye, xt.T @ (onehot[train] - prior))
    pred = (x[test] @ w + prior).argmax(-1)
    acc = float((pred == y[test]).double().mean())
    majority = int(y[train].bincount().argmax())
    return acc, float((y[test] == majority).double().mean())


def probe_records(
    model: Any, task: HasProbeTargets, config: ProbeConfig = ProbeConfig()
) -> list[dict[str, Any]]:
    """Tidy rows (``analysis = "probes"``, ``component`` the residual site, ``kind`` the
    target) of each probe's held-out accuracy and its baseline."""
    import torch

    require(task, HasProbeTargets, "analysis kind 'probes'")
    rows = task.eval_rows(config.n_examples, seed=config.seed)
    tokens = task.tokens[rows]
    n_layers = model.cfg.n_layers
    sites = [f"blocks.{l}.hook_resid_pre" for l in range(n_layers)]
    sites.append(f"blocks.{n_layers - 1}.hook_resid_post")
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens[:, :-1], names_filter=lambda n: n in sites)
    g = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(rows), generator=g)
    cut = int(TRAIN_FRAC * len(rows))
    train, test = order[:cut], order[cut:]
    targets = task.probe_targets(rows)
    out: list[dict[str, Any]] = []
    for i, site in enumerate(sites):
        label = f"resid_pre L{i}" if i < n_layers else "resid_post final"
        feats = cache[site][:, task.answer_pos]
        for name, y in targets.items():
            acc, chance = probe_accuracy(feats, y, train, test)
            where = {"kind": name, "component": label, "layer": i, "pos": task.answer_pos}
            out += [record("probes", "probe_acc", acc, **where),
                    record("probes", "probe_chance", chance, **where)]  # fmt: skip
    return out
