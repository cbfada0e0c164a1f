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
from cleartext.record import (
    LEGACY_TLS_VERSIONS,
    MODERN_TLS_VERSIONS,
    NOTHING_TO_JUDGE,
    Finding,
    LoginVerdict,
    Observation,
    Protocol,
    Record,
    Severity,
    Status,
    TLSMode,
    tls_label,
)
from cleartext.tls import certs

# SASL mechanisms that hand the password (or a bearer token) to anyone who reads the wire.
PASSWORD_MECHANISMS = frozenset({"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER", "XOAUTH", "USER"})


def _finding(code: Code, evidence: dict[str, Any], severity: Severity | None = None) -> Finding:
    entry = info(code)
    return Finding(
        code=str(code), severity=severity or entry.severity, summary=entry.title, evidence=evidence
    )


def _relay_port(obs: Observation) -> bool:
    """Port 25 between MTAs: TLS is opportunistic and certificates are rarely verified (no MTA-STS/DANE)."""
    return obs.protocol is Protocol.SMTP and obs.port == 25


def _offered(obs: Observation) -> tuple[list[str], list[str], bool, bool] | None:
    """What the plaintext capability list offers: (offered, mechanisms, login command usable, inferred);
    None when there is no list to read (the dialog ended before it)."""
    plain = obs.plain
    if plain is None or plain.capabilities is None:
        return None
    mechanisms = list(plain.auth_mechanisms)
    inferred = False
    login = bool(plain.login_command)
    if obs.protocol is Protocol.POP3 and plain.login_command is None:
        # CAPA unsupported: an RFC 1939 server that predates CAPA/STLS cannot refuse USER/PASS in a
        # standard way, so unless the probe says otherwise we assume it accepts them.
        login = inferred = True
    offered = [
        *(["LOGIN command" if obs.protocol is Protocol.IMAP else "USER/PASS"] if login else []),
        *mechanisms,
    ]
    return offered, mechanisms, login, inferred


def _reveals_password(command: str) -> bool:
    """A login command whose continuation would carry the password itself (not a challenge-response)."""
    verb, _, mechanism = command.partition(" ")
    if verb in ("USER", "LOGIN"):
        return True
    return mechanism in PASSWORD_MECHANISMS or not _challenge_response(mechanism)


def judge_login(obs: Observation) -> LoginVerdict | None:
    """Can a password be sent before TLS here, and what does the answer rest on?

    The login probe decides where it can: a continuation (or +OK to USER) means a client's password
    would have been taken in clear, whatever the capability list said. Refusals settle it only when
    every way in was refused: SMTP has AUTH alone; POP3 has SASL and USER; IMAP has AUTHENTICATE and
    LOGIN, and LOGIN has no credential-free form, so a refused AUTHENTICATE settles it only together
    with LOGINDISABLED (RFC 9051 §6.2.3: a server that advertises it must refuse LOGIN) -- unless the
    opt-in made-up LOGIN was tried. Otherwise the capability list decides, as it did before the probe.
    """
    plain = obs.plain
    if plain is None or obs.depth == "discovery":
        return None
    read = _offered(obs)
    if read is None and not plain.login_probes:
        return None
    advertised = bool(read[0]) if read is not None else None
    if obs.protocol is Protocol.POP3 and read is not None and read[3]:
        advertised = None  # no CAPA: nothing was advertised either way
    probes = plain.login_probes
    accepted = [p.command for p in probes if p.outcome == "accepted"]
    refused = [p.command for p in probes if p.outcome == "refused"]
    if accepted:
        return LoginVerdict(True, "probed-accepted", advertised, accepted, refused)
    # Mechanisms are tried in turn until one is not "unsupported": the last answer is the SASL verdict.
    sasl = [p for p in probes if p.command.startswith(("AUTH ", "AUTHENTICATE "))]
    sasl_refused = bool(sasl) and sasl[-1].outcome == "refused"
    if obs.protocol is Protocol.SMTP:
        settled = sasl_refused
    elif obs.protocol is Protocol.POP3:
        settled = sasl_refused and "USER" in refused
    else:
        made_up = [p for p in probes if p.command.startswith("LOGIN")]
        login_refused = (
            made_up[-1].outcome == "refused" if made_up else plain.login_command is False
        )
        settled = sasl_refused and login_refused
    if settled:
        return LoginVerdict(False, "probed-refused", advertised, [], refused)
    if read is None:
        return LoginVerdict(None, "advertised", None, [], refused)
    offered, _, _, inferred = read
    if inferred:
        return LoginVerdict(True, "inferred", None, [], refused)
    return LoginVerdict(bool(offered), "advertised" if offered else "not-advertised", advertised, [], refused)


