"""What ``mbc analyze`` computes at each checkpoint: :class:`AnalysisConfig`, as plain data.

Separate from :mod:`mbc_interp.analysis.timeline` (which runs the analyses) so that the command
line, sweep files and the analysis plan can build and validate settings without importing torch
or TransformerLens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from mbc_interp.analysis.sites import SITE_KINDS
from mbc_interp.config import ConfigError

_KIND_NAMES = tuple(k.name for k in SITE_KINDS)
EXTRA_KINDS = ("gradients", "llc")
ANALYSIS_VERSION = 2
"""2: z-use rows, patching standard errors, attention to the previous position."""
DETAIL_KINDS = ("resid_pre", "attn_out", "mlp_out", "head_out_by_pos")
"""Position-resolved patching kinds (layer x position pictures): the costly ones, which
``detail_every`` can limit to some checkpoints; nothing the summary times comes from them."""


@dataclass(frozen=True)
class AnalysisConfig:
    """What to compute at each checkpoint (changing it means re-analysing: ``force``)."""

    n_pairs: int = 256
    """Clean/corrupt pairs for patching (same B, different z)."""
    pair_seed: int = 0
    n_examples: int | None = 1024
    """Examples for attribution and the logit lens (``None``: all of them)."""
    patch_kinds: tuple[str, ...] = tuple(_KIND_NAMES)
    """Site kinds to patch; see :data:`mbc_interp.analysis.sites.SITE_KINDS`."""
    detail_every: int = 1
    """The position-resolved kinds (:data:`DETAIL_KINDS`) only at every n-th checkpoint of the run
    (by index in its checkpoint list) and at the last one analysed: see
    :func:`~mbc_interp.analysis.timeline.detail_steps`."""
    kinds: tuple[str, ...] = ()
    """Extra per-checkpoint analyses beyond the core ones (attribution, z-use, patching, logit
    lens): ``"gradients"`` (|G|, B_simple, coherence, group ratio, Adam update statistics;
    :mod:`mbc_interp.analysis.gradients`) and ``"llc"`` (local learning coefficient by SGLD;
    :mod:`mbc_interp.analysis.llc`)."""
    version: int = ANALYSIS_VERSION
    """Analysis format; files written by an older one are recomputed (never mixed)."""

    def __post_init__(self) -> None:
        if self.n_pairs < 1:
            raise ValueError(f"analysis.n_pairs = {self.n_pairs}: must be >= 1")
        if self.detail_every < 1:
            raise ValueError(f"analysis.detail_every = {self.detail_every}: must be >= 1")
        if self.n_examples is not None and self.n_examples < 1:
            raise ValueError(f"analysis.n_examples = {self.n_examples}: must be >= 1 or None")
        extra = [k for k in self.kinds if k not in EXTRA_KINDS]
        if extra:
            raise ValueError(f"analysis.kinds: unknown kind {extra[0]!r} (known: {EXTRA_KINDS})")
        unknown = [k for k in self.patch_kinds if k not in _KIND_NAMES]
        if unknown:
            raise ValueError(
                f"analysis.patch_kinds: unknown kind {unknown[0]!r} (known: {list(_KIND_NAMES)})"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["patch_kinds"] = list(self.patch_kinds)
        d["kinds"] = list(self.kinds)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "analysis settings") -> AnalysisConfig:
        """Strict: an unknown key or a value of the wrong type is an error naming it."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: must be a table/object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key {unknown[0]!r} (known: {sorted(known)})")
        for name in ("n_pairs", "pair_seed", "n_examples", "detail_every"):  # n_examples: None ok
            v = data.get(name, 0)
            if not (type(v) is int or (name == "n_examples" and v is None)):
                raise ConfigError(f"{source}: {name} = {v!r}: must be an integer")
        data = dict(data)
        for name in ("patch_kinds", "kinds"):
            if name not in data:
                continue
            kinds = data[name]
            if not isinstance(kinds, list | tuple) or not all(isinstance(k, str) for k in kinds):
                raise ConfigError(f"{source}: {name} = {kinds!r}: must be a list of names")
            data[name] = tuple(kinds)
        data.setdefault("version", 1)  # files from before the field existed
        data.setdefault("detail_every", 1)
        try:
            return cls(**data)
        except ValueError as e:
            raise ConfigError(f"{source}: {e}") from None
