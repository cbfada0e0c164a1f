"""The record: what cleartext knows about one endpoint (address:port), the contract between stages.

A record is written by the scanner as one JSON line and read by everything downstream (store, reports,
notifications, the web UI), so its shape is versioned (``SCHEMA_VERSION``) and documented in
docs/schema.md with a JSON Schema in ``cleartext/schema/record.schema.json`` (record-1.schema.json for
version-1 lines). Fields are only ever added within a version; a rename or a change of meaning bumps
the version.

Everything here is plain data: the probe fills an :class:`Observation`, assess adds
:class:`Finding` objects, and :func:`Record.to_json` serialises the whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 2
# Version 2 added the login probe (plain.login_probes), the STARTTLS injection check
# (plain.starttls_injection) and the judged login verdict (login). Version-1 lines still read: their
# verdict rested on the capability lists alone.
READABLE_VERSIONS = frozenset({1, 2})


class Protocol(StrEnum):
    SMTP = "smtp"
    POP3 = "pop3"
    IMAP = "imap"


class TLSMode(StrEnum):
    """How TLS is reached on a port: upgraded in-band, or from the first byte (RFC 8314)."""

    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class Status(StrEnum):
    """How far the dialog with an endpoint got — a closed list every record reports with.

    Unlike zgrab2, connect errors are told apart: a refused port (RST), a silent one (no SYN-ACK in
    time) and an unreachable network are different facts about the Internet.
    """

    SUCCESS = "success"  # the dialog ran as planned (findings may still be bad)
    REFUSED = "refused"  # TCP connection refused (RST): nothing listens
    CONNECT_TIMEOUT = "connect-timeout"  # no answer to the SYN within the connect timeout
    UNREACHABLE = "unreachable"  # ICMP host/network unreachable or no route
    READ_TIMEOUT = "read-timeout"  # connected, but the server went silent mid-dialog
    CLOSED = "closed"  # the server closed the connection mid-dialog
    NOT_MAIL = "not-mail"  # something answers, but it is not a mail server of this protocol
    REFUSED_BY_POLICY = "refused-by-policy"  # greeting says go away (SMTP 421/554, POP3 -ERR, IMAP BYE)
    TLS_ERROR = "tls-error"  # the TLS handshake failed (implicit TLS, or after an accepted STARTTLS)
    PROTOCOL_ERROR = "protocol-error"  # replies violate the protocol, or exceed our size bounds
    BLOCKLISTED = "blocklisted"  # not scanned: reserved range or operator's exclusion list
    ERROR = "error"  # a local failure (no file descriptors, no route to resolve); never a server's fault


# The statuses grouped by what a reader may conclude from them; each group is named once, here.
NO_ANSWER: frozenset[Status] = frozenset(
    {Status.REFUSED, Status.CONNECT_TIMEOUT, Status.UNREACHABLE, Status.BLOCKLISTED}
)
"""Nothing answered at the address and port (or it was not asked): `show --hide-closed` hides these."""
NO_SERVICE: frozenset[Status] = NO_ANSWER | {Status.ERROR}
"""No service was observed (a local error tells nothing of the server): reports count no endpoint."""
NOTHING_TO_JUDGE: frozenset[Status] = NO_SERVICE | {Status.NOT_MAIL, Status.REFUSED_BY_POLICY}
"""The server said too little to judge: no findings, no login verdict."""


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse; used to sort findings and to compute a grade."""
        return _SEVERITY_RANK[self.value]


_SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "info": 0}


def severity_rank(name: str | None) -> int:
    """The rank of a severity as stored or sent (text); -1 for none or a name this version does not know."""
    return _SEVERITY_RANK.get(name or "", -1)


def severity_rank_sql(column: str) -> str:
    """The same rank as a SQL expression over a text column, for the stores' ORDER BY."""
    whens = " ".join(f"WHEN '{name}' THEN {rank}" for name, rank in _SEVERITY_RANK.items())
    return f"CASE {column} {whens} ELSE -1 END"


@dataclass(slots=True)
class Finding:
    """One judged fact about an endpoint: a stable code, a severity and the evidence behind it."""

    code: str
    severity: Severity
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class LoginProbe:
    """One login started in clear and cancelled before anything secret was sent (or, opt-in only, a LOGIN
    with a made-up identity): what we sent, what the server answered, and what that answer means."""

    command: str  # "AUTH PLAIN", "AUTHENTICATE PLAIN", "USER", "LOGIN (made-up identity)"
    reply: str  # the server's answer (sanitised, bounded)
    outcome: str  # accepted (it asked for the credentials) | refused | unknown
    reason: str  # challenge | tls-required | not-offered | mechanism-unsupported | denied | checked | ...
    cancel_reply: str | None = None  # the answer to "*" (after a continuation only)


