"""The HTML report: hostile server text escaped, nothing fetched from anywhere, a CSP that allows no script,
charts present. (The page as a browser shows it: tests/integration/test_report_browser.py.)"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from html.parser import HTMLParser

from cleartext.report.html import fit, render_html, text_width, trend_chart
from cleartext.report.stats import compute, trends
from tests.unit.report_samples import sample_pairs, sample_records


class Page(HTMLParser):
    """Every element and attribute of a page, as a browser's tokenizer would see them."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style = ""
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style += data
        self.text.append(data)


def page() -> tuple[str, Page]:
    older = compute(((r, a) for r, a in sample_pairs()[:3]), scan_id="older")
    older.scanned_at = "2026-10-01T00:00:00Z"
    now = compute(sample_pairs(), scan_id="now")
    text = render_html(now, trends([older, now]))
    return text, Page(text)


def test_hostile_banner_is_text_not_markup() -> None:
    text, parsed = page()
    tags = [tag for tag, _ in parsed.tags]
    assert "script" not in tags
    assert "img" not in tags
    assert "a" not in tags
    assert tags.count("svg") == sum(
        1 for t, a in parsed.tags if t == "svg" and "chart" in (a.get("class") or "")
    )
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in text
    assert "<img" not in text and "<svg onload" not in text
    # ...and a reader sees exactly what the server sent.
    joined = "".join(parsed.text)
    assert '<script>alert(1)</script> "><img src=x onerror=alert(2)>' in joined
    # No attribute anywhere is an event handler or carries server text.
    for _, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs)


def test_hostile_as_name_is_escaped() -> None:
    text, parsed = page()
    assert "<b>AS</b>" not in text
    assert "-EVIL &lt;b&gt;AS&lt;/b&gt;" in text
    assert "b" not in [tag for tag, _ in parsed.tags]


def test_nothing_is_fetched() -> None:
    text, parsed = page()
    fetching = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background", "xlink:href"}
    for tag, attrs in parsed.tags:
        assert tag not in {
            "script",
            "link",
            "iframe",
            "object",
            "embed",
            "img",
            "image",
            "use",
            "base",
            "form",
        }
        assert not fetching & set(attrs), (tag, attrs)
        if tag == "svg":
            assert attrs.get("xmlns") == "http://www.w3.org/2000/svg"
    assert "url(" not in parsed.style and "@import" not in parsed.style
    # The only URL in markup is the SVG namespace; the evil.example link is escaped text in a banner.
    urls = set(re.findall(r"https?://[^\s\"'<>&]+", text))
    assert urls <= {"http://www.w3.org/2000/svg", "https://evil.example/x", "https://evil.example"}
    assert 'href="https://evil.example' not in text


