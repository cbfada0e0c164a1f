"""Assess: judge an Observation and return its Findings — the only place where facts become verdicts.

The rules are written out here, one function per finding, so a CERT analyst can read exactly why an
endpoint was flagged. The catalogue (cleartext.findings) gives each code its title and default severity;
a rule may move the severity with the evidence, and says so in a comment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from cleartext.findings import Code, info
from cleartext.record import Finding, Observation, Protocol, Record, Severity, Status, TLSMode
from cleartext.tls import certs

# SASL mechanisms that hand the password (or a bearer token) to anyone who reads the wire.
PASSWORD_MECHANISMS = frozenset({"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "XOAUTH", "USER"})
LEGACY_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1")
MODERN_VERSIONS = ("TLSv1.2", "TLSv1.3")
# Statuses where the server said too little to judge anything.
_SILENT = {
    Status.REFUSED,
    Status.CONNECT_TIMEOUT,
    Status.UNREACHABLE,
    Status.BLOCKLISTED,
    Status.ERROR,
    Status.NOT_MAIL,
    Status.REFUSED_BY_POLICY,
}


def _finding(code: Code, evidence: dict[str, Any], severity: Severity | None = None) -> Finding:
    entry = info(code)
    return Finding(
        code=str(code), severity=severity or entry.severity, summary=entry.title, evidence=evidence
    )


def _relay_port(obs: Observation) -> bool:
    """Port 25 between MTAs: TLS is opportunistic and certificates are rarely verified (no MTA-STS/DANE)."""
    return obs.protocol is Protocol.SMTP and obs.port == 25


def cleartext_login(obs: Observation) -> Iterable[Finding]:
    plain = obs.plain
    if plain is None or plain.capabilities is None:
        return
    mechanisms = list(plain.auth_mechanisms)
    inferred = False
    login = bool(plain.login_command)
    if obs.protocol is Protocol.POP3 and plain.login_command is None:
        # CAPA unsupported: an RFC 1939 server that predates CAPA/STLS cannot refuse USER/PASS in a
        # standard way, so we assume it accepts them — and say the verdict is inferred.
        login = inferred = True
    if not login and not mechanisms:
        return
    offered = [
        *(["LOGIN command" if obs.protocol is Protocol.IMAP else "USER/PASS"] if login else []),
        *mechanisms,
    ]
    exposes_password = (
        login
        or any(m in PASSWORD_MECHANISMS for m in mechanisms)
        or any(not _challenge_response(m) for m in mechanisms)
    )
    # Challenge-response mechanisms alone (CRAM-MD5, SCRAM...) do not reveal the password itself, but
    # the session and its mail still cross in clear and the exchange can be attacked offline: medium.
    severity = None if exposes_password else Severity.MEDIUM
    yield _finding(
        Code.CLEARTEXT_LOGIN,
        {
            "offered": offered,
            "mechanisms": mechanisms,
            "login_command": login,
            "password_in_clear": exposes_password,
            "inferred": inferred,
            "starttls_advertised": plain.starttls_advertised,
            "capabilities": plain.capabilities,
        },
        severity,
    )


def _challenge_response(mechanism: str) -> bool:
    return mechanism in {
        "CRAM-MD5",
        "DIGEST-MD5",
        "NTLM",
        "GSSAPI",
        "GSS-SPNEGO",
        "EXTERNAL",
        "ANONYMOUS",
    } or (mechanism.startswith("SCRAM-"))


def starttls(obs: Observation) -> Iterable[Finding]:
    plain = obs.plain
    if obs.tls_mode is TLSMode.IMPLICIT:
        # Only a failure at the TLS layer: a port that stays silent says nothing about its TLS.
        if obs.tls is not None and obs.tls.error and obs.status is Status.TLS_ERROR:
            yield _finding(Code.STARTTLS_FAILED, {"mode": "implicit", "error": obs.tls.error})
        return
    if plain is None or plain.starttls_accepted is None:
        return
    if not plain.starttls_accepted:
        if plain.starttls_advertised:
            yield _finding(
                Code.STARTTLS_FAILED,
                {"mode": "starttls", "advertised": True, "reply": plain.starttls_reply},
            )
        else:
            # Mail between MTAs on port 25 without TLS is common and less grave than a login port without it.
            severity = Severity.MEDIUM if _relay_port(obs) else None
            yield _finding(
                Code.NO_TLS,
                {"advertised": False, "reply": plain.starttls_reply},
                severity,
            )
        return
    if obs.tls is not None and obs.tls.error:
        yield _finding(
            Code.STARTTLS_FAILED,
            {"mode": "starttls", "advertised": plain.starttls_advertised, "error": obs.tls.error},
        )
    elif not plain.starttls_advertised:
        yield _finding(
            Code.STARTTLS_NOT_ADVERTISED, {"reply": plain.starttls_reply, "capabilities": plain.capabilities}
        )


def _versions(obs: Observation) -> dict[str, str]:
    """Version states from the matrix, completed by what the real handshake negotiated."""
    versions = dict(obs.matrix.versions) if obs.matrix else {}
    negotiated = obs.tls.version if obs.tls else None
    label = {"TLSv1": "TLSv1.0"}.get(negotiated or "", negotiated)
    if label:
        versions[label] = "accepted"
    return versions


def protocol_versions(obs: Observation) -> Iterable[Finding]:
    versions = _versions(obs)
    legacy = [v for v in LEGACY_VERSIONS if versions.get(v) == "accepted"]
    if legacy:
        # SSLv3 is broken outright (POODLE); TLS 1.0/1.1 are deprecated (RFC 8996).
        severity = Severity.HIGH if "SSLv3" in legacy else None
        yield _finding(Code.LEGACY_TLS, {"versions": legacy, "matrix": versions}, severity)
    accepted = [v for v, st in versions.items() if st == "accepted"]
    modern_refused = all(versions.get(v) == "rejected" for v in MODERN_VERSIONS)
    negotiated_old = obs.tls is not None and obs.tls.version in ("SSLv3", "TLSv1", "TLSv1.1")
    if accepted and (modern_refused or negotiated_old):
        yield _finding(Code.NO_MODERN_TLS, {"accepted": accepted, "matrix": versions})


_WEAK_SEVERITY = {
    "null": Severity.HIGH,
    "anon": Severity.HIGH,
    "export": Severity.HIGH,
    "rc4": Severity.MEDIUM,
    "des": Severity.MEDIUM,
    "3des": Severity.MEDIUM,
    "static-rsa": Severity.LOW,
}


def weak_ciphers(obs: Observation) -> Iterable[Finding]:
    if obs.matrix is None:
        return
    classes = [cls for cls, st in obs.matrix.weak_classes.items() if st == "accepted"]
    if not classes:
        return

    # Severity follows the worst class: no encryption or no authentication is as bad as no TLS for an
    # active attacker; RC4/DES/3DES are breakable; static RSA only lacks forward secrecy. On port 25,
    # MTA-to-MTA TLS is opportunistic and unauthenticated anyway (RFC 7435), and Postfix offers anonymous
    # suites there by design: anonymous key exchange adds nothing an attacker lacks, so it counts as low.
    def weight(cls: str) -> Severity:
        if cls == "anon" and _relay_port(obs):
            return Severity.LOW
        return _WEAK_SEVERITY.get(cls, Severity.MEDIUM)

    severity = max((weight(c) for c in classes), key=lambda s: s.rank)
    yield _finding(Code.WEAK_CIPHER, {"classes": classes, "suites": obs.matrix.weak_suites}, severity)


def certificate(obs: Observation) -> Iterable[Finding]:
    tls = obs.tls
    if tls is None or not tls.chain:
        return
    leaf = tls.chain[0]
    relaxed = Severity.LOW if _relay_port(obs) else None
    if certs.expired(leaf):
        yield _finding(
            Code.CERT_EXPIRED, {"not_after": leaf.not_after, "subject": leaf.subject, "sha256": leaf.sha256}
        )
    if certs.not_yet_valid(leaf):
        yield _finding(Code.CERT_NOT_YET_VALID, {"not_before": leaf.not_before, "sha256": leaf.sha256})
    if tls.trusted is False:
        yield _finding(
            Code.CERT_UNTRUSTED,
            {
                "self_signed": leaf.self_signed,
                "issuer": leaf.issuer,
                "error": tls.verify_error,
                "sha256": leaf.sha256,
            },
            relaxed,
        )
    if tls.hostname_match is False:
        yield _finding(
            Code.CERT_HOSTNAME_MISMATCH,
            {"hostname": tls.hostname_checked, "dns_names": leaf.dns_names, "subject": leaf.subject},
            relaxed,
        )
    weak_keys = [
        {"subject": c.subject, "key_type": c.key_type, "key_bits": c.key_bits}
        for c in tls.chain
        if (c.key_type in ("rsa", "dsa") and c.key_bits < 2048) or (c.key_type == "ec" and c.key_bits < 224)
    ]
    if weak_keys:
        yield _finding(Code.CERT_WEAK_KEY, {"certificates": weak_keys})
    # A root's self-signature is never checked by clients, so only certificates issued by someone else count.
    weak_sigs = [
        {"subject": c.subject, "signature_algorithm": c.signature_algorithm}
        for c in tls.chain
        if not (c.self_signed and c is not leaf)
        and any(h in c.signature_algorithm.lower() for h in ("md5", "sha1", "md2"))
    ]
    if weak_sigs:
        yield _finding(Code.CERT_WEAK_SIGNATURE, {"certificates": weak_sigs})


RULES: tuple[Callable[[Observation], Iterable[Finding]], ...] = (
    cleartext_login,
    starttls,
    protocol_versions,
    weak_ciphers,
    certificate,
)


def assess(obs: Observation) -> Record:
    """Judge one observation."""
    findings: list[Finding] = []
    if obs.status not in _SILENT:
        for rule in RULES:
            findings.extend(rule(obs))
    findings.sort(key=lambda f: -f.severity.rank)
    return Record(observation=obs, findings=findings)


class Grade(StrEnum):
    A = "A"  # nothing above info
    B = "B"  # low findings only
    C = "C"  # medium
    D = "D"  # high
    F = "F"  # a password or the mail can cross the network in clear


def grade(records: Iterable[Record]) -> Grade | None:
    """One letter for one port or a whole host: the worst of its records; None if nothing answered."""
    letters: list[Grade] = []
    for record in records:
        # A port that said nothing judgeable (silent, refused, broken before any finding) gets no letter:
        # an "A" would claim it was checked and found sound.
        # Nor does a discovery record without findings: its login was never looked at.
        if (
            record.observation.status in _SILENT
            or (record.observation.status is not Status.SUCCESS and not record.findings)
            or (record.observation.depth == "discovery" and not record.findings)
        ):
            continue
        codes = {f.code for f in record.findings}
        if codes & {Code.CLEARTEXT_LOGIN.value, Code.NO_TLS.value} or (record.worst is Severity.CRITICAL):
            letters.append(Grade.F)
            continue
        worst = record.worst
        letters.append(
            {
                None: Grade.A,
                Severity.INFO: Grade.A,
                Severity.LOW: Grade.B,
                Severity.MEDIUM: Grade.C,
                Severity.HIGH: Grade.D,
            }[worst]
        )
    return max(letters, default=None)