@dataclass(slots=True)
class PlainPhase:
    """What the server said in clear, before any TLS (None for implicit-TLS ports, unless the port spoke
    plaintext instead of TLS)."""

    capabilities: list[str] | None = None  # capability lines as the server sent them (None: not asked/failed)
    capability_reply: str | None = None  # the status line, e.g. "250 ..." or "-ERR unknown command"
    auth_mechanisms: list[str] = field(default_factory=list)  # SASL mechanisms offered in clear
    login_command: bool | None = None  # IMAP LOGIN / POP3 USER usable in clear (None: cannot tell)
    starttls_advertised: bool = False
    starttls_reply: str | None = None  # reply to STARTTLS/STLS (asked even when not advertised)
    starttls_accepted: bool | None = None  # None: not tried (e.g. the dialog ended before)
    login_probes: list[LoginProbe] = field(default_factory=list)  # in the order sent
    # A command sent in the same segment as STARTTLS (CVE-2011-0411): "answered" inside TLS (vulnerable),
    # "ignored" (discarded, as RFC 3207 asks), "closed" (the server dropped the connection rather than
    # read it), "skipped" (software known to close on it: see probe.DROPS_PIPELINED_STARTTLS), None (not
    # tried: no STARTTLS, or the dialog ended before).
    starttls_injection: str | None = None
    starttls_injection_reply: str | None = None  # what the server answered to it inside TLS


@dataclass(slots=True)
class Certificate:
    """Facts about one certificate of the chain the server sent (leaf first)."""

    sha256: str
    subject: str
    issuer: str
    not_before: str  # ISO 8601, UTC
    not_after: str
    key_type: str  # rsa, ec, ed25519, ed448, dsa, unknown
    key_bits: int
    signature_algorithm: str  # e.g. sha256WithRSAEncryption
    dns_names: list[str] = field(default_factory=list)  # subjectAltName dNSName entries
    self_signed: bool = False
    # SHA-256 of the DER SubjectPublicKeyInfo: what a DANE "3 1 1" / "2 1 1" TLSA record holds (RFC 7671).
    # None in records written before it existed, and for a certificate we could not parse.
    spki_sha256: str | None = None


@dataclass(slots=True)
class TLSPhase:
    """The one real handshake per endpoint: what was negotiated, and what the server said after it."""

    version: str | None = None  # e.g. "TLSv1.3"
    cipher: str | None = None  # IANA-ish name as OpenSSL reports it
    error: str | None = None  # why the handshake failed, when it did
    capabilities: list[str] | None = None  # capabilities asked again after TLS
    auth_mechanisms: list[str] = field(default_factory=list)
    login_command: bool | None = None
    chain: list[Certificate] = field(default_factory=list)
    trusted: bool | None = None  # chain verified against the trust store (None: no chain)
    verify_error: str | None = None
    hostname_checked: str | None = None  # hostname the certificate was checked against
    hostname_match: bool | None = None  # None when no hostname is known


@dataclass(slots=True)
class TLSMatrix:
    """What raw ClientHello probes found: protocol versions and weak cipher classes the server accepts.

    Values are "accepted", "rejected", or "unknown" (not probed within the connection budget, or the
    probe failed for a reason that says nothing about the version).
    """

    versions: dict[str, str] = field(default_factory=dict)  # "SSLv3" .. "TLSv1.3" -> state
    weak_classes: dict[str, str] = field(default_factory=dict)  # "rc4", "3des", ... -> state
    weak_suites: list[str] = field(default_factory=list)  # weak suites the server chose, by name
    probes: int = 0  # raw-hello connections spent


@dataclass(slots=True)
class Observation:
    """What an endpoint said and did, with nothing judged. Filled by the probe."""

    address: str
    port: int
    protocol: Protocol
    tls_mode: TLSMode
    hostname: str | None = None
    status: Status = Status.SUCCESS
    status_detail: str | None = None
    started_at: str = ""  # ISO 8601, UTC
    timings_ms: dict[str, float] = field(default_factory=dict)  # connect, greeting, tls, total, ...
    connections: int = 0
    bytes_received: int = 0
    software: str | None = None  # identified from the greeting (dovecot, postfix, exim, ...)
    greeting: str | None = None  # sanitised, size-bounded text of the greeting (all its lines)
    plain: PlainPhase | None = None
    tls: TLSPhase | None = None
    matrix: TLSMatrix | None = None
    # "full": the dialog (capabilities, STARTTLS, a real handshake) and the TLS matrix as the connection
    # budget allows; "discovery" (scan --discover): connect and greeting only, no verdict on login.
    depth: str = "full"


@dataclass(slots=True)
class LoginVerdict:
    """Can a password be sent before TLS on this endpoint, and what does that rest on? Judged by assess.

    basis: "probed-accepted" (the server asked for credentials in clear), "probed-refused" (every way in
    was tried and refused), "advertised" / "not-advertised" (the probe could not settle it; the
    capability list decides), "inferred" (no capability list and no probe answer: an RFC 1939 POP3
    server is assumed to take USER/PASS).
    """

    exposed: bool | None
    basis: str
    advertised: bool | None  # a login before TLS is in the capability list (None: no list)
    accepted: list[str] = field(default_factory=list)  # commands the server took in clear
    refused: list[str] = field(default_factory=list)  # commands it refused


