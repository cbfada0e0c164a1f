"""The REST API against a real DuckDB store and real attribution files, through FastAPI's TestClient.

The world every web test uses (:func:`build_world`): two scans of generated records in six networks,
attributed by real iptoasn and MMDB files, and one token per kind of owner — an AS, a country, a CIDR,
a mix — plus an admin. What each token may see is computed here by an oracle written independently
of the server (address in CIDR, or the Enricher's AS / geolocation country), and every answer of the
server is compared with it: lists, pages, filters, details, statistics, trends and downloads.

tests/integration/test_web_browser.py reuses the world for the real browser against a real server.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from cleartext.domain.model import DomainRecord, store_row
from cleartext.enrich import Attribution, Enricher
from cleartext.record import LoginProbe, LoginVerdict, PlainPhase, Record
from cleartext.report.stats import DomainStats, Stats, compute, worst_order
from cleartext.store import Store, open_store
from cleartext.web.app import AppConfig, api_endpoint_href, create_app
from cleartext.web.data import data_fingerprint
from cleartext.web.tokens import TokenStore, parse_owner
from tests.domain_samples import HOSTILE_DOMAIN, sample_domains
from tests.enrich_files import country_record, write_iptoasn, write_mmdb
from tests.unit.report_samples import HOSTILE_BANNER, random_records, sample_records

OWNERS: dict[str, list[str]] = {
    "as": ["AS64500"],  # 192.0.2.0/24 by iptoasn
    "country": ["FR"],  # 198.51.100.0/24 by geolocation
    "cidr": ["203.0.113.0/24"],
    "mix": ["NL", "AS64503"],  # geolocated NL (100.64.7.0/24, 2001:db8::/32) and 203.0.113.0/24 by AS
    "nobody": ["2001:db8:ffff::/48"],  # a network holding no endpoint at all
}
SCAN_TIMES = ("2026-10-28T08:00:00Z", "2026-11-28T08:00:00Z")


@dataclass
class World:
    store_path: Path  # a DuckDB file, or (with store_url) where it would have been
    files: dict[str, list[Path]]
    scans: list[str] = field(default_factory=list)
    records: dict[str, list[Record]] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    token_ids: dict[str, str] = field(default_factory=dict)
    attribution: dict[str, Attribution] = field(default_factory=dict)
    hostile: list[tuple[str, int]] = field(default_factory=list)
    store_url: str | None = None  # a postgresql:// URL instead of the DuckDB file
    domains: dict[str, list[DomainRecord]] = field(default_factory=dict)  # by scan, where it has any

    @property
    def url(self) -> str:
        return self.store_url or str(self.store_path)

    @property
    def attribution_args(self) -> list[str]:
        return [arg for kind, paths in self.files.items() for p in paths for arg in (f"--{kind}", str(p))]

    def owned(self, who: str, address: str, country_source: str = "geo") -> bool:
        """The oracle: written from the ownership rules, not from the server's code."""
        if who == "admin":
            return True
        att = self.attribution[address]
        country = att.country if country_source == "geo" else att.registry_country
        for spec in OWNERS[who]:
            if spec.startswith("AS"):
                if att.asn == int(spec[2:]):
                    return True
            elif "/" in spec:
                if ipaddress.ip_address(address) in ipaddress.ip_network(spec):
                    return True
            elif country == spec:
                return True
        return False

    def visible(self, who: str, scan_id: str) -> list[Record]:
        return [r for r in self.records[scan_id] if self.owned(who, r.observation.address)]

    def stats(self, who: str, scan_id: str) -> Stats:
        stats = compute(
            ((r, self.attribution[r.observation.address]) for r in self.visible(who, scan_id)),
            "geo",
            scan_id=scan_id,
        )
        if who == "admin" and self.domains.get(scan_id):  # the oracle: domains are for admins only
            stats.domains = DomainStats()
            for domain in self.domains[scan_id]:
                stats.domains.add(store_row(domain))
            stats.domains.trim()
        return stats


def rank(record: Record) -> tuple[int, int, int, int, str, int]:
    """Where the worst endpoints tables put a record with findings."""
    worst = max(record.findings, key=lambda f: f.severity.rank).severity.value
    obs = record.observation
    return worst_order((f.code for f in record.findings), worst, len(record.findings), obs.address, obs.port)


