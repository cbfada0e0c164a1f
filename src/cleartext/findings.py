"""The finding catalogue: the stable codes cleartext reports, what each means and how bad it is by default.

Why a catalogue: a code such as ``cleartext-login`` travels far from the scanner — into JSON records, CERT
reports, notification e-mails and a mail admin's ticket system — so its spelling, its meaning and its default
severity must not depend on which stage happens to print it. Everything that shows a finding to a person
looks the words up here (:func:`info`); ``docs/findings.md`` is rendered from this module and
:mod:`cleartext.remediation` by ``scripts/gen-findings-doc``, and a unit test keeps the two in step.

Severity. Each code has a *default* severity (``FindingInfo.severity``). The assessment
(:mod:`cleartext.assess`) may raise or lower it when the evidence says more than the code alone; every such
move is written in ``FindingInfo.severity_rule`` (and so in docs/findings.md). The rules live in code in
assess.py; the texts here describe them and must be changed together with them.

How the defaults were chosen. The scale is the record's :class:`~cleartext.record.Severity`. Anything that
lets a password or a message cross the network readable by a passive observer is ``high``: cleartext-login,
no-tls, starttls-failed (clients fall back to clear or fail), and no-modern-tls (every version the server
speaks is broken or deprecated). Shadowserver's scale puts "unencrypted services requiring login" at
*medium*; we rate cleartext-login *higher* because our evidence is exact rather than inferred from an open
port: before any encryption the server started a login and asked for the password (the login probe: SASL
PLAIN or LOGIN answered with a continuation, POP3 USER answered +OK), or, where no credential-free
exchange can tell, it announced that it would take one (IMAP LOGIN without LOGINDISABLED). Weaknesses
that need an active attacker or a further flaw (legacy protocol versions, weak suites, certificate
problems) are ``medium``, raised to ``high`` where the weakness is itself practically exploitable (SSLv3;
NULL, anonymous and EXPORT suites). A STARTTLS that lets pipelined commands into the TLS session is
``high``: an active attacker gets the client's session. A login advertised but refused is ``info``: no
password crosses. A SHA-1/MD5 signature is ``low``: browsers and mail clients no longer accept such
signatures from public CAs, so its practical effect is mostly that of an untrusted chain, which is
reported separately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from cleartext.record import Severity

__all__ = ["CATALOGUE", "Code", "FindingInfo", "info"]


class Code(StrEnum):
    """The closed list of finding codes. Values are stable strings: never rename one, only add."""

    CLEARTEXT_LOGIN = "cleartext-login"
    NO_TLS = "no-tls"
    STARTTLS_FAILED = "starttls-failed"
    STARTTLS_NOT_ADVERTISED = "starttls-not-advertised"
    LEGACY_TLS = "legacy-tls"
    NO_MODERN_TLS = "no-modern-tls"
    WEAK_CIPHER = "weak-cipher"
    CERT_EXPIRED = "cert-expired"
    CERT_NOT_YET_VALID = "cert-not-yet-valid"
    CERT_UNTRUSTED = "cert-untrusted"
    CERT_HOSTNAME_MISMATCH = "cert-hostname-mismatch"
    CERT_WEAK_KEY = "cert-weak-key"
    CERT_WEAK_SIGNATURE = "cert-weak-signature"
    STARTTLS_INJECTION = "starttls-injection"
    LOGIN_ADVERTISED_REFUSED = "login-advertised-refused"


@dataclass(frozen=True, slots=True)
class FindingInfo:
    """What a finding code means, for the people who read it.

    The first five fields are what every consumer needs (a one-line title, the default severity, what it
    means for a mail admin, what an attacker on the path can do). The last three exist so that
    docs/findings.md can be generated from this single source: when the assessment raises the finding,
    which evidence keys the record carries, and when the severity departs from the default.
    """

    code: Code
    title: str
    severity: Severity
    description: str
    risk: str
    raised_when: str = ""
    evidence: tuple[tuple[str, str], ...] = ()  # (key in Finding.evidence, what it holds)
    severity_rule: str = ""  # empty: the default always applies


_RELAY_RULE = (
    "low on SMTP port 25: servers delivering mail to each other use TLS opportunistically and rarely "
    "verify certificates (unless DANE or MTA-STS is deployed), so the certificate protects little there."
)

_ENTRIES: tuple[FindingInfo, ...] = (
    FindingInfo(
        code=Code.CLEARTEXT_LOGIN,
        title="Password accepted before encryption",
        severity=Severity.HIGH,
        description=(
            "Before any encryption, the server takes a login: asked to start one (SASL PLAIN or LOGIN, "
            "POP3 USER), it asks for the password instead of refusing. Whether the capability list "
            "shows it or hides it, clients configured without TLS, or tricked into skipping it, send "
            "the password in clear."
        ),
        risk=(
            "Anyone who can watch the traffic (shared Wi-Fi, a compromised router, an ISP) reads user "
            "names and passwords, then reads or sends mail as those users."
        ),
        raised_when=(
            "The login probe, in clear, was answered with a request for credentials: SMTP 334 to "
            "AUTH PLAIN (or AUTH LOGIN), IMAP '+' to AUTHENTICATE PLAIN, POP3 '+' to AUTH PLAIN or +OK "
            "to USER with a made-up name. The probe then cancels with '*' and never sends a credential. "
            "Where the probe cannot settle it (no answer, a temporary failure, or IMAP LOGIN, which has "
            "no credential-free form) the capability list decides as before: IMAP LOGIN usable "
            "because LOGINDISABLED is absent, or an AUTH= mechanism listed; POP3 USER or SASL in CAPA, "
            "or no CAPA at all (inferred); SMTP AUTH in the EHLO reply. Also raised on an implicit-TLS "
            "port (465, 993, 995) that speaks plaintext instead of TLS."
        ),
        evidence=(
            ("basis", "what the verdict rests on: probed-accepted, advertised or inferred"),
            ("hidden", "true when the server took the login although its capability list hid it"),
            ("accepted", 'the login commands the server took in clear, e.g. ["AUTH PLAIN", "USER"]'),
            ("probes", "each login probe: command, the server's reply, outcome, reason, cancel reply"),
            ("offered", 'ways to log in the capability list offered before TLS, e.g. ["USER/PASS", "PLAIN"]'),
            ("mechanisms", "SASL mechanisms offered before TLS, upper case"),
            ("login_command", "true when IMAP LOGIN or POP3 USER/PASS is offered before TLS"),
            ("password_in_clear", "true when a way in sends the password itself"),
            ("inferred", "true when deduced rather than seen (POP3 server without CAPA, no probe answer)"),
            ("starttls_advertised", "whether the server also offered STARTTLS/STLS"),
            ("capabilities", "the plaintext capability lines"),
        ),
        severity_rule=(
            "medium when the only way in is a challenge-response mechanism (CRAM-MD5, DIGEST-MD5, "
            "SCRAM-*, NTLM, GSSAPI): the password itself does not cross, but the exchange can be "
            "attacked offline and the session stays in clear."
        ),
    ),
    FindingInfo(
        code=Code.LOGIN_ADVERTISED_REFUSED,
        title="Login advertised before encryption, but refused",
        severity=Severity.INFO,
        description=(
            "The capability list offers a login before TLS (AUTH, USER, AUTH= without LOGINDISABLED), "
            "but the server refuses it when a client starts one: no password is taken in clear. The "
            "list misleads clients, which may try and fail, or tell their users the server is unsafe."
        ),
        risk=(
            "None for the password: the server refuses before any credential is sent. A client that "
            "trusts the list may still send the password in the same command (SASL-IR, AUTH PLAIN "
            "with an initial response, or PASS right after USER), so do not advertise what you refuse."
        ),
        raised_when=(
            "The plaintext capability list offers a login, and every login probe was refused before "
            "any credential (SMTP 503/530/538/504, IMAP NO [PRIVACYREQUIRED] or BAD, POP3 -ERR) — with "
            "LOGINDISABLED advertised for IMAP, or POP3 USER refused too."
        ),
        evidence=(
            ("offered", "what the capability list offered before TLS"),
            ("refused", "the login commands the server refused"),
            ("probes", "each login probe: command, the server's reply, outcome, reason"),
        ),
    ),
    FindingInfo(
        code=Code.NO_TLS,
        title="No encryption available",
        severity=Severity.HIGH,
        description=(
            "The port offers no way to encrypt the connection: STARTTLS/STLS is neither advertised "
            "nor accepted when asked."
        ),
        risk=(
            "Every message, and every password sent on this port, crosses the network readable and "
            "modifiable by anyone on the path."
        ),
        raised_when=(
            "On a STARTTLS port (25, 587, 143, 110): STARTTLS/STLS is not advertised and the server "
            "refuses it (or does not know the command) when we send it anyway."
        ),
        evidence=(
            ("advertised", "false: STARTTLS/STLS was not in the capability list"),
            ("reply", "the server's reply to STARTTLS/STLS, sanitised"),
        ),
        severity_rule=(
            "medium on SMTP port 25, where mail between servers without TLS is still common and no "
            "password is expected; high on every port where users log in."
        ),
    ),
    FindingInfo(
        code=Code.STARTTLS_FAILED,
        title="TLS offered but broken",
        severity=Severity.HIGH,
        description=(
            "The server offers TLS but the upgrade does not work: STARTTLS is advertised and then "
            "refused, or the TLS handshake fails (also on implicit-TLS ports)."
        ),
        risk=(
            "Clients either give up or, far more often, fall back to sending mail and passwords in "
            "clear; an attacker can provoke the failure to force that fallback."
        ),
        raised_when=(
            "STARTTLS/STLS is advertised but the command is refused, or it is accepted and the "
            "handshake then fails; on 465/993/995 the handshake itself fails."
        ),
        evidence=(
            ("mode", '"starttls" or "implicit" (465, 993, 995)'),
            ("advertised", "whether STARTTLS/STLS was in the capability list"),
            ("reply", "the server's refusal of STARTTLS/STLS, when it refused"),
            ("error", "why the handshake failed, as the TLS library reported it"),
        ),
    ),
    FindingInfo(
        code=Code.STARTTLS_INJECTION,
        title="Commands sent before STARTTLS are executed inside TLS",
        severity=Severity.HIGH,
        description=(
            "The server keeps what it read in clear after the STARTTLS command and executes it once "
            "TLS is up (the CVE-2011-0411 class of flaws). RFC 3207, RFC 2595 and RFC 9051 require the "
            "server to discard it."
        ),
        risk=(
            "An attacker on the path appends commands to the client's STARTTLS; the server runs them "
            "in the client's encrypted session. For SMTP that can steal the client's credentials or "
            "mail (e.g. an injected MAIL FROM/RCPT TO that captures the message)."
        ),
        raised_when=(
            "We send STARTTLS and one harmless command (SMTP HELP, POP3 NOOP, a tagged IMAP NOOP) in "
            "the same segment; after the TLS handshake, the server answers that command before the "
            "capability command we send inside TLS."
        ),
        evidence=(
            ("injected", "the command sent after STARTTLS in the same segment"),
            ("reply", "the server's answer to it, inside TLS"),
        ),
    ),
    FindingInfo(
        code=Code.STARTTLS_NOT_ADVERTISED,
        title="STARTTLS works but is not advertised",
        severity=Severity.MEDIUM,
        description=(
            "The server accepts STARTTLS/STLS when asked, but its capability list does not say so, "
            "so standard clients and sending mail servers never try it."
        ),
        risk=(
            "In practice the traffic stays in clear exactly as if there were no TLS; often a "
            "firewall or proxy is rewriting the capability list, which it can also do to other "
            "traffic."
        ),
        raised_when=(
            "STARTTLS/STLS is missing from the plaintext capability list, yet our STARTTLS/STLS "
            "command is accepted and the handshake succeeds."
        ),
        evidence=(
            ("reply", "the server's positive reply to STARTTLS/STLS"),
            ("capabilities", "the capability lines, which lack STARTTLS/STLS"),
        ),
    ),
    FindingInfo(
        code=Code.LEGACY_TLS,
        title="Obsolete SSL/TLS versions accepted",
        severity=Severity.MEDIUM,
        description=(
            "The server still negotiates SSLv3, TLS 1.0 or TLS 1.1, which are deprecated "
            "(RFC 7568, RFC 8996)."
        ),
        risk=(
            "An active attacker who can force a downgrade exploits the protocol's known weaknesses "
            "(POODLE on SSLv3, weak CBC and hash constructions in TLS 1.0/1.1)."
        ),
        raised_when="A ClientHello limited to one of these versions is accepted.",
        evidence=(
            ("versions", 'the obsolete versions accepted, e.g. ["TLSv1.0", "TLSv1.1"]'),
            ("matrix", 'every version probed: "accepted", "rejected" or "unknown"'),
        ),
        severity_rule="high when SSLv3 is among the accepted versions (POODLE is practical).",
    ),
    FindingInfo(
        code=Code.NO_MODERN_TLS,
        title="Neither TLS 1.2 nor TLS 1.3 supported",
        severity=Severity.HIGH,
        description=(
            "The server speaks TLS, but only versions older than 1.2, which current clients refuse "
            "or should refuse."
        ),
        risk=(
            "Every encrypted session uses a deprecated protocol; up-to-date clients fail to connect "
            "and users are pushed to insecure settings or to clear text."
        ),
        raised_when=(
            "The server accepts some TLS version, but TLS 1.2 and TLS 1.3 were both probed and "
            "rejected, or the real handshake settled on a version older than TLS 1.2."
        ),
        evidence=(
            ("accepted", "the versions the server did accept"),
            ("matrix", "every version probed, with its state"),
        ),
    ),
    FindingInfo(
        code=Code.WEAK_CIPHER,
        title="Weak cipher suites accepted",
        severity=Severity.MEDIUM,
        description=(
            "The server agrees to cipher suites that are broken or deprecated: NULL (no encryption), "
            "anonymous, EXPORT, RC4, DES, 3DES, or static-RSA key exchange (no forward secrecy)."
        ),
        risk=(
            "Depending on the class: data in clear (NULL), trivial interception (anonymous), key "
            "recovery (EXPORT, DES), plaintext recovery (RC4, 3DES/Sweet32), or decryption of "
            "recorded traffic once the server key leaks (static RSA)."
        ),
        raised_when=(
            "The server chooses a weak suite: in a version probe (suites of still-unknown weak classes are "
            "offered first), or in a probe offering only weak suites."
        ),
        evidence=(
            ("classes", "weak classes accepted: null, anon, export, rc4, des, 3des, static-rsa"),
            ("suites", "the weak suites the server chose, by IANA name"),
        ),
        severity_rule=(
            "follows the worst class accepted: high for null, anon or export; medium for rc4, des and "
            "3des; low when static-rsa is the only weakness (no forward secrecy, nothing broken yet). On "
            "port 25 anonymous suites count as low: MTA-to-MTA TLS is opportunistic and unauthenticated "
            "anyway (RFC 7435), and Postfix offers them there by design."
        ),
    ),
    FindingInfo(
        code=Code.CERT_EXPIRED,
        title="Certificate expired",
        severity=Severity.MEDIUM,
        description="The server's certificate is past its expiry date (notAfter).",
        risk=(
            "Clients that check certificates fail; users learn to click through warnings or turn "
            "verification off, after which an impostor's certificate is accepted too."
        ),
        raised_when="notAfter of the server's certificate is before the scan time (UTC).",
        evidence=(
            ("not_after", "expiry date, ISO 8601 UTC"),
            ("subject", "subject of the server's certificate"),
            ("sha256", "certificate fingerprint"),
        ),
    ),
    FindingInfo(
        code=Code.CERT_NOT_YET_VALID,
        title="Certificate not yet valid",
        severity=Severity.MEDIUM,
        description=(
            "The server's certificate starts being valid only in the future (notBefore), usually a "
            "clock problem on the machine that issued or checks it."
        ),
        risk="As for an expired certificate: verification fails and users learn to ignore warnings.",
        raised_when="notBefore of the server's certificate is after the scan time (UTC).",
        evidence=(("not_before", "start of validity, ISO 8601 UTC"), ("sha256", "certificate fingerprint")),
    ),
    FindingInfo(
        code=Code.CERT_UNTRUSTED,
        title="Certificate not trusted",
        severity=Severity.MEDIUM,
        description=(
            "The certificate chain does not lead to a trusted root: the certificate is self-signed, "
            "issued by a private CA, or served without its intermediate certificates."
        ),
        risk=(
            "Clients cannot tell the real server from an impostor; a man-in-the-middle presents his "
            "own certificate and users who accept this one accept his."
        ),
        raised_when="Chain verification against the scanner's trust store fails.",
        evidence=(
            ("self_signed", "true when the server's certificate is self-signed"),
            ("issuer", "issuer of the server's certificate"),
            ("error", 'the verifier\'s reason, e.g. "unable to get local issuer certificate"'),
            ("sha256", "certificate fingerprint"),
        ),
        severity_rule=_RELAY_RULE,
    ),
    FindingInfo(
        code=Code.CERT_HOSTNAME_MISMATCH,
        title="Certificate does not match the host name",
        severity=Severity.MEDIUM,
        description=(
            "None of the names on the certificate matches the host name the server was reached by "
            "(its MX or the name configured in mail clients)."
        ),
        risk=(
            "Verifying clients refuse the connection; the rest cannot distinguish this server from "
            "any other holding a valid certificate for some other name."
        ),
        raised_when=(
            "A host name is known for the endpoint and it matches no name on the certificate (RFC 9525)."
        ),
        evidence=(
            ("hostname", "the name checked"),
            ("dns_names", "the certificate's subjectAltName DNS entries"),
            ("subject", "subject of the server's certificate"),
        ),
        severity_rule=_RELAY_RULE,
    ),
    FindingInfo(
        code=Code.CERT_WEAK_KEY,
        title="Certificate key too short",
        severity=Severity.MEDIUM,
        description=(
            "A certificate's public key is too short: RSA or DSA below 2048 bits, or elliptic-curve "
            "below 224 bits."
        ),
        risk=(
            "A key this short can be factored or broken with affordable computing, after which anyone "
            "can impersonate the server and decrypt sessions that used static-RSA key exchange."
        ),
        raised_when="A certificate of the served chain has a key below these sizes.",
        evidence=(("certificates", "each short-keyed certificate: subject, key_type, key_bits"),),
    ),
    FindingInfo(
        code=Code.CERT_WEAK_SIGNATURE,
        title="Certificate signed with MD5 or SHA-1",
        severity=Severity.LOW,
        description=(
            "The server's certificate or an intermediate is signed with MD5 or SHA-1, hash functions "
            "for which collisions have been demonstrated."
        ),
        risk=(
            "A chosen-prefix collision lets an attacker obtain a forged certificate that carries the "
            "same signature; current clients reject such chains outright."
        ),
        raised_when=(
            "The signature algorithm of the server's certificate or of an intermediate uses MD5 (or "
            "MD2) or SHA-1; self-signed roots are not judged, since nobody checks their signature."
        ),
        evidence=(("certificates", "each such certificate: subject, signature_algorithm"),),
    ),
)

CATALOGUE: Mapping[Code, FindingInfo] = MappingProxyType({entry.code: entry for entry in _ENTRIES})
"""Every code, with its meaning. Read-only: the catalogue is the contract, not a scratch pad."""


def info(code: Code | str) -> FindingInfo:
    """The catalogue entry for ``code``; raises ValueError for a string that is not a known code."""
    return CATALOGUE[Code(code)]
