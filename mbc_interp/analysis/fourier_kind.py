"""The ``fourier`` analysis kind: Nanda et al.'s progress measures at one checkpoint.

Rows (``analysis = "fourier"``, ``kind`` = the settings' ``freqs_from``): ``gini``,
``restricted_loss``, ``excluded_loss``, ``excluded_gain`` and ``excluded_gain_se``,
``clean_loss`` (training pairs) and ``full_loss`` (all pairs) over the ``p`` answer logits,
``weight_norm`` (the L2 norm of every parameter, from :mod:`mbc_interp.analysis.dynamics.weights`;
its square is Nanda et al.'s "total sum of squared weights"), ``n_key_freqs``, one ``key_freq`` row
per key frequency (``component = "k{k}"``, value ``k``) and, per frequency ``k``, the
embedding's ``embed_norm`` and the logits' ``logit_share`` (its share of the frequency energy).

Needs a task with :class:`~mbc_interp.tasks.modular_addition.capability.HasModularInputs`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from mbc_interp.analysis.fourier_settings import FourierConfig
from mbc_interp.analysis.records import record

if TYPE_CHECKING:
    from jaxtyping import Float
    from torch import Tensor

__all__ = ["answer_logits", "final_frequencies", "final_settings", "fourier_records"]

WHAT = "the fourier analysis kind"


def _require(task: Any) -> None:
    from mbc_interp.tasks.modular_addition.capability import HasModularInputs
    from mbc_interp.tasks.protocol import require

    require(task, HasModularInputs, WHAT)


def answer_logits(model: Any, task: Any) -> Float[Tensor, "p p p"]:
    """The ``p`` answer logits at the answer position for every pair ``(a, b)``, as
    ``[a, b, c]`` (float64; the ``=`` token's logit dropped)."""
    import torch

    _require(task)
    p = task.modulus
    rows = torch.arange(len(task))
    a, b = task.operands(rows)
    device = next(model.parameters()).device
    with torch.inference_mode():
        logits = model(task.tokens[rows, : task.answer_pos + 1].to(device))
    out = torch.empty(p, p, p, dtype=torch.float64)
    out[a, b] = logits[:, task.answer_pos, :p].double().cpu()
    return out


def _train_mask(task: Any) -> Any:
    import torch

    p = task.modulus
    mask = torch.zeros(p * p, dtype=torch.bool)
    a, b = task.operands(task.train_rows)
    mask[a * p + b] = True
    return mask


def final_frequencies(model: Any, task: Any, share: float) -> tuple[int, ...]:
    """The key frequencies of ``model`` (the final checkpoint) by the share rule."""
    from mbc_interp.analysis.fourier import key_frequencies, logit_frequency_energy

    return key_frequencies(logit_frequency_energy(answer_logits(model, task)), share)


def final_settings(run: Any, settings: FourierConfig | None = None) -> FourierConfig:
    """``settings`` with ``freqs`` found at the run's last checkpoint (``freqs_from =
    "final"``): what an analysis over the run passes to every checkpoint."""
    settings = FourierConfig() if settings is None else settings
    if settings.freqs_from != "final" or settings.freqs:
        return settings  # the checkpoint's own, or given
    model = run.model(run.steps[-1])
    freqs = final_frequencies(model, run.task, settings.share)
    return replace(settings, freqs_from="final", freqs=freqs)


def fourier_records(
    model: Any, task: Any, settings: FourierConfig | None = None, state: object = None
) -> list[dict[str, Any]]:
    """The registry's run function: the rows of the module docstring at one checkpoint."""
    from mbc_interp.analysis.dynamics.weights import weight_records
    from mbc_interp.analysis.fourier import fourier_measures

    _require(task)
    settings = FourierConfig() if settings is None else settings
    if settings.freqs_from == "final" and not settings.freqs:
        raise ValueError(
            "fourier.freqs_from = 'final' needs the final checkpoint's key frequencies as "
            "fourier.freqs: mbc_interp.analysis.fourier_kind.final_settings(run) finds them "
            "(or --kind-setting 'fourier.freqs=[...]'); or use fourier.freqs_from = 'each'"
        )
    p = task.modulus
    freqs = settings.freqs if settings.freqs_from == "final" else None
    m = fourier_measures(model.W_E[:p].detach().cpu(), answer_logits(model, task),
                         _train_mask(task), freqs, settings.share)  # fmt: skip
    kind = settings.freqs_from
    out = [record("fourier", name, getattr(m, name), kind=kind)
           for name in ("gini", "restricted_loss", "excluded_loss", "excluded_gain",
                        "excluded_gain_se", "clean_loss", "full_loss")]  # fmt: skip
    norm = next(r["value"] for r in weight_records(model)
                if r["metric"] == "norm" and r["component"] == "all")  # fmt: skip
    out.append(record("fourier", "weight_norm", norm, kind=kind))
    out.append(record("fourier", "n_key_freqs", len(m.freqs), kind=kind))
    out += [record("fourier", "key_freq", k, kind=kind, component=f"k{k}") for k in m.freqs]
    total = float(m.logit_energy.sum())
    for k in range(1, len(m.embed_norms) + 1):
        share = float(m.logit_energy[k - 1]) / total if total > 0 else float("nan")
        out.append(record("fourier", "embed_norm", float(m.embed_norms[k - 1]), kind=kind,
                          component=f"k{k}"))  # fmt: skip
        out.append(record("fourier", "logit_share", share, kind=kind, component=f"k{k}"))
    return out
