"""The store's contract, once, for every backend: a test class subclassed per backend with a `store_url`.

tests/unit/test_store_duckdb.py runs it on a DuckDB file, tests/integration/test_store_pg.py on a real
PostgreSQL server; both must keep the same promises (round trip, idempotent writes, the diff's
definition, exports, scans, errors). Records are built by hand from the record dataclasses, with the
awkward parts a real scan produces: IPv6, hostile server text, blocklisted records without a start time.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cleartext.domain.model import domain_record_from_dict, store_row
from cleartext.record import (
    Certificate,
    Finding,
    Observation,
    PlainPhase,
    Protocol,
    Record,
    Severity,
    Status,
    TLSMatrix,
    TLSMode,
    TLSPhase,
    record_from_dict,
)
from cleartext.store import Store, StoreError, StoreSink, open_store
from tests.domain_samples import HOSTILE_DOMAIN, finding, sample_domains

PROTOCOL_BY_PORT = {
    25: (Protocol.SMTP, TLSMode.STARTTLS),
    587: (Protocol.SMTP, TLSMode.STARTTLS),
    465: (Protocol.SMTP, TLSMode.IMPLICIT),
    110: (Protocol.POP3, TLSMode.STARTTLS),
    995: (Protocol.POP3, TLSMode.IMPLICIT),
    143: (Protocol.IMAP, TLSMode.STARTTLS),
    993: (Protocol.IMAP, TLSMode.IMPLICIT),
}
SEVERITY = {
    "cleartext-login": Severity.HIGH,
    "no-tls": Severity.HIGH,
    "legacy-tls": Severity.MEDIUM,
    "cert-expired": Severity.MEDIUM,
    "weak-cipher": Severity.LOW,
}


def make_record(
    address: str,
    port: int,
    codes: tuple[str, ...] = (),
    *,
    status: Status = Status.SUCCESS,
    hostname: str | None = "mail.example",
    software: str | None = "dovecot",
    greeting: str | None = "* OK Dovecot ready.",
) -> Record:
    """A realistic record: plain phase, a TLS handshake with a chain, a matrix, findings with evidence."""
    protocol, mode = PROTOCOL_BY_PORT.get(port, (Protocol.SMTP, TLSMode.STARTTLS))
    answered = status is Status.SUCCESS
    obs = Observation(
        address=address,
        port=port,
        protocol=protocol,
        tls_mode=mode,
        hostname=hostname,
        status=status,
        status_detail=None if answered else f"{status.value} after 5.0 s",
        started_at="2026-11-28T08:03:13.445537Z" if status is not Status.BLOCKLISTED else "",
        timings_ms={"connect": 0.8, "greeting": 6.7, "total": 77.25} if answered else {"total": 5000.0},
        connections=5 if answered else 1,
        bytes_received=2860 if answered else 0,
        software=software if answered else None,
        greeting=greeting if answered else None,
    )
    if answered:
        obs.plain = PlainPhase(
            capabilities=["* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN", "c1 OK"],
            capability_reply="c1 OK",
            auth_mechanisms=["PLAIN"],
            login_command=True,
            starttls_advertised=True,
            starttls_reply="c2 OK Begin TLS negotiation now.",
            starttls_accepted=True,
        )
        obs.tls = TLSPhase(
            version="TLSv1.3",
            cipher="TLS_AES_256_GCM_SHA384",
            capabilities=["* CAPABILITY IMAP4rev1 AUTH=PLAIN"],
            auth_mechanisms=["PLAIN"],
            login_command=True,
            chain=[
                Certificate(
                    sha256="cb" * 32,
                    subject="CN=mail.example,O=Example",
                    issuer="CN=Example CA",
                    not_before="2026-01-01T00:00:00Z",
                    not_after="2027-01-01T00:00:00Z",
                    key_type="rsa",
                    key_bits=2048,
                    signature_algorithm="sha256WithRSAEncryption",
                    dns_names=["mail.example"],
                )
            ],
            trusted=True,
            hostname_checked=hostname,
            hostname_match=True,
        )
        obs.matrix = TLSMatrix(
            versions={
                "SSLv3": "rejected",
                "TLSv1.0": "accepted",
                "TLSv1.2": "accepted",
                "TLSv1.3": "unknown",
            },
            weak_classes={"rc4": "rejected", "3des": "accepted"},
            weak_suites=["TLS_RSA_WITH_3DES_EDE_CBC_SHA"],
            probes=4,
        )
    findings = [
        Finding(
            code=code,
            severity=SEVERITY.get(code, Severity.MEDIUM),
            summary=f"summary of {code}",
            evidence={"offered": ["PLAIN"], "nested": {"n": 1.5, "ok": True, "none": None}},
        )
        for code in codes
    ]
    return Record(observation=obs, findings=findings)


def by_endpoint(records: list[Record]) -> list[dict[str, object]]:
    return sorted((r.to_dict() for r in records), key=lambda d: (str(d["address"]), int(d["port"])))  # type: ignore[arg-type]


def sample_records() -> list[Record]:
    """Twelve endpoints covering what the typed columns must survive."""
    records = [make_record(f"192.0.2.{i}", port, ("cleartext-login",) if i % 2 else ()) for i, port in
               enumerate((25, 110, 143, 465, 587, 993, 995))]  # fmt: skip
    records.append(make_record("2001:db8::25", 25, ("no-tls", "cleartext-login")))
    records.append(make_record("198.51.100.7", 143, status=Status.CONNECT_TIMEOUT))
    records.append(make_record("10.0.0.1", 25, status=Status.BLOCKLISTED, hostname=None))
    # Hostile and odd text: formula starts, quotes, backslash escapes as the sanitiser writes them.
    records.append(
        make_record(
            "203.0.113.9",
            143,
            ("legacy-tls",),
            hostname='=HYPERLINK("http://x")',
            software="+cmd|' /C calc'!A0",
            greeting='* OK "quoted" \\x00\\u202e ünïcödé <script>',
        )
    )
    records.append(make_record("203.0.113.10", 993, ("weak-cipher",), hostname="@sum", software="-2+3"))
    return records


class StoreContract:
    """Every backend's promises. A subclass provides the `store_url` fixture: a fresh, empty store."""

    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        with open_store(store_url) as st:
            yield st

    # -- records -----------------------------------------------------------------------------------

    def test_round_trip(self, store: Store) -> None:
        records = sample_records()
        scan_id = store.begin_scan({"targets": ["192.0.2.0/24"], "ports": "25,110"})
        assert store.write(scan_id, records) == len(records)
        back = list(store.records(scan_id))
        assert by_endpoint(back) == by_endpoint(records)
        assert store.count(scan_id) == len(records)

    def test_records_stream_in_batches(self, store: Store) -> None:
        records = [make_record(f"192.0.2.{i}", 25) for i in range(25)]
        scan_id = store.begin_scan({})
        store.write(scan_id, records[:10])
        store.write(scan_id, records[10:])
        stream = store.records(scan_id, batch_rows=4)
        assert not isinstance(stream, list)
        first = next(stream)
        assert first.observation.address.startswith("192.0.2.")
        assert len([first, *stream]) == 25

    def test_rewrite_is_idempotent(self, store: Store) -> None:
        records = sample_records()
        scan_id = store.begin_scan({})
        store.write(scan_id, records)
        store.write(scan_id, records)
        store.write(scan_id, records[:3])
        assert store.count(scan_id) == len(records)
        assert by_endpoint(list(store.records(scan_id))) == by_endpoint(records)

    def test_later_write_replaces_endpoint(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        store.write(scan_id, [make_record("192.0.2.1", 143, ("cleartext-login",))])
        store.write(scan_id, [make_record("192.0.2.1", 143, status=Status.REFUSED)])
        (only,) = store.records(scan_id)
        assert only.observation.status is Status.REFUSED and only.findings == []

    def test_duplicate_in_one_batch_last_wins(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        batch = [make_record("192.0.2.1", 25, ("no-tls",)), make_record("192.0.2.1", 25, ("legacy-tls",))]
        assert store.write(scan_id, batch) == 1
        (only,) = store.records(scan_id)
        assert [f.code for f in only.findings] == ["legacy-tls"]

    def test_write_with_the_callers_json(self, store: Store) -> None:
        # A scan encodes each record once, for its output and the store; the row is that JSON.
        scan_id = store.begin_scan({})
        batch = [
            make_record("192.0.2.1", 25, ("no-tls",)),
            make_record("192.0.2.2", 25),
            make_record("192.0.2.1", 25, ("legacy-tls",)),  # the same endpoint again: the last wins
        ]
        lines = [record.to_json() for record in batch]
        assert store.write(scan_id, batch, lines=lines) == 2
        assert by_endpoint(list(store.records(scan_id))) == by_endpoint(batch[1:])
        with pytest.raises(ValueError, match="one to one"):
            store.write(scan_id, batch, lines=lines[:2])

    def test_same_endpoint_in_two_scans(self, store: Store) -> None:
        a = store.begin_scan({})
        b = store.begin_scan({})
        store.write(a, [make_record("192.0.2.1", 25)])
        store.write(b, [make_record("192.0.2.1", 25)])
        assert store.count(a) == store.count(b) == 1

    def test_rewrite_inside_one_transaction(self, store: Store) -> None:
        records = sample_records()
        with store.transaction():
            scan_id = store.begin_scan({})
            store.write(scan_id, records)
            store.write(scan_id, records)
            store.finish_scan(scan_id)
        assert store.count(scan_id) == len(records)

    def test_transaction_rolls_back_everything(self, store: Store) -> None:
        kept = store.begin_scan({"kept": True})
        with pytest.raises(RuntimeError), store.transaction():
            scan_id = store.begin_scan({})
            store.write(scan_id, sample_records())
            raise RuntimeError("a bad line")
        assert [s.scan_id for s in store.scans()] == [kept]
        with pytest.raises(StoreError):
            store.count(scan_id)

    def test_ill_typed_record_is_refused(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        bad = make_record("192.0.2.1", 25)
        bad.observation.port = "25"  # type: ignore[assignment]
        with pytest.raises(StoreError, match="port"):
            store.write(scan_id, [make_record("192.0.2.2", 25), bad])
        assert store.count(scan_id) == 0

    # -- scans -------------------------------------------------------------------------------------

    def test_scans_listing(self, store: Store) -> None:
        assert store.scans() == []
        first = store.begin_scan(
            {"targets": ["192.0.2.0/24"], "ports": [25, 143], "settings": {"ca": Path("/x.pem")}}
        )
        store.write(first, sample_records())
        store.finish_scan(first, {"success": 11, "connect-timeout": 1, "blocklisted": 1})
        second = store.begin_scan({"targets": []})
        store.write(
            second, [make_record("192.0.2.1", 25), make_record("192.0.2.2", 25, status=Status.REFUSED)]
        )
        listed = store.scans()
        assert [s.scan_id for s in listed] == [first, second]
        one, two = listed
        assert one.params == {"targets": ["192.0.2.0/24"], "ports": [25, 143], "settings": {"ca": "/x.pem"}}
        assert one.counts == {"success": 11, "blocklisted": 1, "connect-timeout": 1}
        assert list(one.counts) == ["success", "blocklisted", "connect-timeout"]  # most first
        assert one.endpoints == len(sample_records())
        assert one.finished_at is not None and one.finished_at >= one.started_at
        assert one.started_at.tzinfo is not None and one.started_at.utcoffset() == dt.timedelta(0)
        assert two.finished_at is None and two.counts == {} and two.endpoints == 2
        store.finish_scan(second)  # no counts given: counted from the stored records
        assert store.scan(second).counts == {"refused": 1, "success": 1}
        assert store.scan(first) == one

    def test_scan_ids_are_short_sortable_and_distinct(self, store: Store) -> None:
        ids = [store.begin_scan({}) for _ in range(5)]
        assert len(set(ids)) == 5
        for scan_id in ids:
            stamp, _, suffix = scan_id.partition("-")
            assert dt.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
            assert len(suffix) == 4 and int(suffix, 16) >= 0
        when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        old = store.begin_scan({}, started_at=when)
        assert old.startswith("20250102T030405Z-")
        assert store.scans()[0].scan_id == old

    def test_unknown_scan(self, store: Store, tmp_path: Path) -> None:
        known = store.begin_scan({})
        for call in (
            lambda: store.scan("20990101T000000Z-0000"),
            lambda: store.records("nope"),
            lambda: store.write("nope", [make_record("192.0.2.1", 25)]),
            lambda: store.finish_scan("nope", {}),
            lambda: store.diff(known, "nope"),
            lambda: store.diff("nope", known),
            lambda: store.export("nope", "csv", tmp_path / "x.csv"),
        ):
            with pytest.raises(StoreError, match=r"no scan '(nope|20990101T000000Z-0000)'") as info:
                call()
            assert "\n" not in str(info.value)
        assert not (tmp_path / "x.csv").exists()

    def test_reopen_keeps_everything(self, store: Store, store_url: str) -> None:
        scan_id = store.begin_scan({"k": 1})
        store.write(scan_id, sample_records())
        store.finish_scan(scan_id, {"success": 1})
        before = store.scan(scan_id)
        store.close()
        with open_store(store_url) as again:
            assert again.scan(scan_id) == before
            assert by_endpoint(list(again.records(scan_id))) == by_endpoint(sample_records())

    def test_newer_schema_version_is_refused(self, store: Store, store_url: str) -> None:
        store._execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
        store.close()
        with pytest.raises(StoreError, match="schema version 99"):
            open_store(store_url)

    # -- diff --------------------------------------------------------------------------------------

    def test_diff(self, store: Store) -> None:
        a = store.begin_scan({})
        b = store.begin_scan({})
        store.write(
            a,
            [
                make_record("192.0.2.1", 143, ("cleartext-login",)),  # still
                make_record("192.0.2.1", 993, ("legacy-tls", "cert-expired")),  # legacy still, cert fixed
                make_record("192.0.2.2", 110, ("no-tls",)),  # B: refused -> fixed
                make_record("192.0.2.3", 143, ("cleartext-login",)),  # B: timeout -> unknown
                make_record("192.0.2.4", 25, ("weak-cipher",)),  # not in B -> unknown
                make_record("192.0.2.7", 143),  # clean in A, exposed in B -> new
                make_record("192.0.2.8", 25, ("no-tls",)),  # B: not-mail -> fixed
            ],
        )
        b_records = [
            make_record("192.0.2.1", 143, ("cleartext-login",)),
            make_record("192.0.2.1", 993, ("legacy-tls",)),
            make_record("192.0.2.2", 110, status=Status.REFUSED),
            make_record("192.0.2.3", 143, status=Status.READ_TIMEOUT),
            make_record("192.0.2.6", 25, ("no-tls",)),  # not in A -> new
            make_record("192.0.2.7", 143, ("cleartext-login",)),
            make_record("192.0.2.8", 25, status=Status.NOT_MAIL),
        ]
        b_records[0].findings[0].severity = Severity.MEDIUM  # severities of new/still come from B
        store.write(b, b_records)
        d = store.diff(a, b)

        def keys(items: list) -> list[tuple[str, int, str]]:  # type: ignore[type-arg]
            return [(e.address, e.port, e.code) for e in items]

        assert keys(d.new) == [("192.0.2.6", 25, "no-tls"), ("192.0.2.7", 143, "cleartext-login")]
        assert keys(d.still) == [("192.0.2.1", 143, "cleartext-login"), ("192.0.2.1", 993, "legacy-tls")]
        assert keys(d.fixed) == [
            ("192.0.2.1", 993, "cert-expired"),
            ("192.0.2.2", 110, "no-tls"),
            ("192.0.2.8", 25, "no-tls"),
        ]
        assert keys(d.unknown) == [("192.0.2.3", 143, "cleartext-login"), ("192.0.2.4", 25, "weak-cipher")]
        assert d.still[0].severity == "medium" and d.still[0].status == "success"
        assert [e.status for e in d.fixed] == ["success", "refused", "not-mail"]
        assert [e.status for e in d.unknown] == ["read-timeout", None]
        assert d.fixed[0].severity == "medium" and d.fixed[0].protocol == "imap"
        assert d.new[0].hostname == "mail.example"
        assert json.loads(json.dumps(d.to_dict()))["new"][0]["code"] == "no-tls"

    def test_diff_with_itself_and_ipv6_order(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        store.write(
            scan_id,
            [
                make_record("2001:db8::1", 25, ("no-tls",)),
                make_record("192.0.2.10", 25, ("no-tls",)),
                make_record("192.0.2.9", 25, ("no-tls",)),
            ],
        )
        d = store.diff(scan_id, scan_id)
        assert d.new == d.fixed == d.unknown == []
        assert [e.address for e in d.still] == ["192.0.2.9", "192.0.2.10", "2001:db8::1"]

    # -- export ------------------------------------------------------------------------------------

    def test_export_parquet(self, store: Store, tmp_path: Path) -> None:
        records = sample_records()
        scan_id = store.begin_scan({})
        store.write(scan_id, records)
        path = tmp_path / "out.parquet"
        assert store.export(scan_id, "parquet", path) == len(records)
        table = pq.read_table(path)
        assert table.num_rows == len(records)
        assert table.schema.field("port").type == "int32"
        assert str(table.schema.field("started_at").type) == "timestamp[us, tz=UTC]"
        rows = {(r["address"], r["port"]): r for r in table.to_pylist()}
        v6 = rows[("2001:db8::25", 25)]
        assert v6["finding_codes"] == ["no-tls", "cleartext-login"] and v6["cleartext_login"] is True
        assert v6["worst_severity"] == "high" and v6["tls_version"] == "TLSv1.3" and v6["total_ms"] == 77.25
        assert v6["started_at"] == dt.datetime(2026, 11, 28, 8, 3, 13, 445537, tzinfo=dt.UTC)
        assert v6["protocol"] == "smtp" and v6["tls_mode"] == "starttls" and v6["scan_id"] == scan_id
        blocked = rows[("10.0.0.1", 25)]
        assert (
            blocked["started_at"] is None
            and blocked["finding_codes"] == []
            and blocked["tls_version"] is None
        )
        assert blocked["cleartext_login"] is False and blocked["worst_severity"] is None
        rebuilt = [record_from_dict(json.loads(r["record"])) for r in table.to_pylist()]
        assert by_endpoint(rebuilt) == by_endpoint(records)

    def test_export_csv_escapes_formulas(self, store: Store, tmp_path: Path) -> None:
        records = sample_records()
        scan_id = store.begin_scan({})
        store.write(scan_id, records)
        path = tmp_path / "out.csv"
        assert store.export(scan_id, "csv", path) == len(records)
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len(records)
        assert "record" not in rows[0]
        hostile = next(r for r in rows if r["address"] == "203.0.113.9")
        assert hostile["hostname"] == '\'=HYPERLINK("http://x")'
        assert hostile["software"] == "'+cmd|' /C calc'!A0"
        other = next(r for r in rows if r["address"] == "203.0.113.10")
        assert other["hostname"] == "'@sum" and other["software"] == "'-2+3"
        v6 = next(r for r in rows if r["address"] == "2001:db8::25")
        assert v6["finding_codes"] == "no-tls cleartext-login" and v6["cleartext_login"] == "true"
        assert v6["started_at"] == "2026-11-28T08:03:13.445537Z" and v6["port"] == "25"
        for row in rows:
            for cell in row.values():
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell

    def test_export_jsonl(self, store: Store, tmp_path: Path) -> None:
        records = sample_records()
        scan_id = store.begin_scan({})
        store.write(scan_id, records)
        path = tmp_path / "out.jsonl"
        assert store.export(scan_id, "jsonl", path) == len(records)
        lines = path.read_text(encoding="ascii").splitlines()
        assert by_endpoint([record_from_dict(json.loads(line)) for line in lines]) == by_endpoint(records)

    def test_export_jsonl_holds_the_domain_records_and_the_others_do_not(
        self, store: Store, tmp_path: Path
    ) -> None:
        records, domains = sample_records(), sample_domains()
        scan_id = store.begin_scan({})
        store.write(scan_id, records)
        store.write_domains(scan_id, [store_row(d) for d in domains])
        assert store.export(scan_id, "jsonl", tmp_path / "out.jsonl") == len(records)
        lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("ascii").splitlines()]
        assert [line.get("kind") for line in lines] == [None] * len(records) + ["domain"] * len(domains)
        back = {d["domain"]: domain_record_from_dict(d).to_dict() for d in lines[len(records) :]}
        assert back == {d.observation.domain: d.to_dict() for d in domains}
        assert store.export(scan_id, "csv", tmp_path / "out.csv") == len(records)
        assert "example.org" not in (tmp_path / "out.csv").read_text("utf-8")
        assert store.export(scan_id, "parquet", tmp_path / "out.parquet") == len(records)
        assert pq.read_table(tmp_path / "out.parquet").num_rows == len(records)

    # -- domains -----------------------------------------------------------------------------------

    def test_domains_round_trip_with_typed_columns(self, store: Store) -> None:
        domains = sample_domains()
        scan_id = store.begin_scan({})
        other = store.begin_scan({})
        assert store.write_domains(scan_id, [store_row(d) for d in domains]) == 3
        texts = store.domains(scan_id)
        assert [domain_record_from_dict(json.loads(t)).to_dict() for t in texts] == sorted(
            (d.to_dict() for d in domains), key=lambda d: d["domain"]
        )
        assert store.domains(other) == []
        rows = {
            row[0]: row[1:]
            for row in store.query(
                "SELECT domain, worst_severity, finding_codes, finding_severities, mx_hosts, mta_sts_mode, "
                "tls_rpt, dane, CAST(checked_at AS TEXT) FROM domains WHERE scan_id = ?",
                (scan_id,),
            )
        }
        worst, codes, severities, mx, mode, rpt, dane, checked = rows["example.org"]
        assert worst == "high"
        assert list(codes) == ["dane-tlsa-mismatch", "no-smtp-tls-policy", "tls-rpt-missing"]
        assert list(severities) == ["high", "medium", "low"]
        assert list(mx) == ["mx1.example.org", "mx2.example.org"]
        assert (mode, rpt, dane) == (None, False, "mismatch") and checked.startswith("2026-11-28 08:00:00")
        assert rows["clean.example"][0] is None and rows["clean.example"][4:7] == ("enforce", True, "match")
        assert rows[HOSTILE_DOMAIN][6] == "none" and rows[HOSTILE_DOMAIN][7] is None

    def test_domain_rewrite_replaces_and_last_wins(self, store: Store) -> None:
        broken, clean, _ = sample_domains()
        scan_id = store.begin_scan({})
        store.write_domains(scan_id, [store_row(broken), store_row(clean)])
        fixed = sample_domains()[0]
        fixed.findings = fixed.findings[1:]
        assert store.write_domains(scan_id, [store_row(broken), store_row(fixed)]) == 1
        texts = store.domains(scan_id)
        assert len(texts) == 2
        codes = {json.loads(t)["domain"]: [f["code"] for f in json.loads(t)["findings"]] for t in texts}
        assert codes["example.org"] == ["no-smtp-tls-policy", "tls-rpt-missing"]

    def test_ill_typed_domain_and_unknown_scan_are_refused(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        bad = sample_domains()[0]
        bad.observation.domain = ["example.org"]  # type: ignore[assignment]
        with pytest.raises(StoreError, match="domain record 1: domain must be a non-empty string"):
            store.write_domains(scan_id, [store_row(bad)])
        with pytest.raises(StoreError, match="no scan"):
            store.write_domains("no-such-scan", [store_row(sample_domains()[1])])
        with pytest.raises(StoreError, match="no scan"):
            store.domains("no-such-scan")
        assert store.domains(scan_id) == []

    def test_diff_compares_the_domains_per_finding(self, store: Store) -> None:
        """B checked example.org again without one finding (fixed) and clean.example with a new one (new);
        B has no record of the third domain, so its finding is unknown, not fixed."""
        broken, clean, hostile = sample_domains()
        a = store.begin_scan({})
        store.write_domains(a, [store_row(d) for d in (broken, clean, hostile)])
        later_broken, later_clean, _ = sample_domains()
        gone = later_broken.findings.pop(0)
        later_clean.findings.append(finding("tls-rpt-missing"))
        b = store.begin_scan({})
        store.write_domains(b, [store_row(later_broken), store_row(later_clean)])
        diff = store.diff(a, b)
        pairs = {kind: [(e.domain, e.code) for e in found] for kind, found in diff.domains.items()}
        assert pairs == {
            "new": [("clean.example", "tls-rpt-missing")],
            "fixed": [("example.org", gone.code)],
            "still": sorted(("example.org", f.code) for f in later_broken.findings),
            "unknown": sorted((HOSTILE_DOMAIN, f.code) for f in hostile.findings),
        }
        assert hostile.findings and later_broken.findings
        assert (diff.new, diff.fixed, diff.still, diff.unknown) == ([], [], [], [])
        as_json = diff.to_dict()["domains"]
        assert as_json["fixed"] == [{"domain": "example.org", "code": gone.code, "severity": gone.severity}]
        # Backwards: what B added is fixed in A's eyes only where A checked the domain.
        back = store.diff(b, a).domains
        assert [(e.domain, e.code) for e in back["fixed"]] == [("clean.example", "tls-rpt-missing")]
        assert [(e.domain, e.code) for e in back["new"]] == sorted(
            [("example.org", gone.code), *((HOSTILE_DOMAIN, f.code) for f in hostile.findings)]
        )

    def test_domains_roll_back_with_the_transaction(self, store: Store) -> None:
        with pytest.raises(RuntimeError), store.transaction():
            scan_id = store.begin_scan({})
            store.write_domains(scan_id, [store_row(d) for d in sample_domains()])
            raise RuntimeError("a bad line")
        assert store.query("SELECT count(*) FROM domains") == [(0,)]

    def test_export_errors(self, store: Store, tmp_path: Path) -> None:
        out = tmp_path / "exports"
        out.mkdir()
        scan_id = store.begin_scan({})
        store.write(scan_id, sample_records())
        with pytest.raises(StoreError, match="unknown export format"):
            store.export(scan_id, "xlsx", out / "x.xlsx")
        with pytest.raises(StoreError, match="cannot write"):
            store.export(scan_id, "csv", out / "missing-dir" / "x.csv")
        assert list(out.iterdir()) == []
        empty = store.begin_scan({})
        assert store.export(empty, "parquet", out / "empty.parquet") == 0
        assert pq.read_table(out / "empty.parquet").num_rows == 0
        (out / "old.csv").write_text("old")
        assert store.export(scan_id, "csv", out / "old.csv") == len(sample_records())  # replaced whole
        assert sorted(p.name for p in out.iterdir()) == ["empty.parquet", "old.csv"]

    # -- sink --------------------------------------------------------------------------------------

    def test_sink_batches_and_close_flushes(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        records = [make_record(f"192.0.2.{i}", 25) for i in range(7)]
        with StoreSink(store, scan_id, batch_size=3, max_delay=60) as sink:
            for record in records[:5]:
                sink(record)
            assert store.count(scan_id) == 3  # one full batch, two buffered
            sink(records[5])
            assert store.count(scan_id) == 6
            sink(records[6])
            assert store.count(scan_id) == 6
        assert store.count(scan_id) == 7 and sink.written == 7
        sink.close()  # twice is fine
        with pytest.raises(StoreError, match="closed"):
            sink(records[0])

    def test_sink_flushes_after_max_delay_without_new_records(self, store: Store) -> None:
        scan_id = store.begin_scan({})
        sink = StoreSink(store, scan_id, batch_size=1000, max_delay=0.2)
        try:
            sink(make_record("192.0.2.1", 25))
            deadline = time.monotonic() + 5
            while store.count(scan_id) == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert store.count(scan_id) == 1
        finally:
            sink.close()

    def test_sink_reports_store_errors(self, store: Store) -> None:
        sink = StoreSink(store, "no-such-scan", batch_size=2, max_delay=60)
        sink(make_record("192.0.2.1", 25))
        with pytest.raises(StoreError, match="no scan"):
            sink(make_record("192.0.2.2", 25))
        with pytest.raises(StoreError, match="no scan"):
            sink.close()


def assert_sink_writes_without_pyarrow(url: str) -> None:
    """A scan's sink writes five records into the store at ``url`` in a fresh interpreter, which must
    not have imported pyarrow by the end (it costs ~25 MB of a scan's peak RSS)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import sys
        from cleartext.record import Observation, Protocol, Record, Status, TLSMode
        from cleartext.store import StoreSink, open_store
        store = open_store({url!r})
        scan_id = store.begin_scan({{}})
        sink = StoreSink(store, scan_id, batch_size=2, new=True)
        for i in range(5):
            sink(Record(observation=Observation(address=f"10.7.0.{{i}}", port=25, protocol=Protocol.SMTP,
                tls_mode=TLSMode.STARTTLS, status=Status.REFUSED, started_at="2026-11-28T08:00:00Z")))
        sink.close()
        store.finish_scan(scan_id)
        assert store.count(scan_id) == 5
        print("pyarrow" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
