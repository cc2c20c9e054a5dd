"""What ``mbc analyze`` computes at each checkpoint: :class:`AnalysisConfig`, as plain data.

Separate from :mod:`mbc_interp.analysis.timeline` (which runs the analyses) so that the command
line, sweep files and the analysis plan can build and validate settings without importing torch
or TransformerLens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any

from mbc_interp.analysis import registry
from mbc_interp.analysis.sites import SITE_KINDS
from mbc_interp.config import ConfigError
from mbc_interp.core.checks import check_field, is_int
from mbc_interp.core.strict import build_dataclass

_KIND_NAMES = tuple(k.name for k in SITE_KINDS)
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
    lens), by name in :mod:`mbc_interp.analysis.registry`: ``"gradients"`` (|G|, B_simple,
    coherence, group ratio, Adam update statistics; :mod:`mbc_interp.analysis.dynamics.gradients`),
    ``"llc"`` (local learning coefficient by SGLD; :mod:`mbc_interp.analysis.dynamics.llc`), and
    any other registered kind."""
    version: int = ANALYSIS_VERSION
    """Analysis format; files written by an older one are recomputed (never mixed)."""
    extra_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    """Per extra kind of ``kinds``, the settings given (``{"llc": {"draws": 200}}``); the others
    keep their defaults (see :meth:`settings_of`). In a file, each kind's table sits beside the
    fields (``llc = { draws = 200 }``)."""

    def __post_init__(self) -> None:
        need = partial(check_field, obj=self, section="analysis")

        need(is_int(self.n_pairs) and self.n_pairs >= 1, "n_pairs", "must be >= 1")
        need(is_int(self.pair_seed), "pair_seed", "must be an integer")
        need(is_int(self.detail_every) and self.detail_every >= 1, "detail_every", "must be >= 1")
        n = self.n_examples
        need(n is None or (is_int(n) and n >= 1), "n_examples", "must be >= 1 or None")
        known = registry.kind_names()
        extra = next((k for k in self.kinds if k not in known), None)
        need(extra is None, "kinds", f"unknown kind {extra!r} (known: {known})")
        object.__setattr__(self, "extra_settings", self._checked_settings())
        unknown = next((k for k in self.patch_kinds if k not in _KIND_NAMES), None)
        need(unknown is None, "patch_kinds", f"unknown kind {unknown!r} (known: {_KIND_NAMES})")

    def _checked_settings(self) -> dict[str, dict[str, Any]]:
        """``extra_settings`` validated (each kind's settings built once) and as JSON values,
        kinds given no setting left out."""
        out = {}
        for kind, given in self.extra_settings.items():
            if kind not in self.kinds:
                raise ValueError(f"analysis.{kind}: settings for a kind not computed (add "
                                 f"{kind!r} to kinds)")  # fmt: skip
            if not isinstance(given, Mapping):
                raise ValueError(f"analysis.{kind} = {given!r}: must be a table of settings")
            try:
                registry.build_settings(kind, given)
            except ValueError as e:
                raise ValueError(f"analysis.{e}") from None
            if given:
                out[kind] = json.loads(json.dumps(dict(given)))
        return out

    def settings_of(self, kind: str) -> Any:
        """The settings dataclass of extra kind ``kind``: its defaults, with those given."""
        return registry.build_settings(kind, self.extra_settings.get(kind))

    def step_settings(self) -> dict[str, Any]:
        """What a step file records as ``settings``: every field but ``extra_settings`` (each
        kind's settings are recorded, in full, as its ``kind_settings``)."""
        d = asdict(self)
        del d["extra_settings"]
        d["patch_kinds"] = list(self.patch_kinds)
        d["kinds"] = list(self.kinds)
        return d

    def to_dict(self) -> dict[str, Any]:
        """The fields, with each kind's settings given as a table named after it."""
        return {**self.step_settings(), **{k: dict(v) for k, v in self.extra_settings.items()}}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "analysis settings", *, stored: bool = False
    ) -> AnalysisConfig:
        """Strict (:func:`~mbc_interp.core.strict.build_dataclass`): an unknown key or a value
        of the wrong type is an error naming it. A key naming an extra kind is that kind's table
        of settings (checked by the kind's settings class). Settings given without a
        ``version`` (a sweep file's) are for the current analysis; a ``stored`` analysis's
        file without one was written before the field existed (version 1)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: must be a table/object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"extra_settings"}
        extra = set(registry.kind_names())
        unknown = sorted(set(data) - known - extra)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key {unknown[0]!r} (known: {sorted(known)}, "
                f"and a table of settings per extra kind: {sorted(extra)})"
            )
        values = {k: v for k, v in data.items() if k in known}
        values.setdefault("version", 1 if stored else ANALYSIS_VERSION)
        values.setdefault("detail_every", 1)
        values["extra_settings"] = {k: v for k, v in data.items() if k in extra}
        for kind, table in values["extra_settings"].items():
            if not isinstance(table, dict):
                raise ConfigError(f"{source}: {kind} = {table!r}: must be a table of settings")
        return build_dataclass(cls, values, source, error=ConfigError)
