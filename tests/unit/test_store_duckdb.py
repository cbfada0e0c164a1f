"""The store on an embedded DuckDB file: the shared contract, plus what only a file can get wrong."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cleartext.record import Record, record_from_dict
from cleartext.store import StoreError, default_store_url, open_store
from cleartext.store.base import check_record
from cleartext.store.export import csv_cell, escape_formula
from tests.store_contract import StoreContract, assert_sink_writes_without_pyarrow, make_record


class TestDuckDBContract(StoreContract):
    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return str(tmp_path / "store.duckdb")


def test_url_forms(tmp_path: Path) -> None:
    path = tmp_path / "a.duckdb"
    with open_store(f"duckdb://{path}") as store:
        scan_id = store.begin_scan({})
    with open_store(str(path)) as store:
        assert [s.scan_id for s in store.scans()] == [scan_id]
    with open_store(":memory:") as store:
        assert store.scans() == []


def one_line_error(url: str, **kw: bool) -> str:
    with pytest.raises(StoreError) as info:
        open_store(url, **kw)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def test_wrong_format_file(tmp_path: Path) -> None:
    text = tmp_path / "records.jsonl"
    text.write_text('{"version": 1}\n' * 100)
    assert "cannot open store" in one_line_error(str(text))
    assert text.read_text().startswith('{"version": 1}')  # left as it was


def test_directory_missing_file_and_bad_scheme(tmp_path: Path) -> None:
    assert "is a directory" in one_line_error(str(tmp_path))
    missing = tmp_path / "nope.duckdb"
    assert "no store at" in one_line_error(str(missing), create=False)
    assert not missing.exists()
    assert "cannot open store" in one_line_error(str(tmp_path / "no-dir" / "x.duckdb"))
    assert "unknown store URL scheme 'mysql'" in one_line_error("mysql://x/y")
    assert "empty store path" in one_line_error("duckdb://")


def test_foreign_duckdb_file(tmp_path: Path) -> None:
    import duckdb

    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE TABLE records (x INTEGER)")
    assert "not a cleartext store" in one_line_error(str(path))


def test_file_locked_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "locked.duckdb"
    open_store(str(path)).close()
    holder = textwrap.dedent(
        f"""
        import sys
        from cleartext.store import open_store
        store = open_store({str(path)!r})
        print("ready", flush=True)
        sys.stdin.readline()
        store.close()
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        message = one_line_error(str(path))
        assert "lock" in message.lower()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def test_default_store_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLEARTEXT_STORE", raising=False)
    assert default_store_url() == "cleartext.duckdb"
    monkeypatch.setenv("CLEARTEXT_STORE", "postgresql://db/cleartext")
    assert default_store_url() == "postgresql://db/cleartext"


def test_formula_escaping() -> None:
    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert escape_formula(f"{start}1+1") == f"'{start}1+1"
    assert escape_formula("mail.example") == "mail.example"
    assert escape_formula("") == ""
    assert csv_cell(None) == "" and csv_cell(True) == "true" and csv_cell(["a", "b"]) == "a b"
    assert csv_cell(["-x"]) == "'-x"


def test_store_write_is_columnar(tmp_path: Path) -> None:
    """A coarse guard against a row-by-row insert creeping back: 10,000 full records in two batches.

    Columnar, this takes well under a second of insert time; row by row it would take minutes. The bound
    is loose on purpose (a loaded CI machine must not make it flaky).
    """
    import time

    with open_store(str(tmp_path / "fast.duckdb")) as store:
        scan_id = store.begin_scan({})
        batches = [
            [make_record(f"10.{p}.{i >> 8}.{i & 255}", 25, ("no-tls",)) for i in range(5000)] for p in (1, 2)
        ]
        started = time.monotonic()
        for batch in batches:
            store.write(scan_id, batch)
        assert time.monotonic() - started < 30
        assert store.count(scan_id) == 10000


