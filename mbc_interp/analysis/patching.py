"""Activation patching on clean/corrupt pairs (same B, different z), all sites of a kind batched.

Direction: denoising, as in ``transformer_lens.patching``: run the CORRUPT prompts and write one
CLEAN activation in (one site at a time). Metric: the mean over pairs of the logit difference
``logit[clean answer] - logit[corrupt answer]`` at the answer position (SEP), reported raw
(``patched - corrupt``, in logits) and normalised ``(patched - corrupt) / (clean - corrupt)``:
0 = the corrupt run, 1 = the clean run.

Engine (:func:`patch_sites`): TL runs one forward pass per site. Here, for the S sites of one
layer, the corrupt prompts are tiled S times into one batch and a hook writes the clean activation
into copy ``s`` at site ``s`` only (a boolean mask). That forward pass starts at the sites' layer,
from the cached corrupt residual stream (``start_at_layer``): the blocks below are identical in
every copy, so they are not recomputed. So one forward per layer, chunked further only when
``max_batch`` (sequences per forward pass: pairs x copies) requires.

On the loss plateau the model ignores z, clean and corrupt give the same logit difference and the
ratio is noise; the normalised value is then NaN and ``normalised_defined`` is False (see
:data:`UNDEFINED_BELOW`). The raw effect stays meaningful.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pandas as pd
import torch
from jaxtyping import Bool, Float
from torch import Tensor
from transformer_lens import HookedTransformer
from transformer_lens.utilities import get_act_name

from mbc_interp.analysis.sites import (  # re-exported: the site kinds are this module's API
    ATTN_OUT,
    HEAD_OUT_ALL_POS,
    HEAD_OUT_BY_POS,
    MLP_OUT,
    RESID_PRE,
    SITE_KINDS,
    SiteKind,
)
from mbc_interp.tasks.pairs import PatchingPairs
from mbc_interp.tasks.protocol import HasSelector

__all__ = [
    "ATTN_OUT",
    "HEAD_OUT_ALL_POS",
    "HEAD_OUT_BY_POS",
    "MLP_OUT",
    "RESID_PRE",
    "SITE_KINDS",
    "UNDEFINED_BELOW",
    "PatchingResult",
    "SiteKind",
    "logit_diff",
    "patch_attn_out",
    "patch_head_out_all_pos",
    "patch_head_out_by_pos",
    "patch_mlp_out",
    "patch_resid_pre",
    "patch_sites",
]

UNDEFINED_BELOW: float = 0.1
"""Normalisation is undefined (NaN) when ``|clean - corrupt|`` mean logit diff is below this, in
logits: ratios over a near-zero denominator are noise (the plateau, where z is ignored)."""


@dataclass(frozen=True)
class PatchingResult:
    """Patching effects for every site of one kind; tensors are shaped like TL's output."""

    kind: str
    axes: tuple[str, ...]
    values: Float[Tensor, "*site"]
    """Normalised effect (0 = corrupt, 1 = clean); NaN where not ``normalised_defined``."""
    raw: Float[Tensor, "*site"]
    """Patched minus corrupt mean logit difference, in logits."""
    raw_se: Float[Tensor, "*site"]
    """Standard error of ``raw`` over the pairs: its noise floor (defined on the plateau)."""
    clean_logit_diff: float
    corrupt_logit_diff: float
    normalised_defined: bool
    threshold: float
    position_labels: tuple[str, ...]
    n_pairs: int

    def site_label(self, index: tuple[int, ...]) -> str:
        named = dict(zip(self.axes, index, strict=True))
        head = f"H{named['head']}" if "head" in named else ""
        return f"L{named['layer']}{head}"

    def to_records(self) -> list[dict]:
        """One row per (site, metric): ``patch_norm`` (normalised) and ``patch_raw`` (logits)."""
        rows = []
        for index in itertools.product(*(range(s) for s in self.values.shape)):
            named = dict(zip(self.axes, index, strict=True))
            pos = named.get("pos")
            base = {
                "kind": self.kind,
                "component": self.site_label(index),
                "layer": named["layer"],
                "head": named.get("head"),
                "pos": pos,
                "position": self.position_labels[pos] if pos is not None else "all",
            }
            rows.append({**base, "metric": "patch_norm", "value": float(self.values[index])})
            rows.append({**base, "metric": "patch_raw", "value": float(self.raw[index])})
            rows.append({**base, "metric": "patch_raw_se", "value": float(self.raw_se[index])})
        return rows

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame.from_records(self.to_records()).astype(
            {"head": "Int64", "pos": "Int64"}
        )


