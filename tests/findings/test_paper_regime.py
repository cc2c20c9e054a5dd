"""The paper-regime section and the README's summary of it are `mbc fit`'s text for the
committed results."""

from __future__ import annotations

import re

from .prose import README_TEXT, RESULTS, ROOT, fits, runs, squash


def test_paper_regime_summary_in_the_readme_is_the_committed_fits():
    """The README's paper-regime paragraph is `mbc fit --summary`'s text for the committed fits,
    and REPRODUCTION.md's section holds the same order findings; the verdicts it states are
    those the rules give."""
    from mbc_interp.studies.mbc.documents import END, summary_marker
    from mbc_interp.studies.mbc.findings import order_findings, summary_paragraph

    f = fits("paper_regime")
    text = summary_paragraph(f, "sweeps/paper_regime.toml")
    block = README_TEXT.split(summary_marker(RESULTS / "paper_regime"), 1)[1].split(END, 1)[0]
    assert squash(block).strip() == text
    assert order_findings(f) in squash((ROOT / "REPRODUCTION.md").read_text())
    d = f["D"]  # claim 2a: the interval holds 1.19 and not 0; the seed rule decides the rest
    assert d["ci"][0] > 0 and d["ci"][0] < 1.19 < d["ci"][1]
    assert d["verdict"] == ("reproduced" if d["min_seeds_per_level"] >= 3 else "underpowered")
    assert f["circuit"]["necessary"]["verdict"] == "reproduced"
    # the counts it states are the committed rows' orders
    rows = runs("paper_regime")
    rows = rows[(rows.point_status == "done") & rows.order_seq.notna()]
    order = f["order"]["reference"]
    for v in ("seq", "first"):
        counts = rows[f"order_{v}"].value_counts().to_dict()
        assert {k: n for k, n in order[v]["counts"].items() if k != "n" and n} == counts
    assert order["n_runs"] == len(rows)



def test_paper_regime_section_is_what_mbc_fit_writes_from_the_committed_results():
    """REPRODUCTION.md's generated paper-regime section, every table and number in it (claims,
    levels, the order and circuit tables run by run), is `mbc fit`'s section for the committed
    runs.csv and fits.json, and each figure it links is committed."""
    from mbc_interp.studies.mbc.claims import markdown_section
    from mbc_interp.studies.mbc.documents import END, begin_marker

    out = RESULTS / "paper_regime"
    doc = (ROOT / "REPRODUCTION.md").read_text()
    block = doc.split(begin_marker(out), 1)[1].split(END, 1)[0].strip("\n")
    linked = re.findall(r"\]\((results/paper_regime/figures/[\w-]+\.svg)\)", block)
    svgs = [ROOT / p for p in linked]
    assert svgs and all(p.is_file() for p in svgs)
    assert block == markdown_section(fits("paper_regime"), out, svgs, ROOT, runs("paper_regime"))
    assert "**The circuit, run by run**" in block and "**Marginal before conditional" in block