def test_check_record_names_the_bad_field() -> None:
    """What `import` refuses by FILE:LINE before anything reaches Arrow or the database."""
    good = make_record("192.0.2.1", 25).to_dict()
    check_record(record_from_dict(good))
    for change, needle in (
        ({"address": "mail.example"}, "not an IP address"),
        ({"address": 7}, "address must be a string"),
        ({"port": "25"}, "not a TCP port"),
        ({"port": 70000}, "not a TCP port"),
        ({"port": True}, "not a TCP port"),
        ({"hostname": ["a"]}, "hostname"),
        ({"software": 1}, "software"),
        ({"started_at": None}, "started_at"),
        ({"timings_ms": {"total": "fast"}}, "timings_ms"),
        ({"tls": {**good["tls"], "version": 13}}, "tls.version"),
    ):
        record: Record = record_from_dict({**good, **change})
        with pytest.raises(ValueError, match=needle):
            check_record(record)


def test_a_scan_caps_duckdb_memory_and_outgrows_the_cap_rather_than_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sink caps DuckDB's buffer pool (peak RSS); a batch that needs more gets more, not an error."""
    import cleartext.store.duckdb_store as duckdb_store
    from cleartext.store import StoreSink

    monkeypatch.setattr(duckdb_store, "BULK_WRITE_MEMORY_MB", 8)  # too little for these batches
    with open_store(str(tmp_path / "capped.duckdb")) as store:
        scan_id = store.begin_scan({})
        sink = StoreSink(store, scan_id, batch_size=5000)
        limit = store._query("SELECT current_setting('memory_limit')")[0][0]
        assert "MiB" in limit or "MB" in limit  # capped, not DuckDB's 80 % of RAM
        for p in range(4):
            for i in range(5000):
                sink(make_record(f"10.{p}.{i >> 8}.{i & 255}", 25, ("no-tls",)))
        sink.close()
        assert store.count(scan_id) == 20000
        assert store._bulk_memory_mb is not None and store._bulk_memory_mb > 8  # it had to grow


def test_a_failed_insert_reports_its_own_error(tmp_path: Path) -> None:
    """Not "transaction aborted": the error that aborted it (here DuckDB's out-of-memory)."""
    with open_store(str(tmp_path / "oom.duckdb")) as store:
        scan_id = store.begin_scan({})
        store._conn.execute("SET memory_limit = '2MB'")  # no bulk-write retry: prepare_bulk_writes not called
        batch = [make_record(f"10.9.{i >> 8}.{i & 255}", 25, ("no-tls",)) for i in range(5000)]
        with pytest.raises(StoreError) as caught:
            for _ in range(3):
                store.write(scan_id, batch)
        assert "out of memory" in str(caught.value).lower()
        assert "aborted" not in str(caught.value).lower()
        store._conn.execute("SET memory_limit = '1GB'")
        store.write(scan_id, batch)  # the connection is usable again: the failed transaction was undone
        assert store.count(scan_id) == 5000


def test_a_batch_without_any_optional_value_round_trips(tmp_path: Path) -> None:
    """Lists become columns by type inference: a batch where every hostname, software, TLS version and
    finding is empty or null must still land, typed, and read back as the same records."""
    from cleartext.record import Status

    with open_store(str(tmp_path / "sparse.duckdb")) as store:
        scan_id = store.begin_scan({})
        batch = [
            make_record(f"10.8.0.{i}", 110, status=Status.REFUSED, hostname=None, software=None)
            for i in range(1, 4)
        ]
        assert store.write(scan_id, batch) == 3
        assert store.write(scan_id, batch) == 3  # again: replaced, not doubled
        assert store.count(scan_id) == 3
        back = sorted(store.records(scan_id), key=lambda r: r.observation.address)
        assert [r.to_dict() for r in back] == [r.to_dict() for r in batch]
        row = store._query(
            "SELECT typeof(tls_versions), typeof(finding_codes), typeof(total_ms), typeof(started_at)"
            " FROM records LIMIT 1"
        )[0]
        assert row == ("VARCHAR[]", "VARCHAR[]", "DOUBLE", "TIMESTAMP WITH TIME ZONE")


