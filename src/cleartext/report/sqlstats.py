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
from collections.abc import Callable, Sequence
from dataclasses import asdict
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
_NO_TLS_SQL = "list_contains(finding_codes, 'no-tls')"
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
    stats = Stats(country_source=country_source, scan_id=scan_id)
    stats.breakdowns = {name: Breakdown(name) for name in DIMENSIONS}
    try:
        query = _Query(con, scan_id, table)
        _combinations(query, stats, versions)
        _attributed_dimensions(query, stats, attr_table, country_col)
        _worst(query, stats, worst_limit, attr_table, country_col)
    finally:
        if attributions is None and attr_table is not None:
            con.execute(f"DROP TABLE IF EXISTS {attr_table}")
    return stats


class _Query:
    """Queries over one scan's open endpoints, each a single scan of the typed columns (no temp copy:
    materialising five million rows of lists costs more than reading the columns again)."""

    def __init__(self, con: Any, scan_id: str, table: str) -> None:
        self.con, self.scan_id, self.table = con, scan_id, table
        self.open = f"{table} r WHERE r.scan_id = $scan AND r.status NOT IN ({_SILENT_SQL})"

    def rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        given = {"scan": self.scan_id, **params}
        # DuckDB refuses named parameters that a statement does not use.
        return self.con.execute(sql, {k: v for k, v in given.items() if f"${k}" in sql}).fetchall()


_SUMS = (
    "count(*), count(*) FILTER (len(finding_codes) > 0), count(*) FILTER (cleartext_login), "
    "count(*) FILTER (list_contains(finding_codes, 'no-tls'))"
)


def _tally(values: Sequence[Any]) -> Tally:
    return Tally(*(int(v or 0) for v in values))


def _combinations(q: _Query, stats: Stats, versions: str) -> None:
    """Everything but attribution and the worst list from one scan of the table.

    The rows are grouped by every column the statistics read — status, protocol, port, software, worst
    severity, the list of finding codes, cleartext_login, the accepted versions — and the few thousand
    distinct combinations are summed here. One pass over the columns is the cost; grouping sets or a
    count per code would each read the lists again.
    """
    combos = q.rows(
        "SELECT status, protocol, port, software, worst_severity, finding_codes, cleartext_login, v, "
        "count(*), min(started_at) "
        f"FROM (SELECT status, protocol, port, software, worst_severity, finding_codes, cleartext_login, "
        f"CASE WHEN status IN ({_SILENT_SQL}) THEN NULL ELSE {versions} END AS v, started_at "
        f"FROM {q.table} WHERE scan_id = $scan) GROUP BY ALL"
    )
    b = stats.breakdowns
    first: Any = None
    for status, protocol, port, software, worst, codes, login, accepted, count, earliest in combos:
        count = int(count)
        stats.records += count
        stats.by_status[status] = stats.by_status.get(status, 0) + count
        if earliest is not None and (first is None or earliest < first):
            first = earliest
        if status in SILENT:
            continue
        codes = codes or []
        distinct = set(codes)
        exposed, no_tls = bool(codes), "no-tls" in distinct
        login = bool(login)
        stats.open += count
        stats.exposed += count * exposed
        stats.cleartext_login += count * login
        stats.no_tls += count * no_tls
        stats.findings += count * len(codes)
        keys = (
            ("protocol", protocol),
            ("port", str(port)),
            ("severity", worst or NONE),
            ("software", software or UNKNOWN),
            *(("finding", code) for code in distinct),
            *(("tls_version", v) for v in (set(accepted or ()) or {NONE})),
        )
        for dimension, key in keys:
            rows = b[dimension].rows
            tally = rows.get(key)
            if tally is None:
                tally = rows[key] = Tally()
            tally.endpoints += count
            tally.exposed += count * exposed
            tally.cleartext_login += count * login
            tally.no_tls += count * no_tls
    if first is not None:
        # The record's own text, so that both paths report the same string.
        row = q.rows(
            f"SELECT json_extract_string(record, '$.started_at') FROM {q.table} "
            "WHERE scan_id = $scan AND started_at = $first LIMIT 1",
            first=first,
        )
        stats.scanned_at = row[0][0] if row else None