def logit_diff(
    logits: Float[Tensor, "batch pos d_vocab"], pairs: PatchingPairs
) -> Float[Tensor, " batch"]:
    """``logit[clean answer] - logit[corrupt answer]`` at the answer position, per pair (the
    batch may hold several copies of the pairs, tiled)."""
    answer = logits[:, pairs.answer_pos]
    copies = answer.shape[0] // len(pairs)
    clean = pairs.clean_answer.to(answer.device).repeat(copies)
    corrupt = pairs.corrupt_answer.to(answer.device).repeat(copies)
    return answer.gather(-1, clean[:, None]).squeeze(-1) - answer.gather(
        -1, corrupt[:, None]
    ).squeeze(-1)


def patch_sites(
    model: HookedTransformer,
    task: HasSelector,
    kind: SiteKind,
    pairs: PatchingPairs | None = None,
    *,
    n_pairs: int = 256,
    seed: int = 0,
    max_batch: int = 4096,
    threshold: float = UNDEFINED_BELOW,
) -> PatchingResult:
    """Patch every site of ``kind`` (clean into corrupt), batching sites as copies of the batch.

    ``pairs`` defaults to ``task.patching_pairs(n_pairs, seed)``. At most ``max_batch`` sequences
    go through one forward pass: pairs are split into chunks of at most ``max_batch`` and each
    chunk's sites into groups of ``max_batch // chunk``; the metric is linear, so chunk sums
    combine exactly."""
    if pairs is None:
        pairs = task.patching_pairs(min(n_pairs, len(task)), seed)
    if kind.act_name == "mlp_out" and model.cfg.attn_only:
        raise ValueError("mlp_out patching needs MLPs; this model is attention-only")
    device = model.cfg.device
    n, prompt_len = pairs.clean_tokens.shape
    ranges = {"layer": model.cfg.n_layers, "pos": prompt_len, "head": model.cfg.n_heads}
    shape = tuple(ranges[a] for a in kind.axes)
    sites = list(itertools.product(*(range(s) for s in shape)))  # layer-major, like TL
    hook_names = [get_act_name(kind.act_name, l) for l in range(model.cfg.n_layers)]
    start_names = {get_act_name("resid_pre", l) for l in range(model.cfg.n_layers)}
    start_names.add("hook_pos_embed")

    patched_sum = torch.zeros(len(sites), dtype=torch.float64)
    patched_sq = torch.zeros(len(sites), dtype=torch.float64)
    clean_sum = corrupt_sum = 0.0
    with torch.no_grad():
        for rows in torch.arange(n).split(max_batch):
            chunk = pairs if len(rows) == len(pairs) else pairs.subset(rows)
            clean_logits, clean_cache = model.run_with_cache(
                chunk.clean_tokens.to(device), names_filter=lambda name: name in hook_names
            )
            corrupt_logits, corrupt_cache = model.run_with_cache(
                chunk.corrupt_tokens.to(device), names_filter=lambda name: name in start_names
            )
            clean_sum += float(logit_diff(clean_logits, chunk).double().sum())
            corrupt_diff = logit_diff(corrupt_logits, chunk).double().cpu()
            corrupt_sum += float(corrupt_diff.sum())
            for first, group in _site_groups(sites, max(1, max_batch // len(rows))):
                effects = _patched_effects(
                    model, kind, group, chunk, hook_names, clean_cache, corrupt_cache
                ) - corrupt_diff  # [site, pair]: patched - corrupt, per pair
                patched_sum[first : first + len(group)] += effects.sum(-1)
                patched_sq[first : first + len(group)] += (effects**2).sum(-1)

    clean, corrupt = clean_sum / n, corrupt_sum / n
    mean = patched_sum / n
    var = (patched_sq / n - mean**2).clamp(min=0) * n / max(n - 1, 1)
    raw = mean.float().reshape(shape)
    raw_se = (var / n).sqrt().float().reshape(shape)
    defined = abs(clean - corrupt) >= threshold
    values = raw / (clean - corrupt) if defined else torch.full(shape, float("nan"))
    return PatchingResult(
        kind=kind.name,
        axes=kind.axes,
        values=values,
        raw=raw,
        raw_se=raw_se,
        clean_logit_diff=clean,
        corrupt_logit_diff=corrupt,
        normalised_defined=defined,
        threshold=threshold,
        position_labels=tuple(task.position_labels[:prompt_len]),
        n_pairs=n,
    )


def _site_groups(
    sites: list[tuple[int, ...]], size: int
) -> list[tuple[int, list[tuple[int, ...]]]]:
    """Consecutive runs of at most ``size`` sites of one layer, with their start index.

    One layer per forward pass: a group then starts at its own layer, so a layer-``l`` site costs
    ``n_layers - l`` blocks instead of all of them (the copies only differ from layer ``l`` on)."""
    groups: list[tuple[int, list[tuple[int, ...]]]] = []
    for first, site in enumerate(sites):
        if groups and groups[-1][1][0][0] == site[0] and len(groups[-1][1]) < size:
            groups[-1][1].append(site)
        else:
            groups.append((first, [site]))
    return groups


def _patched_effects(
    model: HookedTransformer,
    kind: SiteKind,
    group: list[tuple[int, ...]],
    pairs: PatchingPairs,
    hook_names: list[str],
    clean_cache,
    corrupt_cache,
) -> Float[Tensor, "site pair"]:
    """One forward pass over ``len(group)`` tiled copies of the corrupt run, copy ``s`` patched
    at site ``group[s]``; returns each copy's logit difference per pair, ``[site, pair]``."""
    n_sites, n = len(group), len(pairs)
    start = min(site[0] for site in group)
    hooks = []
    for layer in sorted({site[0] for site in group}):
        clean_act = clean_cache[hook_names[layer]]
        mask = _site_mask(kind, group, layer, clean_act.shape[1:-1])
        hooks.append((hook_names[layer], _make_hook(mask, clean_act, n_sites)))
    resid = corrupt_cache[get_act_name("resid_pre", start)].repeat(n_sites, 1, 1)
    kwargs = {}
    if model.cfg.positional_embedding_type == "shortformer":
        pos_embed = corrupt_cache["hook_pos_embed"]
        kwargs["shortformer_pos_embed"] = pos_embed.expand(n, -1, -1).repeat(n_sites, 1, 1)
    logits = model.run_with_hooks(resid, start_at_layer=start, fwd_hooks=hooks, **kwargs)
    return logit_diff(logits, pairs).double().reshape(n_sites, n).cpu()


def _site_mask(
    kind: SiteKind, group: list[tuple[int, ...]], layer: int, act_dims: tuple[int, ...]
) -> Bool[Tensor, "site ..."]:
    """Where copy ``s`` takes the clean activation, over the activation's (pos[, head]) dims."""
    mask = torch.zeros(len(group), *act_dims, dtype=torch.bool)
    for s, site in enumerate(group):
        named = dict(zip(kind.axes, site, strict=True))
        if named["layer"] != layer:
            continue
        index = (named.get("pos", slice(None)),)
        if len(act_dims) == 2:
            index = (*index, named.get("head", slice(None)))
        mask[(s, *index)] = True
    return mask


def _make_hook(mask: Bool[Tensor, "site ..."], clean_act: Tensor, n_sites: int):
    def hook(act: Tensor, hook) -> Tensor:
        tiled = act.reshape(n_sites, -1, *act.shape[1:])
        where = mask.to(act.device)[:, None, ..., None]
        return torch.where(where, clean_act[None], tiled).reshape(act.shape)

    return hook


# -- presets: one per site kind, shaped like the TL function of the same name ------------------


def patch_resid_pre(
    model: HookedTransformer, task: HasSelector, pairs: PatchingPairs | None = None, **kw
) -> PatchingResult:
    """Residual stream before each block, per position: values ``[n_layers, pos]``
    (as ``get_act_patch_resid_pre``)."""
    return patch_sites(model, task, RESID_PRE, pairs, **kw)


def patch_attn_out(
    model: HookedTransformer, task: HasSelector, pairs: PatchingPairs | None = None, **kw
) -> PatchingResult:
    """Attention-layer output per layer and position: ``[n_layers, pos]``
    (as ``get_act_patch_attn_out``)."""
    return patch_sites(model, task, ATTN_OUT, pairs, **kw)


def patch_mlp_out(
    model: HookedTransformer, task: HasSelector, pairs: PatchingPairs | None = None, **kw
) -> PatchingResult:
    """MLP output per layer and position: ``[n_layers, pos]`` (as ``get_act_patch_mlp_out``)."""
    return patch_sites(model, task, MLP_OUT, pairs, **kw)


def patch_head_out_all_pos(
    model: HookedTransformer, task: HasSelector, pairs: PatchingPairs | None = None, **kw
) -> PatchingResult:
    """Each head's output (``hook_z``) at every position at once: ``[n_layers, n_heads]``
    (as ``get_act_patch_attn_head_out_all_pos``). The routing head shows up here."""
    return patch_sites(model, task, HEAD_OUT_ALL_POS, pairs, **kw)


def patch_head_out_by_pos(
    model: HookedTransformer, task: HasSelector, pairs: PatchingPairs | None = None, **kw
) -> PatchingResult:
    """Each head's output at one position: ``[n_layers, pos, n_heads]``
    (as ``get_act_patch_attn_head_out_by_pos``)."""
    return patch_sites(model, task, HEAD_OUT_BY_POS, pairs, **kw)
