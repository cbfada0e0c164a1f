"""The same :class:`~cleartext.report.stats.Stats` as the streaming path, computed by DuckDB in the store.

Why SQL: iterating ten million Python records takes minutes; grouping ten million rows of typed
columns takes DuckDB well under a second. The store (cleartext.store) keeps the columns this needs —
scan_id, address, port, protocol, status, software, tls_version, worst_severity, finding_codes,
cleartext_login, started_at — and the whole record as JSON. Definitions are those of the streaming
path (see cleartext.report.stats), and tests/unit/test_report_stats.py checks that both agree.

Two things the typed columns do not hold:

- The TLS versions an endpoint *accepted* (the raw-hello matrix). A ``tls_versions`` list column is
  used when the table has one; otherwise they are read from the JSON record, which is correct but
  costs a JSON parse per row (seconds per million rows instead of milliseconds).
- Attribution. Either a table or view named by ``attributions`` with columns ``address, asn, as_name,
  country, registry_country``, or a ``lookup`` function that is called once per distinct address and
  loaded into DuckDB; with neither, every endpoint's country and AS are unknown, as in the streaming
  path without data files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleartext.enrich.model import Attribution
from cleartext.record import record_from_dict
from cleartext.report.stats import (
    COUNTRY_SOURCES,
    DIMENSIONS,
    NONE,
    SILENT,
    TLS_VERSIONS,
    UNKNOWN,
    WORST_LIMIT,
    Breakdown,
    CountrySource,
    Stats,
    Tally,
    worst_endpoint,
)

if TYPE_CHECKING:
    import duckdb

__all__ = ["stats_from_duckdb"]

_SILENT_SQL = ", ".join(f"'{s}'" for s in sorted(SILENT))
_RANK_SQL = (
    "CASE worst_severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 "
    "WHEN 'low' THEN 1 WHEN 'info' THEN 0 ELSE -1 END"
)
_NEGOTIATED = "CASE WHEN tls_version = 'TLSv1' THEN 'TLSv1.0' ELSE tls_version END"


def _versions_from_json() -> str:
    """Accepted versions from the JSON record's matrix plus the negotiated version, as a SQL list."""
    parts = [
        f"CASE WHEN json_extract_string(record, '$.matrix.versions.\"{v}\"') = 'accepted' "
        f"OR ({_NEGOTIATED}) = '{v}' THEN '{v}' END"
        for v in TLS_VERSIONS
    ]
    # A negotiated version outside the five (unlikely) still counts, as in the streaming path.
    known = ", ".join(repr(v) for v in TLS_VERSIONS)
    other = f"CASE WHEN ({_NEGOTIATED}) NOT IN ({known}) THEN ({_NEGOTIATED}) END"
    # list_distinct drops the NULLs of the versions not accepted.
    return f"list_distinct([{', '.join(parts)}, {other}])"


def _connect(connection_or_path: duckdb.DuckDBPyConnection | str | Path) -> tuple[Any, bool]:
    import duckdb

    if isinstance(connection_or_path, str | Path):
        return duckdb.connect(str(connection_or_path), read_only=True), True
    return connection_or_path, False


def stats_from_duckdb(
    connection_or_path: duckdb.DuckDBPyConnection | str | Path,
    scan_id: str,
    *,
    country_source: CountrySource = "geo",
    attributions: str | None = None,
    lookup: Callable[[str], Attribution] | None = None,
    worst_limit: int = WORST_LIMIT,
    table: str = "records",
) -> Stats:
    """Statistics of one scan in a DuckDB store (a connection, or the path of the database file)."""
    if country_source not in COUNTRY_SOURCES:
        raise ValueError(f"country_source must be one of {', '.join(COUNTRY_SOURCES)}")
    con, owned = _connect(connection_or_path)
    try:
        return _compute(con, scan_id, country_source, attributions, lookup, worst_limit, table)
    finally:
        if owned:
            con.close()


