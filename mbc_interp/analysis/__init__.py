"""The analysis layer: per-checkpoint analyses, the timeline over a run, transition timing.

Per checkpoint (any ``HookedTransformer`` + ``WindTunnelTask``): head attribution to the
selector, batched activation patching, the logit lens; each returns a frozen dataclass of tensors
plus labels with ``to_records()``/``to_frame()``. Over a run: :func:`analyze` writes the tidy
timeline and the summary that times the routing circuit against the loss drop. Nothing here
plots.

Every name is imported from its module on first use (:mod:`mbc_interp.core.lazy`), so importing
one light module of the package (``analysis.forecast``, say) does not load torch and
TransformerLens through the others.
"""

from mbc_interp.core.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {
        ".analysis_config": ("AnalysisConfig",),
        ".attribution": ("HeadAttribution", "head_attribution"),
        ".heads": ("head_label", "head_labels", "parse_head_label"),
        ".logit_lens": ("LogitLens", "logit_lens", "residual_logits"),
        ".timing.moments": ("key_steps",),
        ".patching": (
            "UNDEFINED_BELOW", "PatchingResult", "logit_diff", "patch_attn_out",
            "patch_head_out_all_pos", "patch_head_out_by_pos", "patch_mlp_out", "patch_resid_pre",
            "patch_sites"
        ),
        ".patterns": ("AttentionPatterns", "attention_patterns"),
        ".registry": (
            "ExtraKind", "extra_kinds", "get_kind", "kind_names", "register_kind",
            "unregister_kind"
        ),
        ".timing.summary": (
            "CIRCUIT_FRAC", "format_summary", "routing_scores", "summarize", "z_use_table"
        ),
        ".sites": (
            "ATTN_OUT", "HEAD_OUT_ALL_POS", "HEAD_OUT_BY_POS", "MLP_OUT", "RESID_PRE", "SITE_KINDS",
            "SiteKind"
        ),
        ".timeline": (
            "analyze", "analyze_checkpoint", "analyze_run", "load_timeline",
            "select_steps"
        ),
        ".timing.growth": ("Growth", "GrowthOnset", "growth_onset", "growth_rate"),
        ".timing.transition": (
            "LossTransition", "detect_loss_transition", "lead_fraction", "onset", "phase_of",
            "steps_to_tokens"
        ),
        ".zuse": ("HeadZUse", "head_z_use"),
    },
)
