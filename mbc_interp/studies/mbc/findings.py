"""Claim 8 (marginal before conditional, :mod:`mbc_interp.sweep.order`) in words: its rows of
the claims table and the findings paragraph a results document and the README carry, written
from the fits so no count or interval in them is typed by hand."""

from __future__ import annotations

from typing import Any

from mbc_interp.sweep.order import ORDERS, VERSIONS

ORDER_WORDS = {
    "marginal_first": "the marginal first",
    "together": "together",
    "conditional_first": "the conditional first",
    "underpowered": "underpowered",
    "not tested": "not tested",
}
CLAIM = "The marginal P(A|B) comes before z is read ({name}, N >= {n:,}; lag / time)"


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}%"


def _interval(r: dict[str, Any]) -> str:
    m = r["relative_lead"]
    lo, hi = m["ci"]
    return f"{_pct(m['mean'])} [{_pct(lo)}, {_pct(hi)}]"


def order_rows(fits: dict[str, Any]) -> list[tuple]:
    """Claim 8's rows: per version, the conditional's mean lag behind the marginal as a share of
    its time with its interval, the order, the runs and the verdict; other families as (ours)."""
    out = []
    for family, res in fits.get("order", {}).items():
        if res.get("verdict") == "not tested" and "seq" not in res:
            continue
        for letter, (v, name) in zip("ab", VERSIONS.items(), strict=True):
            r = res[v]
            claim = CLAIM.format(name=name, n=res["regime_n"])
            claim = f"8{letter}. {claim}" if family == "reference" else f"(ours) {claim}, {family}"
            if "relative_lead" not in r:
                out.append((claim, "marginal first", r["why"], 0, r["verdict"]))
                continue
            ours = f"{_interval(r)} (order: {ORDER_WORDS[r['order']]}"
            if "order_by_interval" in r:
                ours += f"; {r['why']}; by its interval: {ORDER_WORDS[r['order_by_interval']]}"
            ours += f"; together within ±{100 * res['together']:g}%)"
            verdict = r["verdict"] if family == "reference" else "-"
            out.append((claim, "marginal first", ours, r["n_runs"], verdict))
    return out


def _count_phrase(c: dict[str, int]) -> str:
    return (
        f"the marginal first in {c['marginal_first']}, together in {c['together']} and the "
        f"conditional first in {c['conditional_first']} of {c['n']}"
    )


def _majority(c: dict[str, int]) -> str | None:
    best = max(ORDERS, key=lambda o: c[o])
    return best if 2 * c[best] > c["n"] else None


def order_findings(
    fits: dict[str, Any], family: str = "reference", scale: bool = True
) -> str | None:
    """The findings paragraph on the order for one family (``None`` without timed runs): counts
    over every size, the answer in the paper's regime, and (``scale``) the sizes it covers."""
    res = fits.get("order", {}).get(family)
    if not res or "seq" not in res:
        return None
    sizes, seq, first = res["sizes"], res["seq"], res["first"]
    where = (
        f"Over {res['n_runs']} runs from N = {sizes[0]:,} to {sizes[-1]:,} "
        f"({res['runs_at_largest']} at N = {sizes[-1]:,} so far), each"
        if scale
        else "Each"
    )
    text = (
        f"{where} run's order is called against its own sampling error. On whole sequences "
        f"{_count_phrase(seq['counts'])}; on first tokens {_count_phrase(first['counts'])}."
    )
    m_seq, m_first = _majority(seq["counts"]), _majority(first["counts"])
    if m_seq == "together" and m_first == "marginal_first":
        text += (
            " In most runs the marginal's lead is in which characters can start A, not in "
            "the whole P(A|B): on whole sequences the two arrive together, neither the "
            "paper's order nor the reverse."
        )
    regime = []
    for v, name in VERSIONS.items():
        r = res[v]
        if "relative_lead" in r:
            regime.append(
                f"on {name} the conditional lags the marginal by {_interval(r)} of its "
                f"time ({r['n_runs']} runs; order: {ORDER_WORDS[r['order']]})"
            )
    if regime:
        text += f" In the paper's regime (N >= {res['regime_n']:,}), " + " and ".join(regime) + "."
    else:
        text += f" No run at N >= {res['regime_n']:,} has both times yet."
    text += f" This is a statement about N <= {sizes[-1]:,} only."
    return text


