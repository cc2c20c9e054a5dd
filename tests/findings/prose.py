"""What the findings tests read: the prose of ``REPRODUCTION.md`` (outside its generated blocks)
and the README's "Does the paper reproduce?" paragraph, whitespace-normalised, and the committed
``results/*`` files; and the formats the prose rounds its numbers to."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def prose(text: str) -> str:
    """The document without its generated blocks."""
    return squash(re.sub(r"<!-- BEGIN generated.*?<!-- END generated -->", " ", text, flags=re.S))


DOC = prose((ROOT / "REPRODUCTION.md").read_text())
README_TEXT = (ROOT / "README.md").read_text()
_START = README_TEXT.index("**Does the paper reproduce?**")
README = squash(README_TEXT[_START : README_TEXT.index("## Training from")])


def stated(phrase: str, text: str = DOC) -> None:
    assert phrase in text, f"not stated (or stated differently): {phrase!r}"


def runs(sweep: str) -> pd.DataFrame:
    return pd.read_csv(RESULTS / sweep / "runs.csv")


def fits(sweep: str) -> dict:
    return json.loads((RESULTS / sweep / "fits.json").read_text())


def verdicts(sweep: str) -> dict:
    return json.loads((RESULTS / sweep / "verdicts.json").read_text())


def f2(x: float) -> str:
    return f"{x:.2f}"


def ci2(ci) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def pct(x: float, digits: int = 0) -> str:
    return f"{100 * x:.{digits}f}%"


def span(values, fmt=f2, sep="-") -> str:
    values = list(values)
    return f"{fmt(min(values))}{sep}{fmt(max(values))}"


def i0(x: float) -> str:
    return f"{x:.0f}"

