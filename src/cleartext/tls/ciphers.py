"""The cipher-suite table: IANA code -> IANA name, weak classes, TLS 1.3 marker.

Why a hand-kept table: the scanner must name and classify whatever suite a server picks,
including suites that the local OpenSSL 3 no longer knows (export, RC4, single DES, and on
Debian even 3DES), so we cannot ask the ssl module. Names follow the IANA registry
("TLS Cipher Suites"); the few pre-standard suites that old OpenSSL, SChannel and
BoringSSL builds really offered (EXPORT1024, DHE_DSS with RC4, the draft ChaCha20 codes)
carry the names those implementations used.

The weak classes are derived from the IANA name by fixed rules (see ``_classify``) rather
than typed by hand for each entry: the name spells the key exchange and the cipher, so a
rule cannot drift from the name, and the unit tests pin the rules.

PSK, SRP, Kerberos and GOST suites are left out on purpose: a mail server that only
offers them to an anonymous client does not exist in practice, and each one we offer costs
two bytes in every ClientHello.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from types import MappingProxyType

__all__ = [
    "BROAD_SUITES",
    "COMPACT_SUITES",
    "SUITES",
    "TLS13_SUITES",
    "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
    "TLS_FALLBACK_SCSV",
    "WEAK_SUITES",
    "CipherSuite",
    "WeakClass",
    "is_tls13",
    "suite_name",
    "suites_in_class",
    "weak_classes",
]

TLS_EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
"""Signalling value (RFC 5746): harmless to send; tells the server we support secure renegotiation."""

TLS_FALLBACK_SCSV = 0x5600
"""Signalling value (RFC 7507) that we must never send: it asks the server to refuse a
lower version than its best, which is exactly what a version probe wants to observe."""


class WeakClass(StrEnum):
    """Why a suite is weak; the values are the strings stored in our JSON records."""

    NULL = "null"
    """No encryption at all: the data crosses the network in clear inside TLS records."""
    ANON = "anon"
    """Anonymous key exchange (DH_anon / ECDH_anon): no server authentication, trivially MITM-able."""
    EXPORT = "export"
    """1990s US export grade (40/56-bit keys, 512-bit RSA/DH): broken (FREAK, Logjam)."""
    RC4 = "rc4"
    """RC4 stream cipher: prohibited by RFC 7465, plaintext recovery attacks."""
    TRIPLE_DES = "3des"
    """3DES: 64-bit block, Sweet32 birthday attacks; deprecated."""
    DES = "des"
    """Single DES (56-bit key, or 40-bit export variant): brute-forceable."""
    STATIC_RSA = "static-rsa"
    """RSA key transport (TLS_RSA_WITH_*): no forward secrecy, ROBOT-style oracles."""


@dataclass(frozen=True, slots=True)
class CipherSuite:
    """One row of the table; ``weak`` is empty for suites we have nothing against."""

    code: int
    name: str
    weak: frozenset[WeakClass]
    tls13: bool = False

    @property
    def is_weak(self) -> bool:
        """True when the suite belongs to at least one weak class."""
        return bool(self.weak)


# (code, IANA name). Order inside each block is the order we prefer to offer them in.
_TLS13: tuple[tuple[int, str], ...] = (
    (0x1301, "TLS_AES_128_GCM_SHA256"),
    (0x1302, "TLS_AES_256_GCM_SHA384"),
    (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
    (0x1304, "TLS_AES_128_CCM_SHA256"),
    (0x1305, "TLS_AES_128_CCM_8_SHA256"),
)

_TLS12_AND_OLDER: tuple[tuple[int, str], ...] = (
    # Forward-secret AEAD suites first: they are what a well-configured server picks.
    (0xC02B, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02C, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0xCCA9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0xCCAA, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
    (0x009E, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009F, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"),
    (0x00A2, "TLS_DHE_DSS_WITH_AES_128_GCM_SHA256"),
    (0x00A3, "TLS_DHE_DSS_WITH_AES_256_GCM_SHA384"),
    (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
    (0xC0AD, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM"),
    (0xC0AE, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8"),
    (0xC0AF, "TLS_ECDHE_ECDSA_WITH_AES_256_CCM_8"),
    (0xC09E, "TLS_DHE_RSA_WITH_AES_128_CCM"),
    (0xC09F, "TLS_DHE_RSA_WITH_AES_256_CCM"),
    (0xC0A2, "TLS_DHE_RSA_WITH_AES_128_CCM_8"),
    (0xC0A3, "TLS_DHE_RSA_WITH_AES_256_CCM_8"),
    (0xC05C, "TLS_ECDHE_ECDSA_WITH_ARIA_128_GCM_SHA256"),
    (0xC05D, "TLS_ECDHE_ECDSA_WITH_ARIA_256_GCM_SHA384"),
    (0xC060, "TLS_ECDHE_RSA_WITH_ARIA_128_GCM_SHA256"),
    (0xC061, "TLS_ECDHE_RSA_WITH_ARIA_256_GCM_SHA384"),
    (0xC052, "TLS_DHE_RSA_WITH_ARIA_128_GCM_SHA256"),
    (0xC053, "TLS_DHE_RSA_WITH_ARIA_256_GCM_SHA384"),
    (0xC056, "TLS_DHE_DSS_WITH_ARIA_128_GCM_SHA256"),
    (0xC057, "TLS_DHE_DSS_WITH_ARIA_256_GCM_SHA384"),
    (0xC086, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_GCM_SHA256"),
    (0xC087, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_GCM_SHA384"),
    (0xC08A, "TLS_ECDHE_RSA_WITH_CAMELLIA_128_GCM_SHA256"),
    (0xC08B, "TLS_ECDHE_RSA_WITH_CAMELLIA_256_GCM_SHA384"),
    (0xC07C, "TLS_DHE_RSA_WITH_CAMELLIA_128_GCM_SHA256"),
    (0xC07D, "TLS_DHE_RSA_WITH_CAMELLIA_256_GCM_SHA384"),
    # Forward-secret CBC suites.
    (0xC023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xC027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0xC028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"),
    (0xC009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC00A, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    (0xC014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"),
    (0x006B, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"),
    (0x0040, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA256"),
    (0x006A, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA256"),
    (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"),
    (0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"),
    (0x0032, "TLS_DHE_DSS_WITH_AES_128_CBC_SHA"),
    (0x0038, "TLS_DHE_DSS_WITH_AES_256_CBC_SHA"),
    (0xC048, "TLS_ECDHE_ECDSA_WITH_ARIA_128_CBC_SHA256"),
    (0xC049, "TLS_ECDHE_ECDSA_WITH_ARIA_256_CBC_SHA384"),
    (0xC04C, "TLS_ECDHE_RSA_WITH_ARIA_128_CBC_SHA256"),
    (0xC04D, "TLS_ECDHE_RSA_WITH_ARIA_256_CBC_SHA384"),
    (0xC044, "TLS_DHE_RSA_WITH_ARIA_128_CBC_SHA256"),
    (0xC045, "TLS_DHE_RSA_WITH_ARIA_256_CBC_SHA384"),
    (0xC072, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xC073, "TLS_ECDHE_ECDSA_WITH_CAMELLIA_256_CBC_SHA384"),
    (0xC076, "TLS_ECDHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0xC077, "TLS_ECDHE_RSA_WITH_CAMELLIA_256_CBC_SHA384"),
    (0x00BE, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00C4, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x00BD, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00C3, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x0045, "TLS_DHE_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0088, "TLS_DHE_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0044, "TLS_DHE_DSS_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0087, "TLS_DHE_DSS_WITH_CAMELLIA_256_CBC_SHA"),
    (0x009A, "TLS_DHE_RSA_WITH_SEED_CBC_SHA"),
    (0x0099, "TLS_DHE_DSS_WITH_SEED_CBC_SHA"),
    # Pre-standard ChaCha20 code points (old BoringSSL/Chrome, some CDNs).
    (0xCC13, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD"),
    (0xCC14, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256_OLD"),
    (0xCC15, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256_OLD"),
    # Static (EC)DH key exchange with a certificate: no forward secrecy, but not RSA transport.
    (0xC02D, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256"),
    (0xC02E, "TLS_ECDH_ECDSA_WITH_AES_256_GCM_SHA384"),
    (0xC031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"),
    (0xC032, "TLS_ECDH_RSA_WITH_AES_256_GCM_SHA384"),
    (0xC025, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256"),
    (0xC026, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA384"),
    (0xC029, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA256"),
    (0xC02A, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA384"),
    (0xC004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA"),
    (0xC005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA"),
    (0xC00E, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA"),
    (0xC00F, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"),
    (0x00A0, "TLS_DH_RSA_WITH_AES_128_GCM_SHA256"),
    (0x00A1, "TLS_DH_RSA_WITH_AES_256_GCM_SHA384"),
    (0x00A4, "TLS_DH_DSS_WITH_AES_128_GCM_SHA256"),
    (0x00A5, "TLS_DH_DSS_WITH_AES_256_GCM_SHA384"),
    (0x003F, "TLS_DH_RSA_WITH_AES_128_CBC_SHA256"),
    (0x0069, "TLS_DH_RSA_WITH_AES_256_CBC_SHA256"),
    (0x003E, "TLS_DH_DSS_WITH_AES_128_CBC_SHA256"),
    (0x0068, "TLS_DH_DSS_WITH_AES_256_CBC_SHA256"),
    (0x0031, "TLS_DH_RSA_WITH_AES_128_CBC_SHA"),
    (0x0037, "TLS_DH_RSA_WITH_AES_256_CBC_SHA"),
    (0x0030, "TLS_DH_DSS_WITH_AES_128_CBC_SHA"),
    (0x0036, "TLS_DH_DSS_WITH_AES_256_CBC_SHA"),
    (0x0043, "TLS_DH_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0086, "TLS_DH_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0042, "TLS_DH_DSS_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0085, "TLS_DH_DSS_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0098, "TLS_DH_RSA_WITH_SEED_CBC_SHA"),
    (0x0097, "TLS_DH_DSS_WITH_SEED_CBC_SHA"),
    # RSA key transport (static-rsa): the bulk of what old mail servers pick.
    (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256"),
    (0x009D, "TLS_RSA_WITH_AES_256_GCM_SHA384"),
    (0xC09C, "TLS_RSA_WITH_AES_128_CCM"),
    (0xC09D, "TLS_RSA_WITH_AES_256_CCM"),
    (0xC0A0, "TLS_RSA_WITH_AES_128_CCM_8"),
    (0xC0A1, "TLS_RSA_WITH_AES_256_CCM_8"),
    (0xC050, "TLS_RSA_WITH_ARIA_128_GCM_SHA256"),
    (0xC051, "TLS_RSA_WITH_ARIA_256_GCM_SHA384"),
    (0xC07A, "TLS_RSA_WITH_CAMELLIA_128_GCM_SHA256"),
    (0xC07B, "TLS_RSA_WITH_CAMELLIA_256_GCM_SHA384"),
    (0x003C, "TLS_RSA_WITH_AES_128_CBC_SHA256"),
    (0x003D, "TLS_RSA_WITH_AES_256_CBC_SHA256"),
    (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA"),
    (0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"),
    (0xC03C, "TLS_RSA_WITH_ARIA_128_CBC_SHA256"),
    (0xC03D, "TLS_RSA_WITH_ARIA_256_CBC_SHA384"),
    (0x00BA, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00C0, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0084, "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA"),
    (0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"),
    (0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA"),
    # 3DES.
    (0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA"),
    (0xC003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA"),
    (0xC00D, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x0010, "TLS_DH_RSA_WITH_3DES_EDE_CBC_SHA"),
    (0x000D, "TLS_DH_DSS_WITH_3DES_EDE_CBC_SHA"),
    (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"),
    # RC4.
    (0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"),
    (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"),
    (0xC002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA"),
    (0xC00C, "TLS_ECDH_RSA_WITH_RC4_128_SHA"),
    (0x0066, "TLS_DHE_DSS_WITH_RC4_128_SHA"),
    (0x0005, "TLS_RSA_WITH_RC4_128_SHA"),
    (0x0004, "TLS_RSA_WITH_RC4_128_MD5"),
    # Single DES.
    (0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"),
    (0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA"),
    (0x000F, "TLS_DH_RSA_WITH_DES_CBC_SHA"),
    (0x000C, "TLS_DH_DSS_WITH_DES_CBC_SHA"),
    (0x0009, "TLS_RSA_WITH_DES_CBC_SHA"),
    # Export grade, including the never-standardised EXPORT1024 (56-bit) suites.
    (0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA"),
    (0x0063, "TLS_DHE_DSS_EXPORT1024_WITH_DES_CBC_SHA"),
    (0x0064, "TLS_RSA_EXPORT1024_WITH_RC4_56_SHA"),
    (0x0065, "TLS_DHE_DSS_EXPORT1024_WITH_RC4_56_SHA"),
    (0x0060, "TLS_RSA_EXPORT1024_WITH_RC4_56_MD5"),
    (0x0061, "TLS_RSA_EXPORT1024_WITH_RC2_CBC_56_MD5"),
    (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA"),
    (0x000E, "TLS_DH_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x000B, "TLS_DH_DSS_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5"),
    (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
    # Anonymous (no authentication).
    (0x00A6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256"),
    (0x00A7, "TLS_DH_anon_WITH_AES_256_GCM_SHA384"),
    (0x006C, "TLS_DH_anon_WITH_AES_128_CBC_SHA256"),
    (0x006D, "TLS_DH_anon_WITH_AES_256_CBC_SHA256"),
    (0x0034, "TLS_DH_anon_WITH_AES_128_CBC_SHA"),
    (0x003A, "TLS_DH_anon_WITH_AES_256_CBC_SHA"),
    (0x00BF, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA256"),
    (0x00C5, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA256"),
    (0x0046, "TLS_DH_anon_WITH_CAMELLIA_128_CBC_SHA"),
    (0x0089, "TLS_DH_anon_WITH_CAMELLIA_256_CBC_SHA"),
    (0x009B, "TLS_DH_anon_WITH_SEED_CBC_SHA"),
    (0xC018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA"),
    (0xC019, "TLS_ECDH_anon_WITH_AES_256_CBC_SHA"),
    (0xC017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0xC016, "TLS_ECDH_anon_WITH_RC4_128_SHA"),
    (0x001B, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"),
    (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"),
    (0x001A, "TLS_DH_anon_WITH_DES_CBC_SHA"),
    (0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA"),
    (0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5"),
    # No encryption.
    (0xC006, "TLS_ECDHE_ECDSA_WITH_NULL_SHA"),
    (0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA"),
    (0xC001, "TLS_ECDH_ECDSA_WITH_NULL_SHA"),
    (0xC00B, "TLS_ECDH_RSA_WITH_NULL_SHA"),
    (0xC015, "TLS_ECDH_anon_WITH_NULL_SHA"),
    (0x003B, "TLS_RSA_WITH_NULL_SHA256"),
    (0x0002, "TLS_RSA_WITH_NULL_SHA"),
    (0x0001, "TLS_RSA_WITH_NULL_MD5"),
)

# Known for naming only: never offered by us (0x0000 may not be negotiated, and the fallback
# SCSV would make the server refuse exactly the downgrade a version probe is looking for).
_NAME_ONLY: tuple[tuple[int, str], ...] = (
    (0x0000, "TLS_NULL_WITH_NULL_NULL"),
    (TLS_FALLBACK_SCSV, "TLS_FALLBACK_SCSV"),
)

_SIGNALLING: tuple[tuple[int, str], ...] = (
    (TLS_EMPTY_RENEGOTIATION_INFO_SCSV, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
)

_DES_RE = re.compile(r"_DES(40)?_CBC_")


def _classify(code: int, name: str) -> frozenset[WeakClass]:
    """Derive the weak classes from an IANA suite name.

    The IANA name is ``TLS_<kx>[_EXPORT|_EXPORT1024]_WITH_<cipher>_<mac>``, so each class is a
    property of one of those parts; classifying by rule keeps the table and the classes in step.
    """
    if name.endswith("_SCSV") or code == TLS_FALLBACK_SCSV:
        return frozenset()
    kx, _, cipher = name.partition("_WITH_")
    classes: set[WeakClass] = set()
    if cipher.startswith("NULL_") or name == "TLS_NULL_WITH_NULL_NULL":
        classes.add(WeakClass.NULL)
    if "_anon" in kx or name == "TLS_NULL_WITH_NULL_NULL":
        classes.add(WeakClass.ANON)
    if "EXPORT" in kx:
        classes.add(WeakClass.EXPORT)
    if cipher.startswith("RC4_"):
        classes.add(WeakClass.RC4)
    if cipher.startswith("3DES_"):
        classes.add(WeakClass.TRIPLE_DES)
    if _DES_RE.search("_" + cipher):
        classes.add(WeakClass.DES)
    if kx == "TLS_RSA" or kx.startswith("TLS_RSA_EXPORT"):
        classes.add(WeakClass.STATIC_RSA)
    return frozenset(classes)


def _build() -> dict[int, CipherSuite]:
    table: dict[int, CipherSuite] = {}
    for code, name in _TLS13:
        table[code] = CipherSuite(code, name, frozenset(), tls13=True)
    for code, name in (*_TLS12_AND_OLDER, *_SIGNALLING, *_NAME_ONLY):
        if code in table:  # pragma: no cover - guarded by the unit tests
            raise AssertionError(f"duplicate cipher suite 0x{code:04X}")
        table[code] = CipherSuite(code, name, _classify(code, name))
    return table


SUITES: Mapping[int, CipherSuite] = MappingProxyType(_build())
"""Every suite we can name, by IANA code."""

_NEVER_OFFER = frozenset(code for code, _ in _NAME_ONLY)

TLS13_SUITES: tuple[int, ...] = tuple(code for code, _ in _TLS13)
"""The five TLS 1.3 suites (RFC 8446 appendix B.4), in our preference order."""

WEAK_SUITES: tuple[int, ...] = tuple(s.code for s in SUITES.values() if s.weak and s.code not in _NEVER_OFFER)
"""Every offerable suite that belongs to at least one weak class."""

BROAD_SUITES: tuple[int, ...] = (
    *TLS13_SUITES,
    *(code for code, _ in _TLS12_AND_OLDER if not SUITES[code].weak),
    *(code for code, _ in _TLS12_AND_OLDER if SUITES[code].weak),
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
)
"""Everything we know, strong first then weak, for version probes.