def build_world(tmp: Path, store_url: str | None = None) -> World:
    """Write the data files and the store (closed afterwards), create the tokens."""
    iptoasn = write_iptoasn(
        tmp / "ip2asn-v4.tsv",
        [
            ("100.64.7.0", "100.64.7.255", 64510, "BE", "CARRIER-GRADE"),
            ("192.0.2.0", "192.0.2.255", 64500, "DE", "EXAMPLE-NET"),
            ("198.51.100.0", "198.51.100.255", 64501, "FR", "OTHER-AS"),
            ("203.0.113.0", "203.0.113.255", 64503, "US", "TRANSIT-3"),
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
    world = World(
        store_path=tmp / "web.duckdb", files={"iptoasn": [iptoasn], "mmdb": [geo]}, store_url=store_url
    )
    older = random_records(300, seed=11, started=SCAN_TIMES[0])
    newer = random_records(500, seed=12, started=SCAN_TIMES[1]) + sample_records()
    # Hostile banners on the newest scan: in each network, the endpoint its worst endpoints table ranks
    # first, so the banners show on the overview too.
    first: dict[str, Record] = {}
    for record in newer:
        if not record.findings:
            continue
        prefix = record.observation.address.rsplit(".", 1)[0].rsplit(":", 1)[0]
        if prefix not in first or rank(record) < rank(first[prefix]):
            first[prefix] = record
    for record in first.values():
        record.observation.greeting = HOSTILE_BANNER
        world.hostile.append((record.observation.address, record.observation.port))
        if record.observation.plain is None:
            record.observation.plain = PlainPhase(capabilities=[])
        # A login probe whose reply is hostile too: the page shows it as a transcript, escaped.
        record.observation.plain.login_probes = [
            LoginProbe(command="AUTH PLAIN", reply="334 " + HOSTILE_BANNER[:120], outcome="accepted",
                       reason="challenge", cancel_reply="501 <b>aborted</b>")
        ]
        record.login = LoginVerdict(True, "probed-accepted", False, ["AUTH PLAIN"], [])
    with Enricher.from_paths(iptoasn=[iptoasn], mmdb=[geo]) as enricher:
        for record in older + newer:
            address = record.observation.address
            world.attribution[address] = enricher.lookup(address)
    store = open_store(world.url)
    try:
        for when, records in zip(SCAN_TIMES, (older, newer), strict=True):
            scan_id = store.begin_scan(
                {"targets": ["198.51.100.0/24", "192.0.2.0/24"]}, started_at=dt.datetime.fromisoformat(when)
            )
            store.write(scan_id, records)
            if records is newer:  # the newest scan has domain records too (admin-only in the web)
                world.domains[scan_id] = sample_domains()
                store.write_domains(scan_id, [store_row(d) for d in world.domains[scan_id]])
            store.finish_scan(scan_id)
            world.scans.append(scan_id)
            world.records[scan_id] = records
        tokens = TokenStore(store)
        token_id, token = tokens.create(admin=True, label="CERT")
        world.tokens["admin"], world.token_ids["admin"] = token, token_id
        for who, specs in OWNERS.items():
            token_id, token = tokens.create(admin=False, owner=parse_owner(specs), label=f"owner {who}")
            world.tokens[who], world.token_ids[who] = token, token_id
    finally:
        store.close()
    return world


def web_app(world: World, store: Store, config: AppConfig | None = None) -> Any:
    paths = [p for kind in world.files.values() for p in kind]
    enricher = Enricher.from_paths(**world.files)  # type: ignore[arg-type]
    return create_app(store, enricher=enricher, fingerprint=data_fingerprint(paths), config=config)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    store = open_store(world.url, create=False)
    try:
        with TestClient(web_app(world, store)) as test_client:
            yield test_client
    finally:
        store.close()


def bearer(world: World, who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def all_pages(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Follow ``next`` links to the end (bounded: a bug must not loop forever)."""
    items: list[dict[str, Any]] = []
    for _ in range(100):
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        if body["next"] is None:
            assert len(items) == body["total"]
            return items
        url = body["next"]
    raise AssertionError("pagination did not end")


WHO = ["admin", *OWNERS]


# -- isolation: every route, every filter -------------------------------------------------------------


@pytest.mark.parametrize("who", WHO)
def test_endpoint_lists_are_exactly_the_owned_ones(client: TestClient, world: World, who: str) -> None:
    for scan_id in world.scans:
        items = all_pages(client, f"/api/endpoints?scan={scan_id}&limit=97", bearer(world, who))
        got = {(i["address"], i["port"]) for i in items}
        want = {(r.observation.address, r.observation.port) for r in world.visible(who, scan_id)}
        assert got == want
        assert all(i["scan_id"] == scan_id for i in items)
    if who == "nobody":
        assert got == set()


@pytest.mark.parametrize("who", WHO)
def test_findings_lists_are_exactly_the_owned_ones(client: TestClient, world: World, who: str) -> None:
    scan_id = world.scans[-1]
    items = all_pages(client, f"/api/findings?scan={scan_id}&limit=250", bearer(world, who))
    got = sorted((i["address"], i["port"], i["code"]) for i in items)
    want = sorted(
        (r.observation.address, r.observation.port, f.code)
        for r in world.visible(who, scan_id)
        for f in r.findings
    )
    assert got == want
    ranks = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}
    assert [ranks[i["severity"]] for i in items] == sorted(
        (ranks[i["severity"]] for i in items), reverse=True
    )


FILTERS = [
    "protocol=imap",
    "protocol=smtp&port=25",
    "port=993",
    "status=success",
    "status=refused",
    "code=cleartext-login",
    "code=no-tls",
    "severity=high",
    "severity=none",
    "country=FR",
    "country=de",
    "asn=AS64500",
    "asn=64503",
    "address=192.0.2.0/24",
    "address=198.51.100.0/25",
    "address=2001:db8::/32",
    "address=10.0.0.0/8",
    "software=dovecot",
]


def _matches(world: World, record: Record, query: str) -> bool:
    """The filters' meaning, restated for the oracle."""
    o = record.observation
    att = world.attribution[o.address]
    for part in query.split("&"):
        name, value = part.split("=", 1)
        if name == "protocol" and o.protocol.value != value:
            return False
        if name == "port" and o.port != int(value):
            return False
        if name == "status" and o.status.value != value:
            return False
        if name == "code" and value not in {f.code for f in record.findings}:
            return False
        if name == "severity":
            worst = record.worst.value if record.worst else "none"
            if worst != value:
                return False
        if name == "country" and att.country != value.upper():
            return False
        if name == "asn" and att.asn != int(value.removeprefix("AS")):
            return False
        if name == "address" and ipaddress.ip_address(o.address) not in ipaddress.ip_network(value):
            return False
        if name == "software" and o.software != value:
            return False
    return True


@pytest.mark.parametrize("query", FILTERS)
def test_filters_never_widen_the_scope(client: TestClient, world: World, query: str) -> None:
    """Each filter, for each token: exactly the owned endpoints that match, never one more."""
    scan_id = world.scans[-1]
    for who in WHO:
        items = all_pages(client, f"/api/endpoints?scan={scan_id}&{query}&limit=1000", bearer(world, who))
        got = {(i["address"], i["port"]) for i in items}
        want = {
            (r.observation.address, r.observation.port)
            for r in world.visible(who, scan_id)
            if _matches(world, r, query)
        }
        assert got == want, (who, query)
    admin_total = client.get(f"/api/endpoints?scan={scan_id}&{query}", headers=bearer(world, "admin"))
    assert admin_total.json()["total"] > 0 or query in ("address=10.0.0.0/8",)


@pytest.mark.parametrize("who", [w for w in OWNERS if w != "nobody"])
def test_detail_of_another_owners_endpoint_is_404(client: TestClient, world: World, who: str) -> None:
    scan_id = world.scans[-1]
    mine = world.visible(who, scan_id)
    theirs = [r for r in world.records[scan_id] if not world.owned(who, r.observation.address)]
    assert mine and theirs
    for record in mine[:5]:
        o = record.observation
        response = client.get(f"/api/endpoints/{scan_id}/{o.address}/{o.port}", headers=bearer(world, who))
        assert response.status_code == 200
        assert response.json()["record"]["address"] == o.address
    for record in theirs[::7]:
        o = record.observation
        response = client.get(f"/api/endpoints/{scan_id}/{o.address}/{o.port}", headers=bearer(world, who))
        assert response.status_code == 404, o.address
        assert o.address not in response.text
        # and the other owner's history is not reachable through an own endpoint either
    for record in mine[:3]:
        o = record.observation
        history = client.get(f"/api/endpoints/{scan_id}/{o.address}/{o.port}", headers=bearer(world, who))
        for row in history.json()["history"]:
            assert world.owned(who, row["address"])


@pytest.mark.parametrize("who", WHO)
def test_scans_and_statistics_count_only_owned_rows(client: TestClient, world: World, who: str) -> None:
    listed = client.get("/api/scans", headers=bearer(world, who)).json()["items"]
    assert [s["scan_id"] for s in listed] == world.scans
    for view in listed:
        visible = world.visible(who, view["scan_id"])
        assert view["endpoints"] == len(visible)
        assert sum(view["counts"].values()) == len(visible)
        assert ("params" in view) == (who == "admin")  # scan targets may name other owners' networks
    for scan_id in world.scans:
        got = client.get(f"/api/scans/{scan_id}/stats", headers=bearer(world, who)).json()
        want = world.stats(who, scan_id).to_dict()
        assert got["totals"] == want["totals"]
        assert got["by_status"] == want["by_status"]
        assert got["breakdowns"] == want["breakdowns"]
        assert {(w["address"], w["port"]) for w in got["worst"]} <= {
            (r.observation.address, r.observation.port) for r in world.visible(who, scan_id)
        }
    trend = client.get("/api/trend", headers=bearer(world, who)).json()
    if who == "nobody":
        assert trend == {"scans": [], "series": {}}
    else:
        assert trend["series"]["open"] == [world.stats(who, s).open for s in world.scans]
        assert trend["series"]["exposed"] == [world.stats(who, s).exposed for s in world.scans]


@pytest.mark.parametrize("who", WHO)
def test_downloads_hold_only_owned_rows(client: TestClient, world: World, who: str) -> None:
    scan_id = world.scans[-1]
    want = {(r.observation.address, r.observation.port) for r in world.visible(who, scan_id)}
    csv_body = client.get(f"/api/scans/{scan_id}/export.csv", headers=bearer(world, who))
    assert csv_body.status_code == 200
    assert csv_body.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_body.text)))
    assert {(r["address"], int(r["port"])) for r in rows} == want
    jsonl = client.get(f"/api/scans/{scan_id}/export.jsonl", headers=bearer(world, who))
    lines = [json.loads(line) for line in jsonl.text.splitlines() if line]
    assert {(d["address"], d["port"]) for d in lines} == want
    parquet = client.get(f"/api/scans/{scan_id}/export.parquet", headers=bearer(world, who))
    table = pq.read_table(io.BytesIO(parquet.content))
    assert (
        set(zip(table.column("address").to_pylist(), table.column("port").to_pylist(), strict=True)) == want
    )
    # Filters apply to downloads too, inside the scope.
    filtered = client.get(f"/api/scans/{scan_id}/export.csv?protocol=imap", headers=bearer(world, who))
    rows = list(csv.DictReader(io.StringIO(filtered.text)))
    assert all(r["protocol"] == "imap" for r in rows)
    assert {(r["address"], int(r["port"])) for r in rows} <= want
    report = client.get(f"/api/scans/{scan_id}/report.html", headers=bearer(world, who))
    assert report.status_code == 200
    assert "attachment" in report.headers["content-disposition"]
    others = {r.observation.address for r in world.records[scan_id]} - {a for a, _ in want}
    assert not any(f"<code>{address}</code>" in report.text for address in others)


@pytest.mark.parametrize("who", WHO)
def test_domains_are_for_admin_tokens_only(client: TestClient, world: World, who: str) -> None:
    older, newer = world.scans
    response = client.get(f"/api/scans/{newer}/domains", headers=bearer(world, who))
    stats = client.get(f"/api/scans/{newer}/stats", headers=bearer(world, who)).json()
    if who != "admin":
        assert response.status_code == 403 and "admin tokens only" in response.json()["detail"]
        assert "domains" not in stats  # no section, not a count of zero
        return
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 3 and body["scan_id"] == newer
    # Worst first, then by the number of findings, then by name.
    assert [d["domain"] for d in body["items"]] == ["example.org", HOSTILE_DOMAIN, "clean.example"]
    first = body["items"][0]
    assert first["dane"] == "mismatch" and first["mx_hosts"] == ["mx1.example.org", "mx2.example.org"]
    assert first["findings"][0]["code"] == "dane-tlsa-mismatch"
    assert first["findings"][0]["evidence"] == {"host": "mx1.example.org", "address": "192.0.2.25"}
    assert body["items"][2]["mta_sts_mode"] == "enforce" and body["items"][2]["tls_rpt"] is True
    paged = all_pages(client, f"/api/scans/{newer}/domains?limit=2", bearer(world, who))
    assert [d["domain"] for d in paged] == [d["domain"] for d in body["items"]]
    assert stats["domains"]["checked"] == 3 and stats["domains"]["by_dane"]["mismatch"] == 1
    empty = client.get(f"/api/scans/{older}/domains", headers=bearer(world, who)).json()
    assert empty["total"] == 0 and empty["items"] == []
    assert "domains" not in client.get(f"/api/scans/{older}/stats", headers=bearer(world, who)).json()
    assert client.get("/api/scans/nope/domains", headers=bearer(world, who)).status_code == 404


def test_unknown_scan_and_bad_filters(client: TestClient, world: World) -> None:
    admin = bearer(world, "admin")
    assert client.get("/api/scans/nope", headers=admin).status_code == 404
    assert client.get("/api/endpoints?scan=nope", headers=admin).status_code == 404
    assert client.get("/api/scans/nope/export.csv", headers=admin).status_code == 404
    for query in ("protocol=http", "port=70000", "country=FRA", "asn=ASX", "address=300.1.1.1", "limit=0"):
        assert client.get(f"/api/endpoints?{query}", headers=admin).status_code == 422, query
    assert client.get(f"/api/scans/{world.scans[-1]}/export.xml", headers=admin).status_code == 422


def test_default_scan_is_the_latest_and_pages_are_stable(client: TestClient, world: World) -> None:
    admin = bearer(world, "admin")
    first = client.get("/api/endpoints?limit=10&sort=severity", headers=admin).json()
    assert first["scan_id"] == world.scans[-1]
    # 'latest' is accepted wherever a scan id is.
    latest = client.get("/api/endpoints?limit=10&sort=severity&scan=latest", headers=admin).json()
    assert latest["scan_id"] == world.scans[-1] and latest["items"] == first["items"]
    assert client.get("/api/scans/latest", headers=admin).json()["scan_id"] == world.scans[-1]
    assert client.get("/api/scans/latest/stats", headers=admin).status_code == 200
    assert first["total"] == len(world.records[world.scans[-1]])
    second = client.get(first["next"], headers=admin).json()
    assert not {(i["address"], i["port"]) for i in first["items"]} & {
        (i["address"], i["port"]) for i in second["items"]
    }
    ranks = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0, None: -1}
    worst = [ranks[i["worst_severity"]] for i in first["items"] + second["items"]]
    assert worst == sorted(worst, reverse=True)


