"""Store schema 2 adds records.tls_versions (accepted TLS versions, so statistics run in SQL); 3 the
domains table, which a version-2 store gains when it is opened."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cleartext.domain.model import store_row
from cleartext.record import accepted_tls_versions
from cleartext.store import STORE_SCHEMA_VERSION, StoreError, open_store
from tests.domain_samples import sample_domains
from tests.store_contract import sample_records


def test_new_store_keeps_accepted_versions_as_a_column(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    records = sample_records()
    with open_store(str(path)) as store:
        scan_id = store.begin_scan({})
        store.write(scan_id, records)
    con = duckdb.connect(str(path), read_only=True)
    rows = dict(
        ((a, p), v) for a, p, v in con.execute("SELECT address, port, tls_versions FROM records").fetchall()
    )
    con.close()
    for record in records:
        obs = record.observation
        assert rows[(obs.address, obs.port)] == accepted_tls_versions(obs)
    assert any(rows.values()), "the samples include endpoints that accepted some version"


def test_development_store_version_1_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with open_store(str(path)) as store:
        store.write(store.begin_scan({}), sample_records())
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE records DROP COLUMN tls_versions")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 1, from a development build"):
        open_store(str(path))


def test_store_version_2_gains_the_domains_table(tmp_path: Path) -> None:
    path = tmp_path / "v2.duckdb"
    with open_store(str(path)) as store:
        scan_id = store.begin_scan({})
        store.write(scan_id, sample_records())
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE domains")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    with open_store(str(path), create=False) as store:
        assert store.count(scan_id) == len(sample_records())
        assert store.domains(scan_id) == []
        assert store.write_domains(scan_id, [store_row(d) for d in sample_domains()]) == 3
    con = duckdb.connect(str(path), read_only=True)
    version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    domains = con.execute("SELECT count(*) FROM domains").fetchall()
    con.close()
    assert version == [(str(STORE_SCHEMA_VERSION),)] == [("3",)] and domains == [(3,)]
