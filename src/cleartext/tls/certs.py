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
import re
import ssl
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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
        self_signed=signs_itself(cert),
        spki_sha256=_spki_sha256(cert),
    )


def _spki_sha256(cert: x509.Certificate) -> str | None:
    """SHA-256 of the DER SubjectPublicKeyInfo (DANE selector 1, matching type 1); None when the key is
    of a kind the library cannot re-encode."""
    try:
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except (ValueError, TypeError):
        return None
    return hashlib.sha256(spki).hexdigest()


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
    """Does the chain lead to a trusted root? Trust is judged apart from time: the chain counts as trusted
    if it validates at some moment inside the leaf's validity (now when the leaf is valid now, else the
    middle, the start or the end of its validity), so that an expired or not-yet-valid certificate (its
    own findings) is not also reported as untrusted for that same reason.

    When it is not trusted, ``error`` says why in plain words (self-signed, an issuer this machine does not
    trust and the server did not send, a CA certificate that expired, a rule of the Web PKI broken), with
    the way to check a private CA (``--ca-file``) where one may be the cause.
    """
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    certs = [c for c in (load(der) for der in chain[:10]) if c is not None]
    if not certs:
        return TrustVerdict(False, "the server sent no certificate that can be read")
    if not roots:
        return TrustVerdict(False, "no trust store on this machine (install ca-certificates, or --ca-file)")
    leaf, intermediates = certs[0], certs[1:]
    # The webpki policy wants a subject to check against; trust alone is what we ask here, so use a name
    # the leaf itself carries (the hostname is judged separately by hostname_matches).
    names = _dns_names(leaf)
    ips = _ip_names(leaf)
    if names:
        subject: x509.verification.Subject = x509.DNSName(names[0].lstrip("*."))
        if names[0].startswith("*."):
            subject = x509.DNSName("x" + names[0][1:])
    elif ips:
        subject = x509.IPAddress(ipaddress.ip_address(ips[0]))
    else:
        return TrustVerdict(
            False, "the certificate names no host (no subjectAltName): clients cannot match it to a server"
        )
    store = Store(list(roots))
    first_error = ""
    for moment in _moments(leaf, at or dt.datetime.now(dt.UTC)):
        try:
            verifier = PolicyBuilder().store(store).time(moment).build_server_verifier(subject)
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            first_error = first_error or str(exc)
            continue
        except (ValueError, TypeError) as exc:
            first_error = first_error or f"cannot verify: {exc}"
            continue
        return TrustVerdict(True, None)
    return TrustVerdict(False, sanitize(why_untrusted(leaf, intermediates, roots, first_error), 400))


