"""The report in a real browser: headless Chromium opens it with no network, no JavaScript error,
and every plotly figure and circuitsvis view is drawn (present, with a non-zero size).

Needs the Debian package ``chromium`` (``.ci/run`` installs it) and the ``playwright`` Python
package (the ``dev`` extra), which drives the system Chromium: no browser is downloaded. Without
them the test skips with the reason, except in CI (``CI`` or ``MBC_REQUIRE_BROWSER=1`` set),
where it fails: there the browser check must run. ``MBC_CHROMIUM`` names another binary.
"""

from __future__ import annotations

import os
import shutil

import pytest

from mbc_interp.viz import write_run_report

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REQUIRED = bool(os.environ.get("CI")) or os.environ.get("MBC_REQUIRE_BROWSER") == "1"
N_FIGURES, N_VIEWS = 7, 3  # six figures and the drop forecast; three attention views

DRAWN = """() => {
  const box = (e) => { const r = e.getBoundingClientRect(); return [r.width, r.height]; };
  return {
    figures: [...document.querySelectorAll('.plotly-graph-div')].map((e) => ({
      id: e.id, size: box(e), svg: e.querySelectorAll('.main-svg').length,
      traces: e.querySelectorAll('g.trace, g.hm image').length,
      slider: e.querySelectorAll('.slider-container').length })),
    views: [...document.querySelectorAll('.cv-root')].map((e) => ({
      size: box(e), nodes: e.querySelectorAll('*').length,
      text: e.innerText.includes('Head Selector') })),
  };
}"""


def chromium() -> str | None:
    for name in (os.environ.get("MBC_CHROMIUM"), "chromium", "chromium-browser"):
        if name and (path := shutil.which(name)):
            return path
    return None


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason}; required here (CI or MBC_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    path = chromium()
    if path is None:
        unavailable("no Chromium on PATH (Debian: apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is missing (pip install -e '.[dev]')")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, headless=True, args=ARGS)
        yield browser
        browser.close()


def test_report_renders_offline_without_errors(browser, analysed, tmp_path_factory, capsys):
    run, _, _ = analysed
    folder = tmp_path_factory.mktemp("browser")
    report = write_run_report(run, folder / "report.html")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    requests: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri(), wait_until="load")
    page.wait_for_function(
        f"""() => document.querySelectorAll('.plotly-graph-div .main-svg').length >= {N_FIGURES}
        && [...document.querySelectorAll('.cv-root')].filter(e => e.childElementCount).length
        >= {N_VIEWS}""",
        timeout=60_000,
    )
    drawn = page.evaluate(DRAWN)
    shot = folder / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    with capsys.disabled():
        print(f"\nreport {report}\nscreenshot {shot}")

    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "blob:"))] == []
    assert len(drawn["figures"]) == N_FIGURES
    for figure in drawn["figures"]:
        assert min(figure["size"]) > 100 and figure["svg"] > 0 and figure["traces"] > 0, figure
    assert sum(f["slider"] for f in drawn["figures"]) == 1  # the head heatmaps' checkpoint slider
    assert len(drawn["views"]) == N_VIEWS
    for view in drawn["views"]:
        assert min(view["size"]) > 100 and view["nodes"] > 20 and view["text"], view
