"""Every read the API and the dashboard make, always inside a token's scope.

Why one module: isolation between owners is the property that matters most here, and it is easiest to
keep when exactly one function builds the WHERE clause every query goes through (:meth:`WebData._from`).
No query of records is written anywhere else, and each one starts from that clause: a list, a count, a
detail page, a download, and the statistics, which cleartext.report.sqlstats computes over the rows that
clause selects — so no endpoint or filter can forget the owner's scope.

Domain records (the scan's ``domains`` table, from imported ``check DOMAIN --json`` lines) are admin-only:
a domain has no address to attribute, and who owns a domain's MX addresses need not own the domain (a
hosting provider's AS holds the MX of thousands of customers' domains), so no owner rule would be true.
:meth:`WebData.sees_domains` states that rule once, for the list and the statistics alike.

Ownership needs attribution (AS, country) per address, which comes from the operator's data files, not
from the records. It is computed with the :class:`~cleartext.enrich.Enricher` once per address and kept
in the table ``web_addresses`` of the store, keyed by a fingerprint of the data files, so that SQL can
join on it: filtering, counting and paginating ten million records stays a database job. Each row also
holds the address as a fixed-width hex key, which makes "address inside a CIDR" a range comparison that
DuckDB and PostgreSQL evaluate alike (neither needs an inet extension).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cleartext.enrich.model import Attribution
from cleartext.record import Record, record_from_dict, severity_rank_sql
from cleartext.report.sqlstats import DIALECTS, Rows, domain_stats_from_store, stats_from_store
from cleartext.report.stats import Stats, Trends, trends
from cleartext.store import StoreError
from cleartext.web.tokens import IPNetwork, Owner, TokenInfo

if TYPE_CHECKING:
    from cleartext.enrich import Enricher
    from cleartext.store import ScanInfo, Store

CountrySource = Literal["geo", "registry"]
MAX_LIMIT = 1000
TREND_SCANS = 12
_INSERT_CHUNK = 200

ADDRESSES_DDL = """
CREATE TABLE IF NOT EXISTS web_addresses (
    attributed_with TEXT NOT NULL,
    address TEXT NOT NULL,
    version INTEGER NOT NULL,
    addr_key TEXT NOT NULL,
    asn BIGINT,
    as_name TEXT,
    country TEXT,
    registry_country TEXT,
    network TEXT,
    PRIMARY KEY (attributed_with, address)
)
"""

_RANK_SQL = severity_rank_sql("r.worst_severity")
_EMPTY = Attribution()


def address_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, str]:
    """(version, fixed-width lower-case hex): text order equals numeric order within a version."""
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    width = 8 if address.version == 4 else 32
    return address.version, format(int(address), f"0{width}x")


def network_range(network: IPNetwork) -> tuple[int, str, str]:
    """(version, first key, last key) of a network, for ``addr_key BETWEEN``."""
    version, first = address_key(network.network_address)
    _, last = address_key(network.broadcast_address)
    return version, first, last


def data_fingerprint(paths: Sequence[str | Path]) -> str:
    """Names the attribution data: file names, sizes and modification times (not contents: an MMDB
    file is hundreds of megabytes, and a replaced file gets a new time). A new fingerprint makes every
    address be attributed again, lazily."""
    parts = []
    for path in paths:
        p = Path(path)
        stat = p.stat()
        parts.append(f"{p.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16] if parts else "none"


@dataclass(frozen=True, slots=True)
class Scope:
    """What a token may see: everything (admin) or an owner's networks."""

    admin: bool
    owner: Owner = field(default_factory=Owner)
    token_id: str = ""

    @classmethod
    def of(cls, token: TokenInfo) -> Scope:
        return cls(admin=token.admin, owner=token.owner, token_id=token.token_id)

    @property
    def key(self) -> str:
        """Scopes with equal keys see equal rows (a cache key)."""
        return "admin" if self.admin else "owner:" + ",".join(self.owner.specs())

    def owns(self, address: str, attribution: Attribution, country_source: CountrySource) -> bool:
        """The rule :meth:`WebData._scope_sql` states in SQL, for one address in Python (self-check)."""
        if self.admin:
            return True
        if self.owner.covers_address(address):
            return True
        if attribution.asn is not None and attribution.asn in self.owner.asns:
            return True
        country = attribution.country if country_source == "geo" else attribution.registry_country
        return country is not None and country.upper() in self.owner.countries


