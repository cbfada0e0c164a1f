"""Statistics over a scan: how many mail endpoints expose what, counted by protocol, port, country, AS, ….

Why a streaming accumulator: a national scan holds millions of records, so the report never keeps them.
:class:`StatsBuilder` takes one ``(Record, Attribution)`` pair at a time and keeps only counters and a
bounded list of the worst endpoints; :func:`compute` drives it over any iterable. The same
:class:`Stats` comes out of :func:`cleartext.report.sqlstats.stats_from_store` when the records sit in
the store, where SQL over typed columns is the only way to sum ten million rows in seconds; a test
checks that both paths agree.

Which records count where (the definitions every consumer of these numbers relies on):

- ``records`` and ``by_status`` count every record, silent ones included.
- An endpoint is *open* when something accepted the TCP connection: every status except refused,
  connect-timeout, unreachable, blocklisted and error. Every breakdown counts open endpoints only, so
  a /16 of closed ports does not drown the picture.
- An open endpoint is *exposed* when it has at least one finding. ``cleartext_login`` and ``no_tls``
  count endpoints with those two findings: the ones where a password or a message crosses in clear.
- TLS versions: an endpoint counts once under each version it accepted, from ``matrix.versions`` plus
  the version the real handshake negotiated (``TLSv1`` is spelled ``TLSv1.0``); ``none`` when no version
  was seen accepted (plaintext-only, or the dialog ended before TLS).
- Country: the geolocation ``country`` or the RIR ``registry_country`` of the attribution, chosen by
  ``country_source`` and named in the result, because the two disagree for many networks.
- Domains (:class:`DomainStats`, only when the input held domain records: ``check DOMAIN --json``
  lines, or a stored scan's domains table) are counted apart from endpoints: a domain counts once under
  its worst severity and once under each of its finding codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cleartext.enrich.model import Attribution
from cleartext.record import (
    NO_SERVICE,
    TLS_VERSION_ORDER,
    Record,
    accepted_tls_versions,
    severity_rank,
)
from cleartext.store.schema import DomainRow

__all__ = [
    "CORE_CODES",
    "COUNTRY_SOURCES",
    "DIMENSIONS",
    "DOMAIN_COUNT_TITLES",
    "TLS_VERSIONS",
    "Breakdown",
    "CountrySource",
    "DomainStats",
    "Stats",
    "StatsBuilder",
    "Tally",
    "TrendPoint",
    "Trends",
    "WorstDomain",
    "WorstEndpoint",
    "compute",
    "trends",
    "worst_endpoint",
    "worst_order",
]

CountrySource = Literal["geo", "registry"]
COUNTRY_SOURCES: Mapping[str, str] = {
    "geo": "geolocation country (MMDB)",
    "registry": "registry country (RIR delegation)",
}
SILENT: frozenset[str] = frozenset(NO_SERVICE)  # no endpoint is counted for these
TLS_VERSIONS: tuple[str, ...] = TLS_VERSION_ORDER
# The breakdowns, in the order reports show them.
DIMENSIONS: tuple[str, ...] = (
    "protocol",
    "port",
    "finding",
    "severity",
    "tls_version",
    "country",
    "asn",
    "software",
)
UNKNOWN = "unknown"
NONE = "none"
WORST_LIMIT = 25


def accepted_versions(record: Record) -> set[str]:
    """Versions the endpoint was seen to accept: raw-hello matrix plus the real handshake."""
    return set(accepted_tls_versions(record.observation))


@dataclass(slots=True)
class Tally:
    """The four counts kept for every key of every breakdown."""

    endpoints: int = 0  # open endpoints with this key
    exposed: int = 0  # of those, with at least one finding
    cleartext_login: int = 0  # of those, with cleartext-login
    no_tls: int = 0  # of those, with no-tls

    def add(self, exposed: bool, login: bool, no_tls: bool) -> None:
        self.endpoints += 1
        self.exposed += exposed
        self.cleartext_login += login
        self.no_tls += no_tls


@dataclass(slots=True)
class Breakdown:
    """Counts of open endpoints by one dimension. ``labels`` names keys for people (AS names)."""

    dimension: str
    rows: dict[str, Tally] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    def bump(self, key: str, exposed: bool, login: bool, no_tls: bool) -> None:
        tally = self.rows.get(key)
        if tally is None:
            tally = self.rows[key] = Tally()
        tally.add(exposed, login, no_tls)

    def ordered(self) -> list[tuple[str, Tally]]:
        """Rows in the order a reader wants: natural order for ordinal keys, else most exposed first."""
        items = list(self.rows.items())
        if self.dimension == "tls_version":
            order = {v: i for i, v in enumerate((*TLS_VERSIONS, NONE))}
            return sorted(items, key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        if self.dimension == "severity":
            return sorted(items, key=lambda kv: (-severity_rank(kv[0]), kv[0]))
        if self.dimension == "port":
            return sorted(items, key=lambda kv: (int(kv[0]) if kv[0].isdigit() else 1 << 20, kv[0]))
        return sorted(items, key=lambda kv: (-kv[1].exposed, -kv[1].endpoints, kv[0]))

    def label(self, key: str) -> str:
        return self.labels.get(key, key)


@dataclass(slots=True)
class WorstEndpoint:
    """One row of the "worst endpoints" table: enough to find the server and see why it is bad."""

    address: str
    port: int
    protocol: str
    hostname: str | None
    software: str | None
    worst: str  # severity value
    codes: list[str]  # finding codes, worst first
    banner: str | None  # the greeting as stored (sanitised); escaped again by every renderer
    country: str | None
    asn: int | None
    as_name: str | None
    findings: int  # how many findings; ranks endpoints of the same worst severity

    def sort_key(self) -> tuple[int, int, int, int, str, int]:
        """Worst first: by :func:`worst_order` of its codes, severity and number of findings."""
        return worst_order(self.codes, self.worst, self.findings, self.address, self.port)


CORE_CODES: tuple[str, ...] = ("cleartext-login", "no-tls")


def worst_order(
    codes: Iterable[str], worst: str | None, findings: int, address: str, port: int
) -> tuple[int, int, int, int, str, int]:
    """How the "worst endpoints" tables rank an endpoint, worst first.

    The core verdict comes first: a password that can cross in clear (cleartext-login), then no way to
    encrypt at all (no-tls). Only then the worst severity, then the number of findings, then address and
    port (as text). Ranking by severity and count alone let endpoints with several TLS-hygiene findings
    (legacy TLS, a weak cipher, certificate problems) push password-in-clear endpoints out of the top 25.
    The web dashboard and both statistics paths (streamed and SQL) rank with this one key.
    """
    present = set(codes)
    login, no_tls = (int(code in present) for code in CORE_CODES)
    return (-login, -no_tls, -severity_rank(worst), -findings, address, port)


@dataclass(slots=True)
class WorstDomain:
    """One row of the "domains with findings" table."""

    domain: str  # as the record holds it (sanitised by lookup; an imported file may hold anything)
    worst: str  # severity value
    codes: list[str]  # finding codes, worst first
    findings: int

    def sort_key(self) -> tuple[int, int, str]:
        return (-severity_rank(self.worst), -self.findings, self.domain)


# What each of DomainStats.counts() counts domains by, as reports title it.
DOMAIN_COUNT_TITLES: Mapping[str, str] = {
    "by_code": "finding",
    "by_severity": "worst severity",
    "by_mta_sts": "MTA-STS mode",
    "by_dane": "DANE",
}


def _counted(counts: Mapping[str, int]) -> dict[str, int]:
    """Most first, then by key: the order every domain count is shown and serialised in."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(slots=True)
