"""The run report's section of the ``fourier`` kind (Nanda et al.'s progress measures): draws
its timeline rows, computes nothing. Declared in :mod:`mbc_interp.analysis.registry`."""

from __future__ import annotations

from typing import Any

import pandas as pd

from mbc_interp.viz.kinds import metric_lines
from mbc_interp.viz.report import Section


def fourier_section(run: Any, table: pd.DataFrame, summary: dict[str, Any]) -> Section:
    rows = table[table.analysis == "fourier"]
    last = rows[rows.step == rows.step.max()]
    freqs = sorted(int(v) for v in last[last.metric == "key_freq"].value)
    kind = ", ".join(sorted(set(rows.kind))) or "n/a"
    t = summary.get("t_loss")
    figs = [
        metric_lines(table, "fourier", m, title=title, t_loss=t)
        for m, title in (
            ("excluded_gain", "Excluded loss minus the clean training loss"),
            ("restricted_loss", "Restricted loss (key frequencies only, all pairs)"),
            ("gini", "Gini coefficient of the embedding's Fourier norms"),
            ("weight_norm", "Weight norm"),
        )
    ]
    text = (f"Key frequencies ({kind}) at the last analysed checkpoint: {freqs}. The excluded "
            "gain grows as the network comes to rely on the key frequencies; the restricted "
            "loss falls as their directions alone come to solve the task.")  # fmt: skip
    return Section("Fourier progress measures", text=text, figures=figs)