def test_endpoint_detail_has_remediation_for_its_software(client: TestClient, world: World) -> None:
    scan_id = world.scans[-1]
    record = next(r for r in world.records[scan_id] if r.observation.software == "dovecot" and r.findings)
    o = record.observation
    body = client.get(f"/api/endpoints/{scan_id}/{o.address}/{o.port}", headers=bearer(world, "admin")).json()
    assert [r["code"] for r in body["remediation"]] == [f.code for f in record.findings]
    assert all(r["software"] == "Dovecot" for r in body["remediation"])
    assert body["attribution"]["asn"] == world.attribution[o.address].asn
    assert [h["scan_id"] for h in body["history"]][-1] == scan_id


def test_country_source_registry_moves_ownership(world: World) -> None:
    """With --country-source registry, 100.64.7.0/24 is BE (iptoasn), not NL (geolocation)."""
    store = open_store(str(world.store_path), create=False)
    try:
        with TestClient(web_app(world, store, AppConfig(country_source="registry"))) as client:
            scan_id = world.scans[-1]
            items = all_pages(client, f"/api/endpoints?scan={scan_id}&limit=1000", bearer(world, "mix"))
            got = {i["address"] for i in items}
            want = {
                r.observation.address
                for r in world.records[scan_id]
                if world.owned("mix", r.observation.address, "registry")
            }
            assert got == want
            assert not any(a.startswith("100.64.7.") for a in got)
            assert any(a.startswith("2001:db8:") for a in got)
            me = client.get("/api/me", headers=bearer(world, "mix")).json()
            assert me["country_source"] == "registry" and me["owners"] == ["AS64503", "NL"]
    finally:
        store.close()


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    for path in (
        "/api/scans",
        "/api/scans/{scan_id}",
        "/api/scans/{scan_id}/stats",
        "/api/scans/{scan_id}/export.{fmt}",
        "/api/scans/{scan_id}/report.html",
        "/api/endpoints",
        "/api/endpoints/{scan_id}/{address}/{port}",
        "/api/findings",
        "/api/trend",
        "/api/self-check",
    ):
        assert path in paths
    assert not any(p.startswith(("/login", "/static", "/endpoints")) for p in paths)
    params = {p["name"] for p in spec["paths"]["/api/endpoints"]["get"]["parameters"]}
    assert {"scan", "protocol", "port", "code", "severity", "status", "country", "asn", "address"} <= params
    assert "HTTPBearer" in json.dumps(spec["components"]["securitySchemes"])
    assert client.get("/docs").status_code == 404  # the interactive docs load scripts from a CDN


