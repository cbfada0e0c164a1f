"""The same :class:`~cleartext.report.stats.Stats` as the streaming path, computed with SQL by the store.

Why SQL: iterating ten million Python records takes minutes (about 50,000 a second); grouping ten
million rows of the store's typed columns takes DuckDB about a second. This is the one statistics path
for everything that reads a store — ``cleartext report --scan`` and the web dashboard — on DuckDB and on
PostgreSQL, through the store's public SQL seam only (:meth:`Store.query`, :meth:`Store.stream`,
:meth:`Store.execute`). The streaming :class:`~cleartext.report.stats.StatsBuilder` stays for JSON Lines
files; tests/unit/test_report_stats.py checks that both paths agree, on both backends and for an owner's
scope in the web.

Which rows count is the caller's choice, given as :class:`Rows`: a ``FROM records r ... WHERE ...``
clause with its ``?`` parameters. The report passes one scan (:func:`scan_rows`); the web passes the
owner-scoped clause that cleartext.web.data builds in one place, so the statistics never see a row the
scope excludes. When the clause joins attribution as ``a`` (columns ``asn, as_name, country,
registry_country``) the country and AS breakdowns come from it — the web's attribution cache, or a lookup
loaded for the duration of a report by :func:`attributed_scan`; without it every endpoint is of unknown
country and AS, as in the streaming path without data files.

The SQL is written once for both databases, with ``?`` parameters and every grouping column named
(PostgreSQL has no ``GROUP BY ALL``). What differs is in :data:`DIALECTS`: a list test that DuckDB runs
ten times faster in its own spelling, grouping by a list's hash in DuckDB, and PostgreSQL's text order,
which follows the locale unless told otherwise. The record JSON is never read in SQL (the databases
spell JSON access differently): the few whole records the statistics need (the worst endpoints, the
earliest) are fetched as text and parsed here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cleartext.enrich.model import Attribution
from cleartext.record import record_from_dict, severity_rank_sql
from cleartext.report.stats import (
    COUNTRY_SOURCES,
    DIMENSIONS,
    NONE,
    SILENT,
    UNKNOWN,
    WORST_LIMIT,
    Breakdown,
    CountrySource,
    DomainStats,
    Stats,
    Tally,
    worst_endpoint,
    worst_order,
)
from cleartext.store.schema import DomainRow

if TYPE_CHECKING:
    from cleartext.store import Store

__all__ = [
    "DIALECTS",
    "Dialect",
    "Rows",
    "attributed_scan",
    "domain_stats_from_store",
    "scan_rows",
    "stats_from_store",
]


@dataclass(frozen=True, slots=True)
class Rows:
    """The stored rows the statistics count: ``FROM records r ... WHERE ...`` and its ``?`` parameters.

    ``attributed``: the clause joins the attribution of ``r.address`` as ``a``, with the columns ``asn,
    as_name, country, registry_country`` (NULL where unknown).
    """

    clause: str
    params: tuple[Any, ...] = ()
    attributed: bool = False


def scan_rows(scan_id: str) -> Rows:
    """Every row of one scan, without attribution."""
    return Rows("FROM records r WHERE r.scan_id = ?", (scan_id,))


@dataclass(frozen=True, slots=True)
class Dialect:
    """The SQL that differs between the store's two databases; each field is a format string."""

    contains: str  # {array} holds the text literal {item}
    binary: str  # {text} compared byte by byte (Python's str order on UTF-8), not by locale
    group_key: str  # what to GROUP BY to group rows by the value of {array}
    group_value: str  # {array}'s value in a row of such a group


DIALECTS: dict[str, Dialect] = {
    # Measured over the ten million rows of bench/report_stats.py: DuckDB accepts `'x' = ANY(list)` but
    # plans it as a subquery joined per row, 2.3-2.6 s of CPU where list_contains() takes 0.2-0.3 s; and
    # grouping by the two list columns took 2.0-2.4 s, by their hashes 1.2 s. (Two different lists
    # would have to share a 64-bit hash, within one group of the other columns, to be counted together.)
    "duckdb": Dialect(
        contains="list_contains({array}, {item})",
        binary="{text}",
        group_key="hash({array})",
        group_value="any_value({array})",
    ),
    "postgresql": Dialect(
        contains="{item} = ANY({array})",
        binary='{text} COLLATE "C"',
        group_key="{array}",
        group_value="{array}",
    ),
}

_SILENT_SQL = ", ".join(f"'{s}'" for s in sorted(SILENT))
_RANK_SQL = severity_rank_sql("s.worst_severity")