@dataclass(slots=True)
class Record:
    """An observation plus its findings: one JSON line per endpoint."""

    observation: Observation
    findings: list[Finding] = field(default_factory=list)
    login: LoginVerdict | None = None  # None where nothing was said in clear (implicit TLS, discovery)

    @property
    def worst(self) -> Severity | None:
        return max((f.severity for f in self.findings), key=lambda s: s.rank, default=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": SCHEMA_VERSION,
            **_plain(self.observation),
            "login": _plain(self.login),
            "findings": [_plain(f) for f in self.findings],
        }

    def to_json(self) -> str:
        # ensure_ascii keeps every line 7-bit clean, whatever bytes a server sent.
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))


TLS_VERSION_ORDER = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
LEGACY_TLS_VERSIONS = TLS_VERSION_ORDER[:3]  # SSLv3 is broken (POODLE); TLS 1.0 and 1.1 deprecated (RFC 8996)
MODERN_TLS_VERSIONS = TLS_VERSION_ORDER[3:]


def tls_label(version: str | None) -> str | None:
    """OpenSSL says ``TLSv1`` where the matrix says ``TLSv1.0``: one spelling for counting."""
    if not version:
        return None
    return "TLSv1.0" if version == "TLSv1" else version


def accepted_tls_versions(obs: Observation) -> list[str]:
    """Versions the endpoint was seen to accept: the raw-hello matrix plus the real handshake, in order."""
    versions = {v for v, state in (obs.matrix.versions.items() if obs.matrix else ()) if state == "accepted"}
    negotiated = tls_label(obs.tls.version if obs.tls else None)
    if negotiated:
        versions.add(negotiated)
    rank = {v: i for i, v in enumerate(TLS_VERSION_ORDER)}
    return sorted(versions, key=lambda v: (rank.get(v, len(rank)), v))


_FIELDS: dict[type, tuple[str, ...] | None] = {}  # a dataclass's field names; None: not one
_SCALARS = frozenset({str, int, float, bool})


def _plain(value: Any) -> Any:
    """Our dataclasses as plain JSON-ready data — what dataclasses.asdict does, minus its deep copies,
    which made serialisation the scanner's hottest path. Records hold only fresh lists and dicts of
    scalars, so sharing the leaves is safe."""
    if value is None or type(value) in _SCALARS:
        return value
    cls = type(value)
    if cls in _FIELDS:
        fields_of = _FIELDS[cls]
    else:  # once per type: enums (every status, protocol, mode) asked is_dataclass each time before
        dataclass_instance = is_dataclass(value) and not isinstance(value, type)
        fields_of = _FIELDS[cls] = tuple(f.name for f in fields(value)) if dataclass_instance else None
    # Scalars are taken as they are without a call: most of a record's leaves are strings in lists
    # (capability lines, findings' evidence), and a call per leaf was most of this function's cost.
    scalars = _SCALARS
    if fields_of is not None:
        out = {}
        for name in fields_of:
            item = getattr(value, name)
            out[name] = item if item is None or type(item) in scalars else _plain(item)
        return out
    if isinstance(value, list):
        return [item if item is None or type(item) in scalars else _plain(item) for item in value]
    if isinstance(value, dict):
        return {k: v if v is None or type(v) in scalars else _plain(v) for k, v in value.items()}
    return value


def record_from_dict(data: dict[str, Any]) -> Record:
    """Rebuild a Record from its JSON form (the inverse of :meth:`Record.to_dict`).

    Raises ValueError for a line that is not a record of a readable version, so a reader can say which
    line is bad. Version-1 records come back with no login verdict.
    """
    if not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS:
        raise ValueError(f"not a cleartext record of version {'/'.join(map(str, sorted(READABLE_VERSIONS)))}")
    try:
        plain = None
        if data.get("plain"):
            plain_data = dict(data["plain"])
            probes = [LoginProbe(**p) for p in plain_data.pop("login_probes", None) or []]
            plain = PlainPhase(**plain_data, login_probes=probes)
        tls_data = data.get("tls")
        tls = None
        if tls_data:
            tls = TLSPhase(**{**tls_data, "chain": [Certificate(**c) for c in tls_data.get("chain", [])]})
        matrix = TLSMatrix(**data["matrix"]) if data.get("matrix") else None
        obs = Observation(
            address=data["address"],
            port=data["port"],
            protocol=Protocol(data["protocol"]),
            tls_mode=TLSMode(data["tls_mode"]),
            hostname=data.get("hostname"),
            status=Status(data["status"]),
            status_detail=data.get("status_detail"),
            started_at=data.get("started_at", ""),
            timings_ms=data.get("timings_ms", {}),
            connections=data.get("connections", 0),
            bytes_received=data.get("bytes_received", 0),
            software=data.get("software"),
            greeting=data.get("greeting"),
            plain=plain,
            tls=tls,
            matrix=matrix,
            depth=data.get("depth", "full"),
        )
        findings = [
            Finding(
                code=f["code"], severity=Severity(f["severity"]), summary=f["summary"], evidence=f["evidence"]
            )
            for f in data.get("findings", [])
        ]
        login = LoginVerdict(**data["login"]) if data.get("login") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed record: {exc}") from None
    return Record(observation=obs, findings=findings, login=login)