@dataclass(slots=True)
class Filters:
    """The filters of lists, counts and downloads. None means "any"."""

    protocol: str | None = None
    port: int | None = None
    code: str | None = None  # endpoints: has a finding of this code; findings: this code
    severity: str | None = None  # endpoints: worst severity ("none": no finding); findings: this severity
    status: str | None = None
    country: str | None = None  # by the server's country source
    asn: int | None = None
    address: IPNetwork | None = None  # one address is a /32 or /128
    software: str | None = None

    def to_query(self) -> dict[str, str]:
        """The filters as query-string parameters (links that keep the filters)."""
        out: dict[str, str] = {}
        for name in ("protocol", "port", "code", "severity", "status", "country", "software"):
            value = getattr(self, name)
            if value is not None:
                out[name] = str(value)
        if self.asn is not None:
            out["asn"] = f"AS{self.asn}"
        if self.address is not None:
            net = self.address
            out["address"] = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
        return out


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """One endpoint of a scan as a list shows it: the typed columns plus its attribution."""

    scan_id: str
    address: str
    port: int
    protocol: str
    tls_mode: str
    hostname: str | None
    status: str
    software: str | None
    tls_version: str | None
    worst_severity: str | None
    finding_codes: list[str]
    finding_severities: list[str]
    cleartext_login: bool
    started_at: str | None
    asn: int | None
    as_name: str | None
    country: str | None
    registry_country: str | None
    network: str | None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class FindingRow:
    scan_id: str
    address: str
    port: int
    protocol: str
    hostname: str | None
    status: str
    code: str
    severity: str

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class ScanView:
    """A scan as a scope sees it: an owner gets its own counts and never the scan's parameters
    (targets and settings could name other owners' networks)."""

    scan_id: str
    started_at: str
    finished_at: str | None
    endpoints: int
    counts: dict[str, int]
    params: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__slots__}
        if data["params"] is None:
            del data["params"]
        return data


@dataclass(frozen=True, slots=True)
class DomainView:
    """One domain of a scan as the list shows it: the store's typed columns, and the findings of its
    record with their evidence (strings a zone or web server sent, sanitised by lookup; an imported
    file may hold anything, so every renderer escapes them)."""

    scan_id: str
    domain: str
    checked_at: str | None
    worst_severity: str | None
    finding_codes: list[str]
    mx_hosts: list[str]
    mta_sts_mode: str | None
    tls_rpt: bool
    dane: str
    findings: list[dict[str, Any]]  # code, severity, summary, evidence

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(slots=True)
class Page:
    total: int
    limit: int
    offset: int
    items: list[Any]


def _iso(moment: Any) -> str | None:
    if moment is None:
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _iso_text(text: str | None) -> str | None:
    """A timestamp as both databases cast it to text (``2026-12-06 23:56:41.361729+00``) in the API's one
    format, ISO 8601 in UTC with ``Z`` (``2026-12-06T23:56:41.361729Z``), as scans and records write it."""
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return _iso(moment.astimezone(dt.UTC))


