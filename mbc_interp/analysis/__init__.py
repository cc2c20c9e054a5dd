"""Analyses run on a single checkpoint: head attribution, activation patching, logit lens.

Each takes a ``HookedTransformer`` and a ``WindTunnelTask``, computes without plotting and returns a
frozen dataclass of tensors plus labels with ``to_records()``/``to_frame()``.
"""

from mbc_interp.analysis.attribution import HeadAttribution, candidate_answers, head_attribution
from mbc_interp.analysis.logit_lens import LogitLens, logit_lens, residual_logits
from mbc_interp.analysis.patching import (
    ATTN_OUT,
    HEAD_OUT_ALL_POS,
    HEAD_OUT_BY_POS,
    MLP_OUT,
    RESID_PRE,
    SITE_KINDS,
    UNDEFINED_BELOW,
    PatchingResult,
    SiteKind,
    logit_diff,
    patch_attn_out,
    patch_head_out_all_pos,
    patch_head_out_by_pos,
    patch_mlp_out,
    patch_resid_pre,
    patch_sites,
)

__all__ = [
    "ATTN_OUT",
    "HEAD_OUT_ALL_POS",
    "HEAD_OUT_BY_POS",
    "MLP_OUT",
    "RESID_PRE",
    "SITE_KINDS",
    "UNDEFINED_BELOW",
    "HeadAttribution",
    "LogitLens",
    "PatchingResult",
    "SiteKind",
    "candidate_answers",
    "head_attribution",
    "logit_diff",
    "logit_lens",
    "patch_attn_out",
    "patch_head_out_all_pos",
    "patch_head_out_by_pos",
    "patch_mlp_out",
    "patch_resid_pre",
    "patch_sites",
    "residual_logits",
]