# -- errors: bounded parameters, nothing internal in a body -------------------------------------------

ISO_UTC = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z"


def assert_no_internals(text: str, world: World) -> None:
    """An error body names no file, URL, SQL, driver or library."""
    assert str(world.store_path) not in text and world.url not in text
    lowered = text.lower()
    for word in ("duckdb", "psycopg", "postgres", "sql", "select", "traceback", "pydantic", "input should",
                 "int64", "bigint", "out of range", "errors.", "/tmp"):  # fmt: skip
        assert word not in lowered, (word, text)


@pytest.mark.parametrize("path", ["/api/endpoints", "/api/findings"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("offset=9223372036854775808", "offset must be an integer from 0 to 1000000000000000"),
        ("offset=99999999999999999999999", "offset must be an integer from 0 to 1000000000000000"),
        ("offset=-1", "offset must be an integer from 0 to 1000000000000000"),
        ("offset=abc", "offset must be an integer from 0 to 1000000000000000"),
        ("limit=100000", "limit must be an integer from 1 to 1000"),
        ("port=99999999999999999999", "port must be an integer from 0 to 65535"),
    ],
)
def test_out_of_range_parameters_are_422_in_our_words(
    client: TestClient, world: World, path: str, query: str, message: str
) -> None:
    response = client.get(f"{path}?{query}", headers=bearer(world, "admin"))
    assert response.status_code == 422, response.text
    assert response.json() == {"detail": message}
    assert_no_internals(response.text, world)


