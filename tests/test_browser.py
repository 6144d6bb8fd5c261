"""The report and the dashboard in a real browser: Debian's chromium (apt: chromium), driven by
Playwright pointed at that binary. Each page must draw its timeline and tables with no console
error; a screenshot of each is saved beside the test's files (and ``S3RULES_SCREENSHOTS=DIR``
keeps them). Skipped, saying why, only where Chromium cannot start."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_dashboard import EXE, GATED, NO_AWS, dashboard, totals, wait_for
from test_report import PIPELINE, SHEET
from workflows import s3rules, write

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# what a headless chromium needs here: no sandbox as root, and no calls home on a closed network
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (Debian: apt-get install chromium; or set CHROMIUM=path)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed ('.[test]' has it)")
    with sync_api.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        except Exception as exc:   # noqa: BLE001 - the reason is the skip's message
            pytest.skip(f"chromium at {CHROMIUM} cannot start here: {str(exc).splitlines()[0]}")
        try:
            yield chromium
        finally:
            chromium.close()


class Page:
    """A tab that keeps every console error and uncaught exception."""

    def __init__(self, browser, width: int = 1400):
        self.tab = browser.new_page(viewport={"width": width, "height": 900})
        self.errors: list[str] = []
        self.tab.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.tab.on("pageerror", lambda e: self.errors.append(str(e)))

    def count(self, selector: str) -> int:
        return self.tab.locator(selector).count()

    def shot(self, path: Path) -> None:
        self.tab.screenshot(path=str(path), full_page=True)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
        keep = os.environ.get("S3RULES_SCREENSHOTS")
        if keep:
            shutil.copy(path, Path(keep) / path.name)

    def close(self) -> None:
        self.tab.close()


def test_the_report_of_a_local_run_draws_its_timeline_and_tables(browser, tmp_path):
    write(tmp_path, PIPELINE, files={"samples.csv": SHEET})
    assert s3rules("run", "-k", "-j", "2", cwd=tmp_path, env=NO_AWS).returncode == 1
    assert s3rules("report", "-o", "report.html", cwd=tmp_path, env=NO_AWS).returncode == 0
    page = Page(browser)
    page.tab.goto((tmp_path / "report.html").as_uri())
    timeline = page.tab.locator("#timeline")
    assert timeline.is_visible() and timeline.bounding_box()["height"] > 50
    assert page.count("#timeline rect.run") == 8 and page.count("#timeline rect.wait") == 8
    first_bar = page.tab.locator("#timeline rect.run").first.bounding_box()
    assert first_bar["width"] >= 1 and first_bar["height"] >= 2   # drawn, not collapsed
    assert page.count("#rule-table tbody tr") == 2 and page.count("#failure-table tbody tr") == 1
    assert page.count("#run-table tbody tr") == 1
    assert "error: truncated input" in page.tab.locator("#failure-table").inner_text()
    assert page.count("svg.hist rect") == 24   # 12 bins for each of the 2 rules
    page.shot(tmp_path / "report.png")
    assert page.errors == []
    page.close()


def test_the_report_of_100000_jobs_opens_with_a_binned_timeline(browser, tmp_path):
    from report_bench import fabricate
    fabricate(tmp_path, 100_000)
    assert s3rules("report", "-o", "big.html", cwd=tmp_path, env=NO_AWS, timeout=300).returncode == 0
    page = Page(browser)
    page.tab.goto((tmp_path / "big.html").as_uri())
    assert page.tab.locator("#timeline").is_visible()
    labels = page.tab.locator("#timeline text.label").all_text_contents()
    assert [label.split(" ")[0] for label in labels] == ["a", "b"]
    assert 100 < page.count("#timeline rect") <= 2 * 200 * 2   # bins, not 100,000 bars
    assert page.count("#failure-table tbody tr") == 200
    page.shot(tmp_path / "report-100000.png")
    assert page.errors == []
    page.close()


def test_the_dashboard_draws_its_table_and_redraws_it_when_a_job_finishes(browser, tmp_path):
    write(tmp_path, GATED)
    run = subprocess.Popen([EXE, "run", "-q"], cwd=tmp_path, env={**os.environ, **NO_AWS})
    try:
        with dashboard("Batchfile", cwd=tmp_path) as host:
            wait_for(host, lambda s: totals(s).get("running") == 1, "the slow job running")
            page = Page(browser, width=1200)
            page.tab.goto(f"http://{host}/")
            page.tab.evaluate("window.sameDocument = true")
            row = page.tab.locator("#rows tr").first
            headers = page.tab.locator("#head th").all_inner_texts()
            assert headers[:3] == ["workflow", "done", "running"] and headers[-2:] == ["cost so far", "report"]

            def cell(name: str) -> str:
                return row.locator("td").nth(headers.index(name)).inner_text()

            page.tab.wait_for_function("document.querySelector('#rows tr td:nth-child(3)').textContent === '1'")
            assert cell("done") == "1" and cell("running") == "1"
            page.shot(tmp_path / "dashboard.png")
            (tmp_path / "gate").touch()
            page.tab.wait_for_function("document.querySelector('#rows tr td:nth-child(2)').textContent === '2'",
                                       timeout=60_000)
            assert cell("running") == "0"
            assert page.tab.evaluate("window.sameDocument") is True   # redrawn in place, not reloaded
            page.tab.locator("#rows a").first.click()
            page.tab.wait_for_url(f"http://{host}/report/0")
            assert page.count("#timeline rect.run") == 2 and page.count("#rule-table tbody tr") == 2
            assert page.errors == []
            page.close()
    finally:
        (tmp_path / "gate").touch()
        assert run.wait(timeout=60) == 0