def cleartext_login(obs: Observation) -> Iterable[Finding]:
    verdict = judge_login(obs)
    if verdict is None or not verdict.exposed:
        return
    plain = obs.plain
    assert plain is not None
    offered, mechanisms, login, _ = _offered(obs) or ([], [], False, False)
    if verdict.basis == "probed-accepted":
        exposes_password = any(_reveals_password(c) for c in verdict.accepted)
    else:
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
            "basis": verdict.basis,
            "hidden": verdict.basis == "probed-accepted" and verdict.advertised is False,
            "accepted": verdict.accepted,
            "probes": _probes(obs),
            "offered": offered,
            "mechanisms": mechanisms,
            "login_command": login,
            "password_in_clear": exposes_password,
            "inferred": verdict.basis == "inferred",
            "starttls_advertised": plain.starttls_advertised,
            "capabilities": plain.capabilities,
        },
        severity,
    )


def login_advertised_refused(obs: Observation) -> Iterable[Finding]:
    verdict = judge_login(obs)
    if verdict is None or verdict.exposed is not False or verdict.basis != "probed-refused":
        return
    if not verdict.advertised:
        return
    offered = (_offered(obs) or ([], [], False, False))[0]
    yield _finding(
        Code.LOGIN_ADVERTISED_REFUSED,
        {"offered": offered, "refused": verdict.refused, "probes": _probes(obs)},
    )


def _probes(obs: Observation) -> list[dict[str, Any]]:
    plain = obs.plain
    return [
        {"command": p.command, "reply": p.reply, "outcome": p.outcome, "reason": p.reason,
         "cancel_reply": p.cancel_reply}
        for p in (plain.login_probes if plain else [])
    ]


def starttls_injection(obs: Observation) -> Iterable[Finding]:
    plain = obs.plain
    if plain is None or plain.starttls_injection != "answered":
        return
    injected = {Protocol.SMTP: "HELP", Protocol.POP3: "NOOP", Protocol.IMAP: "NOOP (tagged)"}[obs.protocol]
    yield _finding(Code.STARTTLS_INJECTION, {"injected": injected, "reply": plain.starttls_injection_reply})


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
    if obs.tls_mode is TLSMode.IMPLICIT and plain is not None:
        # The port should start with TLS and speaks plaintext instead: there is no TLS on it at all.
        yield _finding(
            Code.NO_TLS,
            {
                "advertised": plain.starttls_advertised,
                "implicit_tls_port": True,
                "greeting": obs.greeting,
                "error": obs.tls.error if obs.tls else None,
            },
        )
        return
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
    label = tls_label(negotiated)
    if label:
        versions[label] = "accepted"
    return versions


def protocol_versions(obs: Observation) -> Iterable[Finding]:
    versions = _versions(obs)
    legacy = [v for v in LEGACY_TLS_VERSIONS if versions.get(v) == "accepted"]
    if legacy:
        # SSLv3 is broken outright (POODLE); TLS 1.0/1.1 are deprecated (RFC 8996).
        severity = Severity.HIGH if "SSLv3" in legacy else None
        yield _finding(Code.LEGACY_TLS, {"versions": legacy, "matrix": versions}, severity)
    accepted = [v for v, st in versions.items() if st == "accepted"]
    modern_refused = all(versions.get(v) == "rejected" for v in MODERN_TLS_VERSIONS)
    negotiated_old = obs.tls is not None and tls_label(obs.tls.version) in LEGACY_TLS_VERSIONS
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
    login_advertised_refused,
    starttls,
    starttls_injection,
    protocol_versions,
    weak_ciphers,
    certificate,
)


def assess(obs: Observation) -> Record:
    """Judge one observation."""
    findings: list[Finding] = []
    if obs.status not in NOTHING_TO_JUDGE:
        for rule in RULES:
            findings.extend(rule(obs))
    findings.sort(key=lambda f: -f.severity.rank)
    login = judge_login(obs) if obs.status not in NOTHING_TO_JUDGE else None
    return Record(observation=obs, findings=findings, login=login)


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
            record.observation.status in NOTHING_TO_JUDGE
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