def _verdict_note(r: dict[str, Any]) -> str:
    if "seed_note" in r:
        return f"{r['verdict']}: {r['seed_note']}; by its interval {r['verdict_by_interval']}"
    return r["verdict"]


VERDICT_NOTES = {
    ("specific", "not z-specific"): ": with it the model loses which answers B allows, so its "
    "necessity is the reading of B as much as the use of z",
    ("specific", "z-specific"): ": the model still knows which answers B allows, so its "
    "necessity is the use of z",
}
"""What a circuit verdict means for the claims beside it, where it needs saying."""


def _mean(r: dict[str, Any]) -> str:
    m = r["mean"]
    return f"{m['mean']:.2f} [{m['ci'][0]:.2f}, {m['ci'][1]:.2f}]"


def summary_paragraph(fits: dict[str, Any], sweep_file: str) -> str | None:
    """The README's paragraph on a paper-regime sweep (``None`` before it has timed runs):
    the size exponent, the circuit's claims and the order, each with its interval and verdict,
    and the sizes it was reached at."""
    res = fits.get("order", {}).get("reference")
    if not res or "sizes" not in res:
        return None
    sizes = res["sizes"]
    parts = [
        f"On the paper-regime sweep (`{sweep_file}`: N = {sizes[0]:,} to {sizes[-1]:,}, "
        f"{res['n_runs']} runs; {res['runs_at_largest']} at N = {sizes[-1]:,} so far)"
    ]
    d = fits.get("D", {})
    if "exponent" in d:  # claim 2a: the size slice at fixed K, where N = D K grows as D
        parts.append(
            f"at K = {fits['reference']['K']} the plateau grows as N^{d['exponent']:.2f} "
            f"[{d['ci'][0]:.2f}, {d['ci'][1]:.2f}] against the paper's 1.19 ({_verdict_note(d)})"
        )
    c = fits.get("circuit", {})
    words = (
        ("necessary", "ablating the routing heads costs {mean} x log K (necessary: {verdict})"),
        ("specific", "the same ablation undoes {mean} of the first-token marginal's gain "
         "({n} runs; the set is {verdict})"),
        ("sufficient", "ablating every other head costs {mean} x log K (sufficient alone: "
         "{verdict})"),
        ("necessary_z", "with z alone removed (each ablated head sees another selector of the "
         "same B, so what it reads of B stays) the set chosen that way costs {mean} x log K "
         "({n} runs; necessary: {verdict})"),
        ("sufficient_z", "every other head seeing another selector costs {mean} x log K "
         "(sufficient alone: {verdict})"),
        ("collective", "the B groups' 10-90% solve spread is {mean} of the plateau "
         "(collective: {verdict})"),
        ("collective_halfway", "timed by the drop's own half-way criterion, their spread is "
         "{mean} of it ({n} runs; collective: {verdict})"),
    )  # fmt: skip
    for key, text in words:
        r = c.get(key, {})
        if "mean" in r:
            verdict = r["verdict"] + VERDICT_NOTES.get((key, r["verdict"]), "")
            parts.append(text.format(mean=_mean(r), n=r["n_runs"], verdict=verdict))
    head = parts[0] + ": " + "; ".join(parts[1:]) + "." if len(parts) > 1 else parts[0] + "."
    return (
        f"{head} Does the marginal come before the conditional? Each stage is timed as a "
        f"half-way crossing from its chance value on the same rows "
        f"(`mbc_interp/analysis/timing/stages.py`). {order_findings(fits, scale=False)}"
    )
