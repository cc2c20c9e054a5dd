"""``fourier``: Nanda et al.'s progress measures of a modular task at each checkpoint (key
frequencies, Gini, restricted and excluded loss; :mod:`mbc_interp.analysis.fourier_kind`)."""

from __future__ import annotations

from mbc_interp.analysis.fourier_settings import FourierConfig
from mbc_interp.analysis.registry import ExtraKind

KIND = ExtraKind(
    name="fourier",
    run="mbc_interp.analysis.fourier_kind:fourier_records",
    settings=FourierConfig,
    cost=lambda s, c: float(c.n_examples),
    resolve="mbc_interp.analysis.fourier_kind:final_settings",
    needs=("mbc_interp.tasks.modular_addition.capability:HasModularInputs",),
    report="mbc_interp.viz.fourier:fourier_section",
    title="Fourier progress measures",
    help="modular tasks: key frequencies, Gini, restricted/excluded loss (Nanda+ 2023)",
    order=100,
)
