"""Report statistics: exact counts on a hand-built scan, trends, JSON round trip, and the SQL path
(cleartext.report.sqlstats) agreeing with the streaming one on the same records written through the real
store, DuckDB and PostgreSQL, for a report and for the web's owner scopes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cleartext.domain.model import store_row
from cleartext.enrich import Enricher
from cleartext.enrich.model import Attribution
from cleartext.record import Finding, Protocol, Record, Severity, Status, TLSPhase
from cleartext.report.sqlstats import (
    Rows,
    attributed_scan,
    domain_stats_from_store,
    scan_rows,
    stats_from_store,
)
from cleartext.report.stats import DomainStats, Stats, StatsBuilder, compute, trends
from cleartext.store import open_store
from cleartext.web.data import Scope, WebData, data_fingerprint
from cleartext.web.tokens import parse_owner
from tests.domain_samples import HOSTILE_DOMAIN, sample_domains
from tests.pg import PostgresServer, postgres_server
from tests.unit.report_samples import (
    attribution,
    random_attribution,
    random_records,
    sample_pairs,
    sample_records,
)
from tests.unit.test_web_api import OWNERS, World, build_world


def counts(stats: Stats, dimension: str) -> dict[str, tuple[int, int, int, int]]:
    return {
        key: (t.endpoints, t.exposed, t.cleartext_login, t.no_tls)
        for key, t in stats.breakdown(dimension).rows.items()
    }


def test_totals_and_status() -> None:
    s = compute(sample_pairs())
    assert (s.records, s.open, s.exposed, s.cleartext_login, s.no_tls, s.findings) == (10, 7, 5, 3, 2, 10)
    assert s.by_status == {
        "success": 6,
        "refused": 1,
        "connect-timeout": 1,
        "blocklisted": 1,
        "not-mail": 1,
    }
    assert s.scanned_at == "2026-11-28T08:03:13.445537Z"


def test_breakdowns_count_open_endpoints() -> None:
    s = compute(sample_pairs())
    assert counts(s, "protocol") == {"imap": (3, 3, 2, 0), "pop3": (2, 1, 1, 1), "smtp": (2, 1, 0, 1)}
    assert counts(s, "port") == {
        "143": (2, 2, 2, 0),
        "110": (2, 1, 1, 1),
        "25": (1, 1, 0, 1),
        "993": (1, 1, 0, 0),
        "587": (1, 0, 0, 0),
    }
    assert counts(s, "finding") == {
        "cleartext-login": (3, 3, 3, 1),
        "no-tls": (2, 2, 1, 2),
        "legacy-tls": (1, 1, 0, 0),
        "cert-expired": (1, 1, 0, 0),
        "cert-untrusted": (2, 2, 1, 0),
        "cert-weak-key": (1, 1, 0, 0),
    }
    assert counts(s, "severity") == {"high": (4, 4, 3, 1), "medium": (1, 1, 0, 1), "none": (2, 0, 0, 0)}
    assert counts(s, "tls_version") == {
        "TLSv1.3": (3, 2, 2, 0),
        "TLSv1.2": (4, 3, 2, 0),
        "TLSv1.0": (1, 1, 0, 0),
        "SSLv3": (1, 1, 0, 0),
        "none": (3, 2, 1, 2),
    }
    assert counts(s, "software") == {
        "dovecot": (2, 2, 2, 1),
        "postfix": (2, 1, 0, 1),
        "courier": (1, 1, 0, 0),
        "unknown": (2, 1, 1, 0),
    }
    assert counts(s, "asn") == {
        "64500": (3, 2, 2, 1),
        "64501": (2, 1, 0, 1),
        "64502": (1, 1, 0, 0),
        "64503": (1, 1, 1, 0),
    }
    assert s.breakdown("asn").labels["64500"] == "EXAMPLE-NET"


def test_country_source_is_a_parameter_and_is_named() -> None:
    geo = compute(sample_pairs())
    registry = compute(sample_pairs(), "registry")
    assert counts(geo, "country")["DE"] == (3, 2, 2, 1)
    assert "AT" not in counts(geo, "country")
    assert counts(registry, "country")["DE"] == (2, 2, 2, 1)
    assert counts(registry, "country")["AT"] == (1, 0, 0, 0)
    assert json.loads(geo.to_json())["country_field"] == "geolocation country (MMDB)"
    assert json.loads(registry.to_json())["country_field"] == "registry country (RIR delegation)"
    with pytest.raises(ValueError):
        StatsBuilder("gps")  # type: ignore[arg-type]


def test_unattributed_endpoints_are_unknown() -> None:
    s = compute((r, Attribution()) for r in sample_records())
    assert counts(s, "country") == {"unknown": (7, 5, 3, 2)}
    assert counts(s, "asn") == {"unknown": (7, 5, 3, 2)}


def test_worst_endpoints_order_and_bound() -> None:
    s = compute(sample_pairs())
    # cleartext-login (with no-tls before without), then no-tls, then the rest by severity and count.
    assert [(w.address, w.port) for w in s.worst] == [
        ("192.0.2.10", 110),
        ("203.0.113.66", 143),
        ("192.0.2.10", 143),
        ("198.51.100.7", 25),
        ("2001:db8::25", 993),
    ]
    last = s.worst[-1]
    assert last.worst == "high" and last.codes[0] == "legacy-tls" and last.country == "NL"
    assert [(w.address, w.port) for w in compute(sample_pairs(), worst_limit=2).worst] == [
        ("192.0.2.10", 110),
        ("203.0.113.66", 143),
    ]


def test_worst_list_stays_bounded_while_streaming() -> None:
    builder = StatsBuilder(worst_limit=3)
    records = random_records(400)
    for record in records:
        builder.add(record, random_attribution(record.observation.address))
        assert len(builder._candidates) < 12
    expected = sorted(
        (
            w
            for w in compute(
                ((r, random_attribution(r.observation.address)) for r in records), worst_limit=10**6
            ).worst
        ),
        key=lambda w: w.sort_key(),
    )[:3]
    assert builder.result().worst == expected


def test_json_round_trip() -> None:
    s = compute(sample_pairs(), scan_id="scan-a")
    data = json.loads(s.to_json())
    assert data["totals"] == {
        "records": 10,
        "open": 7,
        "exposed": 5,
        "cleartext_login": 3,
        "no_tls": 2,
        "findings": 10,
    }
    assert data["breakdowns"]["tls_version"][0]["key"] == "SSLv3"  # ordinal dimensions in natural order
    assert Stats.from_dict(data) == s
    with pytest.raises(ValueError):
        Stats.from_dict({"kind": "something else"})
    with pytest.raises(ValueError):
        Stats.from_dict({"kind": "cleartext-report-stats", "totals": {}})


def with_time(records: list[Record], started: str) -> list[Record]:
    for r in records:
        if r.observation.started_at:
            r.observation.started_at = started
    return records


def test_trends_follow_scan_time_not_input_order() -> None:
    old = compute(
        ((r, Attribution()) for r in with_time(sample_records()[:3], "2026-10-01T00:00:00Z")), scan_id="old"
    )
    new = compute(((r, Attribution()) for r in sample_records()), scan_id="new")
    series = trends([new, old])
    assert series.scans == [("old", "2026-10-01T00:00:00Z"), ("new", "2026-11-28T08:03:13.445537Z")]
    assert [p.value for p in series.series["exposed"]] == [3, 5]
    assert [p.value for p in series.series["no_tls"]] == [2, 2]
    # A finding absent from a scan is a zero in its series, not a gap.
    assert [p.value for p in series.series["finding:legacy-tls"]] == [0, 1]
    assert [p.value for p in series.series["tls_version:SSLv3"]] == [0, 1]
    assert json.loads(series.to_json())["series"]["exposed"] == [3, 5]


# -- the SQL path, on both stores ---------------------------------------------------------------------
#
# Records are written through the real store (a DuckDB file, or a database on a throwaway PostgreSQL
# server of our own, tests/pg.py) and the statistics the store computes in SQL must equal the streaming
# path's over the same records, attribution and worst endpoints included.


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module", params=["duckdb", "postgresql"])
def new_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Callable[[], str]:
    """Makes the URL of a new, empty store of the backend (the PostgreSQL server starts on first use)."""
    if request.param == "duckdb":
        return lambda: str(tmp_path_factory.mktemp("store") / "report.duckdb")
    server: PostgresServer = request.getfixturevalue("pg")
    return server.create_database


def store_records(url: str, records: list[Record]) -> str:
    """Write records through the real store; returns the scan id."""
    with open_store(url) as store:
        scan_id = store.begin_scan({"test": "report"})
        store.write(scan_id, records)
        store.finish_scan(scan_id)
    return scan_id


def future_records() -> list[Record]:
    """The sample scan, a seeded random one, and a record from a newer cleartext: a finding code and a TLS
    version the known lists do not have."""
    records = random_records(600, seed=11) + sample_records()
    future = random_records(1, seed=12)[0]
    future.observation.address, future.observation.status = "192.0.2.250", Status.SUCCESS
    future.observation.tls = TLSPhase(version="TLSv1.4")
    future.findings = [Finding("future-code", Severity.LOW, "from the future", {})]
    records.append(future)
    return records


@pytest.fixture(scope="module")
def stored(new_store: Callable[[], str]) -> tuple[str, str, list[Record]]:
    records = future_records()
    url = new_store()
    return url, store_records(url, records), records


def lookup(address: str) -> Attribution:
    return attribution(address) if attribution(address).asn else random_attribution(address)


def test_sql_agrees_with_streaming(stored: tuple[str, str, list[Record]]) -> None:
    url, scan_id, records = stored
    with open_store(url, create=False) as store:
        for source in ("geo", "registry"):
            streamed = compute(((r, lookup(r.observation.address)) for r in records), source, scan_id=scan_id)  # type: ignore[arg-type]
            # The report's attribution: a lookup loaded into the store for the duration of the block.
            with attributed_scan(store, scan_id, lookup) as rows:
                from_sql = stats_from_store(store, rows, country_source=source, scan_id=scan_id)  # type: ignore[arg-type]
            assert from_sql.to_dict() == streamed.to_dict()
            assert from_sql == streamed
            assert (
                len(from_sql.worst) == 25 and from_sql.breakdown("tls_version").rows["TLSv1.4"].endpoints == 1
            )
        # Without attribution both say unknown.
        plain = stats_from_store(store, scan_rows(scan_id), scan_id=scan_id)
        assert plain == compute(((r, Attribution()) for r in records), scan_id=scan_id)
        assert set(plain.breakdown("asn").rows) == {"unknown"}


def test_sql_counts_only_the_rows_a_clause_selects(stored: tuple[str, str, list[Record]]) -> None:
    """The caller's clause decides which rows count, and its parameters come before the statistics' own."""
    url, scan_id, records = stored
    with open_store(url, create=False) as store:
        rows = Rows("FROM records r WHERE r.scan_id = ? AND r.port = ?", (scan_id, 143))
        got = stats_from_store(store, rows, scan_id=scan_id)
    want = compute(((r, Attribution()) for r in records if r.observation.port == 143), scan_id=scan_id)
    assert got == want and got.records == sum(1 for r in records if r.observation.port == 143)


def test_sql_unknown_scan_is_empty(stored: tuple[str, str, list[Record]]) -> None:
    with open_store(stored[0], create=False) as store:
        s = stats_from_store(store, scan_rows("no-such-scan"))
        with attributed_scan(store, "no-such-scan", lookup) as rows:
            attributed = stats_from_store(store, rows)
    assert (s.records, s.open, s.worst, s.scanned_at) == (0, 0, [], None)
    assert attributed == s


@pytest.mark.parametrize("who", ["as", "country", "cidr", "mix", "nobody", "admin"])
def test_web_statistics_of_an_owner_equal_streaming_over_the_owned_records(
    web_world: World, who: str
) -> None:
    """The web's statistics: SQL over the rows of its owner-scoped clause, attributed from its cache."""
    world = web_world
    owner = parse_owner(OWNERS[who]) if who != "admin" else None
    scope = Scope(admin=True) if owner is None else Scope(admin=False, owner=owner)
    paths = [p for kind in world.files.values() for p in kind]
    with (
        open_store(world.url, create=False) as store,
        Enricher.from_paths(**world.files) as enricher,  # type: ignore[arg-type]
    ):
        data = WebData(store, enricher, fingerprint=data_fingerprint(paths))
        for scan_id in world.scans:
            got, want = data.stats(scope, scan_id), world.stats(who, scan_id)
            assert got.to_dict() == want.to_dict()
            assert got.records == len(world.visible(who, scan_id))
            assert (got.records == 0) == (who == "nobody")


