"""Store schema 2 adds records.tls_versions (accepted TLS versions, so statistics run in SQL)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from cleartext.record import accepted_tls_versions
from cleartext.store import StoreError, open_store
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