def _grouped(q: _Query, stats: Stats, keys: dict[str, str], source: str, label: str | None = None) -> None:
    names = list(keys)
    select = ", ".join(f"{expr} AS k_{name}" for name, expr in keys.items())
    if label:
        select += f", {label} AS label"
    sets = ", ".join(f"(k_{name})" for name in names)
    flags = ", ".join(f"GROUPING(k_{name})" for name in names)
    label_agg = ", min(label)" if label else ", NULL"
    for row in q.rows(
        f"SELECT {flags}, {', '.join(f'k_{n}' for n in names)}, {_SUMS}{label_agg} "
        f"FROM ({source.format(select=select)}) GROUP BY GROUPING SETS ({sets})"
    ):
        n = len(names)
        index = list(row[:n]).index(0)
        name, key = names[index], str(row[n + index])
        stats.breakdowns[name].rows[key] = _tally(row[2 * n : 2 * n + 4])
        if name == "asn" and row[-1] and key != UNKNOWN:
            stats.breakdowns[name].labels[key] = row[-1]


def _attributed_dimensions(q: _Query, stats: Stats, attr_table: str | None, country_col: str) -> None:
    if attr_table is None:
        # Nothing attributed: every open endpoint is of unknown country and AS.
        total = Tally(stats.open, stats.exposed, stats.cleartext_login, stats.no_tls)
        if stats.open:
            stats.breakdowns["country"].rows[UNKNOWN] = total
            stats.breakdowns["asn"].rows[UNKNOWN] = Tally(**asdict(total))
        return
    keys = {
        "country": f"coalesce(a.{country_col}, '{UNKNOWN}')",
        "asn": f"coalesce(CAST(a.asn AS VARCHAR), '{UNKNOWN}')",
    }
    source = (
        "SELECT {select}, r.finding_codes, r.cleartext_login "
        f"FROM {q.open.replace(' WHERE ', f' LEFT JOIN {attr_table} a ON a.address = r.address WHERE ', 1)}"
    )
    _grouped(q, stats, keys, source, label="a.as_name")


def _worst(q: _Query, stats: Stats, limit: int, attr_table: str | None, country_col: str) -> None:
    """The worst endpoints without sorting millions of rows: count the groups of the ranking key
    (:func:`cleartext.report.stats.worst_order`: cleartext-login, no-tls, severity, findings) first, then
    order only the rows of the groups that can reach the top."""
    if limit <= 0:
        return
    groups = q.rows(
        f"SELECT cleartext_login, {_NO_TLS_SQL} AS no_tls, worst_severity, len(finding_codes) AS n, count(*) "
        f"FROM {q.open} AND len(finding_codes) > 0 GROUP BY ALL"
    )
    groups.sort(key=lambda g: (-int(g[0]), -int(g[1]), -_RANK.get(g[2], -1), -g[3]))
    wanted: list[tuple[bool, bool, str, int]] = []
    taken = 0
    for login, no_tls, severity, n, count in groups:
        wanted.append((bool(login), bool(no_tls), severity, n))
        taken += count
        if taken >= limit:
            break
    if not wanted:
        return
    match = " OR ".join(
        f"(cleartext_login = {str(login).upper()} AND {_NO_TLS_SQL} = {str(no_tls).upper()} "
        f"AND worst_severity = '{sev}' AND len(finding_codes) = {int(n)})"
        for login, no_tls, sev, n in wanted
    )
    top = q.rows(
        f"SELECT address, port FROM {q.open} AND ({match}) "
        f"ORDER BY cleartext_login DESC, {_NO_TLS_SQL} DESC, {_RANK_SQL} DESC, len(finding_codes) DESC, "
        f"address, port LIMIT {int(limit)}"
    )
    keys = [(a, p) for a, p in top]
    addresses = sorted({a for a, _ in keys})
    # IN with one parameter per address: DuckDB pushes it into the scan (a list_contains would not).
    marks = ", ".join(f"$a{i}" for i in range(len(addresses)))
    named = {f"a{i}": a for i, a in enumerate(addresses)}
    texts = {
        (a, p): text
        for a, p, text in q.rows(
            f"SELECT address, port, CAST(record AS VARCHAR) FROM {q.table} WHERE scan_id = $scan "
            f"AND address IN ({marks})",
            **named,
        )
    }
    attrs: dict[str, tuple[Any, Any, Any]] = {}
    if attr_table is not None:
        for address, asn, as_name, country in q.rows(
            f"SELECT address, asn, as_name, {country_col} FROM {attr_table} WHERE address IN ({marks})",
            **named,
        ):
            attrs[address] = (asn, as_name, country)
    for key in keys:
        record = record_from_dict(json.loads(texts[key]))
        asn, as_name, country = attrs.get(key[0], (None, None, None))
        stats.worst.append(worst_endpoint(record, Attribution(asn=asn, as_name=as_name), country))


_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


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
