"""The dashboard through FastAPI's TestClient: login, sessions, CSRF, headers, escaping, page isolation.

The browser test (tests/integration/test_web_browser.py) shows the same pages in real Chromium; here
every rule is checked quickly and exhaustively at the HTTP level.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cleartext.store import open_store
from cleartext.web.app import CSP, SESSION_COOKIE
from cleartext.web.tokens import TokenStore
from tests.unit.report_samples import HOSTILE_BANNER
from tests.unit.test_web_api import World, assert_no_internals, build_world, web_app


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("pages"))


@pytest.fixture(scope="module")
def app_store(world: World) -> Iterator[tuple[object, object]]:
    store = open_store(str(world.store_path), create=False)
    try:
        yield web_app(world, store), store
    finally:
        store.close()


def logged_in(app: object, world: World, who: str, **kw: object) -> TestClient:
    client = TestClient(app, **kw)  # type: ignore[arg-type]
    response = client.post("/login", data={"token": world.tokens[who]}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/"
    return client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match
    return match.group(1)


def test_login_sets_a_strict_httponly_session_cookie(app_store: tuple[object, object], world: World) -> None:
    app, _ = app_store
    client = TestClient(app)  # type: ignore[arg-type]
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    bad = client.post("/login", data={"token": "ct_00000000_" + "A" * 43})
    assert bad.status_code == 401 and "not valid" in bad.text
    response = client.post("/login", data={"token": world.tokens["as"]}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind TLS it is Secure (below)
    assert world.tokens["as"] not in cookie  # the cookie names a session, never the token
    page = client.get("/")
    assert page.status_code == 200 and "owner of AS64500" in page.text
    # Log out needs the session's CSRF value; then the session is gone.
    assert client.post("/logout", data={"csrf": "wrong"}).status_code == 403
    out = client.post("/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303


def test_cookie_is_secure_and_hsts_is_sent_behind_tls(app_store: tuple[object, object], world: World) -> None:
    app, _ = app_store
    client = TestClient(app, base_url="https://dashboard.example")  # type: ignore[arg-type]
    response = client.post("/login", data={"token": world.tokens["admin"]}, follow_redirects=False)
    assert "Secure" in response.headers["set-cookie"]
    assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    plain = TestClient(app)  # type: ignore[arg-type]
    assert "strict-transport-security" not in plain.get("/login").headers


@pytest.mark.parametrize(
    "path", ["/login", "/", "/endpoints", "/api/scans", "/api/nope", "/static/app.css", "/openapi.json"]
)
def test_security_headers_on_every_response(
    app_store: tuple[object, object], world: World, path: str
) -> None:
    app, _ = app_store
    client = logged_in(app, world, "admin")
    response = client.get(path, follow_redirects=False)
    headers = response.headers
    assert headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP and "script-src 'none'" in CSP and "frame-ancestors 'none'" in CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == ("public, max-age=3600" if path.startswith("/static") else "no-store")
    assert "server" not in headers or "uvicorn" not in headers["server"]


def test_pages_have_no_script_no_inline_style_and_nothing_external(
    app_store: tuple[object, object], world: World
) -> None:
    app, _ = app_store
    client = logged_in(app, world, "admin")
    scan_id = world.scans[-1]
    address, port = world.hostile[0]
    for path in ("/", "/endpoints", f"/endpoints/{scan_id}/{address}/{port}", "/self-check", "/login"):
        html = client.get(path).text
        assert "<script" not in html
        assert " style=" not in html and "<style" not in html
        assert not re.search(r'(src|href)="(https?:)?//', html), path
        assert re.search(r"<[^>]*\son[a-z]+\s*=", html) is None, path  # no event-handler attribute


def test_hostile_banner_is_escaped_everywhere(app_store: tuple[object, object], world: World) -> None:
    app, _ = app_store
    client = logged_in(app, world, "admin")
    scan_id = world.scans[-1]
    overview = client.get(f"/?scan={scan_id}").text
    detail_address, detail_port = world.hostile[0]
    detail = client.get(f"/endpoints/{scan_id}/{detail_address}/{detail_port}").text
    for html in (overview, detail):
        assert "<script>alert(1)</script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
        assert "<svg onload" not in html
        assert '<a href="https://evil.example' not in html
    assert "<b>aborted</b>" not in detail and "&lt;b&gt;aborted&lt;/b&gt;" in detail
    assert "a password can be sent in clear" in detail and "although it does not advertise a login" in detail
    assert HOSTILE_BANNER.startswith("* OK")


def test_domains_section_is_admin_only_and_escaped(app_store: tuple[object, object], world: World) -> None:
    app, _ = app_store
    older, newer = world.scans
    admin = logged_in(app, world, "admin")
    html = admin.get(f"/?scan={newer}").text
    assert '<section id="domains">' in html and 'data-metric="domains_checked"><span class="value">3<' in html
    rows = re.findall(r"<tr><td><code>(.*?)</code></td>", html.split('id="domain-list"')[1])
    assert rows[0] == "example.org" and rows[2] == "clean.example"
    # The hostile name: a formula, markup and an escape sequence, shown as text and never obeyed.
    assert rows[1] == "=HYPERLINK(&#34;x&#34;)&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31m.example"
    assert "<script>alert(1)" not in html and "\x1b" not in html
    assert 'href="/api/scans/' + newer + '/domains"' in html
    assert '<section id="domains">' not in admin.get(f"/?scan={older}").text  # no domains in that scan
    for who in ("country", "mix", "as"):
        owner = logged_in(app, world, who).get(f"/?scan={newer}").text
        assert '<section id="domains">' not in owner and "<code>example.org</code>" not in owner, who
        assert "HYPERLINK" not in owner and "/domains" not in owner, who


def test_owner_pages_show_only_their_endpoints(app_store: tuple[object, object], world: World) -> None:
    app, _ = app_store
    client = logged_in(app, world, "country")
    scan_id = world.scans[-1]
    mine = world.visible("country", scan_id)
    overview = client.get("/").text
    records = re.search(r'data-metric="records"><span class="value">([\d,]+)<', overview)
    assert records and int(records.group(1).replace(",", "")) == len(mine)
    listed: set[tuple[str, int]] = set()
    url = f"/endpoints?scan={scan_id}&sort=address"
    for _ in range(20):
        html = client.get(url).text
        listed |= {(a, int(p)) for a, p in re.findall(r'data-address="([^"]+)" data-port="(\d+)"', html)}
        nxt = re.search(r'<a href="([^"]+)" id="next">', html)
        if not nxt:
            break
        url = nxt.group(1).replace("&amp;", "&")
    assert listed == {(r.observation.address, r.observation.port) for r in mine}
    theirs = next(r for r in world.records[scan_id] if not world.owned("country", r.observation.address))
    o = theirs.observation
    page = client.get(f"/endpoints/{scan_id}/{o.address}/{o.port}")
    assert page.status_code == 404 and o.address not in page.text
    # The AS filter of another owner gives nothing, not their endpoints.
    html = client.get(f"/endpoints?scan={scan_id}&asn=AS64500").text
    assert 'data-address="' not in html and "0 of 0" in html


def test_filters_form_keeps_values_and_reports_bad_ones(
    app_store: tuple[object, object], world: World
) -> None:
    app, _ = app_store
    client = logged_in(app, world, "admin")
    scan_id = world.scans[-1]
    html = client.get(f"/endpoints?scan={scan_id}&protocol=imap&port=&status=success&country=de").text
    rows = re.findall(r"<td>(imap|pop3|smtp)</td><td>(\w[\w-]*)</td>", html)
    assert rows and all(p == "imap" and s == "success" for p, s in rows)
    assert "<option selected>imap</option>" in html and 'value="de"' in html
    want = sum(
        1
        for r in world.records[scan_id]
        if r.observation.protocol.value == "imap"
        and r.observation.status.value == "success"
        and world.attribution[r.observation.address].country == "DE"
    )
    assert f"{want} endpoints match" in html
    bad = client.get(f"/endpoints?scan={scan_id}&port=99999&address=nonsense").text
    assert 'id="error"' in bad and "not a TCP port" in bad and "neither an address nor a CIDR" in bad


def test_revoked_token_ends_its_sessions(world: World, tmp_path_factory: pytest.TempPathFactory) -> None:
    store = open_store(str(world.store_path), create=False)
    try:
        app = web_app(world, store)
        token_id, token = TokenStore(store).create(admin=True, label="short-lived")
        client = TestClient(app)
        assert client.post("/login", data={"token": token}).status_code == 200
        assert client.get("/api/scans").status_code == 200  # the session works for the API too
        TokenStore(store).revoke(token_id)
        assert client.get("/", follow_redirects=False).status_code == 303
        assert client.get("/api/scans").status_code == 401
        assert client.get("/api/scans", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    finally:
        store.close()


def test_forms_refuse_cross_site_posts(app_store: tuple[object, object], world: World) -> None:
    app, _ = app_store
    client = logged_in(app, world, "admin")
    page = client.get("/self-check").text
    evil = {"origin": "https://evil.example"}
    refused = client.post("/self-check", data={"csrf": csrf_of(page), "host": "127.0.0.1"}, headers=evil)
    assert refused.status_code == 403 and "cross-site" in refused.text
    no_csrf = client.post("/self-check", data={"host": "127.0.0.1"})
    assert no_csrf.status_code == 403
    login = TestClient(app).post("/login", data={"token": world.tokens["admin"]}, headers=evil)  # type: ignore[arg-type]
    assert login.status_code == 403
    api_with_cookie = client.post("/api/self-check", json={"host": "127.0.0.1"})
    assert api_with_cookie.status_code == 401  # the API's POST takes a bearer token, never the cookie


@pytest.mark.parametrize("offset", ["9223372036854775808", "-5", "1e3", "99999999999999999999999999"])
def test_endpoints_page_refuses_an_out_of_range_offset(
    app_store: tuple[object, object], world: World, offset: str
) -> None:
    app, _ = app_store
    client = logged_in(app, world, "admin")
    response = client.get(f"/endpoints?offset={offset}")
    assert response.status_code == 422
    assert "offset must be an integer from 0 to 1000000000000000" in response.text
    assert_no_internals(response.text, world)
    assert client.get("/endpoints?offset=1000000000000000").status_code == 200
