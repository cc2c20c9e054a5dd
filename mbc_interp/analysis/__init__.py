"""The analysis layer: per-checkpoint analyses, the timeline over a run, transition timing.

Per checkpoint (any ``HookedTransformer`` + ``WindTunnelTask``): head attribution to the
selector, batched activation patching, the logit lens; each returns a frozen dataclass of tensors
plus labels with ``to_records()``/``to_frame()``. Over a run: :func:`analyze` writes the tidy
timeline and the summary that times the routing circuit against the loss drop. Nothing here
plots.
"""

from mbc_interp.analysis.attribution import HeadAttribution, head_attribution
from mbc_interp.analysis.heads import head_label, head_labels, parse_head_label
from mbc_interp.analysis.logit_lens import LogitLens, logit_lens, residual_logits
from mbc_interp.analysis.moments import key_steps
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
from mbc_interp.analysis.patterns import AttentionPatterns, attention_patterns
from mbc_interp.analysis.summary import (
    CIRCUIT_FRAC,
    format_summary,
    routing_scores,
    summarize,
    z_use_table,
)
from mbc_interp.analysis.timeline import (
    AnalysisConfig,
    analyze,
    analyze_checkpoint,
    analyze_run,
    load_timeline,
    select_steps,
)
from mbc_interp.analysis.transition import (
    Growth,
    GrowthOnset,
    LossTransition,
    detect_loss_transition,
    growth_onset,
    growth_rate,
    lead_fraction,
    onset,
    phase_of,
    steps_to_tokens,
)
from mbc_interp.analysis.zuse import HeadZUse, head_z_use

__all__ = [
    "ATTN_OUT",
    "CIRCUIT_FRAC",
    "HEAD_OUT_ALL_POS",
    "HEAD_OUT_BY_POS",
    "MLP_OUT",
    "RESID_PRE",
    "SITE_KINDS",
    "UNDEFINED_BELOW",
    "AnalysisConfig",
    "AttentionPatterns",
    "Growth",
    "GrowthOnset",
    "HeadAttribution",
    "HeadZUse",
    "LogitLens",
    "LossTransition",
    "PatchingResult",
    "SiteKind",
    "analyze",
    "analyze_checkpoint",
    "analyze_run",
    "attention_patterns",
    "detect_loss_transition",
    "format_summary",
    "growth_onset",
    "growth_rate",
    "head_attribution",
    "head_label",
    "head_labels",
    "head_z_use",
    "key_steps",
    "lead_fraction",
    "load_timeline",
    "logit_diff",
    "logit_lens",
    "onset",
    "parse_head_label",
    "patch_attn_out",
    "patch_head_out_all_pos",
    "patch_head_out_by_pos",
    "patch_mlp_out",
    "patch_resid_pre",
    "patch_sites",
    "phase_of",
    "residual_logits",
    "routing_scores",
    "select_steps",
    "steps_to_tokens",
    "summarize",
    "z_use_table",
]
