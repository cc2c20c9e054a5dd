"""The extra per-checkpoint analyses (``mbc analyze --kinds``), one module each.

Every module here declares ``KIND = ExtraKind(...)``
(:class:`~mbc_interp.analysis.registry.ExtraKind`), and the registry finds it by looking: a new
analysis is a new module here, with no list to edit. A declaration stays light (no torch,
TransformerLens or pandas at module level, so ``mbc --help`` stays fast): what runs at a
checkpoint, its summary entry and its report section are named by import path and imported on
first use, its settings are a plain dataclass and its cost a small function of the settings
and the run's shape (:class:`~mbc_interp.analysis.registry.CostContext`). A module whose name
starts with ``_`` is a helper, not a kind.
"""
