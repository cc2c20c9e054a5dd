"""The "Marginals Before Conditionals" study: the paper's claims with their verdicts, computed
from sweeps, and the generated sections of REPRODUCTION.md.

- :mod:`.claims`: the run table's columns, the claims table and the per-level tables;
- :mod:`.reproduction`: what ``mbc fit`` writes (scaling claims, noise, hidden progress);
- :mod:`.backtest_doc`: what ``mbc backtest`` writes;
- :mod:`.documents`: marker-delimited generated sections, markdown tables, SVG figures.
"""

from mbc_interp.studies.mbc.claims import (
    CLAIMS,
    RUN_COLUMNS,
    claims_table,
    format_fits,
    level_table,
    order_counts,
    resting_table,
    stages_table,
)
from mbc_interp.studies.mbc.documents import BEGIN, END, begin_marker, md_table, replace_section
from mbc_interp.studies.mbc.reproduction import (
    fit_and_write,
    noise_fit_and_write,
    noise_marker,
    progress_fit_and_write,
    progress_markdown,
    sweep_task,
    write_results,
)

__all__ = [
    "BEGIN", "CLAIMS", "END", "RUN_COLUMNS", "begin_marker", "claims_table", "fit_and_write",
    "format_fits", "level_table", "md_table", "noise_fit_and_write", "noise_marker",
    "order_counts", "progress_fit_and_write", "progress_markdown", "replace_section",
    "resting_table", "stages_table", "sweep_task", "write_results",
]  # fmt: skip
