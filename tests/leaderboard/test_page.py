"""The published page in a real browser (issue 11), and the page's static guarantees.

The browser test builds the page from the stored results (``leaderboard/results``), loads it
in headless Chromium at 1440x900 and 390x844 and checks what a reader needs: no horizontal
page scroll on a phone, a verdict badge for every method of the first table, and n beside
every interval. It needs Chromium, chromedriver (Debian: ``apt-get install chromium
chromium-driver``) and the ``browser`` extra (selenium); it skips cleanly without them.
``MTLBENCH_SCREENSHOTS=docs`` also saves the two screenshots as
``docs/leaderboard-desktop.png`` and ``docs/leaderboard-phone.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mtlbench.leaderboard import build_leaderboard
from mtlbench.leaderboard.page_assets import BADGE_COLORS, CSS

STORED = Path(__file__).resolve().parents[2] / "leaderboard" / "results"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


# ----------------------------------------------------------------------- static checks
def _luminance(hex_color: str) -> float:
    """WCAG 2.1 relative luminance of ``#rrggbb``."""
    channels = [int(hex_color[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(fg: str, bg: str) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_formula() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic AA near-miss


def test_badges_meet_wcag_aa() -> None:
    for cls, (fg, bg) in BADGE_COLORS.items():
        assert f".{cls} {{ color:{fg}; background:{bg};" in CSS, cls
        assert contrast(fg, bg) >= 4.5, (cls, round(contrast(fg, bg), 2))


def test_tables_have_captions_and_scopes(results_dir: Path, tmp_path: Path) -> None:
    build_leaderboard(results_dir, tmp_path / "out", n_boot=200, registry=None, formats=("html",))
    page = (tmp_path / "out" / "index.html").read_text()
    tables = re.findall(r"<table.*?</table>", page, flags=re.S)
    assert tables
    for table in tables:
        assert "<caption>" in table
        assert not re.search(r"<th(?=[\s>])(?![^>]*scope=)", table), "a <th> without scope"
    # the first table is the verdict table: a badge per method, n beside every interval
    first = tables[0]
    for row in re.findall(r"<tbody>.*</tbody>", first, flags=re.S)[0].split("<tr")[1:]:
        assert 'class="badge' in row, row[:200]
    assert re.search(r"\], n&nbsp;=&nbsp;3", first)
    assert "loss-level reference" in first and "Δp baseline" in first


# ---------------------------------------------------------------------------- browser
def _require_browser() -> tuple[str, str]:
    """Chromium and chromedriver, or skip (before any work is done)."""
    pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e .[browser])")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.skip("chromium or chromedriver is not installed (apt-get install chromium chromium-driver)")
    return chromium, chromedriver


def _driver(width: int, height: int, profile: str) -> Any:
    from selenium import webdriver

    chromium, chromedriver = _require_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]:
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    # the viewport exactly width x height (a window can be wider than asked); a phone is
    # emulated as one: the page's viewport meta tag applies
    metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


@pytest.fixture(scope="module")
def stored_page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """The page built from the stored results, and the number of methods its first table lists."""
    _require_browser()
    if not any(STORED.rglob("seed-*.json")):
        pytest.skip("no stored results under leaderboard/results")
    out = tmp_path_factory.mktemp("page")
    # the layout does not depend on n_boot; fewer resamples keep the test short
    report = build_leaderboard(STORED, out, n_boot=1000, formats=("html",))
    return out / "index.html", len(report.leaderboard.aggregate)  # one row per method


@pytest.fixture(params=[(1440, 900, "desktop"), (390, 844, "phone")], ids=lambda p: p[2])
def browser(request: pytest.FixtureRequest, stored_page: tuple[Path, int]) -> Iterator[tuple[Any, str, int]]:
    width, height, name = request.param
    page_path, expected_rows = stored_page
    with tempfile.TemporaryDirectory() as profile:
        driver = _driver(width, height, profile)
        try:
            driver.get(page_path.as_uri())
            yield driver, name, expected_rows
        finally:
            driver.quit()


FIRST_TABLE = """
const table = document.querySelector("table");
const rows = Array.from(table.tBodies[0].rows);
return {
  width: window.innerWidth,
  scrollWidth: document.documentElement.scrollWidth,
  rows: rows.length,
  withoutBadge: rows.filter(r => !r.querySelector(".badge")).map(r => r.cells[0].textContent),
  intervals: Array.from(document.querySelectorAll("table .ci")).map(e => e.textContent),
  tableTop: table.getBoundingClientRect().top,
  errors: window.__errors || [],
};
"""


def test_page_in_headless_chromium(browser: tuple[Any, str, int]) -> None:
    driver, name, expected_rows = browser
    page: dict[str, Any] = driver.execute_script(FIRST_TABLE)
    width = 1440 if name == "desktop" else 390
    # a phone widens its layout viewport to a page too wide for it: compare with the device
    assert page["width"] == width and page["scrollWidth"] <= width, f"{name}: the page scrolls sideways"
    assert page["rows"] == expected_rows >= 3 and page["withoutBadge"] == [], page["withoutBadge"]
    assert page["intervals"] and all(re.search(r"n\s=\s\d+", t) for t in page["intervals"]), [
        t for t in page["intervals"] if "n" not in t
    ]
    assert page["tableTop"] < 700, "the verdict table is not on the first screen"
    # the script sorts: click "method" and the rows come in alphabetical order
    driver.find_element("css selector", "table.verdicts thead th button").click()
    names = driver.execute_script(
        "return Array.from(document.querySelector('table').tBodies[0].rows).map(r => r.cells[0].textContent)"
    )
    assert names == sorted(names, key=str.lower)
    driver.execute_script("window.scrollTo(0, 0)")
    folder = os.environ.get("MTLBENCH_SCREENSHOTS")
    if folder:
        driver.get(driver.current_url)
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"leaderboard-{name}.png"))