def stats_from_store(
    store: Store,
    rows: Rows,
    *,
    country_source: CountrySource = "geo",
    scan_id: str | None = None,
    worst_limit: int = WORST_LIMIT,
) -> Stats:
    """Statistics of the selected rows of a store (``scan_id`` only names the scan in the result)."""
    if country_source not in COUNTRY_SOURCES:
        raise ValueError(f"country_source must be one of {', '.join(COUNTRY_SOURCES)}")
    return _Computation(store, rows, country_source, scan_id, worst_limit).run()


def domain_stats_from_store(
    store: Store, scan_id: str, *, worst_limit: int = WORST_LIMIT
) -> DomainStats | None:
    """The domain statistics of one stored scan, None when it has no domains. A scan holds a handful of
    domains, so their typed columns (never the record JSON) are fetched and counted by the same
    :meth:`DomainStats.add` that counts a file's domain records."""
    rows = store.query(
        "SELECT domain, worst_severity, finding_codes, finding_severities, mx_hosts, mta_sts_mode, tls_rpt, "
        "dane FROM domains WHERE scan_id = ?",
        (scan_id,),
    )
    if not rows:
        return None
    result = DomainStats()
    for domain, worst, codes, severities, mx, mode, rpt, dane in rows:
        row = DomainRow(
            domain=domain,
            checked_at="",
            worst_severity=worst,
            finding_codes=list(codes),
            finding_severities=list(severities),
            mx_hosts=list(mx),
            mta_sts_mode=mode,
            tls_rpt=bool(rpt),
            dane=dane,
            record="",
        )
        result.add(row, worst_limit)
    return result.trim(worst_limit)


# One row of the combinations query: status, protocol, port, software, worst severity, finding codes,
# cleartext_login, accepted TLS versions, then the group's count and earliest start (as text).
_Combination = tuple[Any, ...]


