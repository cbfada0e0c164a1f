"""Chain trust in plain words (cleartext.tls.certs): real certificates made with cryptography, real
verification; why a chain is untrusted is said the way a mail admin acts on it, and time is judged apart.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cleartext.tls.certs import describe, read_ca_file, signs_itself, verify_chain

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make(
    cn: str,
    *,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    ca: bool = False,
    start: dt.datetime = NOW - 30 * DAY,
    end: dt.datetime = NOW + 60 * DAY,
    aki: bool = True,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate as a CA would issue it (self-signed when ``issuer`` is None)."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer_cert, signer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(signer_cert.subject if signer_cert else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer_key.public_key()), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(cn)]), critical=False)
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signer_key, hashes.SHA256()), key


def der(*certs: x509.Certificate) -> list[bytes]:
    return [c.public_bytes(serialization.Encoding.DER) for c in certs]


@pytest.fixture(scope="module")
def pki() -> dict[str, tuple[x509.Certificate, ec.EllipticCurvePrivateKey]]:
    root = make("Example Root", ca=True, start=NOW - 900 * DAY, end=NOW + 900 * DAY)
    inter = make("Example Issuing CA", issuer=root, ca=True, start=NOW - 400 * DAY, end=NOW + 400 * DAY)
    return {"root": root, "inter": inter, "leaf": make("mail.example.org", issuer=inter)}


def test_a_complete_chain_to_a_trusted_root_is_trusted(pki: dict) -> None:  # type: ignore[type-arg]
    verdict = verify_chain(der(pki["leaf"][0], pki["inter"][0]), [pki["root"][0]], at=NOW)
    assert verdict.trusted and verdict.error is None


def test_expiry_alone_is_not_distrust(pki: dict) -> None:  # type: ignore[type-arg]
    """An expired leaf (its own finding) from a good CA is trusted; so is one whose CA certificate was
    made after the middle of the leaf's validity, as in a lab that backdates its test certificates."""
    expired = make("old.example.org", issuer=pki["inter"], start=NOW - 400 * DAY, end=NOW - DAY)
    assert verify_chain(der(expired[0], pki["inter"][0]), [pki["root"][0]], at=NOW).trusted
    young_ca = make("Young CA", ca=True, start=NOW - 10 * DAY, end=NOW + 900 * DAY)
    backdated = make("lab.example.org", issuer=young_ca, start=NOW - 100 * DAY, end=NOW - DAY)
    assert verify_chain(der(backdated[0]), [young_ca[0]], at=NOW).trusted


def test_missing_intermediate_or_private_ca_is_said_with_ca_file(pki: dict) -> None:  # type: ignore[type-arg]
    verdict = verify_chain(der(pki["leaf"][0]), [pki["root"][0]], at=NOW)
    assert not verdict.trusted and verdict.error is not None
    assert verdict.error.startswith("issued by CN=Example Issuing CA, a CA this machine does not trust")
    assert "intermediate missing" in verdict.error and "--ca-file" in verdict.error
    assert "self-signed" not in verdict.error and "candidates exhausted" not in verdict.error
    untrusted_root = verify_chain(der(pki["leaf"][0], pki["inter"][0], pki["root"][0]), [], at=NOW)
    assert untrusted_root.error is not None and "no trust store" in untrusted_root.error
    other_root = make("Someone Else", ca=True)
    ends = verify_chain(der(pki["leaf"][0], pki["inter"][0], pki["root"][0]), [other_root[0]], at=NOW)
    assert ends.error is not None
    assert ends.error.startswith("the chain ends at the root CN=Example Root, which this machine does not")
    assert "--ca-file" in ends.error


def test_self_signed_is_said_only_when_it_is(pki: dict) -> None:  # type: ignore[type-arg]
    lone = make("lone.example.org")
    verdict = verify_chain(der(lone[0]), [pki["root"][0]], at=NOW)
    assert verdict.error is not None and verdict.error.startswith("self-signed (CN=lone.example.org")
    assert signs_itself(lone[0]) and describe(der(lone[0])[0]).self_signed
    # Same subject and issuer names, but signed by another key: not self-signed.
    impostor = make("Example Issuing CA", issuer=pki["root"])
    forged = make("Example Issuing CA", issuer=(impostor[0], impostor[1]))
    assert forged[0].subject == forged[0].issuer and not signs_itself(forged[0])
    assert describe(der(forged[0])[0]).self_signed is False


def test_a_rule_broken_by_a_chain_that_reaches_a_root_is_said_without_python_reprs() -> None:
    root = make("Strict Root", ca=True, start=NOW - 900 * DAY, end=NOW + 900 * DAY)
    leaf = make("noaki.example.org", issuer=root, aki=False)
    verdict = verify_chain(der(leaf[0]), [root[0]], at=NOW)
    assert not verdict.trusted and verdict.error is not None
    assert verdict.error.startswith("the chain reaches the trusted root CN=Strict Root but does not validate")
    assert "authority key identifier" in verdict.error
    assert "<Certificate" not in verdict.error and "2.5.29" not in verdict.error


def test_a_ca_certificate_never_valid_with_the_leaf_is_named() -> None:
    root = make("Root", ca=True, start=NOW - 900 * DAY, end=NOW + 900 * DAY)
    inter = make("Short-lived CA", issuer=root, ca=True, start=NOW - 300 * DAY, end=NOW - 200 * DAY)
    leaf = make("late.example.org", issuer=inter, start=NOW - 100 * DAY, end=NOW + 100 * DAY)
    verdict = verify_chain(der(leaf[0], inter[0]), [root[0]], at=NOW)
    assert verdict.error is not None
    assert "the CA certificate CN=Short-lived CA in the chain is valid only from" in verdict.error


def test_read_ca_file_wants_a_certificate(tmp_path: Path, pki: dict) -> None:  # type: ignore[type-arg]
    good = tmp_path / "ca.pem"
    good.write_bytes(pki["root"][0].public_bytes(serialization.Encoding.PEM))
    assert read_ca_file(str(good)) == [pki["root"][0]]
    as_der = tmp_path / "ca.der"
    as_der.write_bytes(der(pki["root"][0])[0])
    with pytest.raises(ValueError, match="DER\\? convert it"):
        read_ca_file(str(as_der))
    with pytest.raises(ValueError, match="cannot read CA file"):
        read_ca_file(str(tmp_path / "absent.pem"))
