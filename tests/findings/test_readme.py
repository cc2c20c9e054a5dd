"""The README's summary of the findings, and statements corrected once that must not return."""

from __future__ import annotations

import pytest

from .prose import DOC, README, ci2, f2, fits, pct, stated

# ---------------------------------------------------------------- the README's summary


def test_readme_findings():
    f = fits("cpu")
    stated(f"(within {pct(f['plateau']['max_abs_deviation'], 1)})", README)
    ep = f["N"]["epochs"]
    stated(f"{ep['mean']:.1f} epochs [{ep['ci'][0]:.1f}, {ep['ci'][1]:.1f}]", README)
    kp = f["K_paper"]
    stated(f"{f2(kp['k_exponent'])} {ci2(kp['ci'])}", README)
    stated(f"{f2(f['lr']['ratio'])}x {ci2(f['lr']['ci'])} rather than 3.6x", README)
    assert f["batch"]["ratio"] < 1
    stated("a smaller batch escapes sooner per token", README)
    assert fits("paper_cpu")["batch"]["verdict"] == "underpowered"
    stated("the batch effect are underpowered", README)
    stated("Student t intervals", README)


@pytest.mark.parametrize(
    "gone",
    [
        "layer-1 heads carry the z-use in 5 of 6",
        "L0H0 in all 11 runs",
        "3-30% (median 8.5%)",
        "at or before the plateau start",
        "Six of six such runs",
        "At a fixed number of bases instead",
        "percentile bootstraps",
    ],
)
def test_corrected_statements_do_not_return(gone):
    assert gone not in DOC
