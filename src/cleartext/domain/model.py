"""The domain record: what one mail domain publishes for clients and senders, and the findings on it.

A record kind of its own, beside the per-endpoint record (cleartext.record): one line per domain, with
``"kind": "domain"`` and its own ``version`` (``DOMAIN_SCHEMA_VERSION``), documented in docs/schema.md
with a JSON Schema in ``cleartext/schema/domain.schema.json``. Endpoint records carry no ``kind`` field,
so a reader of a mixed stream tells them apart by it. Fields are only added within a version.

Everything here is plain data: lookup fills a :class:`DomainObservation`, assess adds findings. Strings a
server or a zone sent are sanitised before they are stored (cleartext.text.sanitize).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cleartext.record import Finding, Severity
from cleartext.store.schema import DomainRow

DOMAIN_SCHEMA_VERSION = 1
KIND = "domain"


class Outcome(StrEnum):
    """How one DNS query or HTTPS request ended — a closed list, like the endpoint statuses."""

    FOUND = "found"  # DNS: records of the type asked; HTTPS: a 200 reply whose body was read in full
    ABSENT = "absent"  # DNS: NXDOMAIN or no record of the type; HTTPS: the name does not resolve, or 404/410
    REFUSED = "refused"  # HTTPS: nothing listens on port 443 (or the host is unreachable)
    TIMEOUT = "timeout"  # no complete answer within the deadline (a slow drip included)
    TLS_ERROR = "tls-error"  # HTTPS: the handshake failed or the certificate is not valid for the name
    HTTP_ERROR = "http-error"  # HTTPS: a status other than 200 (redirects are never followed), or bad framing
    TOO_LARGE = "too-large"  # more bytes than the bound for this kind of document or answer
    BOGUS = "bogus"  # DNS: the validating resolver refused the answer (DNSSEC validation failed)
    LOOP = "loop"  # DNS: a CNAME chain that loops or runs longer than the bound
    ERROR = "error"  # DNS: SERVFAIL, REFUSED or another failure that says nothing about the domain


class Socket(StrEnum):
    """How a client is told to reach a mail service (autoconfig's ``socketType``)."""

    PLAIN = "plain"  # no TLS at all
    STARTTLS = "starttls"  # in-band upgrade, required
    SSL = "ssl"  # implicit TLS from the first byte (RFC 8314)
    AUTO = "auto"  # Autodiscover "Auto": the client decides (it may settle for clear text)
    UNKNOWN = "unknown"


@dataclass(slots=True)
class DnsResult:
    """One DNS question's outcome. ``authenticated`` is the AD bit of a validating resolver (RFC 4035
    3.2.3, RFC 6840 5.8): cleartext trusts the resolver it is pointed at, as Postfix and Exim do for DANE."""

    outcome: Outcome
    detail: str | None = None
    authenticated: bool = False


@dataclass(slots=True)
class HttpResult:
    """One HTTPS request's outcome (the body itself is not kept; what was parsed from it is)."""

    url: str
    outcome: Outcome
    detail: str | None = None
    http_status: int | None = None
    content_type: str | None = None
    bytes: int = 0
    elapsed_ms: float = 0.0


@dataclass(slots=True)
class SrvRecord:
    priority: int
    weight: int
    port: int
    target: str  # "." means "this service is not offered here" (RFC 2782, RFC 6186 3.4)


@dataclass(slots=True)
class SrvLookup:
    """One RFC 6186/8314 service name: ``_imaps._tcp.example.com`` and what it holds."""

    service: str  # imap, imaps, pop3, pop3s, submission, submissions
    name: str
    dns: DnsResult
    records: list[SrvRecord] = field(default_factory=list)


@dataclass(slots=True)
class ClientServer:
    """A server a mail client is told to use, by one source (SRV, autoconfig, Autodiscover)."""

    source: str  # "srv", "autoconfig", "autodiscover"
    protocol: str  # imap, pop3, smtp
    hostname: str
    port: int
    socket: Socket
    authentication: list[str] = field(default_factory=list)  # as published, e.g. "password-cleartext"


@dataclass(slots=True)
class ClientConfig:
    """One autoconfig or Autodiscover document: where it was asked for, and the servers it names."""

    source: str  # "autoconfig" or "autodiscover"
    http: HttpResult
    servers: list[ClientServer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # why the document could not be used, in part or whole


@dataclass(slots=True)
class MtaSts:
    """RFC 8461: the ``_mta-sts`` TXT record and the policy file it announces."""

    dns: DnsResult
    records: list[str] = field(default_factory=list)  # the TXT records, sanitised, each strings joined
    id: str | None = None  # the policy id of the one valid record
    record_errors: list[str] = field(default_factory=list)
    policy: HttpResult | None = None  # None when no valid TXT record made it worth asking
    version: str | None = None
    mode: str | None = None  # enforce, testing, none (or what the file said, when invalid)
    mx: list[str] = field(default_factory=list)  # MX patterns
    max_age: int | None = None  # seconds
    policy_errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """A record and a policy a sender would apply (RFC 8461 3.1, 3.2, 3.3)."""
        return (
            self.id is not None
            and not self.record_errors
            and self.policy is not None
            and self.policy.outcome is Outcome.FOUND
            and not self.policy_errors
        )


@dataclass(slots=True)
class TlsRpt:
    """RFC 8460: the ``_smtp._tls`` TXT record."""

    dns: DnsResult
    records: list[str] = field(default_factory=list)
    rua: list[str] = field(default_factory=list)  # where reports go (mailto: or https:)
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Tlsa:
    usage: int  # 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE (RFC 7218)
    selector: int  # 0 full certificate, 1 SubjectPublicKeyInfo
    matching_type: int  # 0 exact, 1 SHA2-256, 2 SHA2-512
    data: str  # hex, lower case


@dataclass(slots=True)
class ServedChain:
    """The chain one address of an MX host served on port 25 in this check, and how it meets the TLSA RRset.

    ``match``: "match", "mismatch", "unverifiable" (only TLSA records cleartext cannot check against what
    a scan keeps: matching type 0 or 2), "unusable" (no DANE-TA/DANE-EE record, RFC 7672 3.1.3), or null
    when the port-25 scan got no certificate.
    """

    address: str
    sha256: list[str] = field(default_factory=list)  # leaf first
    match: str | None = None
    matched_by: str | None = None  # the TLSA record that matched, "3 1 1 ab12…"


@dataclass(slots=True)
class MxHost:
    host: str
    preference: int
    tlsa: DnsResult | None = None  # _25._tcp.<host>; None when not asked (a null MX)
    tlsa_records: list[Tlsa] = field(default_factory=list)
    served: list[ServedChain] = field(default_factory=list)


@dataclass(slots=True)
class DomainObservation:
    """What the domain publishes, with nothing judged. Filled by cleartext.domain.lookup."""

    domain: str
    checked_at: str = ""  # ISO 8601 UTC
    mx_dns: DnsResult = field(default_factory=lambda: DnsResult(Outcome.ABSENT))
    mx: list[MxHost] = field(default_factory=list)
    srv: list[SrvLookup] = field(default_factory=list)
    client_configs: list[ClientConfig] = field(default_factory=list)
    mta_sts: MtaSts = field(default_factory=lambda: MtaSts(DnsResult(Outcome.ABSENT)))
    tls_rpt: TlsRpt = field(default_factory=lambda: TlsRpt(DnsResult(Outcome.ABSENT)))
    elapsed_ms: float = 0.0

    def advertised(self) -> list[ClientServer]:
        """Every server a client may be sent to: SRV targets and autoconfig/Autodiscover servers, once
        per (protocol, host, port, socket), first source first."""
        seen: dict[tuple[str, str, int, str], ClientServer] = {}
        for lookup in self.srv:
            for rec in lookup.records:
                if rec.target == "." or rec.port == 0:
                    continue
                protocol = "smtp" if lookup.service.startswith("submission") else lookup.service.rstrip("s")
                socket = Socket.SSL if lookup.service.endswith("s") else Socket.STARTTLS
                server = ClientServer("srv", protocol, rec.target, rec.port, socket)
                seen.setdefault((protocol, rec.target, rec.port, socket.value), server)
        for config in self.client_configs:
            for server in config.servers:
                seen.setdefault((server.protocol, server.hostname, server.port, server.socket.value), server)
        return list(seen.values())


@dataclass(slots=True)
class DomainRecord:
    """A domain observation plus its findings: one JSON line per domain."""

    observation: DomainObservation
    findings: list[Finding] = field(default_factory=list)

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def to_dict(self) -> dict[str, Any]:
        obs = dataclasses.asdict(self.observation)
        return {
            "kind": KIND,
            "version": DOMAIN_SCHEMA_VERSION,
            **obs,
            "findings": [dataclasses.asdict(f) for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))


def _dns(data: dict[str, Any]) -> DnsResult:
    return DnsResult(Outcome(data["outcome"]), data.get("detail"), bool(data.get("authenticated", False)))


def _http(data: dict[str, Any]) -> HttpResult:
    return HttpResult(**{**data, "outcome": Outcome(data["outcome"])})


def _server(data: dict[str, Any]) -> ClientServer:
    return ClientServer(**{**data, "socket": Socket(data["socket"])})


def domain_record_from_dict(data: dict[str, Any]) -> DomainRecord:
    """Rebuild a DomainRecord from its JSON form; ValueError for anything that is not one."""
    if not isinstance(data, dict) or data.get("kind") != KIND or data.get("version") != DOMAIN_SCHEMA_VERSION:
        raise ValueError(f"not a cleartext domain record of version {DOMAIN_SCHEMA_VERSION}")
    try:
        sts = data["mta_sts"]
        rpt = data["tls_rpt"]
        obs = DomainObservation(
            domain=data["domain"],
            checked_at=data.get("checked_at", ""),
            mx_dns=_dns(data["mx_dns"]),
            mx=[
                MxHost(
                    host=m["host"],
                    preference=m["preference"],
                    tlsa=_dns(m["tlsa"]) if m.get("tlsa") else None,
                    tlsa_records=[Tlsa(**t) for t in m.get("tlsa_records", [])],
                    served=[ServedChain(**s) for s in m.get("served", [])],
                )
                for m in data["mx"]
            ],
            srv=[
                SrvLookup(s["service"], s["name"], _dns(s["dns"]), [SrvRecord(**r) for r in s["records"]])
                for s in data["srv"]
            ],
            client_configs=[
                ClientConfig(
                    c["source"], _http(c["http"]), [_server(s) for s in c["servers"]], list(c["errors"])
                )
                for c in data["client_configs"]
            ],
            mta_sts=MtaSts(
                **{
                    **sts,
                    "dns": _dns(sts["dns"]),
                    "policy": _http(sts["policy"]) if sts.get("policy") else None,
                }
            ),
            tls_rpt=TlsRpt(**{**rpt, "dns": _dns(rpt["dns"])}),
            elapsed_ms=data.get("elapsed_ms", 0.0),
        )
        findings = [
            Finding(f["code"], Severity(f["severity"]), f["summary"], f["evidence"])
            for f in data.get("findings", [])
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed domain record: {exc}") from None
    return DomainRecord(obs, findings)


def dane_state(obs: DomainObservation) -> str:
    """One word for the domain's DANE, over the MX hosts whose TLSA was asked: ``none`` (no host has
    TLSA records), ``mismatch`` (a chain served on port 25 matched none of its host's records: mail from
    DANE senders bounces), ``partial`` (some hosts have none), ``match`` (every served chain matched)
    or ``unchecked`` (records, but nothing cleartext could match: unusable or unverifiable records, or
    no certificate seen)."""
    asked = [m for m in obs.mx if m.tlsa is not None]
    published = [m for m in asked if m.tlsa_records]
    if not published:
        return "none"
    verdicts = [s.match for m in published for s in m.served]
    if "mismatch" in verdicts:
        return "mismatch"
    if len(published) < len(asked):
        return "partial"
    if verdicts and all(v == "match" for v in verdicts):
        return "match"
    return "unchecked"


def store_row(record: DomainRecord) -> DomainRow:
    """The store's row of a domain record: the columns reports filter on, and the record as JSON."""
    obs = record.observation
    worst = record.worst
    return DomainRow(
        domain=obs.domain,
        checked_at=obs.checked_at,
        worst_severity=worst.value if worst is not None else None,
        finding_codes=[f.code for f in record.findings],
        finding_severities=[f.severity.value for f in record.findings],
        mx_hosts=[m.host for m in obs.mx],
        mta_sts_mode=obs.mta_sts.mode if obs.mta_sts.valid else None,
        tls_rpt=bool(obs.tls_rpt.rua) and not obs.tls_rpt.errors,
        dane=dane_state(obs),
        record=record.to_json(),
    )