class _Computation:
    """The queries of one statistics run, over one selection of rows."""

    def __init__(
        self, store: Store, rows: Rows, country_source: str, scan_id: str | None, worst_limit: int
    ) -> None:
        self.store, self.rows, self.worst_limit = store, rows, worst_limit
        self.d = DIALECTS[store.dialect]
        self.stats = Stats(country_source=country_source, scan_id=scan_id)
        self.stats.breakdowns = {name: Breakdown(name) for name in DIMENSIONS}
        country = "country" if country_source == "geo" else "registry_country"
        self.attribution = (
            f"a.asn AS asn, a.as_name AS as_name, a.{country} AS country"
            if rows.attributed
            else "CAST(NULL AS BIGINT) AS asn, CAST(NULL AS TEXT) AS as_name, CAST(NULL AS TEXT) AS country"
        )
        self.no_tls = self.d.contains.format(array="s.finding_codes", item="'no-tls'")
        self.n_codes = "cardinality(s.finding_codes)"

    def source(self, columns: str) -> str:
        """The caller's rows as the subquery ``s`` (both databases inline it: no copy is made)."""
        return f"(SELECT {columns} {self.rows.clause}) s"

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.store.query(sql, [*self.rows.params, *params])

    def run(self) -> Stats:
        combos = self.combinations()
        self.sum_combinations(combos)
        self.scanned_at(combos)
        self.attributed_dimensions()
        self.worst(combos)
        return self.stats

    def combinations(self) -> list[_Combination]:
        """The rows grouped by every column the statistics read but attribution: a few thousand groups."""
        value, key = self.d.group_value, self.d.group_key
        rows = self.query(
            "SELECT s.status, s.protocol, s.port, s.software, s.worst_severity, "
            f"{value.format(array='s.finding_codes')}, s.cleartext_login, "
            f"{value.format(array='s.tls_versions')}, count(*), CAST(min(s.started_at) AS TEXT) FROM "
            + self.source(
                "r.status, r.protocol, r.port, r.software, r.worst_severity, r.finding_codes, "
                "r.cleartext_login, r.tls_versions, r.started_at"
            )
            + " GROUP BY s.status, s.protocol, s.port, s.software, s.worst_severity, "
            f"{key.format(array='s.finding_codes')}, s.cleartext_login, {key.format(array='s.tls_versions')}"
        )
        return [(*row[:-2], int(row[-2]), row[-1]) for row in rows]

    def sum_combinations(self, combos: Sequence[_Combination]) -> None:
        """Everything but attribution, the worst list and the time, from one scan of the typed columns.

        The rows are grouped by every column these statistics read, and the few thousand distinct
        combinations are summed here: one pass over the columns is the cost, where a query per breakdown
        or a count per code would read the lists again each time.
        """
        stats, b = self.stats, self.stats.breakdowns
        for status, protocol, port, software, worst, codes, login, accepted, count, _ in combos:
            stats.records += count
            stats.by_status[status] = stats.by_status.get(status, 0) + count
            if status in SILENT:
                continue
            codes = list(codes or [])
            distinct = set(codes)
            exposed, login, no_tls = bool(codes), bool(login), "no-tls" in distinct
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
                tally = b[dimension].rows.get(key)
                if tally is None:
                    tally = b[dimension].rows[key] = Tally()
                tally.endpoints += count
                tally.exposed += count * exposed
                tally.cleartext_login += count * login
                tally.no_tls += count * no_tls

    def scanned_at(self, combos: Sequence[_Combination]) -> None:
        """The earliest start, as the record itself spells it (so that both paths give the same text)."""
        times = [(_moment(text), text) for *_, text in combos if text is not None]
        if not times:
            return
        earliest = min(times)[1]
        row = self.query(
            "SELECT s.record FROM "
            + self.source("CAST(r.record AS TEXT) AS record, r.started_at")
            + " WHERE s.started_at = CAST(? AS TIMESTAMPTZ) LIMIT 1",
            [earliest],
        )
        if row:
            self.stats.scanned_at = json.loads(row[0][0]).get("started_at")

    def attributed_dimensions(self) -> None:
        b = self.stats.breakdowns
        if not self.rows.attributed:
            # Nothing attributed: every open endpoint is of unknown country and AS.
            s = self.stats
            if s.open:
                for name in ("country", "asn"):
                    b[name].rows[UNKNOWN] = Tally(s.open, s.exposed, s.cleartext_login, s.no_tls)
            return
        # Empty text is unknown too, as in the streaming path (`attribution.country or UNKNOWN`); an AS
        # is labelled with the smallest name its addresses were given, whatever the order of the rows.
        grouped = self.query(
            "SELECT GROUPING(k_country), k_country, k_asn, count(*), "
            f"count(*) FILTER (WHERE {self.n_codes} > 0), count(*) FILTER (WHERE s.cleartext_login), "
            f"count(*) FILTER (WHERE {self.no_tls}), min(s.as_name) FROM (SELECT "
            f"coalesce(NULLIF(s.country, ''), '{UNKNOWN}') AS k_country, "
            f"coalesce(CAST(s.asn AS TEXT), '{UNKNOWN}') AS k_asn, NULLIF(s.as_name, '') AS as_name, "
            "s.finding_codes, s.cleartext_login FROM "
            + self.source("r.status, r.finding_codes, r.cleartext_login, " + self.attribution)
            + f" WHERE s.status NOT IN ({_SILENT_SQL})) s GROUP BY GROUPING SETS ((k_country), (k_asn))"
        )
        for not_country, country, asn, *counts, label in grouped:
            tally = Tally(*(int(n) for n in counts))
            if not not_country:  # GROUPING() is 0 for the column a row is grouped by
                b["country"].rows[str(country)] = tally
                continue
            b["asn"].rows[str(asn)] = tally
            if label and asn != UNKNOWN:
                b["asn"].labels[str(asn)] = str(label)

    def worst(self, combos: Sequence[_Combination]) -> None:
        """The worst endpoints without ordering millions of rows: the combinations already count the
        groups of the ranking key (:func:`~cleartext.report.stats.worst_order`: cleartext-login, no-tls,
        severity, number of findings), so only the rows of the groups that reach the top are ordered."""
        if self.worst_limit <= 0:
            return
        groups: dict[tuple[bool, bool, str, int], int] = {}
        for status, _, _, _, worst, codes, login, _, count, _ in combos:
            if status in SILENT or not codes or worst is None:
                continue
            key = (bool(login), "no-tls" in codes, str(worst), len(codes))
            groups[key] = groups.get(key, 0) + count
        wanted: list[tuple[bool, bool, str, int]] = []
        taken = 0
        for key in sorted(groups, key=lambda k: worst_order(_core(k), k[2], k[3], "", 0)):
            wanted.append(key)
            taken += groups[key]
            if taken >= self.worst_limit:
                break
        if not wanted:
            return
        match = " OR ".join(
            f"(s.cleartext_login = ? AND ({self.no_tls}) = ? AND s.worst_severity = ? AND {self.n_codes} = ?)"
            for _ in wanted
        )
        address = self.d.binary.format(text="s.address")
        top = self.query(
            "SELECT s.address, s.port FROM "
            + self.source("r.address, r.port, r.status, r.worst_severity, r.finding_codes, r.cleartext_login")
            + f" WHERE s.status NOT IN ({_SILENT_SQL}) AND ({match}) ORDER BY s.cleartext_login DESC, "
            f"({self.no_tls}) DESC, {_RANK_SQL} DESC, {self.n_codes} DESC, {address}, s.port LIMIT ?",
            [*(v for key in wanted for v in key), self.worst_limit],
        )
        keys = {(str(a), int(p)) for a, p in top}
        addresses = sorted({a for a, _ in keys})
        if not addresses:
            return
        # An IN list of addresses, which both databases push down into the scan of records; the other
        # ports of those addresses are dropped here.
        fetched = self.query(
            "SELECT s.address, s.port, s.record, s.asn, s.as_name, s.country FROM "
            + self.source("r.address, r.port, CAST(r.record AS TEXT) AS record, " + self.attribution)
            + f" WHERE s.address IN ({', '.join('?' * len(addresses))})",
            addresses,
        )
        for address, port, text, asn, as_name, country in fetched:
            if (address, int(port)) not in keys:
                continue
            record = record_from_dict(json.loads(text))
            attribution = Attribution(asn=int(asn) if asn is not None else None, as_name=as_name)
            self.stats.worst.append(worst_endpoint(record, attribution, country))
        self.stats.worst.sort(key=lambda w: w.sort_key())