A version probe wants *some* ServerHello whatever the server's cipher policy, so it offers all
suites; strong ones first so that a server honouring client order picks a sane one. TLS 1.3
suites are included (servers ignore unknown suites below 1.3), TLS_FALLBACK_SCSV never is.
"""


_RARELY_DEPLOYED = re.compile(r"^TLS_(DH_RSA|DH_DSS|ECDH_ECDSA|ECDH_RSA)_|_OLD$|_ARIA_|_CCM_8")

COMPACT_SUITES: tuple[int, ...] = tuple(
    code for code in BROAD_SUITES if SUITES[code].tls13 or not _RARELY_DEPLOYED.search(SUITES[code].name)
)
"""BROAD_SUITES without TLS ≤ 1.2 suites nobody deploys (static (EC)DH with certificates, ARIA,
CCM_8, draft ChaCha20): fewer than 128 suites, still every weak class and key exchange in use.

Why it exists: some old servers answer a ClientHello carrying 128 or more suites with an
illegal_parameter alert (or drop it), which would read as "version refused". A version probe
that gets an alert or a close with BROAD_SUITES should be retried once with this list.
"""


def suite_name(code: int) -> str:
    """IANA name of ``code``, or ``0x%04X`` for a code we do not know (never raises)."""
    suite = SUITES.get(code)
    return suite.name if suite is not None else f"0x{code:04X}"


def weak_classes(code: int) -> frozenset[WeakClass]:
    """Weak classes of ``code``; empty for strong and for unknown suites."""
    suite = SUITES.get(code)
    return suite.weak if suite is not None else frozenset()


def is_tls13(code: int) -> bool:
    """True for the TLS 1.3 suites, which only mean something in a TLS 1.3 handshake."""
    suite = SUITES.get(code)
    return suite is not None and suite.tls13


@cache  # a handful of classes; asked on every endpoint with legacy TLS
def suites_in_class(cls: WeakClass | str) -> tuple[int, ...]:
    """Offerable suites in weak class ``cls``, in preference order, for a class probe.

    A class probe offers only these suites: if the server answers with a ServerHello, it
    accepts at least one suite of the class.
    """
    wanted = WeakClass(cls)
    return tuple(code for code in WEAK_SUITES if wanted in SUITES[code].weak)
