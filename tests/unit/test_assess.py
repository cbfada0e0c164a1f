"""Unit tests for the assessment rules: observations built by hand, findings and grades checked."""

from __future__ import annotations

import datetime as dt

from cleartext.assess import Grade, assess, grade
from cleartext.record import (
    Certificate,
    Observation,
    PlainPhase,
    Protocol,
    Severity,
    Status,
    TLSMatrix,
    TLSMode,
    TLSPhase,
)


def obs(
    protocol: Protocol = Protocol.IMAP, port: int = 143, mode: TLSMode = TLSMode.STARTTLS, **kw: object
) -> Observation:
    o = Observation(address="192.0.2.1", port=port, protocol=protocol, tls_mode=mode)
    for key, value in kw.items():
        setattr(o, key, value)
    return o


def cert(**kw: object) -> Certificate:
    now = dt.datetime.now(dt.UTC)
    base = dict(
        sha256="0" * 64,
        subject="CN=mail.example",
        issuer="CN=Example CA",
        not_before=(now - dt.timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after=(now + dt.timedelta(days=80)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        key_type="rsa",
        key_bits=2048,
        signature_algorithm="sha256WithRSAEncryption",
        dns_names=["mail.example"],
        self_signed=False,
    )
    base.update(kw)
    return Certificate(**base)  # type: ignore[arg-type]


def good_tls(**kw: object) -> TLSPhase:
    base = dict(
        version="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        chain=[cert()],
        trusted=True,
        hostname_checked="mail.example",
        hostname_match=True,
    )
    base.update(kw)
    return TLSPhase(**base)  # type: ignore[arg-type]


def good_matrix() -> TLSMatrix:
    return TLSMatrix(
        versions={
            "SSLv3": "rejected",
            "TLSv1.0": "rejected",
            "TLSv1.1": "rejected",
            "TLSv1.2": "accepted",
            "TLSv1.3": "accepted",
        },
        weak_classes={c: "rejected" for c in ("null", "anon", "export", "rc4", "3des", "des", "static-rsa")},
    )


def secure_plain(**kw: object) -> PlainPhase:
    base = dict(
        capabilities=["* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED"],
        login_command=False,
        starttls_advertised=True,
        starttls_accepted=True,
        starttls_reply="c2 OK",
    )
    base.update(kw)
    return PlainPhase(**base)  # type: ignore[arg-type]


def codes(o: Observation) -> set[str]:
    return {f.code for f in assess(o).findings}


def test_secure_endpoint_has_no_findings_and_grade_a() -> None:
    o = obs(plain=secure_plain(), tls=good_tls(), matrix=good_matrix())
    record = assess(o)
    assert record.findings == []
    assert grade([record]) is Grade.A


def test_imap_login_before_tls_is_cleartext_login() -> None:
    o = obs(
        plain=secure_plain(login_command=True, auth_mechanisms=["PLAIN"]),
        tls=good_tls(),
        matrix=good_matrix(),
    )
    record = assess(o)
    assert {f.code for f in record.findings} == {"cleartext-login"}
    f = record.findings[0]
    assert f.severity is Severity.HIGH and f.evidence["password_in_clear"] is True
    assert grade([record]) is Grade.F


def test_only_challenge_response_mechanisms_is_medium() -> None:
    o = obs(
        Protocol.SMTP,
        587,
        plain=secure_plain(login_command=None, auth_mechanisms=["CRAM-MD5", "SCRAM-SHA-256"]),
        tls=good_tls(),
        matrix=good_matrix(),
    )
    (f,) = assess(o).findings
    assert f.code == "cleartext-login" and f.severity is Severity.MEDIUM
    assert f.evidence["password_in_clear"] is False


def test_pop3_without_capa_is_inferred_cleartext_login() -> None:
    o = obs(
        Protocol.POP3,
        110,
        plain=PlainPhase(
            capabilities=["-ERR unknown command"],
            login_command=None,
            starttls_accepted=False,
            starttls_reply="-ERR",
        ),
    )
    found = {f.code: f for f in assess(o).findings}
    assert found["cleartext-login"].evidence["inferred"] is True
    assert "no-tls" in found


def test_smtp_without_auth_is_not_a_login_finding() -> None:
    o = obs(
        Protocol.SMTP,
        25,
        plain=PlainPhase(
            capabilities=["250-mx", "250 8BITMIME"], starttls_accepted=False, starttls_reply="502 no"
        ),
    )
    record = assess(o)
    assert {f.code for f in record.findings} == {"no-tls"}
    assert record.findings[0].severity is Severity.MEDIUM  # relay port
    o.port = 587
    assert assess(o).findings[0].severity is Severity.HIGH


def test_starttls_advertised_but_refused_or_broken() -> None:
    refused = obs(plain=secure_plain(starttls_accepted=False, starttls_reply="c2 NO TLS unavailable"))
    assert codes(refused) == {"starttls-failed"}
    broken = obs(
        plain=secure_plain(),
        tls=TLSPhase(error="TLS handshake failed: WRONG_VERSION_NUMBER"),
        status=Status.TLS_ERROR,
    )
    assert codes(broken) == {"starttls-failed"}
    implicit = obs(port=993, mode=TLSMode.IMPLICIT, tls=TLSPhase(error="boom"), status=Status.TLS_ERROR)
    assert codes(implicit) == {"starttls-failed"}


def test_starttls_working_but_not_advertised() -> None:
    o = obs(plain=secure_plain(starttls_advertised=False), tls=good_tls(), matrix=good_matrix())
    assert codes(o) == {"starttls-not-advertised"}


def test_legacy_versions_and_sslv3_severity() -> None:
    m = good_matrix()
    m.versions["TLSv1.0"] = "accepted"
    o = obs(plain=secure_plain(), tls=good_tls(), matrix=m)
    (f,) = assess(o).findings
    assert f.code == "legacy-tls" and f.severity is Severity.MEDIUM and f.evidence["versions"] == ["TLSv1.0"]
    m.versions["SSLv3"] = "accepted"
    (f,) = assess(o).findings
    assert f.severity is Severity.HIGH and f.evidence["versions"] == ["SSLv3", "TLSv1.0"]


def test_no_modern_tls_from_matrix_or_negotiated_version() -> None:
    m = good_matrix()
    m.versions.update({"TLSv1.2": "rejected", "TLSv1.3": "rejected", "TLSv1.1": "accepted"})
    o = obs(plain=secure_plain(), tls=good_tls(version="TLSv1.1"), matrix=m)
    assert codes(o) == {"no-modern-tls", "legacy-tls"}
    # Without a matrix, a handshake that settled on TLS 1.0 (OpenSSL offered up to 1.3) says the same.
    o = obs(plain=secure_plain(), tls=good_tls(version="TLSv1"), matrix=None)
    assert codes(o) == {"no-modern-tls", "legacy-tls"}


def test_weak_cipher_severity_follows_worst_class() -> None:
    m = good_matrix()
    m.weak_classes["static-rsa"] = "accepted"
    o = obs(plain=secure_plain(), tls=good_tls(), matrix=m)
    (f,) = assess(o).findings
    assert f.code == "weak-cipher" and f.severity is Severity.LOW
    m.weak_classes["3des"] = "accepted"
    assert assess(o).findings[0].severity is Severity.MEDIUM
    m.weak_classes["anon"] = "accepted"
    assert assess(o).findings[0].severity is Severity.HIGH
    assert grade([assess(o)]) is Grade.D


def test_certificate_findings() -> None:
    now = dt.datetime.now(dt.UTC)
    old = cert(
        not_before=(now - dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        not_after=(now - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        key_bits=1024,
        signature_algorithm="sha1WithRSAEncryption",
        self_signed=True,
    )
    tls = good_tls(chain=[old], trusted=False, verify_error="self-signed", hostname_match=False)
    o = obs(plain=secure_plain(), tls=tls, matrix=good_matrix())
    assert codes(o) == {
        "cert-expired",
        "cert-untrusted",
        "cert-hostname-mismatch",
        "cert-weak-key",
        "cert-weak-signature",
    }


def test_port_25_relaxes_certificate_trust() -> None:
    tls = good_tls(trusted=False, verify_error="unknown issuer")
    o = obs(Protocol.SMTP, 25, plain=secure_plain(login_command=None), tls=tls, matrix=good_matrix())
    (f,) = assess(o).findings
    assert f.code == "cert-untrusted" and f.severity is Severity.LOW


def test_silent_endpoints_have_no_findings_and_no_grade() -> None:
    for status in (Status.REFUSED, Status.CONNECT_TIMEOUT, Status.NOT_MAIL, Status.BLOCKLISTED):
        record = assess(obs(status=status))
        assert record.findings == []
        assert grade([record]) is None


def test_findings_sorted_worst_first() -> None:
    m = good_matrix()
    m.weak_classes["static-rsa"] = "accepted"
    o = obs(plain=secure_plain(login_command=True), tls=good_tls(), matrix=m)
    severities = [f.severity.rank for f in assess(o).findings]
    assert severities == sorted(severities, reverse=True)


def test_anonymous_suites_on_port_25_are_low() -> None:
    m = good_matrix()
    m.weak_classes["anon"] = "accepted"
    o = obs(Protocol.SMTP, 25, plain=secure_plain(login_command=None), tls=good_tls(), matrix=m)
    (f,) = assess(o).findings
    assert f.code == "weak-cipher" and f.severity is Severity.LOW
    o.port = 587
    assert assess(o).findings[0].severity is Severity.HIGH


def test_silent_implicit_tls_port_is_not_a_tls_failure() -> None:
    o = obs(
        port=993,
        mode=TLSMode.IMPLICIT,
        tls=TLSPhase(error="TLS handshake not finished within 3 s"),
        status=Status.READ_TIMEOUT,
    )
    assert assess(o).findings == []