def _core(key: tuple[bool, bool, str, int]) -> list[str]:
    """The core codes of a ranking group, for worst_order."""
    return [code for code, present in zip(("cleartext-login", "no-tls"), key[:2], strict=True) if present]


def _moment(text: str) -> dt.datetime:
    """A timestamp as both databases write it as text (``2026-11-28 08:15:00.5+00``)."""
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# The attribution a report loads for one scan: a temporary table, private to the store's connection.
_LOOKUP_TABLE = "report_attribution"
_LOOKUP_CHUNK = 50_000


@contextlib.contextmanager
def attributed_scan(store: Store, scan_id: str, lookup: Callable[[str], Attribution]) -> Iterator[Rows]:
    """One scan's rows joined with what ``lookup`` says of each of its addresses.

    ``lookup`` is called once per distinct address of the scan (the enricher, about a microsecond each),
    and the answers are loaded into a temporary table that lives as long as the block.
    """
    store.execute(
        f"CREATE TEMPORARY TABLE {_LOOKUP_TABLE} (address TEXT NOT NULL, asn BIGINT, as_name TEXT, "
        "country TEXT, registry_country TEXT)"
    )
    try:
        # Only open endpoints are counted by country and AS: the addresses of silent ones need no lookup.
        batches = store.stream(
            "SELECT DISTINCT address AS address FROM records "
            f"WHERE scan_id = ? AND status NOT IN ({_SILENT_SQL})",
            (scan_id,),
        )
        pending: list[str] = []
        for batch in batches:
            pending += batch.column(0).to_pylist()
            if len(pending) >= _LOOKUP_CHUNK:
                _load(store, pending, lookup)
                pending = []
        _load(store, pending, lookup)
        yield Rows(
            f"FROM records r LEFT JOIN {_LOOKUP_TABLE} a ON a.address = r.address WHERE r.scan_id = ?",
            (scan_id,),
            attributed=True,
        )
    finally:
        store.execute(f"DROP TABLE IF EXISTS {_LOOKUP_TABLE}")


def _load(store: Store, addresses: Sequence[str], lookup: Callable[[str], Attribution]) -> None:
    """One statement per chunk: the columns as arrays, zipped back into rows by unnest (both databases)."""
    if not addresses:
        return
    found = [lookup(a) for a in addresses]
    store.execute(
        f"INSERT INTO {_LOOKUP_TABLE} (address, asn, as_name, country, registry_country) SELECT "
        "unnest(CAST(? AS TEXT[])), unnest(CAST(? AS BIGINT[])), unnest(CAST(? AS TEXT[])), "
        "unnest(CAST(? AS TEXT[])), unnest(CAST(? AS TEXT[]))",
        (
            list(addresses),
            [f.asn for f in found],
            [f.as_name for f in found],
            [f.country for f in found],
            [f.registry_country for f in found],
        ),
    )