class WebData:
    """The scoped read model over one store, with the attribution cache and a statistics cache."""

    _COLUMNS = (
        "r.scan_id, r.address, r.port, r.protocol, r.tls_mode, r.hostname, r.status, r.software, "
        "r.tls_version, r.worst_severity, r.finding_codes, r.finding_severities, r.cleartext_login, "
        "CAST(r.started_at AS TEXT), a.asn, a.as_name, a.country, a.registry_country, a.network"
    )

    def __init__(
        self,
        store: Store,
        enricher: Enricher | None = None,
        *,
        fingerprint: str = "none",
        country_source: CountrySource = "geo",
    ) -> None:
        if country_source not in ("geo", "registry"):
            raise ValueError("country_source must be geo or registry")
        self.store = store
        self.enricher = enricher
        self.fingerprint = fingerprint
        self.country_source: CountrySource = country_source
        self._country_col = "country" if country_source == "geo" else "registry_country"
        self._attributed: dict[str, int] = {}  # scan id -> endpoints when last attributed
        self._attribute_lock = threading.Lock()
        self._stats: dict[tuple[str, str, int], Stats] = {}
        self._stats_lock = threading.Lock()
        store.ensure_tables("web_addresses", 1, ADDRESSES_DDL)

    # -- attribution ---------------------------------------------------------------------------------

    def lookup(self, address: str) -> Attribution:
        """The attribution of an address from the data files (cached by the enricher); empty without."""
        if self.enricher is None:
            return _EMPTY
        try:
            return self.enricher.lookup(address)
        except ValueError:
            return _EMPTY

    def _ensure_attributed(self, infos: Sequence[ScanInfo]) -> None:
        """Attribute every address of these scans not yet in ``web_addresses`` under our fingerprint.

        Runs once per scan and again only when its endpoint count changed (a scan still being written).
        """
        with self._attribute_lock:
            for info in infos:
                if self._attributed.get(info.scan_id) == info.endpoints:
                    continue
                missing = [
                    row[0]
                    for row in self.store.query(
                        "SELECT DISTINCT r.address FROM records r WHERE r.scan_id = ? AND NOT EXISTS "
                        "(SELECT 1 FROM web_addresses a "
                        "WHERE a.attributed_with = ? AND a.address = r.address)",
                        (info.scan_id, self.fingerprint),
                    )
                ]
                self._insert_attributions(missing)
                self._attributed[info.scan_id] = info.endpoints

    def _ready(self, scan_id: str | None) -> None:
        """Make sure the addresses of one scan (None: of every scan) are attributed before a query."""
        self._ensure_attributed(self.store.scans() if scan_id is None else [self.store.scan(scan_id)])

    def _insert_attributions(self, addresses: Sequence[str]) -> None:
        rows: list[tuple[Any, ...]] = []
        for text in addresses:
            try:
                ip = ipaddress.ip_address(text)
            except ValueError:  # the store checks addresses; a foreign row is simply never owned
                continue
            version, key = address_key(ip)
            found = self.lookup(text)
            rows.append(
                (
                    self.fingerprint,
                    text,
                    version,
                    key,
                    found.asn,
                    found.as_name,
                    found.country.upper() if found.country else None,
                    found.registry_country.upper() if found.registry_country else None,
                    found.network,
                )
            )
        for start in range(0, len(rows), _INSERT_CHUNK):
            chunk = rows[start : start + _INSERT_CHUNK]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
            with self.store.transaction():
                self.store.execute(
                    "INSERT INTO web_addresses (attributed_with, address, version, addr_key, asn, as_name, "
                    f"country, registry_country, network) VALUES {values} "
                    "ON CONFLICT (attributed_with, address) DO NOTHING",
                    [v for row in chunk for v in row],
                )

    # -- the one WHERE clause ------------------------------------------------------------------------

    def _scope_sql(self, scope: Scope) -> tuple[str, list[Any]]:
        if scope.admin:
            return "TRUE", []
        owner = scope.owner
        parts: list[str] = []
        params: list[Any] = []
        for net in owner.networks:
            version, first, last = network_range(net)
            parts.append("(a.version = ? AND a.addr_key >= ? AND a.addr_key <= ?)")
            params += [version, first, last]
        if owner.asns:
            parts.append(f"a.asn IN ({', '.join('?' * len(owner.asns))})")
            params += list(owner.asns)
        if owner.countries:
            parts.append(f"a.{self._country_col} IN ({', '.join('?' * len(owner.countries))})")
            params += list(owner.countries)
        if not parts:  # an owner of nothing sees nothing
            return "FALSE", []
        return "(" + " OR ".join(parts) + ")", params

    def _filter_sql(self, filters: Filters, *, findings: bool = False) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        if filters.protocol is not None:
            where.append("r.protocol = ?")
            params.append(filters.protocol)
        if filters.port is not None:
            where.append("r.port = ?")
            params.append(filters.port)
        if filters.status is not None:
            where.append("r.status = ?")
            params.append(filters.status)
        if filters.software is not None:
            where.append("r.software = ?")
            params.append(filters.software)
        if filters.country is not None:
            where.append(f"a.{self._country_col} = ?")
            params.append(filters.country.upper())
        if filters.asn is not None:
            where.append("a.asn = ?")
            params.append(filters.asn)
        if filters.address is not None:
            version, first, last = network_range(filters.address)
            where.append("a.version = ? AND a.addr_key >= ? AND a.addr_key <= ?")
            params += [version, first, last]
        if not findings:
            if filters.code is not None:
                where.append("? = ANY(r.finding_codes)")
                params.append(filters.code)
            if filters.severity == "none":
                where.append("r.worst_severity IS NULL")
            elif filters.severity is not None:
                where.append("r.worst_severity = ?")
                params.append(filters.severity)
        return where, params

    def _from(
        self,
        scope: Scope,
        scan_id: str | None,
        filters: Filters | None = None,
        *,
        findings: bool = False,
        address: str | None = None,
        port: int | None = None,
    ) -> tuple[str, list[Any]]:
        """``FROM records r LEFT JOIN web_addresses a ... WHERE <scan> AND <scope> AND <filters>``.

        Every records query in this module is built on this clause; the scope part is never optional.
        """
        scope_sql, scope_params = self._scope_sql(scope)
        where = [scope_sql]
        params: list[Any] = [self.fingerprint, *scope_params]
        if scan_id is not None:
            where.insert(0, "r.scan_id = ?")
            params.insert(1, scan_id)
        if filters is not None:
            more, more_params = self._filter_sql(filters, findings=findings)
            where += more
            params += more_params
        if address is not None:
            where.append("r.address = ?")
            params.append(address)
        if port is not None:
            where.append("r.port = ?")
            params.append(port)
        sql = (
            "FROM records r LEFT JOIN web_addresses a ON a.attributed_with = ? AND a.address = r.address "
            "WHERE " + " AND ".join(where)
        )
        return sql, params

    # -- scans ---------------------------------------------------------------------------------------

    def scan_infos(self) -> list[ScanInfo]:
        """Every scan (oldest first), with its addresses attributed."""
        infos = self.store.scans()
        self._ensure_attributed(infos)
        return infos

    def scans(self, scope: Scope) -> list[ScanView]:
        """Scans, oldest first. Owners see every scan id and time, but only their own counts."""
        infos = self.scan_infos()
        if scope.admin:
            return [
                ScanView(
                    i.scan_id,
                    _iso(i.started_at) or "",
                    _iso(i.finished_at),
                    i.endpoints,
                    dict(i.counts) or self._counts(scope, i.scan_id),
                    i.params,
                )
                for i in infos
            ]
        clause, params = self._from(scope, None)
        counts: dict[str, dict[str, int]] = {}
        for scan_id, status, n in self.store.query(
            f"SELECT r.scan_id, r.status, count(*) {clause} GROUP BY r.scan_id, r.status", params
        ):
            counts.setdefault(scan_id, {})[status] = int(n)
        views = []
        for i in infos:
            own = dict(sorted(counts.get(i.scan_id, {}).items(), key=lambda kv: (-kv[1], kv[0])))
            views.append(
                ScanView(
                    i.scan_id, _iso(i.started_at) or "", _iso(i.finished_at), sum(own.values()), own, None
                )
            )
        return views

    def _counts(self, scope: Scope, scan_id: str) -> dict[str, int]:
        clause, params = self._from(scope, scan_id)
        rows = self.store.query(f"SELECT r.status, count(*) {clause} GROUP BY r.status", params)
        return dict(sorted(((s, int(n)) for s, n in rows), key=lambda kv: (-kv[1], kv[0])))

    def scan(self, scope: Scope, scan_id: str) -> ScanView | None:
        for view in self.scans(scope):
            if view.scan_id == scan_id:
                return view
        return None

    def latest_scan(self, scope: Scope) -> str | None:
        """The newest scan with at least one endpoint this scope sees (else the newest scan at all)."""
        views = self.scans(scope)
        for view in reversed(views):
            if view.endpoints:
                return view.scan_id
        return views[-1].scan_id if views else None

    # -- endpoints -----------------------------------------------------------------------------------

    def endpoints(
        self,
        scope: Scope,
        scan_id: str,
        filters: Filters,
        *,
        limit: int = 100,
        offset: int = 0,
        sort: Literal["address", "severity"] = "address",
    ) -> Page:
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, offset)
        self._ready(scan_id)
        clause, params = self._from(scope, scan_id, filters)
        total = int(self.store.query(f"SELECT count(*) {clause}", params)[0][0])
        order = "a.version, a.addr_key, r.address, r.port"
        if sort == "severity":
            order = f"{_RANK_SQL} DESC, len_codes DESC, " + order
        rows = self.store.query(
            f"SELECT {self._COLUMNS}, cardinality(r.finding_codes) AS len_codes {clause} "
            f"ORDER BY {order} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return Page(total, limit, offset, [self._endpoint_row(row[:-1]) for row in rows])

    @staticmethod
    def _endpoint_row(row: Sequence[Any]) -> EndpointRow:
        values = list(row)
        values[2] = int(values[2])
        values[10] = list(values[10] or [])
        values[11] = list(values[11] or [])
        values[12] = bool(values[12])
        values[13] = _iso_text(values[13])
        values[14] = int(values[14]) if values[14] is not None else None
        return EndpointRow(*values)

    def endpoint(
        self, scope: Scope, scan_id: str, address: str, port: int
    ) -> tuple[Record, EndpointRow] | None:
        """One endpoint of one scan, or None when it does not exist *or this scope may not see it*."""
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return None
        try:
            self._ready(scan_id)
        except StoreError:
            return None
        clause, params = self._from(scope, scan_id, address=address, port=port)
        rows = self.store.query(f"SELECT {self._COLUMNS}, CAST(r.record AS TEXT) {clause}", params)
        if not rows:
            return None
        return record_from_dict(json.loads(rows[0][-1])), self._endpoint_row(rows[0][:-1])

    def history(self, scope: Scope, address: str, port: int) -> list[EndpointRow]:
        """The same endpoint in every scan this scope sees, oldest first."""
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return []
        self._ready(None)
        clause, params = self._from(scope, None, address=address, port=port)
        rows = self.store.query(f"SELECT {self._COLUMNS} {clause} ORDER BY r.scan_id", params)
        return [self._endpoint_row(row) for row in rows]

    # -- findings ------------------------------------------------------------------------------------

    def findings(
        self, scope: Scope, scan_id: str, filters: Filters, *, limit: int = 100, offset: int = 0
    ) -> Page:
        """One row per finding per endpoint, worst first."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, offset)
        self._ready(scan_id)
        clause, params = self._from(scope, scan_id, filters, findings=True)
        inner = (
            "SELECT r.scan_id, r.address, r.port, r.protocol, r.hostname, r.status, a.version AS v, "
            "a.addr_key AS k, unnest(r.finding_codes) AS code, unnest(r.finding_severities) AS severity "
            + clause
        )
        outer_where: list[str] = []
        outer_params: list[Any] = []
        if filters.code is not None:
            outer_where.append("f.code = ?")
            outer_params.append(filters.code)
        if filters.severity is not None:
            outer_where.append("f.severity = ?")
            outer_params.append(filters.severity)
        where = (" WHERE " + " AND ".join(outer_where)) if outer_where else ""
        base = f"FROM ({inner}) f{where}"
        all_params = [*params, *outer_params]
        total = int(self.store.query(f"SELECT count(*) {base}", all_params)[0][0])
        rank = (
            "CASE f.severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 "
            "WHEN 'low' THEN 1 WHEN 'info' THEN 0 ELSE -1 END"
        )
        rows = self.store.query(
            "SELECT f.scan_id, f.address, f.port, f.protocol, f.hostname, f.status, f.code, f.severity "
            f"{base} ORDER BY {rank} DESC, f.code, f.v, f.k, f.address, f.port LIMIT ? OFFSET ?",
            [*all_params, limit, offset],
        )
        items = [
            FindingRow(str(s), str(ad), int(p), str(pr), h, str(st), str(c), str(sev))
            for s, ad, p, pr, h, st, c, sev in rows
        ]
        return Page(total, limit, offset, items)

    # -- domains -------------------------------------------------------------------------------------

    @staticmethod
    def sees_domains(scope: Scope) -> bool:
        """The one rule for domain rows (module docstring): an admin sees them all, an owner none."""
        return scope.admin

    def domains(self, scope: Scope, scan_id: str, *, limit: int = 100, offset: int = 0) -> Page:
        """The scope's domains of a scan, worst first (then by name, as bytes)."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, offset)
        if not self.sees_domains(scope):
            return Page(0, limit, offset, [])
        where = "FROM domains d WHERE d.scan_id = ?"
        total = int(self.store.query(f"SELECT count(*) {where}", [scan_id])[0][0])
        rank = severity_rank_sql("d.worst_severity")
        name = DIALECTS[self.store.dialect].binary.format(text="d.domain")  # one order on both databases
        rows = self.store.query(
            "SELECT d.domain, CAST(d.checked_at AS TEXT), d.worst_severity, d.finding_codes, d.mx_hosts, "
            f"d.mta_sts_mode, d.tls_rpt, d.dane, CAST(d.record AS TEXT) {where} "
            f"ORDER BY {rank} DESC, cardinality(d.finding_codes) DESC, {name} LIMIT ? OFFSET ?",
            [scan_id, limit, offset],
        )
        items = []
        for domain, checked, worst, codes, mx, mode, rpt, dane, text in rows:
            findings = json.loads(text).get("findings", [])
            items.append(
                DomainView(
                    scan_id=scan_id,
                    domain=str(domain),
                    checked_at=_iso_text(checked),
                    worst_severity=worst,
                    finding_codes=list(codes),
                    mx_hosts=list(mx),
                    mta_sts_mode=mode,
                    tls_rpt=bool(rpt),
                    dane=str(dane),
                    findings=[
                        {k: f.get(k) for k in ("code", "severity", "summary", "evidence")}
                        for f in findings
                        if isinstance(f, dict)
                    ],
                )
            )
        return Page(total, limit, offset, items)

    # -- statistics ----------------------------------------------------------------------------------

    def stats(self, scope: Scope, scan_id: str) -> Stats:
        """The report statistics of the scope's records of a scan (the numbers `cleartext report` gives for
        those records), computed by the store in SQL over the rows of :meth:`_from`'s clause, attributed
        from ``web_addresses``; cached until the scan's endpoint count changes."""
        info = self.store.scan(scan_id)
        key = (scope.key, scan_id, info.endpoints)
        with self._stats_lock:
            cached = self._stats.get(key)
        if cached is not None:
            return cached
        self._ready(scan_id)
        clause, params = self._from(scope, scan_id)
        result = stats_from_store(
            self.store,
            Rows(clause, tuple(params), attributed=True),
            country_source=self.country_source,
            scan_id=scan_id,
        )
        # Domain counts only for a scope that sees domain rows: an owner's statistics have no domain
        # section at all, rather than a count of zero that would read as "none checked".
        if self.sees_domains(scope):
            result.domains = domain_stats_from_store(self.store, scan_id)
        with self._stats_lock:
            if len(self._stats) > 512:  # bounded: a cache, not a second store
                self._stats.clear()
            self._stats[key] = result
        return result

    def trend(self, scope: Scope, upto: str | None = None, limit: int = TREND_SCANS) -> Trends | None:
        """Statistics across the scope's last scans (up to ``upto``), or None with fewer than two."""
        views = [v for v in self.scans(scope) if v.endpoints and (upto is None or v.scan_id <= upto)]
        views = views[-limit:]
        if len(views) < 2:
            return None
        return trends([self.stats(scope, v.scan_id) for v in views])

    # -- downloads -----------------------------------------------------------------------------------

    def export(self, scope: Scope, scan_id: str, filters: Filters, fmt: str, path: Path) -> int:
        """Write the scope's (filtered) records of a scan in the store's export formats; returns rows."""
        from cleartext.store.export import write_export
        from cleartext.store.schema import COLUMNS

        self._ready(scan_id)
        columns = ", ".join(
            "CAST(r.record AS TEXT) AS record" if c == "record" else f"r.{c} AS {c}" for c in COLUMNS
        )
        clause, params = self._from(scope, scan_id, filters)
        return write_export(self.store.stream(f"SELECT {columns} {clause}", params, 5000), fmt, path)


AttributionLookup = Callable[[str], Attribution]