def _moments(leaf: x509.Certificate, now: dt.datetime) -> list[dt.datetime]:
    """The moments a chain's trust is tried at: now if the leaf is valid now, else moments of its validity."""
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if start <= now <= end:
        return [now]
    second = dt.timedelta(seconds=1)
    return [start + (end - start) / 2, min(start + second, end), max(end - second, start)]


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` signed ``cert`` (names and signature), never raising on odd certificates.

    Signatures with SHA-1 or MD5 are checked too (verify_directly_issued_by refuses them): such a
    certificate is weak, and still self-signed or issued by whom it says."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except ValueError:  # an algorithm it will not verify: check the signature by hand below
        pass
    except Exception:  # InvalidSignature, TypeError, odd keys
        return False
    try:
        key = issuer.public_key()
        digest = cert.signature_hash_algorithm
        if digest is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            padding = cert.signature_algorithm_parameters
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding, digest)  # type: ignore[arg-type]
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(digest))
        elif isinstance(key, dsa.DSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, digest)
        else:
            return False
    except Exception:  # InvalidSignature, UnsupportedAlgorithm (MD2...), malformed parameters
        return False
    return True


def signs_itself(cert: x509.Certificate) -> bool:
    """Self-signed: its own key verifies its signature (a subject equal to the issuer is not enough)."""
    return _issued_by(cert, cert)


_EXTENSIONS = {
    "2.5.29.35": "authority key identifier",
    "2.5.29.14": "subject key identifier",
    "2.5.29.19": "basic constraints",
    "2.5.29.15": "key usage",
    "2.5.29.37": "extended key usage",
    "2.5.29.17": "subject alternative name",
    "2.5.29.32": "certificate policies",
    "2.5.29.30": "name constraints",
}


def plain_reason(raw: str) -> str:
    """cryptography's verification message without Python object reprs, extension OIDs named."""
    text = re.sub(r"\s*\(encountered processing <Certificate\(.*?\)>\)", "", raw)
    text = re.sub(r"<Certificate\(.*?\)>", "a certificate", text)
    text = re.sub(r"^(validation failed: |candidates exhausted: )+", "", text)
    missing = re.search(r"invalid extension: ([\d.]+): Certificate is missing required extension", text)
    if missing:
        name = _EXTENSIONS.get(missing.group(1), f"extension {missing.group(1)}")
        return f"a certificate in the chain lacks the {name} extension that current TLS clients require"
    text = re.sub(
        r"invalid extension: ([\d.]+):",
        lambda m: f"bad {_EXTENSIONS.get(m.group(1), 'extension ' + m.group(1))} extension:",
        text,
    )
    if "not valid at validation time" in text.lower():
        return "a certificate in the chain is outside its validity period"
    return text[:1].lower() + text[1:] if text else "the chain does not validate"


def _when(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d")


def why_untrusted(
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    raw: str = "",
) -> str:
    """Why a chain that failed verification is not trusted, in words a mail admin acts on.

    Walks up from the leaf the way a client would (the server's certificates, then the trust store) and
    names the first link that breaks; ``raw`` (the verifier's own message) explains a chain that does
    reach a trusted root and still fails.
    """
    private = "if it is your own private CA, check again with its certificate: --ca-file CA.pem"
    if signs_itself(leaf):
        if any(r == leaf for r in roots):
            why = plain_reason(raw)
            return f"self-signed, and trusted through --ca-file, but not acceptable to clients: {why}"
        return (
            f"self-signed ({_name(leaf.subject)} vouches for itself): no client trusts it unless told to; "
            "to check a private server's certificate itself, pass it with --ca-file"
        )
    current = leaf
    for _ in range(10):
        root = next((r for r in roots if _issued_by(current, r)), None)
        if root is not None:
            trusted = _name(root.subject)
            return f"the chain reaches the trusted root {trusted} but does not validate: {plain_reason(raw)}"
        parent = next((c for c in intermediates if c is not current and _issued_by(current, c)), None)
        if parent is None:
            issuer = _name(current.issuer)
            if current is leaf:
                return (
                    f"issued by {issuer}, a CA this machine does not trust, and the server sent no "
                    f"certificate for it: a public CA's intermediate missing from the chain, or a private "
                    f"CA ({private})"
                )
            return (
                f"the chain the server sent ends at {_name(current.subject)}, issued by {issuer}, a CA this "
                f"machine does not trust: an intermediate missing from the chain, or a private CA ({private})"
            )
        if parent.not_valid_after_utc < leaf.not_valid_before_utc or (
            parent.not_valid_before_utc > leaf.not_valid_after_utc
        ):
            return (
                f"the CA certificate {_name(parent.subject)} in the chain is valid only from "
                f"{_when(parent.not_valid_before_utc)} to {_when(parent.not_valid_after_utc)}, never "
                "while the server's certificate is"
            )
        if signs_itself(parent):
            return (
                f"the chain ends at the root {_name(parent.subject)}, which this machine does not trust: a "
                f"private CA ({private})"
            )
        current = parent
    return plain_reason(raw)


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


def _now_iso() -> str:
    # The present as _iso writes it, by isoformat (half strftime's time: assess asks twice per TLS record).
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")[:19] + "Z"


def expired(cert: Certificate, now: dt.datetime | None = None) -> bool:
    return bool(cert.not_after) and cert.not_after < (_iso(now) if now else _now_iso())


def not_yet_valid(cert: Certificate, now: dt.datetime | None = None) -> bool:
    return bool(cert.not_before) and cert.not_before > (_iso(now) if now else _now_iso())
