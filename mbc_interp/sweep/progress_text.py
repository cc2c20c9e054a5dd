"""The hidden-progress tables of a sweep of any task, as text (the generated document section
and what ``mbc fit`` prints): values in, tables out."""

from __future__ import annotations

from typing import Any

import pandas as pd


def _num(v: Any, spec: str = ",.0f") -> str:
    return "n/a" if v is None or v != v else format(float(v), spec)


def _ci(m: dict[str, Any] | None, spec: str = ".2f") -> str:
    if not m:
        return "n/a"
    lo, hi = m["ci"]
    return f"{m['mean']:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def level_table(verdicts: dict[str, Any]) -> pd.DataFrame:
    """Per level and signal: runs, onsets by phase, the mean lead fraction and the verdict."""
    rows = []
    for level, lv in verdicts["levels"].items():
        for sig, v in lv["signals"].items():
            ph = v["phases"]
            phases = ", ".join(f"{k} {n}" for k, n in sorted(ph.items()))
            rows.append((level, sig + (" (primary)" if sig == verdicts["primary"] else ""),
                         f"{v['n_transitioned']} of {v['n_runs']}", phases or "-",
                         _ci(v["lead"]), v["verdict"]))  # fmt: skip
    return pd.DataFrame(rows, columns=[verdicts["axis"] or "level", "signal",
                                       "transitioned runs", "onsets by phase",
                                       "lead fraction (95% CI)", "verdict"])  # fmt: skip


def times_table(verdicts: dict[str, Any]) -> pd.DataFrame:
    """Per level: the mean (95% CI) step of memorisation's end, the drop and the solve."""
    rows = []
    for level, lv in verdicts["levels"].items():
        t = lv["times"]
        rows.append((level, f"{lv['n_transitioned']} of {lv['n_runs']}",
                     *(_ci(t[k], ",.0f") for k in ("t_plateau_start", "t_loss", "t_solved"))))
    return pd.DataFrame(rows, columns=[verdicts["axis"] or "level", "transitioned runs",
                                       "plateau start (memorised)", "t_loss (the drop)",
                                       "t_solved"])  # fmt: skip


def run_table(table: pd.DataFrame, signals: list[str], axis: str | None) -> pd.DataFrame:
    """Every run: its times and each signal's onset step (its phase where not the plateau)."""
    rows = []
    for d in table.sort_values([c for c in (axis, "seed") if c]).to_dict("records"):
        cells = [d.get(axis, "-") if axis else "-", d["seed"], d["status"],
                 *(_num(d.get(t)) for t in ("t_plateau_start", "t_loss", "t_solved"))]
        for s in signals:
            t, phase = d.get(f"t_{s}"), d.get(f"phase_{s}")
            cell = _num(t)
            if isinstance(phase, str) and phase != "plateau" and t == t and t is not None:
                cell += f" ({phase})"
            cells.append(cell)
        cells.append(_num(d.get("collective_score"), ".2f"))
        rows.append(cells)
    return pd.DataFrame(rows, columns=[axis or "level", "seed", "status", "plateau start",
                                       "t_loss", "t_solved", *signals,
                                       "collective score"])  # fmt: skip


def collective_table(verdicts: dict[str, Any]) -> pd.DataFrame:
    """The collective verdict over every run analysed for groups: by the groups' solve times,
    and by their half-way crossings (the drop's own criterion) where those were computed."""
    c, half = verdicts.get("collective") or {}, verdicts.get("collective_halfway") or {}
    rows = [("solve times (loss < 0.05 of chance)", c)]
    if half.get("n_runs"):
        rows.append(("half-way crossings (t_loss's criterion)", half))
    return pd.DataFrame(
        [(name, r.get("n_runs", 0), _ci(r.get("mean")), _kinds(r),
          _ci(c.get("solved_at_half")) if r is c else "-", r.get("threshold", "n/a"),
          r.get("verdict", "not tested")) for name, r in rows],
        columns=["groups timed by", "runs with groups", "spread / plateau (95% CI)",
                 "runs by kind", "solved at half the plateau", "collective below", "verdict"],
    )  # fmt: skip


def _kinds(r: dict[str, Any]) -> str:
    return ", ".join(f"{k} {n}" for k, n in sorted((r.get("by_run") or {}).items())) or "-"
