"""The activation-patching site kinds, as plain data: names, TL activation names and axes.

Separate from :mod:`mbc_interp.analysis.patching` (which runs them) so that analysis settings and
the command line can name and validate the kinds without importing torch or TransformerLens.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteKind:
    """A family of patch sites: a TL activation name and the axes it is indexed by (layer
    first), matching the output shape of the ``transformer_lens.patching`` function named."""

    name: str
    act_name: str
    axes: tuple[str, ...]
    tl_function: str


RESID_PRE = SiteKind("resid_pre", "resid_pre", ("layer", "pos"), "get_act_patch_resid_pre")
ATTN_OUT = SiteKind("attn_out", "attn_out", ("layer", "pos"), "get_act_patch_attn_out")
MLP_OUT = SiteKind("mlp_out", "mlp_out", ("layer", "pos"), "get_act_patch_mlp_out")
HEAD_OUT_ALL_POS = SiteKind(
    "head_out_all_pos", "z", ("layer", "head"), "get_act_patch_attn_head_out_all_pos"
)
HEAD_OUT_BY_POS = SiteKind(
    "head_out_by_pos", "z", ("layer", "pos", "head"), "get_act_patch_attn_head_out_by_pos"
)
SITE_KINDS: tuple[SiteKind, ...] = (RESID_PRE, ATTN_OUT, MLP_OUT, HEAD_OUT_ALL_POS, HEAD_OUT_BY_POS)
