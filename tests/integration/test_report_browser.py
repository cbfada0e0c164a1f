"""The HTML report in a real browser: Debian's Chromium, headless, driven by Playwright (no browser download).

What a person would check by opening the file: the totals show the right numbers, the charts are drawn,
the page fetched nothing but itself, a hostile banner reads as text (no dialog, no injected element), and
the page's own CSP raised no complaint about its content. The page is made by the real CLI from JSON
Lines files, with attribution from real iptoasn and MMDB files.

Set CLEARTEXT_UPDATE_SCREENSHOT=1 to refresh docs/img/report.png from this test's page.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cleartext.enrich import Enricher
from cleartext.record import Record
from cleartext.report.stats import compute
from tests.conftest import ROOT, run_cli
from tests.enrich_files import country_record, write_iptoasn, write_mmdb
from tests.unit.report_samples import HOSTILE_BANNER, random_records, sample_records

CHROMIUM = Path("/usr/bin/chromium")
LONG_AS_NAME = "CARRIER-GRADE NAT SHARED ADDRESS SPACE OPERATOR WORLDWIDE"
# Every text of every chart, with how far it runs outside its SVG's box (0 when it fits).
OVERFLOWING_TEXT = """() => [...document.querySelectorAll("svg.chart text")].map((t) => {
  const box = t.getBoundingClientRect(), svg = t.ownerSVGElement.getBoundingClientRect();
  return [t.textContent, Math.max(0, svg.left - box.left, box.right - svg.right)];
}).filter(([, out]) => out > 0.5)"""
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def need_browser() -> Any:
    """Playwright's sync API, or a skip where the browser is not installed (a failure under CI)."""
    missing = None
    if not CHROMIUM.exists():
        missing = "Debian's chromium is not installed (scripts/install-system-deps installs it)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = missing or "Python playwright is not installed (dev extra)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return sync_playwright


def write_jsonl(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    return path


def with_time(records: list[Record], started: str) -> list[Record]:
    for r in records:
        if r.observation.started_at:
            r.observation.started_at = started
    return records


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three scans a month apart; the last one as an HTML page made by `cleartext report`."""
    tmp = tmp_path_factory.mktemp("report")
    iptoasn = write_iptoasn(
        tmp / "ip2asn-v4.tsv",
        [
            ("192.0.2.0", "192.0.2.255", 64500, "DE", "EXAMPLE-NET"),
            ("198.51.100.0", "198.51.100.255", 64501, "FR", "OTHER-AS"),
            ("203.0.113.0", "203.0.113.255", 64503, "US", "TRANSIT-3"),
            ("100.64.7.0", "100.64.7.255", 64510, "BE", LONG_AS_NAME),
            ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 64502, "NL", "V6-NET"),
        ],
    )
    geo = write_mmdb(
        tmp / "country.mmdb",
        {
            "192.0.2.0/24": country_record("DE"),
            "198.51.100.0/24": country_record("FR"),
            "203.0.113.0/24": country_record("US"),
            "100.64.7.0/24": country_record("NL"),
            "2001:db8::/32": country_record("NL"),
        },
        database_type="GeoLite2-Country",
    )
    attribution = ["--iptoasn", str(iptoasn), "--mmdb", str(geo)]
    # Scan names as long as the trend's labels show them (18 characters).
    scans = [
        ("national-2026-09-28", with_time(random_records(500, seed=1), "2026-09-28T08:00:00Z")),
        ("national-2026-10-28", with_time(random_records(700, seed=2), "2026-10-28T08:00:00Z")),
    ]
    previous: list[str] = []
    for name, records in scans:
        source = write_jsonl(tmp / f"{name}.jsonl", records)
        stats_file = tmp / f"{name}.json"
        done = run_cli(
            "report", "--from", str(source), "--format", "json", "--out", str(stats_file), *attribution
        )
        assert done.returncode == 0, done.stderr
        previous += ["--previous", str(stats_file)]
    current = random_records(900, seed=3)
    # The worst endpoints of this scan carry a hostile banner: the table shows them first.
    with Enricher.from_paths(iptoasn=[iptoasn], mmdb=[geo]) as enricher:
        ranked = compute((r, enricher.lookup(r.observation.address)) for r in current).worst
        hostile = {(w.address, w.port) for w in ranked[:3]}
        for r in current:
            if (r.observation.address, r.observation.port) in hostile:
                r.observation.greeting = HOSTILE_BANNER
        current += sample_records()
        expected = compute(((r, enricher.lookup(r.observation.address)) for r in current), scan_id="2026-11")
    source = write_jsonl(tmp / "2026-11.jsonl", current)
    page = tmp / "report.html"
    done = run_cli(
        "report",
        "--from",
        str(source),
        "--format",
        "html",
        "--out",
        str(page),
        "--scan-id",
        "2026-11",
        *attribution,
        *previous,
    )
    assert done.returncode == 0, done.stderr
    return {"page": page, "expected": expected, "tmp": tmp}


def test_report_in_headless_chromium(report: dict[str, Any]) -> None:
    sync_playwright = need_browser()
    page_file: Path = report["page"]
    expected = report["expected"]
    url = page_file.resolve().as_uri()
    requests: list[str] = []
    dialogs: list[str] = []
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.goto(url, wait_until="load")
            page.wait_for_timeout(300)  # time for anything the page might try after load

            # The right numbers, as a reader sees them.
            def card(metric: str) -> str:
                return page.locator(f'[data-metric="{metric}"] .value').inner_text()

            assert card("records") == f"{expected.records:,}"
            assert card("open") == f"{expected.open:,}"
            assert card("exposed") == f"{expected.exposed:,}"
            assert card("cleartext_login") == f"{expected.cleartext_login:,}"
            assert card("no_tls") == f"{expected.no_tls:,}"
            header = page.locator("header").inner_text()
            assert "2026-11" in header and f"{expected.records:,} records" in header

            # Charts: every breakdown and the trend, drawn at a readable size.
            assert page.locator("svg.chart").count() == 9
            assert page.locator("svg.trend polyline.trend-line").count() == 4
            assert page.locator("svg.chart rect.bar-exposed").count() >= 30
            box = page.locator("svg.chart").first.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 40
            charts = page.locator("figure").all_inner_texts()
            assert any("AS64500 EXAMPLE-NET" in text for text in charts)
            # No label is cut by its chart's edge: a long AS name keeps its "AS64510", the trend's
            # first and last dates and scan names show whole.
            assert page.evaluate(OVERFLOWING_TEXT) == []
            assert any("AS64510 CARRIER-GRADE" in text for text in charts)
            assert any("geolocation country" in text and "DE" in text for text in charts)

            # The hostile banner is text: visible as sent, nothing injected, nothing ran.
            worst = page.locator("#worst").inner_text()
            assert "<script>alert(1)</script>" in worst
            assert '"><img src=x onerror=alert(2)>' in worst
            injected = page.evaluate(
                "document.querySelectorAll("
                "'script, img, iframe, object, embed, a, [onerror], [onload]').length"
            )
            assert injected == 0
            assert dialogs == []

            # Nothing fetched but the file itself, and the CSP found nothing to block.
            assert requests == [url]
            assert problems == []

            shot = report["tmp"] / "report.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 50_000
            if os.environ.get("CLEARTEXT_UPDATE_SCREENSHOT"):
                target = ROOT / "docs" / "img" / "report.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(shot, target)
        finally:
            browser.close()