def _compute(
    con: Any,
    scan_id: str,
    country_source: str,
    attributions: str | None,
    lookup: Callable[[str], Attribution] | None,
    worst_limit: int,
    table: str,
) -> Stats:
    columns = {row[0] for row in con.execute(f"DESCRIBE {table}").fetchall()}
    versions = "tls_versions" if "tls_versions" in columns else _versions_from_json()
    attr_table = attributions
    if attr_table is None and lookup is not None:
        attr_table = _load_attributions(con, scan_id, lookup, table)
    country_col = "country" if country_source == "geo" else "registry_country"
    if attr_table is not None:
        join = f"LEFT JOIN {attr_table} a ON a.address = r.address"
        attr_cols = f"a.asn AS asn, a.as_name AS as_name, a.{country_col} AS country"
    else:
        join = ""
        attr_cols = "NULL::BIGINT AS asn, NULL::VARCHAR AS as_name, NULL::VARCHAR AS country"

    stats = Stats(country_source=country_source, scan_id=scan_id)
    stats.breakdowns = {name: Breakdown(name) for name in DIMENSIONS}
    for status, count in con.execute(
        f"SELECT status, count(*) FROM {table} WHERE scan_id = ? GROUP BY status", [scan_id]
    ).fetchall():
        stats.by_status[status] = int(count)
        stats.records += int(count)
    first = con.execute(f"SELECT min(started_at) FROM {table} WHERE scan_id = ?", [scan_id]).fetchone()[0]
    if first is not None:
        row = con.execute(
            f"SELECT json_extract_string(record, '$.started_at') FROM {table} "
            "WHERE scan_id = ? AND started_at = ? LIMIT 1",
            [scan_id, first],
        ).fetchone()
        stats.scanned_at = row[0] if row else None

    # The open endpoints with the few derived columns every breakdown needs, kept for the queries below.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE _report_open AS
        SELECT r.address, r.port, r.protocol, r.software, r.worst_severity, r.finding_codes,
               r.cleartext_login AS login,
               list_contains(r.finding_codes, 'no-tls') AS no_tls,
               len(r.finding_codes) > 0 AS exposed,
               {versions} AS versions,
               {attr_cols}
        FROM {table} r {join}
        WHERE r.scan_id = ? AND r.status NOT IN ({_SILENT_SQL})
        """,
        [scan_id],
    )
    try:
        _fill(con, stats, worst_limit, table, scan_id, attr_table, country_col)
    finally:
        con.execute("DROP TABLE IF EXISTS _report_open")
        if attributions is None and attr_table is not None:
            con.execute(f"DROP TABLE IF EXISTS {attr_table}")
    return stats


def _fill(
    con: Any,
    stats: Stats,
    worst_limit: int,
    table: str,
    scan_id: str,
    attr_table: str | None,
    country_col: str,
) -> None:
    sums = "count(*), sum(exposed::INT), sum(login::INT), sum(no_tls::INT)"
    total = con.execute(f"SELECT {sums}, sum(len(finding_codes)) FROM _report_open").fetchone()
    stats.open = int(total[0])
    stats.exposed, stats.cleartext_login, stats.no_tls, stats.findings = (int(v or 0) for v in total[1:])

    # One pass for the scalar dimensions: GROUPING SETS, told apart by GROUPING().
    keys = {
        "protocol": "protocol",
        "port": "CAST(port AS VARCHAR)",
        "severity": f"coalesce(worst_severity, '{NONE}')",
        "software": f"coalesce(software, '{UNKNOWN}')",
        "country": f"coalesce(country, '{UNKNOWN}')",
        "asn": f"coalesce(CAST(asn AS VARCHAR), '{UNKNOWN}')",
    }
    select = ", ".join(f"{expr} AS k_{name}" for name, expr in keys.items())
    sets = ", ".join(f"(k_{name})" for name in keys)
    flags = ", ".join(f"GROUPING(k_{name})" for name in keys)
    rows = con.execute(
        f"SELECT {flags}, {', '.join(f'k_{n}' for n in keys)}, {sums}, min(as_name) "
        f"FROM (SELECT {select}, exposed, login, no_tls, as_name FROM _report_open) "
        f"GROUP BY GROUPING SETS ({sets})"
    ).fetchall()
    names = list(keys)
    for row in rows:
        grouping, values, counts, as_name = (
            row[: len(names)],
            row[len(names) : 2 * len(names)],
            row[-5:-1],
            row[-1],
        )
        index = grouping.index(0)
        name = names[index]
        key = str(values[index])
        stats.breakdowns[name].rows[key] = Tally(*(int(v or 0) for v in counts))
        if name == "asn" and as_name and key != UNKNOWN:
            stats.breakdowns[name].labels[key] = as_name

    for code, *counts in con.execute(
        f"SELECT code, {sums} FROM (SELECT unnest(list_distinct(finding_codes)) AS code, exposed, login, "
        "no_tls FROM _report_open) GROUP BY code"
    ).fetchall():
        stats.breakdowns["finding"].rows[code] = Tally(*(int(v or 0) for v in counts))
    for version, *counts in con.execute(
        f"SELECT v, {sums} FROM (SELECT unnest(CASE WHEN len(versions) = 0 THEN ['{NONE}'] "
        "ELSE list_distinct(versions) END) AS v, exposed, login, no_tls FROM _report_open) GROUP BY v"
    ).fetchall():
        stats.breakdowns["tls_version"].rows[version] = Tally(*(int(v or 0) for v in counts))

    if worst_limit <= 0:
        return
    top = con.execute(
        f"""
        SELECT o.address, o.port, CAST(t.record AS VARCHAR), o.asn, o.as_name, o.country
        FROM (SELECT address, port, asn, as_name, country FROM _report_open WHERE exposed
              ORDER BY {_RANK_SQL} DESC, len(list_distinct(finding_codes)) DESC, address, port
              LIMIT {int(worst_limit)}) o
        JOIN {table} t ON t.scan_id = ? AND t.address = o.address AND t.port = o.port
        ORDER BY {_RANK_SQL.replace("worst_severity", "t.worst_severity")} DESC,
                 len(list_distinct(t.finding_codes)) DESC, o.address, o.port
        """,
        [scan_id],
    ).fetchall()
    for _address, _port, record_json, asn, as_name, country in top:
        record = record_from_dict(json.loads(record_json))
        attribution = Attribution(asn=asn, as_name=as_name)
        stats.worst.append(worst_endpoint(record, attribution, country))


def _load_attributions(con: Any, scan_id: str, lookup: Callable[[str], Attribution], table: str) -> str:
    """Call ``lookup`` once per distinct address of the scan and load the answers as a temp table."""
    import pyarrow as pa

    addresses = [
        row[0]
        for row in con.execute(
            f"SELECT DISTINCT address FROM {table} WHERE scan_id = ? AND status NOT IN ({_SILENT_SQL})",
            [scan_id],
        ).fetchall()
    ]
    found = [lookup(a) for a in addresses]
    batch = pa.table(
        {
            "address": pa.array(addresses, pa.string()),
            "asn": pa.array([f.asn for f in found], pa.int64()),
            "as_name": pa.array([f.as_name for f in found], pa.string()),
            "country": pa.array([f.country for f in found], pa.string()),
            "registry_country": pa.array([f.registry_country for f in found], pa.string()),
        }
    )
    con.register("_report_attr_arrow", batch)
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _report_attr AS SELECT * FROM _report_attr_arrow")
    finally:
        con.unregister("_report_attr_arrow")
    return "_report_attr"
