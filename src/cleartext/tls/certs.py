"""Certificate facts and checks: what a chain says, whether it is trusted, whether it names the host.

The probe hands over the DER chain it saw (leaf first); we never need a second connection to verify it:
chain building runs offline with ``cryptography.x509.verification`` against the system's trust store
(plus operator-given CA files). Expiry is judged separately from trust, so an expired certificate from a
good CA is reported as expired, not as untrusted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from cleartext.record import Certificate
from cleartext.text import sanitize

SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",  # Debian, Ubuntu
    "/etc/pki/tls/certs/ca-bundle.crt",  # Fedora, RHEL
    "/etc/ssl/cert.pem",  # Alpine, BSD, macOS
)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_facts(cert: x509.Certificate) -> tuple[str, int]:
    try:
        key = cert.public_key()
    except (ValueError, TypeError):  # unsupported or malformed key
        return "unknown", 0
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ec", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "dsa", key.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "ed448", 456
    return "unknown", 0


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [sanitize(name, 255) for name in san.get_values_for_type(x509.DNSName)][:100]


def _ip_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [str(ip) for ip in san.get_values_for_type(x509.IPAddress)][:100]


def _name(name: x509.Name) -> str:
    try:
        return sanitize(name.rfc4514_string(), 512)
    except ValueError:
        return "(unparseable name)"


def _signature_algorithm(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return getattr(oid, "_name", None) or oid.dotted_string


def load(der: bytes) -> x509.Certificate | None:
    try:
        with warnings.catch_warnings():  # a server's odd certificate is a fact to report, not to warn about
            warnings.simplefilter("ignore")
            return x509.load_der_x509_certificate(der)
    except ValueError:
        return None


def describe(der: bytes) -> Certificate:
    """The facts a record keeps about one certificate; a DER blob we cannot parse still gets a hash."""
    fingerprint = hashlib.sha256(der).hexdigest()
    cert = load(der)
    if cert is None:
        return Certificate(
            sha256=fingerprint,
            subject="(unparseable certificate)",
            issuer="",
            not_before="",
            not_after="",
            key_type="unknown",
            key_bits=0,
            signature_algorithm="unknown",
        )
    key_type, key_bits = _key_facts(cert)
    return Certificate(
        sha256=fingerprint,
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        not_before=_iso(cert.not_valid_before_utc),
        not_after=_iso(cert.not_valid_after_utc),
        key_type=key_type,
        key_bits=key_bits,
        signature_algorithm=_signature_algorithm(cert),
        dns_names=_dns_names(cert),
        self_signed=cert.subject == cert.issuer,
    )


# --- trust ---------------------------------------------------------------------------------------


def _read_pem_bundle(path: str) -> list[x509.Certificate]:
    try:
        data = Path(path).read_bytes()
    except OSError:
        return []
    try:
        # Old roots in system bundles trip cryptography's deprecation warnings (negative serials).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return x509.load_pem_x509_certificates(data)
    except ValueError:
        return []


def read_ca_file(path: str) -> list[x509.Certificate]:
    """The certificates of a CA file the operator gave (``--ca-file``): PEM, one or more.

    Raises ValueError with a one-line reason when the file cannot be read or holds no certificate (a key,
    a DER file, anything else): accepted silently, such a file would make every chain "untrusted".
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read CA file {path}: {exc.strerror or exc}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if b"PRIVATE KEY-----" in data:
            what = "a private key, no certificate"
        elif data[:1] == b"\x30":
            what = f"no PEM certificate (DER? convert it: openssl x509 -inform der -in {path} -out ca.pem)"
        else:
            what = "no PEM certificate (-----BEGIN CERTIFICATE-----)"
        raise ValueError(f"CA file {path} holds {what}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        reason = sanitize(str(exc), 120)
        raise ValueError(f"CA file {path}: a certificate in it cannot be read ({reason})") from None


@lru_cache(maxsize=8)
def trust_roots(extra_ca_files: tuple[str, ...] = ()) -> tuple[x509.Certificate, ...]:
    """The system trust store plus operator-given CA files, loaded once per process."""
    roots: list[x509.Certificate] = []
    paths = [ssl.get_default_verify_paths().cafile or "", *SYSTEM_BUNDLES]
    for path in paths:
        if path and Path(path).is_file():
            roots = _read_pem_bundle(path)
            if roots:
                break
    for path in extra_ca_files:
        roots += _read_pem_bundle(path)
    return tuple(roots)


@dataclass(frozen=True, slots=True)
class TrustVerdict:
    trusted: bool
    error: str | None


def verify_chain(
    chain: Sequence[bytes], roots: Sequence[x509.Certificate], at: dt.datetime | None = None
) -> TrustVerdict:
    """Does the chain lead to a trusted root? Judged at a moment inside the leaf's validity, so that
    expiry (a separate finding) does not masquerade as distrust."""
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    certs = [c for c in (load(der) for der in chain[:10]) if c is not None]
    if not certs:
        return TrustVerdict(False, "no parseable certificate")
    if not roots:
        return TrustVerdict(False, "no trust store available")
    leaf, intermediates = certs[0], certs[1:]
    moment = at or dt.datetime.now(dt.UTC)
    if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
        moment = leaf.not_valid_before_utc + (leaf.not_valid_after_utc - leaf.not_valid_before_utc) / 2
    # The webpki policy wants a subject to check against; trust alone is what we ask here, so use a name
    # the leaf itself carries (the hostname is judged separately by hostname_matches).
    names = _dns_names(leaf)
    ips = _ip_names(leaf)
    try:
        if names:
            subject: x509.verification.Subject = x509.DNSName(names[0].lstrip("*."))
            if names[0].startswith("*."):
                subject = x509.DNSName("x" + names[0][1:])
        elif ips:
            subject = x509.IPAddress(ipaddress.ip_address(ips[0]))
        else:
            return TrustVerdict(False, "leaf certificate has no subjectAltName")
        verifier = PolicyBuilder().store(Store(list(roots))).time(moment).build_server_verifier(subject)
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        return TrustVerdict(False, sanitize(str(exc), 300))
    except (ValueError, TypeError) as exc:
        return TrustVerdict(False, sanitize(f"cannot verify: {exc}", 300))
    return TrustVerdict(True, None)


def hostname_matches(der: bytes, hostname: str) -> bool:
    """RFC 6125 matching of a DNS name (or IP literal) against the leaf's subjectAltName.

    The subject CN is ignored, as modern clients do; a wildcard covers exactly one left-most label.
    """
    cert = load(der)
    if cert is None:
        return False
    host = hostname.rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return str(ip) in _ip_names(cert)
    for name in _dns_names(cert):
        pattern = name.rstrip(".").lower()
        if pattern == host:
            return True
        if pattern.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == pattern[2:] and rest.count(".") >= 1:
                return True
    return False


def expired(cert: Certificate, now: dt.datetime | None = None) -> bool:
    return bool(cert.not_after) and cert.not_after < _iso(now or dt.datetime.now(dt.UTC))


def not_yet_valid(cert: Certificate, now: dt.datetime | None = None) -> bool:
    return bool(cert.not_before) and cert.not_before > _iso(now or dt.datetime.now(dt.UTC))
