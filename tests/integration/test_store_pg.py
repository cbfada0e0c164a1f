"""The store on a real PostgreSQL server: the shared contract, concurrent writers, connection errors, CLI.

The server is our own cluster (tests/pg.py), started once for this module on 127.0.0.1 and stopped at
the end; each test gets a fresh database. Nothing is skipped: without the PostgreSQL binaries the
fixture fails and says how to install them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cleartext.domain.model import store_row
from cleartext.store import StoreError, open_store
from tests.conftest import run_cli
from tests.domain_samples import sample_domains
from tests.pg import PostgresServer, free_port, postgres_server
from tests.store_contract import (
    StoreContract,
    assert_sink_writes_without_pyarrow,
    make_record,
    sample_records,
)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


class TestPostgresContract(StoreContract):
    @pytest.fixture
    def store_url(self, pg: PostgresServer) -> str:
        return pg.create_database()


def test_a_scan_writing_to_postgresql_never_imports_pyarrow(pg: PostgresServer) -> None:
    assert_sink_writes_without_pyarrow(pg.create_database())


def test_typed_columns_are_sql_types(pg: PostgresServer) -> None:
    """What a SQL user queries: arrays, booleans, timestamps with zone, and the record as json."""
    url = pg.create_database()
    with open_store(url) as store:
        scan_id = store.begin_scan({})
        store.write(scan_id, sample_records())
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT finding_codes, cleartext_login, started_at, record->>'address', "
            "pg_typeof(record)::text, pg_typeof(started_at)::text FROM records "
            "WHERE address = '2001:db8::25' AND 'no-tls' = ANY(finding_codes)"
        ).fetchone()
        assert row is not None
        codes, login, started, address, record_type, time_type = row
        assert codes == ["no-tls", "cleartext-login"] and login is True and address == "2001:db8::25"
        assert record_type == "json" and time_type == "timestamp with time zone"
        assert started.year == 2026
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)


def test_store_version_2_gains_the_domains_table(pg: PostgresServer) -> None:
    """A store made by schema 2 opens, gains an empty domains table, and keeps its records."""
    url = pg.create_database()
    with open_store(url) as store:
        scan_id = store.begin_scan({})
        store.write(scan_id, sample_records())
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE domains")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    with open_store(url) as store:
        assert store.count(scan_id) == len(sample_records()) and store.domains(scan_id) == []
        assert store.write_domains(scan_id, [store_row(d) for d in sample_domains()]) == 3
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)
        row = conn.execute(
            "SELECT pg_typeof(record)::text, pg_typeof(finding_codes)::text, dane FROM domains "
            "WHERE domain = 'example.org'"
        ).fetchone()
        assert row == ("json", "text[]", "mismatch")


def test_concurrent_writers_one_scan(pg: PostgresServer) -> None:
    """Several processes (here: connections) redelivering overlapping shards: each endpoint once."""
    url = pg.create_database()
    with open_store(url) as store:
        scan_id = store.begin_scan({})
    shards = [[make_record(f"192.0.2.{i}", 25, ("no-tls",)) for i in range(n, n + 120)] for n in (0, 60, 0)]
    errors: list[BaseException] = []

    def writer(records: list) -> None:  # type: ignore[type-arg]
        try:
            with open_store(url) as own:
                for start in range(0, len(records), 20):
                    own.write(scan_id, list(reversed(records[start : start + 40])))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(shard,)) for shard in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and not any(t.is_alive() for t in threads)
    with open_store(url) as store:
        assert store.count(scan_id) == 180


def test_unreachable_server_is_one_line_and_quick() -> None:
    port = free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        open_store(f"postgresql://cleartext:s3cret@127.0.0.1:{port}/cleartext")
    message = str(info.value)
    assert "\n" not in message and "cannot open store" in message
    assert "s3cret" not in message and "***" in message
    assert time.monotonic() - started < 15


def test_missing_database(pg: PostgresServer) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(pg.url("no_such_database"))


def test_foreign_tables_are_left_alone(pg: PostgresServer) -> None:
    """A shared database may hold other applications' tables; ours may not be there under our names."""
    url = pg.create_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")
    with open_store(url) as store:
        assert store.scans() == []
    other = pg.create_database()
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute("CREATE TABLE records (id integer)")
    with pytest.raises(StoreError, match="not a cleartext store"):
        open_store(other)


def test_cli_against_postgres(pg: PostgresServer, tmp_path: Path) -> None:
    url = pg.create_database()
    source = tmp_path / "scan.jsonl"
    source.write_text("".join(r.to_json() + "\n" for r in sample_records()))
    imported = run_cli("import", str(source), "--store", url, timeout=120)
    assert imported.returncode == 0, imported.stderr
    scan_id = imported.stdout.strip()
    listed = run_cli("scans", "--store", url, "--json", timeout=120)
    assert listed.returncode == 0, listed.stderr
    (info,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert info["scan_id"] == scan_id and info["endpoints"] == len(sample_records())
    out = tmp_path / "back.jsonl"
    exported = run_cli("export", scan_id, "--format", "jsonl", "--out", str(out), "--store", url, timeout=120)
    assert exported.returncode == 0, exported.stderr
    assert sorted(out.read_text().splitlines()) == sorted(source.read_text().splitlines())
    unknown = run_cli("diff", scan_id, "nope", "--store", url, timeout=120)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1 and "no scan 'nope'" in unknown.stderr
