"""The results store: scans and their records, in DuckDB (one file) or PostgreSQL (shared).

    store = open_store("cleartext.duckdb")            # or duckdb:///abs/path, or postgresql://...
    scan_id = store.begin_scan({"targets": [...], "ports": "25,587", "settings": {...}})
    with StoreSink(store, scan_id) as sink:           # the scan engine's emit
        ...sink(record)...
    store.finish_scan(scan_id, counts)
    store.diff(old_id, scan_id).new

See docs/store.md for the tables, the diff's definition and the export formats. The drivers are
imported only when a store of their kind is opened, so importing this package is cheap.
"""

from __future__ import annotations

import os

from cleartext.store.base import Diff, DomainExposure, Exposure, ScanInfo, Store, new_scan_id
from cleartext.store.schema import (
    CONCLUSIVE_STATUSES,
    EXPORT_FORMATS,
    LATEST,
    STORE_SCHEMA_VERSION,
    DomainRow,
    StoreError,
)
from cleartext.store.sink import StoreSink

DEFAULT_STORE = "cleartext.duckdb"
STORE_ENV = "CLEARTEXT_STORE"

__all__ = [
    "CONCLUSIVE_STATUSES",
    "DEFAULT_STORE",
    "EXPORT_FORMATS",
    "LATEST",
    "STORE_ENV",
    "STORE_SCHEMA_VERSION",
    "Diff",
    "DomainExposure",
    "DomainRow",
    "Exposure",
    "ScanInfo",
    "Store",
    "StoreError",
    "StoreSink",
    "default_store_url",
    "new_scan_id",
    "open_store",
]


def default_store_url() -> str:
    """$CLEARTEXT_STORE, else ./cleartext.duckdb: where the CLI stores when given no --store."""
    return os.environ.get(STORE_ENV) or DEFAULT_STORE


def open_store(url: str, *, create: bool = True) -> Store:
    """Open (and on first use, set up) the store named by `url`.

    A plain path or ``duckdb:///path`` opens an embedded DuckDB file (one writing process at a time);
    ``postgresql://user@host/db`` a PostgreSQL database (the database must exist; the tables are
    created). With ``create=False`` a DuckDB file that does not exist is an error rather than a new,
    empty store: reading commands use that, so a typo is not answered with "no scans".
    Any failure is a one-line StoreError.
    """
    if url.startswith(("postgresql://", "postgres://")):
        from cleartext.store.postgres_store import PostgresStore

        return PostgresStore(url)
    if url.startswith("duckdb://"):
        path = url.removeprefix("duckdb://")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise StoreError(f"unknown store URL scheme {scheme!r}: expected a path, duckdb:/// or postgresql://")
    else:
        path = url
    if not path:
        raise StoreError("empty store path")
    from cleartext.store.duckdb_store import DuckDBStore

    return DuckDBStore(path, create=create)
