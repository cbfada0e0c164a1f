"""The dashboard in a real browser: `cleartext serve` (uvicorn) on 127.0.0.1, Debian's headless Chromium.

What a person would check: the overview shows the right numbers and draws its charts, the endpoint
filters work, an endpoint page shows a hostile banner as text (no dialog, no injected element), an
owner logged in with their token sees their endpoints and gets a 404 for anyone else's, a self-check
runs against the lab for an owner of 127.0.0.0/8 and is refused for an owner of 192.0.2.0/24, and no
request of the browser ever leaves 127.0.0.1. Tokens are made with the real `cleartext token create`.

Set CLEARTEXT_UPDATE_SCREENSHOT=1 to refresh docs/img/web-*.png from these pages.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import ROOT, run_cli
from tests.domain_samples import HOSTILE_DOMAIN
from tests.integration.test_report_browser import CHROMIUM, CHROMIUM_ARGS, OVERFLOWING_TEXT, need_browser
from tests.pg import free_port
from tests.unit.test_web_api import build_world

START_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, lab: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The seeded store, tokens from the CLI, and `cleartext serve` running on a free loopback port."""
    tmp = tmp_path_factory.mktemp("web-browser")
    world = build_world(tmp)
    for who, spec in (("loopback", "127.0.0.0/8"), ("docs", "192.0.2.0/24")):
        made = run_cli("token", "create", "--owner", spec, "--label", who, "--store", str(world.store_path))
        assert made.returncode == 0, made.stderr
        world.tokens[who] = made.stdout.strip()
    port = free_port()
    log = (tmp / "serve.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "cleartext", "serve",
            "--store", str(world.store_path),
            "--host", "127.0.0.1", "--port", str(port),
            *world.attribution_args,
            "--self-check-allow-reserved", "--self-checks", "3",
            "--ca-file", lab["ca_file"],
            "--resolve", "mail.lab.example:127.0.0.4",
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base}/login", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"cleartext serve did not start: {(tmp / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield {"base": base, "world": world, "tmp": tmp}
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


class Browser:
    """One Chromium with the watchers every page needs: requests, dialogs, console errors."""

    def __init__(self, pw: Any) -> None:
        self.browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        self.requests: list[str] = []
        self.dialogs: list[str] = []
        self.problems: list[str] = []

    def page(self, base: str, token: str | None = None) -> Any:
        context = self.browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: self.problems.append(m.text) if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: self.problems.append(str(e)))
        if token is not None:
            page.goto(f"{base}/login")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
        return page

    def check_clean(self) -> None:
        hosts = {urllib.parse.urlsplit(url).hostname for url in self.requests}
        assert hosts <= {"127.0.0.1"}, hosts
        assert self.dialogs == []
        # The 404 of another owner's endpoint and the 403 of a refused self-check are expected:
        # Chromium logs every 4xx page. Nothing else may appear (a CSP violation would).
        expected = ("status of 404 (Not Found)", "status of 403 (Forbidden)")
        assert [p for p in self.problems if not p.endswith(expected)] == []

    def close(self) -> None:
        self.browser.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    sync_playwright = need_browser()
    with sync_playwright() as pw:
        b = Browser(pw)
        try:
            yield b
        finally:
            b.close()


def shot(page: Any, server: dict[str, Any], name: str, *, full_page: bool = True) -> None:
    path = server["tmp"] / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 20_000
    if os.environ.get("CLEARTEXT_UPDATE_SCREENSHOT"):
        target = ROOT / "docs" / "img" / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def card(page: Any, metric: str) -> str:
    return str(page.locator(f'[data-metric="{metric}"] .value').inner_text())


def test_admin_overview_filters_and_hostile_banner(server: dict[str, Any], browser: Browser) -> None:
    base, world = server["base"], server["world"]
    latest = world.scans[-1]
    expected = world.stats("admin", latest)
    page = browser.page(base, world.tokens["admin"])
    assert page.locator("#who").inner_text() == "CERT · admin"
    for metric in ("records", "open", "exposed", "cleartext_login", "no_tls"):
        assert card(page, metric) == f"{getattr(expected, metric):,}", metric
    assert page.locator("svg.chart").count() == 9  # eight breakdowns and the trend
    assert page.locator("svg.trend polyline.trend-line").count() == 4
    charts = " ".join(page.locator("figure").all_inner_texts())
    assert "AS64500 EXAMPLE-NET" in charts and "TLSv1.3" in charts and "cleartext-login" in charts
    # No chart text runs off its chart: AS labels keep their "AS", the trend's outer dates show whole.
    assert page.evaluate(OVERFLOWING_TEXT) == []
    box = page.locator("svg.chart").first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 40
    worst = page.locator("#worst").inner_text()
    assert "<script>alert(1)</script>" in worst
    shot(page, server, "web-overview")

    # The domains of the scan (admin only): the hostile name imported from a file is text, not markup,
    # and its escape sequence is shown, not obeyed.
    assert card(page, "domains_checked") == "3" and card(page, "domains_with_findings") == "2"
    domains = page.locator("#domain-list tbody tr")
    assert domains.count() == 3
    assert domains.nth(0).inner_text().startswith("example.org\thigh\tdane-tlsa-mismatch")
    assert domains.nth(1).locator("code").inner_text() == HOSTILE_DOMAIN.replace("\x1b", "\\x1b")
    assert page.evaluate("document.querySelectorAll('#domains script, #domains img').length") == 0

    # The endpoints table, filtered through the form as a person would.
    page.click("nav >> text=Endpoints")
    page.select_option("#f-protocol", "imap")
    page.select_option("#f-code", "cleartext-login")
    page.click("#filters button[type=submit]")
    page.wait_for_load_state("load")
    want = [
        r
        for r in world.records[latest]
        if r.observation.protocol.value == "imap" and "cleartext-login" in {f.code for f in r.findings}
    ]
    assert page.locator("header").inner_text().endswith(f"{len(want)} endpoints match")
    rows = page.locator("#endpoints tbody tr")
    assert rows.count() == min(len(want), 50)
    for text in rows.all_inner_texts():
        assert "\timap\t" in text and "cleartext-login" in text
    shot(page, server, "web-endpoints")

    # An endpoint whose server sent markup: shown as text, nothing runs, nothing is injected.
    address, port = world.hostile[0]
    page.goto(f"{base}/endpoints/{latest}/{address}/{port}")
    greeting = page.locator("dd.greeting").inner_text()
    assert "<script>alert(1)</script>" in greeting and '"><img src=x onerror=alert(2)>' in greeting
    injected = page.evaluate(
        "document.querySelectorAll('script, img, iframe, object, embed, [onerror], [onload]').length"
    )
    assert injected == 0
    assert page.locator(".finding").count() >= 1
    assert "How to fix it" in page.locator(".finding").first.inner_text()
    shot(page, server, "web-endpoint")
    browser.check_clean()


def test_owner_sees_only_their_networks(server: dict[str, Any], browser: Browser) -> None:
    base, world = server["base"], server["world"]
    latest = world.scans[-1]
    mine = world.visible("as", latest)
    page = browser.page(base, world.tokens["as"])
    assert page.locator("#who").inner_text() == "owner as · owner of AS64500"
    assert card(page, "records") == f"{len(mine):,}"
    assert card(page, "exposed") == f"{world.stats('as', latest).exposed:,}"
    assert "AS64501" not in " ".join(page.locator("figure").all_inner_texts())
    page.goto(f"{base}/endpoints?scan={latest}&sort=address")
    addresses = page.locator("#endpoints tbody tr").evaluate_all("rows => rows.map(r => r.dataset.address)")
    assert addresses and all(a.startswith("192.0.2.") for a in addresses)
    theirs = next(r for r in world.records[latest] if not world.owned("as", r.observation.address))
    o = theirs.observation
    response = page.goto(f"{base}/endpoints/{latest}/{o.address}/{o.port}")
    assert response is not None and response.status == 404
    assert o.address not in page.locator("main").inner_text()
    api = page.request.get(f"{base}/api/endpoints/{latest}/{o.address}/{o.port}")
    assert api.status == 404
    assert page.locator("#domains").count() == 0  # domains are for admin tokens only
    assert page.request.get(f"{base}/api/scans/{latest}/domains").status == 403
    download = page.request.get(f"{base}/api/scans/{latest}/export.csv")
    rows = list(csv.DictReader(io.StringIO(download.text())))
    assert {(r["address"], int(r["port"])) for r in rows} == {
        (r.observation.address, r.observation.port) for r in mine
    }
    browser.check_clean()


@pytest.mark.lab
def test_self_check_against_the_lab(server: dict[str, Any], browser: Browser) -> None:
    base, world = server["base"], server["world"]
    refused = browser.page(base, world.tokens["docs"])
    refused.goto(f"{base}/self-check")
    refused.fill("#host", "127.0.0.4")
    refused.click("#self-check button[type=submit]")
    refused.wait_for_load_state("load")
    assert "not in the networks this token owns" in refused.locator("#error").inner_text()
    assert refused.locator("#verdicts").count() == 0

    page = browser.page(base, world.tokens["loopback"])
    page.goto(f"{base}/self-check")
    page.fill("#host", "mail.lab.example")
    with page.expect_navigation(timeout=90_000):
        page.click("#self-check button[type=submit]")
    assert "mail.lab.example (127.0.0.4)" in page.locator("#result h2").first.inner_text()
    verdicts = page.locator("#verdicts tbody tr").all_inner_texts()
    assert len(verdicts) == 7
    assert all("\tsuccess\t" in row for row in verdicts), verdicts
    assert page.locator(".finding").count() == 0  # the tls-required profile has no finding

    page.fill("#host", "127.0.0.2")  # the plaintext profile: findings, with the fix for its software
    with page.expect_navigation(timeout=90_000):
        page.click("#self-check button[type=submit]")
    codes = " ".join(page.locator("#verdicts").all_inner_texts())
    assert "cleartext-login" in codes and "no-tls" in codes
    fixes = " ".join(page.locator(".finding").all_inner_texts())
    assert "advice for Dovecot" in fixes and "advice for Postfix" in fixes
    shot(page, server, "web-self-check", full_page=False)  # the whole page runs to 6000 pixels
    browser.check_clean()

    # The same through the API with a bearer token; the fourth check in the window is refused.
    import json

    def api(host: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"{base}/api/self-check",
            data=json.dumps({"host": host}).encode(),
            headers={
                "Authorization": f"Bearer {world.tokens['loopback']}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=90) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            with contextlib.closing(exc):
                return exc.code, json.loads(exc.read())

    status, body = api("127.0.0.4")
    assert status == 200 and [r["status"] for r in body["records"]] == ["success"] * 7
    status, body = api("127.0.0.4")
    assert status == 429 and "too many self-checks" in body["detail"]