class DomainStats:
    """The domains of a scan: how many were checked, by finding code, worst severity, MTA-STS mode and
    DANE state, and the worst of them. Both record sources feed :meth:`add` with the store's typed row
    (cleartext.domain.model.store_row makes it from a record), so both count by the same columns."""

    checked: int = 0
    with_findings: int = 0
    findings: int = 0  # findings in all
    tls_rpt: int = 0  # domains with a usable TLS-RPT record
    by_code: dict[str, int] = field(default_factory=dict)  # domains with the code
    by_severity: dict[str, int] = field(default_factory=dict)  # domains by worst severity ("none")
    by_mta_sts: dict[str, int] = field(default_factory=dict)  # mode of a valid policy, "none" without
    by_dane: dict[str, int] = field(default_factory=dict)  # cleartext.domain.model.dane_state
    worst: list[WorstDomain] = field(default_factory=list)

    def add(self, row: DomainRow, worst_limit: int = WORST_LIMIT) -> None:
        self.checked += 1
        self.findings += len(row.finding_codes)
        self.tls_rpt += bool(row.tls_rpt)
        for key, counts in (
            (row.worst_severity or NONE, self.by_severity),
            (row.mta_sts_mode or NONE, self.by_mta_sts),
            (row.dane, self.by_dane),
            *((code, self.by_code) for code in set(row.finding_codes)),
        ):
            counts[key] = counts.get(key, 0) + 1
        if row.worst_severity is None:
            return
        self.with_findings += 1
        ranked = sorted(
            zip(row.finding_severities, row.finding_codes, strict=False),
            key=lambda sc: (-severity_rank(sc[0]), sc[1]),
        )
        codes = list(dict.fromkeys(code for _, code in ranked))
        self.worst.append(WorstDomain(row.domain, row.worst_severity, codes, len(row.finding_codes)))
        if len(self.worst) >= 4 * max(worst_limit, 1):
            self.trim(worst_limit)

    def trim(self, worst_limit: int = WORST_LIMIT) -> DomainStats:
        self.worst.sort(key=WorstDomain.sort_key)
        del self.worst[worst_limit:]
        return self

    def counts(self) -> dict[str, dict[str, int]]:
        """The four counts by name, each in the order every report shows it: severities worst first,
        the others most first."""
        return {
            "by_code": _counted(self.by_code),
            "by_severity": dict(
                sorted(self.by_severity.items(), key=lambda kv: (-severity_rank(kv[0]), kv[0]))
            ),
            "by_mta_sts": _counted(self.by_mta_sts),
            "by_dane": _counted(self.by_dane),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "with_findings": self.with_findings,
            "findings": self.findings,
            "tls_rpt": self.tls_rpt,
            **self.counts(),
            "worst": [asdict(w) for w in self.worst],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DomainStats:
        def counts(name: str) -> dict[str, int]:
            return {str(k): int(v) for k, v in data[name].items()}

        return cls(
            checked=int(data["checked"]),
            with_findings=int(data["with_findings"]),
            findings=int(data["findings"]),
            tls_rpt=int(data["tls_rpt"]),
            by_code=counts("by_code"),
            by_severity=counts("by_severity"),
            by_mta_sts=counts("by_mta_sts"),
            by_dane=counts("by_dane"),
            worst=[WorstDomain(**w) for w in data.get("worst", [])],
        )


@dataclass(slots=True)
class Stats:
    """The statistics of one scan. Plain data: compare with ``==``, serialise with :meth:`to_json`."""

    country_source: str  # "geo" or "registry": which attribution field the country breakdown uses
    scan_id: str | None = None
    scanned_at: str | None = None  # earliest started_at of the records (ISO 8601 UTC)
    records: int = 0
    open: int = 0
    exposed: int = 0
    cleartext_login: int = 0
    no_tls: int = 0
    findings: int = 0  # findings in all, an endpoint with three counts three
    by_status: dict[str, int] = field(default_factory=dict)
    breakdowns: dict[str, Breakdown] = field(default_factory=dict)
    worst: list[WorstEndpoint] = field(default_factory=list)
    # None: the input held no domain records (or, in the web, the reader may not see them).
    domains: DomainStats | None = None

    def breakdown(self, dimension: str) -> Breakdown:
        return self.breakdowns.get(dimension) or Breakdown(dimension)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "cleartext-report-stats",
            "version": 1,
            "scan_id": self.scan_id,
            "scanned_at": self.scanned_at,
            "country_source": self.country_source,
            "country_field": COUNTRY_SOURCES.get(self.country_source, self.country_source),
            "totals": {
                "records": self.records,
                "open": self.open,
                "exposed": self.exposed,
                "cleartext_login": self.cleartext_login,
                "no_tls": self.no_tls,
                "findings": self.findings,
            },
            "by_status": dict(sorted(self.by_status.items(), key=lambda kv: (-kv[1], kv[0]))),
            "breakdowns": {name: _rows(self.breakdown(name)) for name in DIMENSIONS},
            "worst": [asdict(w) for w in self.worst],
            **({"domains": self.domains.to_dict()} if self.domains is not None else {}),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stats:
        """Read back :meth:`to_dict` (earlier reports feed the trend lines). Raises ValueError."""
        if not isinstance(data, Mapping) or data.get("kind") != "cleartext-report-stats":
            raise ValueError("not a cleartext report statistics file")
        try:
            totals = data["totals"]
            breakdowns: dict[str, Breakdown] = {}
            for name, rows in data["breakdowns"].items():
                b = Breakdown(name)
                for row in rows:
                    key = str(row["key"])
                    b.rows[key] = Tally(
                        row["endpoints"], row["exposed"], row["cleartext_login"], row["no_tls"]
                    )
                    if "label" in row:
                        b.labels[key] = str(row["label"])
                breakdowns[name] = b
            return cls(
                country_source=str(data["country_source"]),
                scan_id=data.get("scan_id"),
                scanned_at=data.get("scanned_at"),
                records=int(totals["records"]),
                open=int(totals["open"]),
                exposed=int(totals["exposed"]),
                cleartext_login=int(totals["cleartext_login"]),
                no_tls=int(totals["no_tls"]),
                findings=int(totals["findings"]),
                by_status={str(k): int(v) for k, v in data["by_status"].items()},
                breakdowns=breakdowns,
                worst=[WorstEndpoint(**w) for w in data.get("worst", [])],
                domains=DomainStats.from_dict(data["domains"]) if "domains" in data else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"malformed statistics: {exc}") from None


def _rows(b: Breakdown) -> list[dict[str, Any]]:
    return [
        {"key": key, **({"label": b.labels[key]} if key in b.labels else {}), **asdict(t)}
        for key, t in b.ordered()
    ]


class StatsBuilder:
    """Accumulates :class:`Stats` one record at a time; memory is bounded by the number of distinct keys."""

    def __init__(
        self,
        country_source: CountrySource = "geo",
        *,
        scan_id: str | None = None,
        worst_limit: int = WORST_LIMIT,
    ) -> None:
        if country_source not in COUNTRY_SOURCES:
            raise ValueError(f"country_source must be one of {', '.join(COUNTRY_SOURCES)}")
        self.stats = Stats(country_source=country_source, scan_id=scan_id)
        self.stats.breakdowns = {name: Breakdown(name) for name in DIMENSIONS}
        self._worst_limit = worst_limit
        self._candidates: list[WorstEndpoint] = []

    def add(self, record: Record, attribution: Attribution | None = None) -> None:
        attribution = attribution or _EMPTY
        s = self.stats
        obs = record.observation
        s.records += 1
        status = obs.status.value
        s.by_status[status] = s.by_status.get(status, 0) + 1
        if obs.started_at and (s.scanned_at is None or obs.started_at < s.scanned_at):
            s.scanned_at = obs.started_at
        if status in SILENT:
            return
        codes = {f.code for f in record.findings}
        exposed, login, no_tls = bool(codes), "cleartext-login" in codes, "no-tls" in codes
        s.open += 1
        s.exposed += exposed
        s.cleartext_login += login
        s.no_tls += no_tls
        s.findings += len(record.findings)
        b = s.breakdowns
        flags = (exposed, login, no_tls)
        b["protocol"].bump(obs.protocol.value, *flags)
        b["port"].bump(str(obs.port), *flags)
        for code in codes:
            b["finding"].bump(code, *flags)
        worst = record.worst
        b["severity"].bump(worst.value if worst else NONE, *flags)
        versions = accepted_versions(record)
        for version in versions or (NONE,):
            b["tls_version"].bump(version, *flags)
        country = attribution.country if s.country_source == "geo" else attribution.registry_country
        b["country"].bump(country or UNKNOWN, *flags)
        asn_key = str(attribution.asn) if attribution.asn is not None else UNKNOWN
        b["asn"].bump(asn_key, *flags)
        if attribution.as_name and asn_key != UNKNOWN:
            # The smallest name when sources disagree: the same answer whatever the record order.
            known = b["asn"].labels.get(asn_key)
            if known is None or attribution.as_name < known:
                b["asn"].labels[asn_key] = attribution.as_name
        b["software"].bump(obs.software or UNKNOWN, *flags)
        if worst is not None:
            self._consider(record, attribution, country)

    def _consider(self, record: Record, attribution: Attribution, country: str | None) -> None:
        self._candidates.append(worst_endpoint(record, attribution, country))
        # Keep the list bounded: sort and cut whenever it has grown to four times the limit.
        if len(self._candidates) >= 4 * max(self._worst_limit, 1):
            self._trim()

    def _trim(self) -> None:
        self._candidates.sort(key=WorstEndpoint.sort_key)
        del self._candidates[self._worst_limit :]

    def result(self) -> Stats:
        self._trim()
        self.stats.worst = list(self._candidates)
        return self.stats


_EMPTY = Attribution()


def worst_endpoint(record: Record, attribution: Attribution, country: str | None) -> WorstEndpoint:
    """The table row of an endpoint with findings (``country`` already chosen by the country source)."""
    obs = record.observation
    ordered = sorted(record.findings, key=lambda f: (-f.severity.rank, f.code))
    return WorstEndpoint(
        address=obs.address,
        port=obs.port,
        protocol=obs.protocol.value,
        hostname=obs.hostname,
        software=obs.software,
        worst=ordered[0].severity.value,
        codes=list(dict.fromkeys(f.code for f in ordered)),
        findings=len(ordered),
        banner=obs.greeting,
        country=country,
        asn=attribution.asn,
        as_name=attribution.as_name,
    )


def compute(
    pairs: Iterable[tuple[Record, Attribution]],
    country_source: CountrySource = "geo",
    *,
    scan_id: str | None = None,
    worst_limit: int = WORST_LIMIT,
) -> Stats:
    """Statistics of a stream of (record, attribution) pairs, in one pass and bounded memory."""
    builder = StatsBuilder(country_source, scan_id=scan_id, worst_limit=worst_limit)
    for record, attribution in pairs:
        builder.add(record, attribution)
    return builder.result()


# -- trends across scans ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrendPoint:
    scan_id: str | None
    scanned_at: str | None
    value: int


@dataclass(slots=True)
class Trends:
    """One series per metric, each point one scan, oldest first. A metric absent from a scan is 0."""

    scans: list[tuple[str | None, str | None]] = field(default_factory=list)  # (scan_id, scanned_at)
    series: dict[str, list[TrendPoint]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scans": [{"scan_id": i, "scanned_at": t} for i, t in self.scans],
            "series": {name: [p.value for p in points] for name, points in self.series.items()},
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=True)


def _metrics(stats: Stats) -> dict[str, int]:
    """The named numbers a trend follows. Names: totals plain, breakdowns as ``dimension:key``."""
    out = {
        "records": stats.records,
        "open": stats.open,
        "exposed": stats.exposed,
        "cleartext_login": stats.cleartext_login,
        "no_tls": stats.no_tls,
        "findings": stats.findings,
    }
    for status, count in stats.by_status.items():
        out[f"status:{status}"] = count
    for dimension in ("protocol", "finding", "severity", "tls_version"):
        for key, tally in stats.breakdown(dimension).rows.items():
            out[f"{dimension}:{key}"] = tally.exposed if dimension != "tls_version" else tally.endpoints
    return out


def trends(history: Sequence[Stats]) -> Trends:
    """Series per metric across scans, ordered by scan time (then id) so that input order does not matter.

    Breakdown metrics count *exposed* endpoints per key (``finding:cleartext-login``), except
    ``tls_version:*``, which counts endpoints accepting that version.
    """
    ordered = sorted(history, key=lambda s: (s.scanned_at or "", s.scan_id or ""))
    per_scan = [_metrics(s) for s in ordered]
    names = sorted({name for metrics in per_scan for name in metrics})
    result = Trends(scans=[(s.scan_id, s.scanned_at) for s in ordered])
    for name in names:
        result.series[name] = [
            TrendPoint(s.scan_id, s.scanned_at, metrics.get(name, 0))
            for s, metrics in zip(ordered, per_scan, strict=True)
        ]
    return result
