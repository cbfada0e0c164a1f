"""Hand-built ClientHello messages (sans-IO: bytes out, no socket, no ssl module).

Why build hellos ourselves: the local OpenSSL 3 refuses to *offer* SSLv3 and most weak
suites, yet a scanner must find out whether a server would *accept* them. Since we only
read the server's first flight and never finish a handshake, a ClientHello is all the TLS
we need to write, and it never carries a credential.

Shapes follow what real clients send, because odd hellos make some servers misbehave:
record version 0x0301 for every TLS hello (RFC 8446 appendix D, what browsers do), the
legacy_version set to the probed version, no extensions at all for SSLv3, and the RFC 7685
padding extension so that no hello lands in the 256–511 byte range that hangs some F5 boxes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import struct
from collections.abc import Sequence
from enum import IntEnum
from functools import lru_cache

from cleartext.record import TLS_VERSION_ORDER, tls_label
from cleartext.tls.ciphers import TLS_EMPTY_RENEGOTIATION_INFO_SCSV, TLS_FALLBACK_SCSV

__all__ = [
    "MAX_RECORD_PLAINTEXT",
    "TLSVersion",
    "client_hello",
    "sni_hostname",
    "version_label",
]

MAX_RECORD_PLAINTEXT = 1 << 14
"""Largest record fragment a peer must accept (RFC 5246 §6.2.1, RFC 8446 §5.1)."""

# Record layer content types and handshake types.
CONTENT_CHANGE_CIPHER_SPEC = 20
CONTENT_ALERT = 21
CONTENT_HANDSHAKE = 22
CONTENT_APPLICATION_DATA = 23
HANDSHAKE_CLIENT_HELLO = 1

# Extension code points (IANA "TLS ExtensionType Values").
EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_EC_POINT_FORMATS = 11
EXT_SIGNATURE_ALGORITHMS = 13
EXT_PADDING = 21
EXT_SUPPORTED_VERSIONS = 43
EXT_PSK_KEY_EXCHANGE_MODES = 45
EXT_KEY_SHARE = 51
EXT_RENEGOTIATION_INFO = 0xFF01

GROUP_X25519 = 0x001D

# Broad on purpose: a probe must not fail because we left out the one group or signature
# scheme an old server insists on. x25519 first: it is the group we send a key share for.
SUPPORTED_GROUPS: tuple[int, ...] = (
    GROUP_X25519,  # x25519
    0x0017,  # secp256r1
    0x0018,  # secp384r1
    0x0019,  # secp521r1
    0x001E,  # x448
    0x001A,  # brainpoolP256r1
    0x001B,  # brainpoolP384r1
    0x001C,  # brainpoolP512r1
    0x0016,  # secp256k1
    0x0100,  # ffdhe2048
    0x0101,  # ffdhe3072
    0x0102,  # ffdhe4096
    0x0103,  # ffdhe6144
    0x0104,  # ffdhe8192
)

SIGNATURE_ALGORITHMS: tuple[int, ...] = (
    0x0403,  # ecdsa_secp256r1_sha256
    0x0503,  # ecdsa_secp384r1_sha384
    0x0603,  # ecdsa_secp521r1_sha512
    0x0807,  # ed25519
    0x0808,  # ed448
    0x0804,  # rsa_pss_rsae_sha256
    0x0805,  # rsa_pss_rsae_sha384
    0x0806,  # rsa_pss_rsae_sha512
    0x0809,  # rsa_pss_pss_sha256
    0x080A,  # rsa_pss_pss_sha384
    0x080B,  # rsa_pss_pss_sha512
    0x0401,  # rsa_pkcs1_sha256
    0x0501,  # rsa_pkcs1_sha384
    0x0601,  # rsa_pkcs1_sha512
    0x0303,  # ecdsa_sha224 (legacy)
    0x0301,  # rsa_pkcs1_sha224 (legacy)
    0x0402,  # dsa_sha256 (legacy)
    0x0502,  # dsa_sha384 (legacy)
    0x0602,  # dsa_sha512 (legacy)
    0x0302,  # dsa_sha224 (legacy)
    0x0203,  # ecdsa_sha1
    0x0201,  # rsa_pkcs1_sha1
    0x0202,  # dsa_sha1
)


class TLSVersion(IntEnum):
    """Protocol versions as they appear on the wire; ``label`` is the string in our JSON."""

    SSL3 = 0x0300
    TLS1_0 = 0x0301
    TLS1_1 = 0x0302
    TLS1_2 = 0x0303
    TLS1_3 = 0x0304

    @property
    def label(self) -> str:
        """Human and JSON name: ``SSLv3``, ``TLSv1.0`` … ``TLSv1.3``."""
        return _LABELS[self]

    @classmethod
    def from_label(cls, label: str | None) -> TLSVersion | None:
        """The version a label names (OpenSSL's ``TLSv1`` too); None for none or one we do not know."""
        return _BY_LABEL.get(tls_label(label) or "")


# The labels are the record's (cleartext.record.TLS_VERSION_ORDER), in the same order as the enum.
_LABELS: dict[TLSVersion, str] = dict(zip(TLSVersion, TLS_VERSION_ORDER, strict=True))
_BY_LABEL: dict[str, TLSVersion] = {label: version for version, label in _LABELS.items()}


def version_label(version: TLSVersion | int | None) -> str:
    """Label of a known version, ``0x%04X`` for an unknown one, ``"none"`` for None.

    Servers do answer with versions we do not know (draft TLS 1.3 codes like 0x7F1C, garbage),
    and a report still has to say something.
    """
    if version is None:
        return "none"
    try:
        return TLSVersion(version).label
    except ValueError:
        return f"0x{int(version):04X}"


_LDH_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


def sni_hostname(server_name: str | None) -> bytes | None:
    """The host name to put in the SNI extension, or None when SNI must be left out.

    RFC 6066 forbids IP literals in SNI and wants the ASCII (A-label) form of the DNS name
    without a trailing dot. Anything we cannot turn into a valid DNS name is skipped rather
    than raised: a probe is still worth doing without SNI.
    """
    if not server_name:
        return None
    name = server_name.strip().rstrip(".")
    if not name:
        return None
    try:
        ipaddress.ip_address(name.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    else:
        return None
    try:
        ascii_name = name.encode("idna")
    except UnicodeError:
        return None
    if len(ascii_name) > 253:
        return None
    text = ascii_name.decode("ascii")
    labels = text.split(".")
    if not all(_LDH_LABEL.match(label) for label in labels):
        return None
    # An all-numeric name that is not an IP address (e.g. "1.2.3") is not a host name either.
    if labels[-1].isdigit():
        return None
    return text.lower().encode("ascii")


def _u8(n: int) -> bytes:
    return struct.pack("!B", n)


def _u16(n: int) -> bytes:
    return struct.pack("!H", n)


def _u24(n: int) -> bytes:
    return struct.pack("!I", n)[1:]


def _vec8(data: bytes) -> bytes:
    if len(data) > 0xFF:
        raise ValueError("vector too long for an 8-bit length")
    return _u8(len(data)) + data


def _vec16(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError("vector too long for a 16-bit length")
    return _u16(len(data)) + data


def _ext(ext_type: int, body: bytes) -> bytes:
    return _u16(ext_type) + _vec16(body)


def _u16_list(values: Sequence[int]) -> bytes:
    return b"".join(_u16(v) for v in values)


def _derived(seed: bytes, label: bytes, n: int) -> bytes:
    """Deterministic bytes from a caller-given random, so that a given ``random`` gives
    byte-identical hellos (reproducible tests); without one we use os.urandom instead."""
    return hashlib.sha256(label + seed).digest()[:n]


def _server_name_ext(host: bytes) -> bytes:
    # ServerNameList: one entry of type host_name(0).
    entry = _u8(0) + _vec16(host)
    return _ext(EXT_SERVER_NAME, _vec16(entry))


def _extensions(
    version: TLSVersion, suites: Sequence[int], host: bytes | None, seed: bytes | None
) -> list[bytes]:
    exts: list[bytes] = []
    if host is not None:
        exts.append(_server_name_ext(host))
    if version is TLSVersion.TLS1_3:
        exts.append(_ext(EXT_SUPPORTED_VERSIONS, _vec8(_u16(TLSVersion.TLS1_3))))
        exts.append(_ext(EXT_SUPPORTED_GROUPS, _vec16(_u16_list(SUPPORTED_GROUPS))))
        # Any 32 bytes are a valid x25519 public key (RFC 7748 §5): the server can compute
        # a shared secret we never will, which is fine since we stop at its ServerHello.
        share = _derived(seed, b"key_share", 32) if seed is not None else os.urandom(32)
        key_share_entry = _u16(GROUP_X25519) + _vec16(share)
        exts.append(_ext(EXT_KEY_SHARE, _vec16(key_share_entry)))
        exts.append(_ext(EXT_SIGNATURE_ALGORITHMS, _vec16(_u16_list(SIGNATURE_ALGORITHMS))))
        exts.append(_ext(EXT_PSK_KEY_EXCHANGE_MODES, _vec8(_u8(1))))  # psk_dhe_ke
    else:
        exts.append(_ext(EXT_SUPPORTED_GROUPS, _vec16(_u16_list(SUPPORTED_GROUPS))))
        exts.append(_ext(EXT_EC_POINT_FORMATS, _vec8(_u8(0))))  # uncompressed
        # Servers below TLS 1.2 must ignore it (RFC 5246 §7.4.1.4.1); TLS 1.2 needs it for SHA-1 certs.
        exts.append(_ext(EXT_SIGNATURE_ALGORITHMS, _vec16(_u16_list(SIGNATURE_ALGORITHMS))))
        # RFC 5746: the empty extension or the SCSV, not both.
        if TLS_EMPTY_RENEGOTIATION_INFO_SCSV not in suites:
            exts.append(_ext(EXT_RENEGOTIATION_INFO, _vec8(b"")))
    return exts


def client_hello(
    version: TLSVersion,
    suites: Sequence[int],
    server_name: str | None = None,
    *,
    random: bytes | None = None,
) -> bytes:
    """The complete record(s) to write on the wire to offer ``version`` with ``suites``.

    ``version`` is the one version offered: legacy_version for SSLv3–TLS 1.2, and the only
    entry of supported_versions for TLS 1.3 (whose legacy_version is 0x0303). ``server_name``
    becomes SNI when it is a DNS name (IP literals and invalid names are left out).
    ``random`` (32 bytes) makes the output deterministic; by default os.urandom is used.

    Raises ValueError for an empty or oversized suite list, a code outside 0..0xFFFF, a bad
    ``random``, or TLS_FALLBACK_SCSV in ``suites`` (it would make servers refuse the very
    downgrade we probe for).
    """
    if random is not None:
        return _build(version, suites, server_name, random)
    template, fresh = _template(TLSVersion(version), tuple(suites), server_name)
    if not fresh:  # pragma: no cover - a hello split over several records: built afresh each time
        return _build(version, suites, server_name, None)
    out = bytearray(template)
    for offset in fresh:
        out[offset : offset + 32] = os.urandom(32)
    return bytes(out)


_TEMPLATE_SEED = bytes(range(32))


@lru_cache(maxsize=256)
def _template(
    version: TLSVersion, suites: tuple[int, ...], server_name: str | None
) -> tuple[bytes, tuple[int, ...]]:
    """A hello built once per (version, suites, name), and where its random fields lie.

    A scan sends the same few hellos thousands of times; building one costs ~25 µs of Python (a few per
    cent of a dense scan's CPU), filling 32 fresh bytes into each random field a fraction of that. The
    fields -- client random, and for TLS 1.3 the session id and the key share -- are found in a hello
    built from a known seed. Only a hello that fits one record is kept (the offsets are those of the
    unfragmented handshake); ``()`` means "build it afresh".
    """
    template = _build(version, suites, server_name, _TEMPLATE_SEED)
    if len(template) > 5 + MAX_RECORD_PLAINTEXT:
        return template, ()
    # Record header (5) + handshake header (4) + legacy_version (2), then the client random.
    fields = [11]
    if version is TLSVersion.TLS1_3:
        fields.append(11 + 32 + 1)  # the session id, after its length byte
        share = _derived(_TEMPLATE_SEED, b"key_share", 32)
        fields.append(template.index(share))
    return template, tuple(fields)


def _build(
    version: TLSVersion, suites: Sequence[int], server_name: str | None, random: bytes | None
) -> bytes:
    version = TLSVersion(version)
    if not suites:
        raise ValueError("a ClientHello needs at least one cipher suite")
    if len(suites) > 0x7FFF:
        raise ValueError("too many cipher suites for one ClientHello")
    for code in suites:
        if not 0 <= code <= 0xFFFF:
            raise ValueError(f"cipher suite code out of range: {code!r}")
        if code == TLS_FALLBACK_SCSV:
            raise ValueError("refusing to send TLS_FALLBACK_SCSV in a probe")
    if random is None:
        client_random = os.urandom(32)
        seed: bytes | None = None
    else:
        if len(random) != 32:
            raise ValueError("random must be exactly 32 bytes")
        client_random = bytes(random)
        seed = client_random

    if version is TLSVersion.TLS1_3:
        legacy_version = TLSVersion.TLS1_2
        # RFC 8446 §4.1.2 / appendix D.4: a non-empty session id (middlebox compatibility mode).
        session_id = _derived(seed, b"session_id", 32) if seed is not None else os.urandom(32)
    else:
        legacy_version = version
        session_id = b""

    body = (
        _u16(legacy_version)
        + client_random
        + _vec8(session_id)
        + _vec16(_u16_list(suites))
        + _vec8(b"\x00")  # compression methods: null only
    )
    if version is not TLSVersion.SSL3:
        # SSLv3 servers predate extensions; some choke on them, so SSLv3 hellos carry none.
        exts = _extensions(version, suites, sni_hostname(server_name), seed)
        unpadded = 4 + len(body) + 2 + sum(len(e) for e in exts)
        if 0x100 <= unpadded < 0x200:
            # RFC 7685 padding to 512 bytes: works around servers that hang on 256–511 byte hellos.
            missing = 0x200 - unpadded
            exts.append(_ext(EXT_PADDING, bytes(max(missing - 4, 1))))
        body += _vec16(b"".join(exts))

    if len(body) > 0xFFFFFF:  # pragma: no cover - impossible with a 16-bit suite vector
        raise ValueError("ClientHello too large")
    handshake = _u8(HANDSHAKE_CLIENT_HELLO) + _u24(len(body)) + body
    record_version = TLSVersion.SSL3 if version is TLSVersion.SSL3 else TLSVersion.TLS1_0
    # Fragment across records if needed (RFC 5246 §6.2.1 allows handshake messages to span records).
    out = bytearray()
    for start in range(0, len(handshake), MAX_RECORD_PLAINTEXT):
        fragment = handshake[start : start + MAX_RECORD_PLAINTEXT]
        out += _u8(CONTENT_HANDSHAKE) + _u16(record_version) + _u16(len(fragment)) + fragment
    return bytes(out)