def test_a_scan_writing_to_the_store_never_imports_pyarrow(tmp_path: Path) -> None:
    """pyarrow costs ~25 MB of a scan's peak RSS; only reading (exports, streams) may import it."""
    assert_sink_writes_without_pyarrow(str(tmp_path / "noarrow.duckdb"))


def test_records_have_no_key_index_yet_each_endpoint_stays_once(tmp_path: Path) -> None:
    """DuckDB's key index would sit in memory (~80 bytes per record); the store keeps the key itself."""
    from cleartext.record import Status

    with open_store(str(tmp_path / "nokey.duckdb")) as store:
        assert store._query(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'records' "
            "AND constraint_type = 'PRIMARY KEY'"
        ) == [(0,)]
        assert store.memory_warning(117_440_512) is None
        scan_id = store.begin_scan({})
        first = [make_record(f"10.6.0.{i}", 25, ("no-tls",)) for i in range(1, 6)]
        store.write(scan_id, first, new=True)
        later = [make_record("10.6.0.3", 25, status=Status.REFUSED), make_record("10.6.0.9", 25)]
        store.write(scan_id, later)  # an idempotent write finds 10.6.0.3 and replaces it
        assert store.count(scan_id) == 6
        third = next(r for r in store.records(scan_id) if r.observation.address == "10.6.0.3")
        assert third.observation.status is Status.REFUSED
        other = store.begin_scan({})  # the same endpoint in another scan is another record
        store.write(other, later)
        assert store.count(scan_id) == 6 and store.count(other) == 2


def test_keep_last_leaves_the_last_record_of_an_endpoint_written_twice_as_new(tmp_path: Path) -> None:
    """What an import relies on when a file names an endpoint twice, in two different batches."""
    from cleartext.record import Status

    with open_store(str(tmp_path / "last.duckdb")) as store:
        scan_id = store.begin_scan({})
        first = [make_record("10.5.0.1", 25, ("no-tls",)), make_record("10.5.0.2", 25)]
        store.write(scan_id, first, new=True)
        store.write(scan_id, [make_record("10.5.0.1", 25, status=Status.REFUSED)], new=True)
        assert store.count(scan_id) == 3  # the caller broke its word: both are there
        store.keep_last(scan_id)
        assert store.count(scan_id) == 2
        kept = next(r for r in store.records(scan_id) if r.observation.address == "10.5.0.1")
        assert kept.observation.status is Status.REFUSED


def test_an_import_naming_an_endpoint_in_two_batches_keeps_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from cleartext.cli import store as cli_store
    from cleartext.record import Status

    monkeypatch.setattr(cli_store, "IMPORT_BATCH", 2)
    lines = [
        make_record("10.4.0.1", 25, ("no-tls",)),
        make_record("10.4.0.2", 25),
        make_record("10.4.0.3", 25),
        make_record("10.4.0.1", 25, status=Status.REFUSED),  # in the second batch
    ]
    data = io.BytesIO(b"".join(r.to_json().encode() + b"\n" for r in lines))
    with open_store(str(tmp_path / "imp.duckdb")) as store:
        scan_id, count, domains = cli_store._import(store, data, Path("scan.jsonl"))
        assert (count, domains) == (4, 0) and store.count(scan_id) == 3
        kept = next(r for r in store.records(scan_id) if r.observation.address == "10.4.0.1")
        assert kept.observation.status is Status.REFUSED
        assert store.scan(scan_id).counts == {"success": 2, "refused": 1}


def test_an_old_store_with_a_key_index_is_warned_about_before_a_large_scan(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "w.duckdb")) as store:
        store._conn.execute("ALTER TABLE records ADD PRIMARY KEY (scan_id, address, port)")
        assert store.memory_warning(1_000_000) is None
        warning = store.memory_warning(117_440_512)
        assert warning is not None and "\n" not in warning
        assert "9.4 GB" in warning and "117,440,512 endpoints" in warning and "postgresql://" in warning
        scan_id = store.begin_scan({})  # and it still works as it did
        batch = [make_record("10.3.0.1", 25), make_record("10.3.0.2", 25)]
        store.write(scan_id, batch, new=True)
        store.write(scan_id, batch)
        assert store.count(scan_id) == 2