def test_the_largest_offset_is_an_empty_page(client: TestClient, world: World) -> None:
    for path in ("/api/endpoints", "/api/findings"):
        response = client.get(f"{path}?offset=1000000000000000", headers=bearer(world, "admin"))
        assert response.status_code == 200, response.text
        assert response.json()["items"] == [] and response.json()["next"] is None


def test_a_store_error_body_says_only_that(world: World) -> None:
    store = open_store(world.url, create=False)
    with TestClient(web_app(world, store)) as test_client:
        admin = bearer(world, "admin")
        assert test_client.get("/api/endpoints", headers=admin).status_code == 200
        store.close()
        response = test_client.get(f"/api/endpoints?scan={world.scans[-1]}&offset=5", headers=admin)
    assert response.status_code == 503
    assert response.json() == {"detail": "store unavailable"}
    assert_no_internals(response.text, world)


def test_every_time_is_iso_8601_utc_with_z(client: TestClient, world: World) -> None:
    """Endpoints, their history and scans write times in one format, as the records do."""
    admin = bearer(world, "admin")
    items = client.get("/api/endpoints?limit=50", headers=admin).json()["items"]
    assert items and all(re.fullmatch(ISO_UTC, item["started_at"]) for item in items), items[0]
    first = items[0]
    detail = client.get(api_endpoint_href(first["scan_id"], first["address"], first["port"]), headers=admin)
    assert detail.status_code == 200
    times = [h["started_at"] for h in detail.json()["history"]]
    times += [s["started_at"] for s in client.get("/api/scans", headers=admin).json()["items"]]
    assert times and all(re.fullmatch(ISO_UTC, t) for t in times), times
    record = detail.json()["record"]
    assert dt.datetime.fromisoformat(first["started_at"]) == dt.datetime.fromisoformat(record["started_at"])
