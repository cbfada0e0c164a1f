"""`cleartext report --scan ID`: the store as the record source (statistics computed in SQL), the same
numbers as from JSON Lines."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.domain_samples import HOSTILE_DOMAIN, sample_domains
from tests.enrich_files import country_record, write_iptoasn, write_mmdb
from tests.pg import PostgresServer, postgres_server
from tests.unit.report_samples import random_records, sample_records

FAST = ["--allow-reserved", "--connect-timeout", "1", "--read-timeout", "1", "--no-progress"]


def test_report_from_the_store_equals_report_from_the_file(tmp_path: Path) -> None:
    store, out = tmp_path / "s.duckdb", tmp_path / "scan.jsonl"
    scan = run_cli(
        "scan", "127.0.9.0/29", "--ports", "25,993", "--store", str(store), "--out", str(out), *FAST
    )
    assert scan.returncode == 0, scan.stderr
    from_store = run_cli("report", "--scan", "latest", "--store", str(store), "--format", "json")
    from_file = run_cli("report", "--from", str(out), "--format", "json")
    assert from_store.returncode == 0 and from_file.returncode == 0, from_store.stderr + from_file.stderr
    a, b = json.loads(from_store.stdout), json.loads(from_file.stdout)
    assert a["totals"] == b["totals"] and a["by_status"] == b["by_status"]
    assert a["totals"]["records"] == 16 and a["by_status"] == {"refused": 16}
    assert a["scan_id"].startswith("20")  # named after the store's scan id


def test_report_source_errors_are_one_line(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    run_cli("scan", "127.0.9.0/30", "--ports", "25", "--store", str(store), *FAST)
    unknown = run_cli("report", "--scan", "20990101T000000Z-0000", "--store", str(store))
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    both = run_cli("report", "--scan", "latest", "--from", "x.jsonl", "--store", str(store))
    assert both.returncode == 2 and "one of the two" in both.stderr
    neither = run_cli("report")
    assert neither.returncode == 2
    missing = run_cli("report", "--scan", "latest", "--store", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2 and missing.stderr.startswith("cleartext: error:")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.mark.parametrize("backend", ["duckdb", "postgresql"])
def test_statistics_of_a_stored_scan_equal_those_of_its_file(
    tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    """`report --scan` computes in SQL what `report --from` streams: every number, the worst endpoints and
    their attribution, for both country sources, on both stores."""
    records = random_records(400, seed=5) + sample_records()
    source = tmp_path / "scan.jsonl"
    domains = sample_domains()  # `check DOMAIN --json` lines among the records: the domains table
    lines = [*records[:200], *domains, *records[200:]]
    source.write_text("".join(r.to_json() + "\n" for r in lines), encoding="utf-8")
    url = (
        str(tmp_path / "s.duckdb") if backend == "duckdb" else request.getfixturevalue("pg").create_database()
    )
    imported = run_cli("import", str(source), "--store", url)
    assert imported.returncode == 0, imported.stderr
    iptoasn = write_iptoasn(
        tmp_path / "ip2asn.tsv",
        [
            ("192.0.2.0", "192.0.2.255", 64500, "DE", "EXAMPLE-NET"),
            ("198.51.100.0", "198.51.100.255", 64501, "FR", "OTHER-AS"),
            ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 64502, "NL", "V6-NET"),
        ],
    )
    geo = write_mmdb(
        tmp_path / "country.mmdb",
        {"192.0.2.0/24": country_record("AT"), "203.0.113.0/24": country_record("US")},
        database_type="GeoLite2-Country",
    )
    files = ["--iptoasn", str(iptoasn), "--mmdb", str(geo), "--scan-id", "s", "--format", "json"]
    for country in ("geo", "registry"):
        options = [*files, "--country-source", country]
        from_store = run_cli("report", "--scan", "latest", "--store", url, *options)
        from_file = run_cli("report", "--from", str(source), *options)
        assert from_store.returncode == 0 and from_file.returncode == 0, from_store.stderr + from_file.stderr
        a, b = json.loads(from_store.stdout), json.loads(from_file.stdout)
        assert a == b
        assert a["totals"]["records"] == len(records) and len(a["worst"]) == 25
        assert {row["key"] for row in a["breakdowns"]["asn"]} >= {"64500", "64501", "64502", "unknown"}
        assert a["domains"]["checked"] == 3 and a["domains"]["with_findings"] == 2
        codes = {"no-smtp-tls-policy": 2, "dane-tlsa-mismatch": 1, "tls-rpt-missing": 1}
        assert a["domains"]["by_code"] == codes
        assert a["domains"]["by_severity"] == {"high": 1, "medium": 1, "none": 1}
        assert a["domains"]["by_dane"] == {"none": 1, "match": 1, "mismatch": 1}
        assert [w["domain"] for w in a["domains"]["worst"]] == ["example.org", HOSTILE_DOMAIN]
