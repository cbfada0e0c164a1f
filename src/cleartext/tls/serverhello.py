"""Incremental, bounded reader of a server's first TLS flight (sans-IO, like h11).

The I/O layer writes a ClientHello, then feeds whatever it reads into a
:class:`ServerFlightReader` until :attr:`ServerFlightReader.result` is not None, or calls
:meth:`ServerFlightReader.eof` when the peer closed or the time ran out. The reader never
raises on what a peer sends: every byte sequence, in every chunking, ends in a
:class:`ServerFlight` whose ``outcome`` says what we saw. Hostile or broken servers are the
normal case for a scanner, so everything is bounded: total bytes (``max_bytes``), record
length (2^14 + 2048, RFC 5246 §6.2.3) and certificates kept (10).

What is read: for TLS ≤ 1.2 the clear-text flight up to ServerHelloDone (so the certificate
chain is seen); for TLS 1.3 only the ServerHello, because everything after it is encrypted.
Once a ServerHello has been read the outcome stays ``accepted`` whatever follows (a broken
Certificate, an oversize flight, an alert): the ServerHello is what a version or class probe
needs, and ``detail`` says why reading stopped. The outcome never depends on how the bytes
were chunked; ``detail`` of a ``not-tls`` result
may quote more or fewer of the first bytes depending on what had arrived.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import StrEnum

from cleartext.tls.ciphers import suite_name
from cleartext.tls.hello import (
    CONTENT_ALERT,
    CONTENT_APPLICATION_DATA,
    CONTENT_CHANGE_CIPHER_SPEC,
    CONTENT_HANDSHAKE,
    EXT_SUPPORTED_VERSIONS,
    MAX_RECORD_PLAINTEXT,
    TLSVersion,
    version_label,
)

__all__ = [
    "HELLO_RETRY_REQUEST_RANDOM",
    "MAX_CERTIFICATES",
    "MAX_RECORD_LENGTH",
    "Outcome",
    "ServerFlight",
    "ServerFlightReader",
    "alert_name",
]

MAX_RECORD_LENGTH = MAX_RECORD_PLAINTEXT + 2048
"""Longest record we accept (TLSCiphertext bound of RFC 5246 §6.2.3); longer means not TLS."""

MAX_CERTIFICATES = 10
"""Certificates kept from a Certificate message; real chains have 2–4."""

HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
"""SHA-256("HelloRetryRequest"): the ServerHello.random that marks a TLS 1.3 HRR (RFC 8446 §4.1.3)."""

HS_HELLO_REQUEST = 0
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
HS_SERVER_KEY_EXCHANGE = 12
HS_CERTIFICATE_REQUEST = 13
HS_SERVER_HELLO_DONE = 14
HS_CERTIFICATE_STATUS = 22

_ALERTS: dict[int, str] = {
    0: "close_notify",
    10: "unexpected_message",
    20: "bad_record_mac",
    21: "decryption_failed",
    22: "record_overflow",
    30: "decompression_failure",
    40: "handshake_failure",
    41: "no_certificate",
    42: "bad_certificate",
    43: "unsupported_certificate",
    44: "certificate_revoked",
    45: "certificate_expired",
    46: "certificate_unknown",
    47: "illegal_parameter",
    48: "unknown_ca",
    49: "access_denied",
    50: "decode_error",
    51: "decrypt_error",
    60: "export_restriction",
    70: "protocol_version",
    71: "insufficient_security",
    80: "internal_error",
    86: "inappropriate_fallback",
    90: "user_canceled",
    100: "no_renegotiation",
    109: "missing_extension",
    110: "unsupported_extension",
    111: "certificate_unobtainable",
    112: "unrecognized_name",
    113: "bad_certificate_status_response",
    114: "bad_certificate_hash_value",
    115: "unknown_psk_identity",
    116: "certificate_required",
    120: "no_application_protocol",
}

_HANDSHAKE_NAMES: dict[int, str] = {
    0: "HelloRequest",
    1: "ClientHello",
    2: "ServerHello",
    4: "NewSessionTicket",
    8: "EncryptedExtensions",
    11: "Certificate",
    12: "ServerKeyExchange",
    13: "CertificateRequest",
    14: "ServerHelloDone",
    15: "CertificateVerify",
    16: "ClientKeyExchange",
    20: "Finished",
    22: "CertificateStatus",
}


def alert_name(description: int | None) -> str:
    """RFC name of a TLS alert description (``handshake_failure``, ``protocol_version`` …).

    Unknown codes give ``alert_<n>``, None gives ``"none"``; never raises.
    """
    if description is None:
        return "none"
    return _ALERTS.get(description, f"alert_{description}")


class Outcome(StrEnum):
    """What the first flight showed; the values are stored in our JSON records."""

    ACCEPTED = "accepted"
    """A ServerHello arrived: the server accepts the offered version and one offered suite."""
    ALERT = "alert"
    """A TLS alert came first: the server speaks TLS but refuses the offer."""
    NOT_TLS = "not-tls"
    """The bytes are not TLS records (plaintext "-ERR …", an SSLv2 reply, garbage)."""
    TRUNCATED = "truncated"
    """The peer stopped in the middle of a record or message, before a ServerHello."""
    CLOSED = "closed"
    """No byte at all before close or time-out: typical of servers that silently drop a hello."""
    TOO_LARGE = "too-large"
    """More than ``max_bytes`` arrived before a decision."""


@dataclass(frozen=True, slots=True)
class ServerFlight:
    """The result of reading one server flight; immutable once produced."""

    outcome: Outcome
    version: TLSVersion | int | None = None
    """Negotiated version: supported_versions if present, else ServerHello.legacy_version."""
    cipher: int | None = None
    alert_level: int | None = None
    alert_description: int | None = None
    hello_retry: bool = False
    """True for a TLS 1.3 HelloRetryRequest: the server accepts TLS 1.3 but wants another group."""
    certificates: tuple[bytes, ...] = field(default=())
    """DER certificates in the order sent (leaf first), only from clear-text (TLS ≤ 1.2) flights."""
    sslv2: bool = False
    """True if the reply looks like an SSLv2 ServerHello (the server speaks SSLv2)."""
    detail: str = ""
    """One short human-readable sentence: what was seen, or why reading stopped."""
    head: bytes = b""
    """For a not-tls result, the first bytes the peer sent (at most 64): a plaintext mail greeting on an
    implicit-TLS port is told by them."""

    @property
    def accepted(self) -> bool:
        """True when the server answered with a ServerHello (including an HRR)."""
        return self.outcome is Outcome.ACCEPTED

    @property
    def version_label(self) -> str | None:
        """``TLSv1.2`` etc., ``0x%04X`` for unknown versions, None when no version was seen."""
        return None if self.version is None else version_label(self.version)

    @property
    def cipher_name(self) -> str | None:
        """IANA name of the chosen suite (``0x%04X`` if unknown), None if none was chosen."""
        return None if self.cipher is None else suite_name(self.cipher)

    @property
    def alert_name(self) -> str | None:
        """RFC name of the alert description, None when there was no alert."""
        return None if self.alert_description is None else alert_name(self.alert_description)


class _Malformed(Exception):
    """Internal: the peer sent something that cannot be the TLS we expect."""


def _as_version(value: int) -> TLSVersion | int:
    try:
        return TLSVersion(value)
    except ValueError:
        return value


def _printable_prefix(data: bytes | bytearray, limit: int = 40) -> str:
    """A safe, short rendering of the first bytes, for ``detail`` of a not-tls result."""
    head = bytes(data[:limit])
    text = "".join(chr(b) if 32 <= b < 127 else "." for b in head)
    more = "…" if len(data) > limit else ""
    return f'"{text}{more}" (hex {head[:8].hex()})'


@dataclass(slots=True)
class _Hello:
    version: TLSVersion | int
    cipher: int
    hello_retry: bool


class ServerFlightReader:
    """Feed it the server's bytes; read :attr:`result` (None = need more bytes).

    Once :attr:`result` is not None it never changes and further :meth:`feed` calls are
    ignored. Memory is bounded by ``max_bytes``.
    """

    def __init__(self, max_bytes: int = 65536) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be positive")
        self._max_bytes = max_bytes
        self._seen = 0  # bytes taken into account (never above max_bytes)
        self._buf = bytearray()  # received bytes not yet consumed as whole records
        self._hs = bytearray()  # handshake-layer bytes not yet consumed as whole messages
        self._records = 0  # whole records consumed
        self._hello: _Hello | None = None
        self._certificates: list[bytes] = []
        self._alert: tuple[int, int] | None = None
        self._result: ServerFlight | None = None

    # -- public API -------------------------------------------------------------------

    @property
    def result(self) -> ServerFlight | None:
        """The final result, or None while more bytes are needed."""
        return self._result

    @property
    def bytes_seen(self) -> int:
        """How many fed bytes were taken into account; never more than ``max_bytes``."""
        return self._seen

    @property
    def max_bytes(self) -> int:
        """The byte budget given at construction."""
        return self._max_bytes

    def feed(self, data: bytes) -> None:
        """Take more bytes from the peer; ignored once a result exists."""
        if self._result is not None or not data:
            return
        room = self._max_bytes - self._seen
        chunk = data[:room]
        overflow = len(data) > room
        self._seen += len(chunk)
        self._buf += chunk
        try:
            self._process()
        except _Malformed as exc:
            self._finish_malformed(str(exc))
        if self._result is None and overflow:
            self._finish_too_large()

    def eof(self) -> ServerFlight:
        """The peer closed (or time ran out): settle and return the result."""
        if self._result is not None:
            return self._result
        if self._hello is not None:
            self._finish_accepted("flight ended early (peer closed or timed out after ServerHello)")
        elif self._seen == 0:
            self._set(ServerFlight(Outcome.CLOSED, detail="no bytes received before close or time-out"))
        elif self._records == 0 and self._buf and self._buf[0] not in (CONTENT_HANDSHAKE, CONTENT_ALERT):
            # Only a possible SSLv2 header can still be pending here; too short to be sure.
            self._finish_not_tls("peer sent bytes that are not a TLS record")
        else:
            self._set(
                ServerFlight(
                    Outcome.TRUNCATED,
                    detail=f"peer stopped after {self._seen} bytes, in the middle of a TLS record or message",
                )
            )
        assert self._result is not None
        return self._result

    # -- settling ---------------------------------------------------------------------

    def _set(self, flight: ServerFlight) -> None:
        if self._result is None:
            self._result = flight
            self._buf.clear()
            self._hs.clear()

    def _finish_accepted(self, note: str = "") -> None:
        hello = self._hello
        assert hello is not None
        what = "HelloRetryRequest" if hello.hello_retry else "ServerHello"
        detail = f"{what} {version_label(hello.version)} {suite_name(hello.cipher)}"
        if self._certificates:
            detail += f", {len(self._certificates)} certificate(s)"
        if note:
            detail += f"; {note}"
        alert_level, alert_desc = self._alert if self._alert is not None else (None, None)
        self._set(
            ServerFlight(
                Outcome.ACCEPTED,
                version=hello.version,
                cipher=hello.cipher,
                alert_level=alert_level,
                alert_description=alert_desc,
                hello_retry=hello.hello_retry,
                certificates=tuple(self._certificates),
                detail=detail,
            )
        )

    def _finish_not_tls(self, why: str, *, sslv2: bool = False, version: int | None = None) -> None:
        self._set(
            ServerFlight(
                Outcome.NOT_TLS,
                version=version,
                sslv2=sslv2,
                detail=f"{why}: {_printable_prefix(self._buf)}" if self._buf else why,
                head=bytes(self._buf[:64]),
            )
        )

    def _finish_malformed(self, why: str) -> None:
        if self._hello is not None:
            # The ServerHello is what a probe needs; a broken tail does not undo it.
            self._finish_accepted(f"stopped reading: {why}")
        else:
            self._set(ServerFlight(Outcome.NOT_TLS, detail=f"malformed TLS: {why}"))

    def _finish_too_large(self) -> None:
        if self._hello is not None:
            self._finish_accepted(f"stopped reading after {self._max_bytes} bytes (flight too large)")
        else:
            self._set(
                ServerFlight(
                    Outcome.TOO_LARGE,
                    detail=f"more than {self._max_bytes} bytes without a ServerHello or alert",
                )
            )

    # -- record layer -----------------------------------------------------------------

    def _process(self) -> None:
        while self._result is None:
            if self._records == 0 and self._buf and self._buf[0] & 0x80:
                self._check_sslv2()
                return
            if not self._check_header():
                return
            length = struct.unpack_from("!H", self._buf, 3)[0]
            if len(self._buf) < 5 + length:
                return
            content_type = self._buf[0]
            fragment = bytes(self._buf[5 : 5 + length])
            del self._buf[: 5 + length]
            self._records += 1
            self._record(content_type, fragment)

    def _check_header(self) -> bool:
        """Validate as much of the 5-byte record header as has arrived; True if complete."""
        buf = self._buf
        if not buf:
            return False
        content_type = buf[0]
        first = self._records == 0
        if first and content_type not in (CONTENT_HANDSHAKE, CONTENT_ALERT):
            self._finish_not_tls("not a TLS record")
            return False
        if content_type not in (
            CONTENT_HANDSHAKE,
            CONTENT_ALERT,
            CONTENT_CHANGE_CIPHER_SPEC,
            CONTENT_APPLICATION_DATA,
        ):
            raise _Malformed(f"unknown record content type {content_type}")
        if len(buf) >= 2 and buf[1] != 3:
            if first:
                self._finish_not_tls("not a TLS record (bad version byte)")
                return False
            raise _Malformed(f"record version major byte {buf[1]}")
        if len(buf) < 5:
            return False
        length = struct.unpack_from("!H", buf, 3)[0]
        if length > MAX_RECORD_LENGTH:
            if first:
                self._finish_not_tls(f"not a TLS record (length {length} too large)")
                return False
            raise _Malformed(f"record of {length} bytes exceeds {MAX_RECORD_LENGTH}")
        if length == 0 and content_type in (CONTENT_HANDSHAKE, CONTENT_ALERT):
            if first:
                self._finish_not_tls("not a TLS record (empty handshake/alert record)")
                return False
            raise _Malformed("empty handshake or alert record")
        return True

    def _check_sslv2(self) -> None:
        """An SSLv2 record header has the top bit set; an SSLv2 ServerHello has msg type 4.

        SSLv2 ServerHello: 2-byte header, type(1)=4, session_id_hit(1), certificate_type(1),
        version(2)=0x0002, certificate_length(2), cipher_specs_length(2), connection_id_length(2).
        """
        buf = self._buf
        if len(buf) >= 3 and buf[2] != 4:
            self._finish_not_tls("not a TLS record")
            return
        if len(buf) < 7:
            return
        length = ((buf[0] & 0x7F) << 8) | buf[1]
        if buf[3] > 1 or length < 11:
            self._finish_not_tls("not a TLS record")
            return
        version = struct.unpack_from("!H", buf, 5)[0]
        if version != 0x0002:
            self._finish_not_tls("not a TLS record")
            return
        self._finish_not_tls("SSLv2 ServerHello (the server speaks SSLv2)", sslv2=True, version=0x0002)

    def _record(self, content_type: int, fragment: bytes) -> None:
        if content_type == CONTENT_ALERT:
            self._on_alert(fragment)
        elif content_type == CONTENT_HANDSHAKE:
            self._hs += fragment
            self._handshake_messages()
        elif self._hello is not None:
            # ChangeCipherSpec / application data: the clear-text part of the flight is over
            # (TLS 1.3 middlebox CCS, or an abbreviated handshake we never asked for).
            self._finish_accepted()
        else:
            raise _Malformed(f"record of content type {content_type} before ServerHello")

    def _on_alert(self, fragment: bytes) -> None:
        if self._hs:
            raise _Malformed("alert inside a fragmented handshake message")
        if len(fragment) < 2:
            raise _Malformed("alert record shorter than 2 bytes")
        level, description = fragment[0], fragment[1]
        if self._hello is not None:
            self._alert = (level, description)
            self._finish_accepted(f"then alert {alert_name(description)}")
            return
        level_name = {1: "warning", 2: "fatal"}.get(level, f"level {level}")
        self._set(
            ServerFlight(
                Outcome.ALERT,
                alert_level=level,
                alert_description=description,
                detail=f"{level_name} alert {alert_name(description)} ({description})",
            )
        )

    # -- handshake layer --------------------------------------------------------------

    def _handshake_messages(self) -> None:
        while self._result is None and len(self._hs) >= 4:
            msg_type = self._hs[0]
            length = int.from_bytes(self._hs[1:4], "big")
            if length > self._max_bytes:
                # It can never fit in our budget: decide now rather than wait for bytes.
                if self._hello is None and msg_type != HS_SERVER_HELLO:
                    raise _Malformed(f"handshake message of {length} bytes")
                self._finish_too_large()
                return
            if len(self._hs) < 4 + length:
                return
            body = bytes(self._hs[4 : 4 + length])
            del self._hs[: 4 + length]
            self._message(msg_type, body)

    def _message(self, msg_type: int, body: bytes) -> None:
        name = _HANDSHAKE_NAMES.get(msg_type, f"type {msg_type}")
        if self._hello is None:
            if msg_type == HS_HELLO_REQUEST:
                return  # RFC 5246 §7.4.1.1: may arrive at any time, ignorable.
            if msg_type != HS_SERVER_HELLO:
                raise _Malformed(f"{name} before ServerHello")
            self._hello = _parse_server_hello(body)
            if self._hello.hello_retry or self._hello.version == TLSVersion.TLS1_3:
                self._finish_accepted()  # the rest of a TLS 1.3 flight is encrypted
            return
        if msg_type == HS_CERTIFICATE:
            self._on_certificate(body)
        elif msg_type == HS_SERVER_HELLO_DONE:
            self._finish_accepted()
        elif msg_type in (
            HS_SERVER_KEY_EXCHANGE,
            HS_CERTIFICATE_REQUEST,
            HS_CERTIFICATE_STATUS,
            HS_HELLO_REQUEST,
        ):
            return
        else:
            raise _Malformed(f"unexpected {name} after ServerHello")

    def _on_certificate(self, body: bytes) -> None:
        """TLS ≤ 1.2 Certificate: u24 list length, then u24-length-prefixed DER certificates."""
        if len(body) < 3:
            raise _Malformed("Certificate message shorter than its length field")
        total = int.from_bytes(body[:3], "big")
        if total != len(body) - 3:
            raise _Malformed("Certificate list length does not match the message")
        pos = 3
        while pos < len(body):
            if pos + 3 > len(body):
                raise _Malformed("truncated certificate length")
            n = int.from_bytes(body[pos : pos + 3], "big")
            pos += 3
            if n == 0 or pos + n > len(body):
                raise _Malformed("bad certificate length")
            if len(self._certificates) < MAX_CERTIFICATES:
                self._certificates.append(body[pos : pos + n])
            pos += n


def _parse_server_hello(body: bytes) -> _Hello:
    """Parse a ServerHello body (RFC 5246 §7.4.1.3, RFC 8446 §4.1.3); raise _Malformed."""
    if len(body) < 2 + 32 + 1:
        raise _Malformed("ServerHello too short")
    legacy_version = struct.unpack_from("!H", body, 0)[0]
    random = body[2:34]
    sid_len = body[34]
    if sid_len > 32:
        raise _Malformed("ServerHello session id longer than 32 bytes")
    pos = 35 + sid_len
    if pos + 3 > len(body):
        raise _Malformed("ServerHello too short for cipher suite and compression")
    cipher = struct.unpack_from("!H", body, pos)[0]
    pos += 3  # cipher suite + compression method
    negotiated: int = legacy_version
    if pos < len(body):
        if pos + 2 > len(body):
            raise _Malformed("ServerHello extensions length truncated")
        ext_total = struct.unpack_from("!H", body, pos)[0]
        pos += 2
        if pos + ext_total != len(body):
            raise _Malformed("ServerHello extensions length does not match")
        end = pos + ext_total
        seen: set[int] = set()
        while pos < end:
            if pos + 4 > end:
                raise _Malformed("truncated extension header")
            ext_type, ext_len = struct.unpack_from("!HH", body, pos)
            pos += 4
            if pos + ext_len > end:
                raise _Malformed("extension overruns ServerHello")
            if ext_type in seen:
                raise _Malformed(f"duplicate extension {ext_type}")
            seen.add(ext_type)
            if ext_type == EXT_SUPPORTED_VERSIONS:
                if ext_len != 2:
                    raise _Malformed("supported_versions in ServerHello must be 2 bytes")
                negotiated = struct.unpack_from("!H", body, pos)[0]
            pos += ext_len
    hello_retry = random == HELLO_RETRY_REQUEST_RANDOM
    return _Hello(version=_as_version(negotiated), cipher=cipher, hello_retry=hello_retry)
