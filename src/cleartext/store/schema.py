"""The store's tables and their vocabulary: columns, DDL, the schema version, the Arrow schema, errors.

Everything a reader or writer of the store agrees on, in one module that imports nothing of the store's
own, so that the backends, the sink and the exports all depend on it and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from cleartext.errors import CleartextError

if TYPE_CHECKING:  # pyarrow is imported lazily: `cleartext scan` should not pay for it at start-up.
    import pyarrow as pa

# Bumped whenever a table or column changes meaning; a store with a newer version is refused, an older
# one will be migrated by the code that bumps this.
STORE_SCHEMA_VERSION = 3  # 2: records.tls_versions (accepted versions, for statistics in SQL); 3: domains

# Endpoint statuses conclusive enough to call a finding fixed when it is gone: the dialog ran
# (success), nothing listens any more (refused), or the port no longer speaks mail (not-mail). After a
# timeout, a reset or a refusal by policy we simply do not know, so such findings are "unknown".
CONCLUSIVE_STATUSES = ("success", "refused", "not-mail")

LATEST = "latest"
"""What the operator types for the newest scan, wherever a scan id is asked for (Store.resolve_scan)."""

ExportFormat = Literal["parquet", "csv", "jsonl"]
EXPORT_FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")

# The typed columns, in table order. `record` (the whole record as JSON text) comes last.
COLUMNS: tuple[str, ...] = (
    "scan_id",
    "address",
    "port",
    "protocol",
    "tls_mode",
    "hostname",
    "status",
    "software",
    "tls_version",
    "tls_versions",
    "worst_severity",
    "finding_codes",
    "finding_severities",
    "cleartext_login",
    "started_at",
    "total_ms",
    "record",
)
KEY_COLUMNS = ("scan_id", "address", "port")

# {text}, {json}, {float} are filled in per backend (DuckDB: VARCHAR/VARCHAR/DOUBLE; PostgreSQL:
# TEXT/json/DOUBLE PRECISION). Both accept the rest as written. {records_key}: PostgreSQL keys records
# by (scan_id, address, port); DuckDB does not, because its index must live in memory (~80 bytes per
# record: ~9 GB for a /8 on seven ports) and DuckDBStore keeps the key unique itself (see write()).
RECORDS_KEY = ",\n    PRIMARY KEY (scan_id, address, port)"
_CORE_DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key {text} PRIMARY KEY,
    value {text} NOT NULL
);
CREATE TABLE IF NOT EXISTS scans (
    scan_id {text} PRIMARY KEY,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    params {json} NOT NULL,
    counts {json}
);
CREATE TABLE IF NOT EXISTS records (
    scan_id {text} NOT NULL,
    address {text} NOT NULL,
    port INTEGER NOT NULL,
    protocol {text} NOT NULL,
    tls_mode {text} NOT NULL,
    hostname {text},
    status {text} NOT NULL,
    software {text},
    tls_version {text},
    tls_versions {text}[] NOT NULL,
    worst_severity {text},
    finding_codes {text}[] NOT NULL,
    finding_severities {text}[] NOT NULL,
    cleartext_login BOOLEAN NOT NULL,
    started_at TIMESTAMPTZ,
    total_ms {float},
    record {json} NOT NULL{records_key}
);
"""

# The domain records of a scan (`check DOMAIN --json` lines, imported): one row per domain. A scan holds
# a handful of domains, not millions, so the key is a real primary key in both databases. Version 3 of
# the store added this table; a version-2 store gains it when it is opened (Store._init_schema).
DOMAIN_COLUMNS: tuple[str, ...] = (
    "scan_id",
    "domain",
    "checked_at",
    "worst_severity",
    "finding_codes",
    "finding_severities",
    "mx_hosts",
    "mta_sts_mode",
    "tls_rpt",
    "dane",
    "record",
)
DOMAINS_DDL = """
CREATE TABLE IF NOT EXISTS domains (
    scan_id {text} NOT NULL,
    domain {text} NOT NULL,
    checked_at TIMESTAMPTZ,
    worst_severity {text},
    finding_codes {text}[] NOT NULL,
    finding_severities {text}[] NOT NULL,
    mx_hosts {text}[] NOT NULL,
    mta_sts_mode {text},
    tls_rpt BOOLEAN NOT NULL,
    dane {text} NOT NULL,
    record {json} NOT NULL,
    PRIMARY KEY (scan_id, domain)
);
"""
DDL = _CORE_DDL + DOMAINS_DDL


@dataclass(frozen=True, slots=True)
class DomainRow:
    """One domain record as the store keeps it: the typed columns reports filter on, and the record.

    Built by cleartext.domain (which owns the domain record; the store sits below it and never parses
    one) and read back as JSON text. ``dane``: none, partial, match, mismatch or unchecked
    (cleartext.domain.model.dane_state). ``mta_sts_mode``: the mode of a valid policy, else None.
    """

    domain: str
    checked_at: str  # ISO 8601 UTC, as the record spells it ("" if unknown)
    worst_severity: str | None
    finding_codes: list[str]
    finding_severities: list[str]
    mx_hosts: list[str]
    mta_sts_mode: str | None
    tls_rpt: bool  # a valid TLS-RPT record with somewhere to report to
    dane: str
    record: str  # the whole domain record, as JSON text


class StoreError(CleartextError):
    """A store that cannot be opened or used, or an unknown scan: always a one-line, user-facing message.

    ``permanent`` marks an error that no retry can cure — credentials the server refused — so that code
    which waits out an unreachable store (the distributed workers) stops at once instead.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def arrow_schema() -> pa.Schema:
    """The Arrow schema of a records batch: what DuckDB ingests and what every export reads."""
    import pyarrow as pa

    text = pa.string()
    return pa.schema(
        [
            ("scan_id", text),
            ("address", text),
            ("port", pa.int32()),
            ("protocol", text),
            ("tls_mode", text),
            ("hostname", text),
            ("status", text),
            ("software", text),
            ("tls_version", text),
            ("tls_versions", pa.list_(text)),
            ("worst_severity", text),
            ("finding_codes", pa.list_(text)),
            ("finding_severities", pa.list_(text)),
            ("cleartext_login", pa.bool_()),
            ("started_at", pa.timestamp("us", tz="UTC")),
            ("total_ms", pa.float64()),
            ("record", text),
        ]
    )