def test_content_security_policy_allows_no_script_and_only_our_style() -> None:
    _, parsed = page()
    metas = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert len(metas) == 1
    policy = metas[0]["content"] or ""
    assert "default-src 'none'" in policy and "script-src 'none'" in policy
    assert "unsafe-inline" not in policy
    digest = base64.b64encode(hashlib.sha256(parsed.style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in policy
    # A CSP with a style hash ignores style attributes: colours must come from classes.
    assert not any("style" in attrs for _, attrs in parsed.tags)


def test_numbers_and_charts() -> None:
    text, parsed = page()
    values = {
        a.get("data-metric"): None
        for t, a in parsed.tags
        if t == "div" and "card" in (a.get("class") or "").split()
    }
    assert set(values) == {"records", "open", "exposed", "cleartext_login", "no_tls"}
    assert re.search(r'data-metric="exposed"><span class="value">5</span>', text)
    assert re.search(r'data-metric="records"><span class="value">10</span>', text)
    charts = [a for t, a in parsed.tags if t == "svg"]
    assert len(charts) == 9  # eight breakdowns and the trend
    assert sum(1 for t, a in parsed.tags if t == "polyline" and a.get("class") == "trend-line") == 4
    assert sum(1 for t, a in parsed.tags if t == "rect" and a.get("class") == "bar-exposed") >= 20
    assert [a.get("id") for t, a in parsed.tags if t == "table"] == ["worst", "status"]


def test_single_scan_has_no_trend_and_empty_scan_renders() -> None:
    text = render_html(compute(sample_pairs()))
    assert "trend-line" not in text
    empty = render_html(compute([]))
    assert "No endpoint has a finding." in empty
    assert Page(empty).tags  # well-formed enough to parse
    unattributed = render_html(compute((r, None) for r in sample_records()))  # type: ignore[misc]
    assert "unknown AS" in unattributed


def test_the_title_names_the_scan_once() -> None:
    """A scan named after its file (scan.jsonl) is not announced as "scan scan"."""
    text = render_html(compute(sample_pairs(), scan_id="scan"))
    assert "scan scan" not in text
    assert "<h1>cleartext report · scan</h1>" in text
    assert "<title>cleartext report · scan</title>" in text
    assert "<h1>cleartext report</h1>" in render_html(compute(sample_pairs()))


def test_long_labels_keep_their_start_and_fit_the_chart() -> None:
    """An AS label keeps "AS64500" and is cut at its end to fit the label column; the trend's outer
    x-axis labels are anchored inwards and the y-axis has room for big numbers."""
    long_name = "EXAMPLE-NET INTERNATIONAL TRANSIT AND HOSTING CORPORATION"
    pairs = [(r, replace(a, as_name=long_name) if a.asn else a) for r, a in sample_pairs()]
    parsed = Page(render_html(compute(pairs)))
    labels = [t for t in parsed.text if t.startswith("AS64500") and " exposed of " not in t]  # not tooltips
    assert labels and all(text_width(t) <= 190 for t in labels), labels
    assert any(t.startswith("AS64500 EXAMPLE-NET") and t.endswith("…") for t in labels), labels
    assert fit("AS64500 " + "W" * 40, 190).startswith("AS64500 W")

    older = compute(((r, a) for r, a in sample_pairs()[:3]), scan_id="national-scan-2026-10-01")
    older.scanned_at = "2026-10-01T00:00:00Z"
    now = compute(sample_pairs(), scan_id="national-scan-2026-11-01")
    now.records = now.open = now.exposed = 12_345_678
    svg = trend_chart(trends([older, now]), [("exposed", "exposed")])
    axis = re.findall(r'<text x="([\d.]+)" y="\d+" text-anchor="(\w+)"[^>]*>([^<]*)</text>', svg)
    dates = [(float(x), anchor) for x, anchor, text in axis if text.startswith("2026-")]
    assert [anchor for _, anchor in dates] == ["start", "end"]
    numbers = re.findall(r'<text class="num" x="([\d.]+)" y="[\d.]+" text-anchor="end">([\d,]+)</text>', svg)
    assert all(float(x) >= text_width(n) for x, n in numbers), numbers


def test_domain_section_escapes_what_an_imported_file_holds() -> None:
    from cleartext.domain.model import store_row
    from cleartext.report.stats import DomainStats
    from tests.domain_samples import sample_domains

    stats = compute(sample_pairs(), scan_id="now")
    plain = render_html(stats)
    assert 'id="domains"' not in plain  # no domain records: no section
    stats.domains = DomainStats()
    for record in sample_domains():
        stats.domains.add(store_row(record))
    text = render_html(stats)
    parsed = Page(text)
    assert 'id="domains"' in text and 'id="worst-domains"' in text and 'id="domains-by_dane"' in text
    assert "<script>alert(1)</script>" not in text and "\x1b" not in text
    assert "=HYPERLINK(&quot;x&quot;)&lt;script&gt;" in text and "\\x1b[31m.example" in text
    assert "script" not in [tag for tag, _ in parsed.tags]
    assert "dane-tlsa-mismatch" in "".join(parsed.text)
    assert text.index('id="worst"') < text.index('id="domains"') < text.index('id="status"')
