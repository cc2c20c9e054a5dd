"""What ``mbc fit`` writes: the run table, the fits, the figures, a sweep report, and the
generated sections of a results document (``REPRODUCTION.md``), for the scaling claims, the
gradient-noise verdicts and the hidden-progress verdicts of a sweep of any task."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from mbc_interp.core.files import atomic_write
from mbc_interp.core.jsonsafe import json_safe
from mbc_interp.store.layout import (
    FIGURES_DIR,
    FITS_FILE,
    REPORT_FILE,
    RUNS_TABLE,
    VERDICTS_FILE,
    is_run_dir,
    sweep_run_dir,
)
from mbc_interp.store.run import load_run
from mbc_interp.store.sweep_runs import main_runs
from mbc_interp.studies.mbc.claims import RUN_COLUMNS, claims_table, markdown_section
from mbc_interp.studies.mbc.documents import (
    begin_marker,
    check_markers,
    md_table,
    paragraph,
    replace_section,
    summary_marker,
    write_svgs,
)
from mbc_interp.studies.mbc.findings import summary_paragraph
from mbc_interp.sweep.fit import control_twins, fit_sweep
from mbc_interp.sweep.order import lead_points
from mbc_interp.sweep.results import carry_over, collect


def figures(table: pd.DataFrame, fits: dict[str, Any], curves: dict[str, pd.DataFrame]) -> dict:
    """Named plotly figures of a sweep (only those its grids support)."""
    from mbc_interp.viz import scaling

    out = {"plateau_height": scaling.plateau_figure(table)}
    for axis in ("D", "K"):
        if "fit" in fits[axis]:
            out[f"duration_vs_{axis}"] = scaling.duration_figure(table, fits, axis)
    if "fit" in fits.get("N", {}):
        out["duration_vs_examples"] = scaling.examples_figure(table, fits)
    for axis in ("lr", "batch"):
        if "ratio" in fits[axis]:
            out[f"duration_vs_{axis}"] = scaling.ratio_figure(table, fits, axis)
    if fits["lead"].get("lead_fraction"):
        out["lead_fraction"] = scaling.lead_figure(table, fits)
    order = fits.get("order", {}).get("reference", {})
    if "sizes" in order:
        rows = main_runs(table, fits["reference"])
        out["marginal_order"] = scaling.order_figure(lead_points(rows), order)
    if curves:
        log_k = float(table.loc[table.direction == "forward", "log_k"].iloc[0])
        out["control_forward_backward"] = scaling.control_figure(curves, log_k)
    return out


def control_curves(table: pd.DataFrame, sweep: str | Path) -> dict[str, pd.DataFrame]:
    """Loss curves of the forward runs and their backward twins (same task and settings)."""
    control = control_twins(table)
    out = {}
    for row in control.sort_values(["direction", "seed"]).itertuples():
        if not (sweep_run_dir(sweep, row.name)).is_dir():  # refitting a committed run table
            continue
        run = load_run(sweep_run_dir(sweep, row.name))
        out[f"{row.direction}, seed {row.seed}"] = run.metrics[["step", "loss"]]
    return out


def write_results(
    table: pd.DataFrame,
    fits: dict[str, Any],
    out: str | Path,
    *,
    sweep: str | Path,
    doc: str | Path | None = None,
    summary: str | Path | None = None,
) -> list[Path]:
    """Write ``runs.csv`` (everything the fits need: ``fit_sweep(read_csv(runs.csv))`` gives
    ``fits.json`` again), ``fits.json``, ``report.html``, SVG figures (when a browser for
    plotly's image export is available) and, with ``doc``, its generated section; with
    ``summary``, the summary paragraph there (the README's, :func:`summary_paragraph`)."""
    from mbc_interp.viz.report import Section, write_html_report

    out = Path(out)
    text = None
    if summary is not None:  # checked before anything is written
        text = summary_paragraph(fits, f"sweeps/{out.name}.toml")
        if text is None:
            raise ValueError(f"{out}: no run has the matched stage times, so no summary for "
                             f"{summary}")  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    cols = [c for c in RUN_COLUMNS if c in table]
    written = []
    runs_csv = out / RUNS_TABLE
    atomic_write(runs_csv, table[cols].to_csv(index=False).encode())
    fits_json = out / FITS_FILE
    fits_text = json.dumps(json_safe(fits, nonfinite="keep"), indent=1)
    atomic_write(fits_json, (fits_text + "\n").encode())
    written += [runs_csv, fits_json]
    figs = figures(table, fits, control_curves(table, sweep))
    intro = f"Sweep {sweep}: {fits['n_runs']} finished runs; reference point {fits['reference']}."
    sections = [
        Section("Claims", text=intro, table=claims_table(fits)),
        *[Section(name.replace("_", " "), figures=[fig]) for name, fig in figs.items()],
        Section("Runs", table=table[cols]),
    ]
    written.append(write_html_report(out / REPORT_FILE, "mbc sweep results", sections))
    svgs = write_svgs(figs, out / FIGURES_DIR)
    written += svgs
    if doc is not None:
        written.append(write_doc_section(Path(doc), fits, out, svgs, table))
    if text is not None:  # set exactly when a summary file was asked for
        written.append(replace_section(Path(summary), summary_marker(out), paragraph(text)))
    return written


def write_doc_section(
    doc: Path, fits: dict[str, Any], results: Path, svgs: list[Path], table: pd.DataFrame
) -> Path:
    """Replace the text between ``results``' markers in ``doc`` (which must have them)."""
    body = markdown_section(fits, results, svgs, doc.parent, table)
    return replace_section(doc, begin_marker(results), body)


def fit_and_write(
    sweep: str | Path,
    out: str | Path,
    doc: str | Path | None = None,
    summary: str | Path | None = None,
) -> tuple[dict[str, Any], list[Path]]:
    """Collect, fit and write everything for a sweep directory, or refit a results directory's
    committed ``runs.csv`` (the sweep's runs are not needed for the fits): ``(fits, paths)``.
    Finished rows of ``out``'s earlier ``runs.csv`` whose points are not finished in the sweep
    directory are carried over (:func:`~mbc_interp.sweep.results.carry_over`)."""
    committed = Path(sweep) / RUNS_TABLE
    if committed.is_file():
        table = pd.read_csv(committed)
    else:
        table = carry_over(collect(sweep), Path(out) / RUNS_TABLE)
    if not (table.point_status == "done").any():
        raise ValueError(f"{sweep}: no finished points yet (see `mbc sweep --status`)")
    fits = fit_sweep(table)
    for path, marker in ((doc, begin_marker(out)), (summary, summary_marker(out))):
        if path is not None:  # before anything is written
            check_markers(Path(path), marker)
    return fits, write_results(table, fits, out, sweep=sweep, doc=doc, summary=summary)


# -- gradient noise (``mbc fit --noise``) ---------------------------------------------------
def noise_marker(results: Path) -> str:
    return f"<!-- BEGIN generated by `mbc fit --noise` from {Path(results).name} -->"


def _noise_figure_rows(table: pd.DataFrame, ref: dict[str, Any]) -> pd.DataFrame:
    """The lowest-seed measurable run at each D of the D slice."""
    from mbc_interp.store.sweep_runs import slice_of
    from mbc_interp.sweep.noise import MIN_CHECKPOINTS

    rows = slice_of(table[table.direction == "backward"], "D", ref).sort_values(["D", "seed"])
    return rows[rows.n_plateau_ckpts >= MIN_CHECKPOINTS].drop_duplicates("D")


def noise_figures(sweep: Path, table: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """The noise timelines (``viz.noise``) of the lowest seed at each D of the D slice, from
    the sweep's run directories (none when refitting a committed table)."""
    from mbc_interp.analysis.timeline import load_timeline
    from mbc_interp.viz.noise import noise_timelines

    figs = {}
    for row in _noise_figure_rows(table, ref).itertuples():
        if (sweep_run_dir(sweep, row.name)).is_dir():
            run = load_run(sweep_run_dir(sweep, row.name))
            t_loss = None if pd.isna(row.t_loss) else float(row.t_loss)
            fig = noise_timelines(load_timeline(run), run.metrics, t_loss=t_loss,
                                  batch_size=int(row.batch), components=False)  # fmt: skip
            fig.update_layout(title=f"Gradient noise over training: {row.name}")
            figs[f"noise_{row.name}"] = fig
    return figs


def noise_markdown(verdicts: dict[str, Any], table: pd.DataFrame, results: Path,
                   doc_dir: Path, svgs: list[Path] = ()) -> str:  # fmt: skip
    """The generated part of the noise section: verdicts, the lr and eps levels, every run."""
    from mbc_interp.sweep import noise_text

    rel = os.path.relpath(results, doc_dir)
    images = [f"![{p.stem}]({os.path.relpath(p, doc_dir)})" for p in svgs]
    return "\n".join([
        md_table(noise_text.verdict_table(verdicts)), "",
        f"Reference point: `{verdicts['reference']}`; {verdicts['n_runs']} finished runs. "
        f"Per-run table: [`{rel}/runs.csv`]({rel}/runs.csv); every number behind the verdicts: "
        f"[`{rel}/verdicts.json`]({rel}/verdicts.json).", "",
        "**(c) by learning rate** (medians over runs of the plateau medians)", "",
        md_table(noise_text.lr_levels(verdicts)), "",
        "**(d) by eps** (escape time of each run)", "", md_table(noise_text.eps_levels(verdicts)),
        "", "**Every run** (plateau medians)", "", md_table(noise_text.run_rows(table)),
        *(["", *images] if images else []),
    ])  # fmt: skip


def noise_fit_and_write(
    sweep: str | Path, out: str | Path, doc: str | Path | None = None
) -> tuple[dict[str, Any], list[Path]]:
    """The gradient-noise verdicts for a sweep directory, or for a results directory's committed
    ``runs.csv``: writes ``runs.csv``, ``verdicts.json``, the D slice's noise timelines as SVG
    (from a sweep directory, where plotly can export) and, with ``doc``, its section."""
    from mbc_interp.sweep.noise import RUN_COLUMNS, noise_table, noise_verdicts

    committed = Path(sweep) / RUNS_TABLE
    table = pd.read_csv(committed) if committed.is_file() else noise_table(sweep)
    if not (table.point_status == "done").any():
        raise ValueError(f"{sweep}: no finished points yet (see `mbc sweep --status`)")
    verdicts = noise_verdicts(table)
    if doc is not None:  # before anything is written
        check_markers(Path(doc), noise_marker(Path(out)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols = [c for c in RUN_COLUMNS if c in table]
    atomic_write(out / RUNS_TABLE, table[cols].to_csv(index=False).encode())
    text = json.dumps(json_safe(verdicts), indent=1) + "\n"
    atomic_write(out / VERDICTS_FILE, text.encode())
    paths = [out / RUNS_TABLE, out / VERDICTS_FILE]
    if committed.is_file():  # a refit: the figures drawn from the sweep's runs stay
        names = _noise_figure_rows(table, verdicts["reference"])["name"]
        svgs = [f for n in names if (f := out / FIGURES_DIR / f"noise_{n}.svg").is_file()]
    else:
        figs = noise_figures(Path(sweep), table, verdicts["reference"])
        svgs = write_svgs(figs, out / FIGURES_DIR)
        paths += svgs
    if doc is not None:
        body = noise_markdown(verdicts, table, out, Path(doc).parent, svgs)
        paths.append(replace_section(Path(doc), noise_marker(out), body))
    return verdicts, paths


# -- hidden progress on any task (``mbc fit`` of a sweep whose task is not the wind tunnel) ----
def sweep_task(sweep: str | Path) -> str:
    """The task of a sweep directory's runs, or of a results directory's committed table."""
    committed = Path(sweep) / RUNS_TABLE
    if committed.is_file():
        table = pd.read_csv(committed, nrows=1)
        return str(table.task.iloc[0]) if "task" in table else "wind_tunnel"
    from mbc_interp.sweep.runner import iter_points

    for _, run_dir in iter_points(sweep):
        if is_run_dir(run_dir):
            return load_run(run_dir).task.name
    return "wind_tunnel"


def progress_markdown(verdicts: dict[str, Any], table: pd.DataFrame, results: Path,
                      doc_dir: Path) -> str:  # fmt: skip
    """The generated section of a progress sweep: levels' times, verdicts, every run."""
    from mbc_interp.sweep import progress_text as pt
    from mbc_interp.sweep.progress import signals_of

    rel = os.path.relpath(results, doc_dir)
    axis = verdicts["axis"]
    return "\n".join([
        f"{verdicts['n_runs']} finished runs; per-run table: [`{rel}/runs.csv`]({rel}/runs.csv); "
        f"every verdict with what it rests on: [`{rel}/verdicts.json`]({rel}/verdicts.json).", "",
        "**Transition times by level** (steps, mean [95% CI] over the runs that transitioned)", "",
        md_table(pt.times_table(verdicts)), "",
        "**Each progress signal's onset against the drop** (lead fraction: how far ahead of "
        "the drop it comes, as a share of the plateau; verdict by the rule of "
        "`mbc_interp/sweep/progress.py`)", "",
        md_table(pt.level_table(verdicts)), "",
        "**Is the transition collective?** (the spread of the groups' solve times over the "
        "plateau; verdict by the rule of `mbc_interp/sweep/circuit.py`)", "",
        md_table(pt.collective_table(verdicts)), "",
        "**Every run** (onset steps; the phase where it is not the plateau)", "",
        md_table(pt.run_table(table, signals_of(table), axis)),
    ])  # fmt: skip


def progress_fit_and_write(
    sweep: str | Path, out: str | Path, doc: str | Path | None = None
) -> tuple[dict[str, Any], list[Path]]:
    """Collect (or read a committed ``runs.csv``), judge and write ``runs.csv``,
    ``verdicts.json`` and, with ``doc``, its generated section."""
    from mbc_interp.sweep.progress import collect_progress, progress_verdicts

    committed = Path(sweep) / RUNS_TABLE
    table = pd.read_csv(committed) if committed.is_file() else collect_progress(sweep)
    verdicts = progress_verdicts(table)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs_csv, verdicts_json = out / RUNS_TABLE, out / VERDICTS_FILE
    atomic_write(runs_csv, table.to_csv(index=False).encode())
    text = json.dumps(json_safe(verdicts, nonfinite="keep"), indent=1)
    atomic_write(verdicts_json, (text + "\n").encode())
    paths = [runs_csv, verdicts_json]
    if doc is not None:
        doc = Path(doc)
        body = progress_markdown(verdicts, table, out, doc.parent)
        paths.append(replace_section(doc, begin_marker(out), body))
    return verdicts, paths