@pytest.fixture(scope="module")
def web_world(new_store: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> World:
    """The web tests' world (two scans, real attribution files, owners by AS, country and CIDR), once per
    backend."""
    url = new_store()
    tmp = tmp_path_factory.mktemp("web-world")
    return build_world(tmp, store_url=url if url.startswith("postgresql://") else None)


def hygiene_and_core_records() -> list[Record]:
    """30 endpoints with three TLS-hygiene findings each (two high), 16 with a password in clear and
    nothing else, 4 with no TLS at all: the core verdicts must come first however few findings they have."""
    from tests.unit.report_samples import observation

    hygiene = [
        Finding("starttls-failed", Severity.HIGH, "", {}),
        Finding("weak-cipher", Severity.HIGH, "", {}),
        Finding("cert-untrusted", Severity.MEDIUM, "", {}),
    ]
    records = []
    for i in range(30):
        obs = observation(f"192.0.2.{i}", 143, Protocol.IMAP, status=Status.SUCCESS)
        records.append(Record(obs, list(hygiene)))
    for i in range(16):
        obs = observation(f"198.51.100.{i}", 110, Protocol.POP3, status=Status.SUCCESS)
        records.append(Record(obs, [Finding("cleartext-login", Severity.HIGH, "", {})]))
    for i in range(4):
        obs = observation(f"203.0.113.{i}", 25, Protocol.SMTP, status=Status.SUCCESS)
        records.append(Record(obs, [Finding("no-tls", Severity.MEDIUM, "", {})]))
    return records


def test_worst_endpoints_rank_the_core_verdict_first(new_store: Callable[[], str]) -> None:
    records = hygiene_and_core_records()
    streamed = compute((r, Attribution()) for r in records)
    url = new_store()
    scan_id = store_records(url, records)
    with open_store(url, create=False) as store:
        from_sql = stats_from_store(store, scan_rows(scan_id))
    for stats in (streamed, from_sql):
        assert len(stats.worst) == 25
        codes = [w.codes[0] for w in stats.worst]
        assert codes == ["cleartext-login"] * 16 + ["no-tls"] * 4 + ["starttls-failed"] * 5
        assert [w.address for w in stats.worst[:16]] == sorted(f"198.51.100.{i}" for i in range(16))
    assert from_sql.worst == streamed.worst


# -- domains -----------------------------------------------------------------------------------------


def domain_file(tmp_path: Path) -> Path:
    """Endpoint records with `check DOMAIN --json` lines among them."""
    path = tmp_path / "check.jsonl"
    lines = [*sample_records()[:3], *sample_domains(), *sample_records()[3:]]
    path.write_text("".join(x.to_json() + "\n" for x in lines), encoding="utf-8")
    return path


def test_domain_statistics_from_a_file(tmp_path: Path) -> None:
    from cleartext.cli.report import iter_records

    counted = DomainStats()
    records = list(iter_records([domain_file(tmp_path)], on_domain=counted.add))
    assert len(records) == len(sample_records())  # the domain lines are not endpoints
    data = counted.trim().to_dict()
    assert (data["checked"], data["with_findings"], data["findings"], data["tls_rpt"]) == (3, 2, 4, 1)
    assert data["by_code"] == {"no-smtp-tls-policy": 2, "dane-tlsa-mismatch": 1, "tls-rpt-missing": 1}
    assert list(data["by_severity"].items()) == [("high", 1), ("medium", 1), ("none", 1)]
    assert data["by_mta_sts"] == {"none": 2, "enforce": 1}
    worst = data["worst"]
    assert [(w["domain"], w["worst"], w["codes"]) for w in worst] == [
        ("example.org", "high", ["dane-tlsa-mismatch", "no-smtp-tls-policy", "tls-rpt-missing"]),
        (HOSTILE_DOMAIN, "medium", ["no-smtp-tls-policy"]),
    ]
    stats = compute(((r, Attribution()) for r in records), scan_id="d")
    assert "domains" not in stats.to_dict()  # no domain records: no domain section at all
    stats.domains = counted
    assert Stats.from_dict(json.loads(stats.to_json())) == stats


def test_a_malformed_domain_line_is_named(tmp_path: Path) -> None:
    from cleartext.cli.report import ReportInputError, iter_records

    bad = tmp_path / "bad.jsonl"
    broken = sample_domains()[0].to_dict() | {"mx": [{"host": 5}]}
    bad.write_text(sample_records()[0].to_json() + "\n" + json.dumps(broken) + "\n", encoding="utf-8")
    with pytest.raises(ReportInputError, match=r"bad\.jsonl:2: malformed domain record"):
        list(iter_records([bad], on_domain=DomainStats().add))


def test_domain_statistics_from_the_store_equal_the_files(
    new_store: Callable[[], str], tmp_path: Path
) -> None:
    from cleartext.cli.report import iter_records

    counted = DomainStats()
    list(iter_records([domain_file(tmp_path)], on_domain=counted.add))
    url = new_store()
    with open_store(url) as store:
        scan_id = store.begin_scan({})
        store.write_domains(scan_id, [store_row(d) for d in sample_domains()])
        empty = store.begin_scan({})
        assert domain_stats_from_store(store, scan_id) == counted.trim()
        assert domain_stats_from_store(store, empty) is None
        one = domain_stats_from_store(store, scan_id, worst_limit=1)
        assert one is not None and [w.domain for w in one.worst] == ["example.org"]


def test_domain_tables_are_sanitised_for_the_terminal(tmp_path: Path) -> None:
    from rich.console import Console

    from cleartext.cli.report import iter_records, render_tables

    counted = DomainStats()
    stats = compute((r, Attribution()) for r in iter_records([domain_file(tmp_path)], counted.add))
    stats.domains = counted.trim()
    console = Console(record=True, width=300, force_terminal=False, color_system=None)
    render_tables(console, stats, top=15)
    text = console.export_text()
    assert "domains checked" in text and "dane-tlsa-mismatch" in text and "example.org" in text
    assert "\x1b" not in text and "[31m" not in text.replace("\\x1b[31m", "")
    assert "\\x1b[31m" in text  # the escape shown, not obeyed
