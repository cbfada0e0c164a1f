"""The exact bytes of the dashboard and the API: status, headers and body of pages and routes, kept as files.

Written against web/app.py as one closure, before it was split into modules (issue 16): the split must
change no URL, no status, no header, no cookie, no JSON key and no byte of a page, and this is the test
that would fail if it did. Each case is one request; its answer, with what is random in it replaced
(scan ids, token ids, session ids, CSRF values, the times of now, a cookie's expiry), is compared with
``tests/data/web_golden/<case>.txt``.

A deliberate change to a page or a route rewrites the files: ``CLEARTEXT_GOLDEN_UPDATE=1 pytest
tests/unit/test_web_golden.py``, then read the diff before committing it.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from cleartext.record import Record
from cleartext.store import open_store
from cleartext.web.selfcheck import RateLimited, SelfChecker, SelfCheckResult
from tests.unit.report_samples import sample_records
from tests.unit.test_web_api import World, build_world, web_app

GOLDEN = Path(__file__).resolve().parent.parent / "data" / "web_golden"
UPDATE = os.environ.get("CLEARTEXT_GOLDEN_UPDATE") == "1"
# Headers that name the moment or the temporary file of a download, not what was answered.
VOLATILE_HEADERS = {"date", "etag", "last-modified"}
TIME_KEYS = {"created_at", "finished_at", "revoked_at"}


@dataclass
class Case:
    name: str
    method: str
    path: str  # may hold {scan0}, {scan1}, {hostile}, {detail}
    who: str | None = None  # a dashboard session of this token
    bearer: str | None = None  # an Authorization header with this token
    data: dict[str, str] | None = None  # a form (with csrf="{csrf}": the session's value)
    body: str | None = None  # a raw body (JSON for the API)
    headers: dict[str, str] = field(default_factory=dict)
    https: bool = False
    self_check: Callable[..., Any] | None = None  # stands in for SelfChecker.run


def _fixed_result(*_: object) -> SelfCheckResult:
    records = [r for r in sample_records() if r.observation.address.startswith("192.0.2.")][:3]
    return SelfCheckResult("mail.example.net", sorted({r.observation.address for r in records}), records)


async def _checked(self: SelfChecker, scope: object, host: str) -> SelfCheckResult:
    return _fixed_result()


async def _limited(self: SelfChecker, scope: object, host: str) -> SelfCheckResult:
    raise RateLimited(41.5)


CASES = [
    # -- pages ------------------------------------------------------------------------------------------
    Case("login-page", "GET", "/login"),
    Case("login-page-https", "GET", "/login", https=True),
    Case("login-bad-token", "POST", "/login", data={"token": "ct_00000000_" + "A" * 43}),
    Case("login-admin", "POST", "/login", data={"token": "{token_admin}"}),
    Case("login-admin-https", "POST", "/login", data={"token": "{token_admin}"}, https=True),
    Case(
        "login-cross-site",
        "POST",
        "/login",
        data={"token": "{token_admin}"},
        headers={"sec-fetch-site": "cross-site"},
    ),
    Case("login-page-logged-in", "GET", "/login", who="as"),
    Case("overview-anonymous", "GET", "/"),
    Case("overview-admin", "GET", "/", who="admin"),
    Case("overview-admin-older-scan", "GET", "/?scan={scan0}", who="admin"),
    Case("overview-admin-unknown-scan", "GET", "/?scan=nope", who="admin"),
    Case("overview-country", "GET", "/", who="country"),
    Case("overview-mix", "GET", "/", who="mix"),
    Case("overview-nobody", "GET", "/", who="nobody"),
    Case("endpoints-admin", "GET", "/endpoints", who="admin"),
    Case("endpoints-admin-page-2", "GET", "/endpoints?scan={scan1}&sort=address&offset=50", who="admin"),
    Case(
        "endpoints-admin-filtered",
        "GET",
        "/endpoints?protocol=IMAP&severity=high&code=cleartext-login&country=fr&asn=as64501&sort=severity",
        who="admin",
    ),
    Case(
        "endpoints-admin-address",
        "GET",
        "/endpoints?scan={scan0}&address=192.0.2.0/24&status=success",
        who="admin",
    ),
    Case(
        "endpoints-bad-filters",
        "GET",
        "/endpoints?port=99999&country=FRA&asn=x&protocol=gopher&address=nowhere&code=&software=DOVECOT",
        who="admin",
    ),
    Case("endpoints-bad-offset", "GET", "/endpoints?offset=-1", who="admin"),
    Case("endpoints-cidr", "GET", "/endpoints", who="cidr"),
    Case("endpoints-nobody", "GET", "/endpoints", who="nobody"),
    Case("endpoint-hostile", "GET", "/endpoints/{scan1}/{hostile}", who="admin"),
    Case("endpoint-detail", "GET", "/endpoints/{scan1}/{detail}", who="admin"),
    Case("endpoint-older-scan", "GET", "/endpoints/{scan0}/{older}", who="admin"),
    Case("endpoint-missing", "GET", "/endpoints/{scan1}/192.0.2.254/1", who="admin"),
    Case("endpoint-not-owned", "GET", "/endpoints/{scan1}/{hostile}", who="nobody"),
    Case("endpoint-anonymous", "GET", "/endpoints/{scan1}/{hostile}"),
    Case("self-check-page", "GET", "/self-check", who="as"),
    Case("self-check-page-admin", "GET", "/self-check", who="admin"),
    Case("self-check-anonymous", "GET", "/self-check"),
    Case("self-check-stale-form", "POST", "/self-check", who="as", data={"csrf": "wrong", "host": "x"}),
    Case(
        "self-check-cross-site",
        "POST",
        "/self-check",
        who="as",
        data={"csrf": "{csrf}", "host": "x"},
        headers={"sec-fetch-site": "cross-site"},
    ),
    Case(
        "self-check-refused",
        "POST",
        "/self-check",
        who="cidr",
        data={"csrf": "{csrf}", "host": "198.51.100.9"},
    ),
    Case("self-check-bad-host", "POST", "/self-check", who="cidr", data={"csrf": "{csrf}", "host": "a b"}),
    Case(
        "self-check-result",
        "POST",
        "/self-check",
        who="as",
        data={"csrf": "{csrf}", "host": "mail.example.net"},
        self_check=_checked,
    ),
    Case(
        "self-check-rate-limited",
        "POST",
        "/self-check",
        who="as",
        data={"csrf": "{csrf}", "host": "mail.example.net"},
        self_check=_limited,
    ),
    Case("logout", "POST", "/logout", who="admin", data={"csrf": "{csrf}"}),
    Case("logout-stale-form", "POST", "/logout", who="admin", data={"csrf": "wrong"}),
    Case("logout-anonymous", "POST", "/logout", data={}),
    Case("stylesheet", "GET", "/static/app.css"),
    Case("icon", "GET", "/static/icon.svg"),
    Case("favicon", "GET", "/favicon.ico"),
    Case("no-such-page", "GET", "/nope", who="admin"),
    Case("docs-off", "GET", "/docs"),
    Case("openapi", "GET", "/openapi.json"),
    # -- how routing answers what no route takes: methods, slashes, HEAD ---------------------------------
    Case("page-wrong-method", "POST", "/", who="admin"),
    Case("logout-get", "GET", "/logout", who="admin"),
    Case("login-head", "HEAD", "/login"),
    Case("stylesheet-head", "HEAD", "/static/app.css"),
    Case("api-self-check-get", "GET", "/api/self-check", bearer="as"),
    Case("api-scans-put", "PUT", "/api/scans", bearer="admin"),
    Case("api-trailing-slash", "GET", "/api/scans/", bearer="admin"),
    Case("page-trailing-slash", "GET", "/endpoints/", who="admin"),
    Case("static-missing", "GET", "/static/nope.css"),
    Case("openapi-head", "HEAD", "/openapi.json"),
    # -- API --------------------------------------------------------------------------------------------
    Case("api-me-admin", "GET", "/api/me", bearer="admin"),
    Case("api-me-mix", "GET", "/api/me", bearer="mix"),
    Case("api-me-session", "GET", "/api/me", who="country"),
    Case("api-me-anonymous", "GET", "/api/me"),
    Case("api-me-bad-token", "GET", "/api/me", headers={"authorization": "Bearer ct_00000000_" + "A" * 43}),
    Case("api-me-post", "POST", "/api/me", bearer="admin"),
    Case("api-scans-admin", "GET", "/api/scans", bearer="admin"),
    Case("api-scans-country", "GET", "/api/scans", bearer="country"),
    Case("api-scans-nobody", "GET", "/api/scans", bearer="nobody"),
    Case("api-scan-admin", "GET", "/api/scans/{scan0}", bearer="admin"),
    Case("api-scan-latest-cidr", "GET", "/api/scans/latest", bearer="cidr"),
    Case("api-scan-missing", "GET", "/api/scans/nope", bearer="admin"),
    Case("api-stats-mix", "GET", "/api/scans/{scan1}/stats", bearer="mix"),
    Case("api-stats-admin-older", "GET", "/api/scans/{scan0}/stats", bearer="admin"),
    Case("api-stats-admin-domains", "GET", "/api/scans/{scan1}/stats", bearer="admin"),
    Case("api-domains-admin", "GET", "/api/scans/{scan1}/domains?limit=2", bearer="admin"),
    Case("api-domains-admin-none", "GET", "/api/scans/{scan0}/domains", bearer="admin"),
    Case("api-domains-owner", "GET", "/api/scans/{scan1}/domains", bearer="mix"),
    Case("api-domains-session-owner", "GET", "/api/scans/latest/domains", who="country"),
    Case("api-trend-as", "GET", "/api/trend", bearer="as"),
    Case("api-trend-upto", "GET", "/api/trend?upto={scan0}", bearer="admin"),
    Case("api-trend-nobody", "GET", "/api/trend", bearer="nobody"),
    Case("api-endpoints-admin", "GET", "/api/endpoints?limit=5&offset=5&protocol=imap", bearer="admin"),
    Case(
        "api-endpoints-severity", "GET", "/api/endpoints?scan={scan1}&limit=7&sort=severity", bearer="country"
    ),
    Case(
        "api-endpoints-filters",
        "GET",
        "/api/endpoints?status=success&country=nl&asn=AS64502&address=2001:db8::/32&limit=3",
        bearer="admin",
    ),
    Case(
        "api-endpoints-every-filter",
        "GET",
        "/api/endpoints?code=no-tls&severity=none&status=success&country=nl&asn=AS64502&address=2001:db8::/32"
        "&software=dovecot&port=110&protocol=pop3&sort=severity",
        bearer="admin",
    ),
    Case("api-endpoints-last-page", "GET", "/api/endpoints?scan={scan0}&limit=1000", bearer="cidr"),
    Case("api-endpoints-nobody", "GET", "/api/endpoints", bearer="nobody"),
    Case("api-endpoints-bad-port", "GET", "/api/endpoints?port=70000", bearer="admin"),
    Case("api-endpoints-bad-offset", "GET", "/api/endpoints?offset=-1&limit=0", bearer="admin"),
    Case("api-endpoints-huge-offset", "GET", "/api/endpoints?offset=9223372036854775808", bearer="admin"),
    Case("api-endpoints-bad-asn", "GET", "/api/endpoints?asn=x", bearer="admin"),
    Case("api-endpoints-bad-enum", "GET", "/api/endpoints?protocol=gopher&sort=random", bearer="admin"),
    Case("api-endpoints-bad-address", "GET", "/api/endpoints?address=nowhere", bearer="admin"),
    Case("api-endpoints-missing-scan", "GET", "/api/endpoints?scan=nope", bearer="admin"),
    Case("api-endpoint-hostile", "GET", "/api/endpoints/{scan1}/{hostile}", bearer="admin"),
    Case("api-endpoint-detail", "GET", "/api/endpoints/{scan1}/{detail}", bearer="admin"),
    Case("api-endpoint-not-owned", "GET", "/api/endpoints/{scan1}/{hostile}", bearer="nobody"),
    Case("api-endpoint-bad-port", "GET", "/api/endpoints/{scan1}/192.0.2.1/x", bearer="admin"),
    Case("api-findings-admin", "GET", "/api/findings?severity=high&limit=7&offset=3", bearer="admin"),
    Case("api-findings-as", "GET", "/api/findings?scan={scan0}&code=weak-cipher", bearer="as"),
    Case("api-report-country", "GET", "/api/scans/{scan1}/report.html", bearer="country"),
    Case("api-export-csv", "GET", "/api/scans/{scan1}/export.csv?protocol=smtp", bearer="admin"),
    Case("api-export-jsonl", "GET", "/api/scans/latest/export.jsonl", bearer="cidr"),
    Case("api-export-parquet", "GET", "/api/scans/{scan0}/export.parquet?country=DE", bearer="as"),
    Case("api-export-bad-format", "GET", "/api/scans/{scan1}/export.xml", bearer="admin"),
    Case("api-export-missing-scan", "GET", "/api/scans/nope/export.csv", bearer="admin"),
    Case("api-self-check-anonymous", "POST", "/api/self-check", body='{"host": "x"}'),
    Case("api-self-check-session", "POST", "/api/self-check", who="as", body='{"host": "x"}'),
    Case(
        "api-self-check-bad-token",
        "POST",
        "/api/self-check",
        body='{"host": "x"}',
        headers={"authorization": "Bearer nope"},
    ),
    Case("api-self-check-bad-body", "POST", "/api/self-check", bearer="as", body="[1, 2]"),
    Case("api-self-check-refused", "POST", "/api/self-check", bearer="cidr", body='{"host": "198.51.100.9"}'),
    Case(
        "api-self-check-result",
        "POST",
        "/api/self-check",
        bearer="as",
        body='{"host": "mail.example.net"}',
        self_check=_checked,
    ),
    Case(
        "api-self-check-rate-limited",
        "POST",
        "/api/self-check",
        bearer="as",
        body='{"host": "mail.example.net"}',
        self_check=_limited,
    ),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def app(world: World) -> Iterator[Any]:
    store = open_store(world.url, create=False)
    try:
        yield web_app(world, store)
    finally:
        store.close()


def _endpoint_of(record: Record) -> str:
    return f"{record.observation.address}/{record.observation.port}"


def _places(world: World) -> dict[str, str]:
    newest, older = world.records[world.scans[1]], world.records[world.scans[0]]
    hostile = "{}/{}".format(*world.hostile[0])
    # An endpoint with everything the page can show: a certificate chain, a matrix, findings with fixes.
    detail = next(
        r
        for r in newest
        if r.findings
        and r.observation.tls
        and r.observation.tls.chain
        and r.observation.matrix
        and _endpoint_of(r) != hostile
    )
    return {
        "scan0": world.scans[0],
        "scan1": world.scans[1],
        "hostile": hostile,
        "detail": _endpoint_of(detail),
        "older": _endpoint_of(next(r for r in older if r.findings)),
    }


def _normalise(text: str, world: World) -> str:
    """What changes from run to run, named instead: scan and token ids, session ids, CSRF values."""
    for index, scan_id in enumerate(world.scans):
        text = text.replace(scan_id, f"SCAN{index}")
    for who, token_id in world.token_ids.items():
        text = text.replace(token_id, f"TOKEN-{who}")
    text = re.sub(r'(name="csrf" value=")[^"]+"', r'\1CSRF"', text)
    text = re.sub(r"(cleartext_session=)[^;]*", r"\1SESSION", text)
    return re.sub(r"(; expires=)[^;]*", r"\1TIME", text)


def _blank_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("TIME" if k in TIME_KEYS and v else _blank_times(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_times(v) for v in value]
    return value


def _body(content_type: str, content: bytes) -> str:
    if not content:  # HEAD, redirects
        return ""
    if content_type.startswith("application/json"):
        return json.dumps(_blank_times(json.loads(content)), indent=1, ensure_ascii=False, sort_keys=False)
    if content_type.startswith("application/vnd.apache.parquet"):
        table = pq.read_table(io.BytesIO(content))
        return str(table.schema) + "\n" + json.dumps(table.to_pylist(), indent=1, default=str)
    return content.decode("utf-8")


def _session(app: Any, world: World, who: str, https: bool) -> tuple[TestClient, str]:
    client = TestClient(app, base_url="https://testserver" if https else "http://testserver")
    response = client.post("/login", data={"token": world.tokens[who]}, follow_redirects=False)
    assert response.status_code == 303
    page = client.get("/self-check").text
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return client, match.group(1)


def _answer(app: Any, world: World, case: Case, monkeypatch: pytest.MonkeyPatch) -> str:
    places = {**_places(world), **{f"token_{who}": token for who, token in world.tokens.items()}}
    if case.self_check is not None:
        monkeypatch.setattr(SelfChecker, "run", case.self_check)
    csrf = ""
    if case.who is not None:
        client, csrf = _session(app, world, case.who, case.https)
    else:
        client = TestClient(app, base_url="https://testserver" if case.https else "http://testserver")
    places["csrf"] = csrf
    path = case.path.format_map(places)
    headers = dict(case.headers)
    if case.bearer is not None:
        headers["authorization"] = f"Bearer {world.tokens[case.bearer]}"
    data = {k: v.format_map(places) for k, v in case.data.items()} if case.data is not None else None
    if case.body is not None:
        headers.setdefault("content-type", "application/json")
    response = client.request(
        case.method, path, headers=headers, data=data, content=case.body, follow_redirects=False
    )
    lines = [
        f"{case.method} {case.path}"
        + (f"  [session {case.who}]" if case.who else "")
        + (f"  [bearer {case.bearer}]" if case.bearer else ""),
        str(response.status_code),
    ]
    for name, value in response.headers.multi_items():
        if name not in VOLATILE_HEADERS:
            lines.append(f"{name}: {value}")
    body = _body(response.headers.get("content-type", ""), response.content)
    return _normalise("\n".join(lines) + "\n\n" + body, world)


def test_cases_have_distinct_names() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_answer_is_byte_for_byte_what_it_was(
    app: Any, world: World, case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    got = _answer(app, world, case, monkeypatch)
    path = GOLDEN / f"{case.name}.txt"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got.encode("utf-8"))
    assert path.exists(), f"no golden file for {case.name}: run with CLEARTEXT_GOLDEN_UPDATE=1"
    want = path.read_bytes().decode("utf-8")  # as written: CSV lines end in CRLF
    assert got == want, f"{case.name} differs from {path}"
