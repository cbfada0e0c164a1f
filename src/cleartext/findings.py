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

__all__ = ["CATALOGUE", "DOMAIN_CATALOGUE", "Code", "DomainCode", "FindingInfo", "info"]


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


class DomainCode(StrEnum):
    """Findings on a mail domain as a whole (cleartext.domain): what it tells mail clients and sending
    servers. They live in domain records, never in endpoint records. Stable strings: only add."""

    AUTOCONFIG_CLEARTEXT_PASSWORD = "autoconfig-cleartext-password"
    AUTOCONFIG_TLS_NOT_OFFERED = "autoconfig-tls-not-offered"
    SRV_PREFERS_PLAINTEXT = "srv-prefers-plaintext"
    NO_SMTP_TLS_POLICY = "no-smtp-tls-policy"
    MTA_STS_TESTING = "mta-sts-testing"
    MTA_STS_INVALID = "mta-sts-invalid"
    MTA_STS_MX_MISMATCH = "mta-sts-mx-mismatch"
    MTA_STS_MX_CERT_INVALID = "mta-sts-mx-cert-invalid"
    MTA_STS_SHORT_MAX_AGE = "mta-sts-short-max-age"
    TLS_RPT_MISSING = "tls-rpt-missing"
    DANE_TLSA_MISMATCH = "dane-tlsa-mismatch"
    DANE_TLSA_INSECURE = "dane-tlsa-insecure"
    DANE_TLSA_UNUSABLE = "dane-tlsa-unusable"
    DNSSEC_BOGUS = "dnssec-bogus"


@dataclass(frozen=True, slots=True)
class FindingInfo:
    """What a finding code means, for the people who read it.

    The first five fields are what every consumer needs (a one-line title, the default severity, what it
    means for a mail admin, what an attacker on the path can do). The last three exist so that
    docs/findings.md can be generated from this single source: when the assessment raises the finding,
    which evidence keys the record carries, and when the severity departs from the default.
    """

    code: Code | DomainCode
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

CATALOGUE: Mapping[Code, FindingInfo] = MappingProxyType({Code(e.code): e for e in _ENTRIES})
"""Every code, with its meaning. Read-only: the catalogue is the contract, not a scratch pad."""


# --- the domain view ----------------------------------------------------------------------------------
#
# How the domain defaults were chosen, on the same scale. What makes mail clients send a password in
# clear is high, like cleartext-login: the domain itself tells them to. What makes senders refuse or
# defer mail that should arrive (a TLSA record that does not match, DNSSEC that fails, an enforced
# policy that excludes the real MX) is high too: DANE and MTA-STS senders fail closed, by design. What
# leaves delivery to opportunistic TLS, which an active attacker strips (no policy at all, TLSA without
# DNSSEC, a broken policy), is medium, like the other weaknesses that need an attacker on the path. A
# policy still in its rollout stage (testing) or missing its reporting address is low.

_DOMAIN_ENTRIES: tuple[FindingInfo, ...] = (
    FindingInfo(
        code=DomainCode.AUTOCONFIG_CLEARTEXT_PASSWORD,
        title="Client configuration sends passwords in clear",
        severity=Severity.HIGH,
        description=(
            "The domain's published mail client configuration (Thunderbird autoconfig or Microsoft "
            "Autodiscover) tells clients to connect without TLS (socketType plain, Autodiscover SSL off "
            "or Encryption None) and to log in there."
        ),
        risk=(
            "Every client that sets itself up from this file sends the user's password, and then all "
            "mail, in clear: anyone on the path reads them, without having to attack anything."
        ),
        raised_when=(
            "An autoconfig incomingServer/outgoingServer or an Autodiscover Protocol entry for IMAP, POP3 "
            "or SMTP names a plain socket, fetched over HTTPS from autoconfig.<domain>, "
            "<domain>/.well-known/autoconfig, <domain> or autodiscover.<domain>."
        ),
        evidence=(
            ("source", "autoconfig or autodiscover"),
            ("url", "where the document was fetched"),
            ("server", "host:port the clients are sent to"),
            ("protocol", "imap, pop3 or smtp"),
            ("socket", "what the document says: plain"),
            ("authentication", "the authentication the document names, e.g. password-cleartext"),
        ),
        severity_rule=(
            "medium when every authentication the entry names is challenge-response (password-encrypted, "
            "NTLM/SPA, GSSAPI): the password itself does not cross, but the session and the mail do."
        ),
    ),
    FindingInfo(
        code=DomainCode.AUTOCONFIG_TLS_NOT_OFFERED,
        title="Client configuration names TLS the server lacks",
        severity=Severity.MEDIUM,
        description=(
            "The published client configuration tells clients to use STARTTLS or implicit TLS on a "
            "server where this check found that TLS does not work: STARTTLS is not offered or fails, "
            "or the implicit-TLS handshake fails."
        ),
        risk=(
            "Clients that insist on TLS cannot connect, and users are led to switch encryption off by "
            "hand; clients that fall back silently send passwords in clear."
        ),
        raised_when=(
            "An autoconfig or Autodiscover entry says STARTTLS or SSL, and the scan of that host and port "
            "raised no-tls or starttls-failed, or ended with status tls-error."
        ),
        evidence=(
            ("source", "autoconfig or autodiscover"),
            ("server", "host:port the clients are sent to"),
            ("socket", "what the document says: starttls or ssl"),
            ("scan", "what the scan of that endpoint found (finding codes or status)"),
        ),
    ),
    FindingInfo(
        code=DomainCode.SRV_PREFERS_PLAINTEXT,
        title="SRV records steer clients away from implicit TLS",
        severity=Severity.LOW,
        description=(
            "The domain's RFC 6186 SRV records make a client that follows them choose the plaintext-port "
            "service (IMAP 143, POP3 110, submission 587) over its implicit-TLS twin (993, 995, 465): the "
            "twin is missing, marked not offered (target \".\"), or has a worse (higher) priority. RFC "
            "8314 5.1 asks for the opposite."
        ),
        risk=(
            "On the plaintext port TLS starts only if both sides agree to STARTTLS, which an attacker on "
            "the path can prevent; a client that does not insist on it then logs in in clear."
        ),
        raised_when=(
            "_imap._tcp, _pop3._tcp or _submission._tcp has a usable target, and the matching _imaps, "
            "_pop3s or _submissions record is absent, has target \".\", or has a higher priority number."
        ),
        evidence=(
            ("service", "the plaintext service clients are steered to"),
            ("twin", "its implicit-TLS twin"),
            ("why", "absent, not offered, or the two priorities"),
            ("targets", "the plaintext service's targets, host:port"),
            ("scan", "what the scan of the preferred target found, when it raised the severity"),
        ),
        severity_rule=(
            "high when the preferred plaintext target was scanned and accepts a password before TLS "
            "(cleartext-login) or offers no TLS (no-tls): the domain then leads clients into clear text."
        ),
    ),
    FindingInfo(
        code=DomainCode.NO_SMTP_TLS_POLICY,
        title="No MTA-STS or DANE for incoming mail",
        severity=Severity.MEDIUM,
        description=(
            "The domain publishes neither an MTA-STS policy (RFC 8461) nor TLSA records for its MX hosts "
            "(DANE, RFC 7672), or only an MTA-STS policy in mode none: nothing tells sending servers to "
            "insist on TLS."
        ),
        risk=(
            "Servers delivering mail to the domain use TLS only opportunistically: an attacker on the "
            "path strips STARTTLS from the MX's reply, or redirects the connection, and reads or changes "
            "the mail in transit."
        ),
        raised_when=(
            "No usable _mta-sts TXT record (or a policy with mode none) and no TLSA record at "
            "_25._tcp.<mx> for any MX host."
        ),
        evidence=(
            ("mta_sts", "what the _mta-sts lookup found"),
            ("mode", "the policy's mode, when a policy was found"),
            ("mx_hosts", "the MX hosts checked for TLSA records"),
        ),
    ),
    FindingInfo(
        code=DomainCode.MTA_STS_TESTING,
        title="MTA-STS in testing mode only",
        severity=Severity.LOW,
        description=(
            "The domain's MTA-STS policy is valid but in mode testing: senders report TLS failures (to "
            "the TLS-RPT address) and then deliver anyway, over clear text if need be."
        ),
        risk=(
            "The policy protects nothing yet: an attacker who strips STARTTLS still gets the mail. "
            "Testing is meant as a rollout stage before enforce."
        ),
        raised_when="A valid policy (RFC 8461 3.2) says mode: testing.",
        evidence=(
            ("mode", "testing"),
            ("max_age", "the policy's max_age in seconds"),
            ("mx", "its MX patterns"),
        ),
    ),
    FindingInfo(
        code=DomainCode.MTA_STS_INVALID,
        title="MTA-STS published but unusable",
        severity=Severity.MEDIUM,
        description=(
            "The domain publishes an _mta-sts TXT record, but senders cannot apply a policy: the record "
            "is malformed or duplicated, or the policy file at "
            "https://mta-sts.<domain>/.well-known/mta-sts.txt cannot be fetched (no such host, no valid "
            "certificate for it, not HTTP 200, a redirect, too large, too slow) or is malformed."
        ),
        risk=(
            "Senders treat the domain as having no policy (RFC 8461 3.1, 3.3), so delivery stays "
            "opportunistic while the domain's owners believe it is protected."
        ),
        raised_when=(
            "A record beginning with v=STSv1 exists, and the record set or the policy fetch or the policy "
            "file fails the checks of RFC 8461 sections 3.1 to 3.3."
        ),
        evidence=(
            ("record_errors", "what is wrong with the TXT record set"),
            ("policy_url", "where the policy was asked for"),
            ("policy_outcome", "how that request ended (found, absent, tls-error, timeout, too-large, ...)"),
            ("policy_detail", "the reason, one line"),
            ("policy_errors", "what is wrong with the policy file"),
        ),
    ),
    FindingInfo(
        code=DomainCode.MTA_STS_MX_MISMATCH,
        title="MTA-STS policy does not cover every MX",
        severity=Severity.MEDIUM,
        description=(
            "An MX host of the domain matches none of the mx patterns in its MTA-STS policy (RFC 8461 "
            "4.1: an exact name, or *.example.com for exactly one label)."
        ),
        risk=(
            "Senders that honour an enforced policy refuse to deliver to that MX host; when it is the "
            "only one, or the others are down, mail is deferred and then bounced."
        ),
        raised_when="A valid policy in mode enforce or testing lists mx patterns that miss an MX host.",
        evidence=(
            ("mode", "the policy's mode"),
            ("uncovered", "the MX hosts no pattern matches"),
            ("patterns", "the policy's mx patterns"),
        ),
        severity_rule=(
            "high in mode enforce when no MX host is covered (policy-honouring senders cannot deliver at "
            "all); low in mode testing (senders only report)."
        ),
    ),
    FindingInfo(
        code=DomainCode.MTA_STS_MX_CERT_INVALID,
        title="MX certificate fails the MTA-STS check",
        severity=Severity.HIGH,
        description=(
            "Under the domain's MTA-STS policy, senders require each MX host to offer STARTTLS with a "
            "certificate that chains to a trusted root and names the MX host (RFC 8461 4.2); the scan "
            "of port 25 found an MX host that does not."
        ),
        risk=(
            "Senders that honour an enforced policy refuse to deliver to that MX host: mail is deferred "
            "and then bounced."
        ),
        raised_when=(
            "The policy is valid, the MX host is covered by it, and its port-25 scan shows no working "
            "STARTTLS, an untrusted chain, or a certificate that does not name the MX host."
        ),
        evidence=(
            ("mx", "the MX host"),
            ("address", "the address scanned"),
            ("mode", "the policy's mode"),
            ("problem", "no TLS, untrusted chain, or name mismatch, with the verifier's reason"),
        ),
        severity_rule="low in mode testing: senders report the failure and deliver anyway.",
    ),
    FindingInfo(
        code=DomainCode.MTA_STS_SHORT_MAX_AGE,
        title="MTA-STS max_age too short",
        severity=Severity.LOW,
        description=(
            "The policy's max_age is under a day. Senders cache a policy for max_age seconds and are "
            "protected only while a cached copy lives (RFC 8461 3.2 recommends weeks or more)."
        ),
        risk=(
            "An attacker who can block the policy fetch (its DNS or HTTPS) after the short cache expires "
            "makes senders forget the policy, and then strips STARTTLS."
        ),
        raised_when="A valid policy in mode enforce or testing has max_age below 86400 seconds.",
        evidence=(("max_age", "the policy's max_age in seconds"), ("mode", "the policy's mode")),
    ),
    FindingInfo(
        code=DomainCode.TLS_RPT_MISSING,
        title="No TLS reporting (TLS-RPT)",
        severity=Severity.LOW,
        description=(
            "The domain deploys MTA-STS or DANE but publishes no usable _smtp._tls TXT record (RFC "
            "8460), so senders have nowhere to report the TLS failures they meet."
        ),
        risk=(
            "A broken certificate, an expired policy or an attack on delivery goes unnoticed until mail "
            "is lost; with reports the domain learns of it the next day."
        ),
        raised_when=(
            "MTA-STS or TLSA records are published, and _smtp._tls has no record, several, or one "
            "without v=TLSRPTv1 and a mailto:/https: rua."
        ),
        evidence=(("records", "the _smtp._tls TXT records found"), ("errors", "what is wrong with them")),
    ),
    FindingInfo(
        code=DomainCode.DANE_TLSA_MISMATCH,
        title="TLSA does not match the served certificate",
        severity=Severity.HIGH,
        description=(
            "An MX host has DNSSEC-validated TLSA records (DANE, RFC 7672), but none of them matches the "
            "certificate chain the host served on port 25 in this check."
        ),
        risk=(
            "DANE-aware senders (Postfix, Exim, Microsoft 365, many providers) refuse to deliver to this "
            "host: mail is deferred and then bounced. Usually a certificate was renewed with a new key "
            "and the TLSA records were not updated first."
        ),
        raised_when=(
            "The TLSA answer for _25._tcp.<mx> carries the AD bit, it has usable DANE-TA/DANE-EE records "
            "cleartext can check (matching type SHA2-256), and no chain served by the host's addresses "
            "matches any of them."
        ),
        evidence=(
            ("mx", "the MX host"),
            ("tlsa", "the usable TLSA records, as usage selector type data"),
            ("served", "each address scanned and the SHA-256 of the leaf it served"),
        ),
    ),
    FindingInfo(
        code=DomainCode.DANE_TLSA_INSECURE,
        title="TLSA records without DNSSEC",
        severity=Severity.MEDIUM,
        description=(
            "An MX host has TLSA records at _25._tcp.<mx>, but the answer is not DNSSEC-validated (the "
            "zone is not signed, or its chain of trust is broken above it)."
        ),
        risk=(
            "Senders ignore TLSA records that are not validated (RFC 7672 2.2): DANE is not in effect, "
            "and delivery stays opportunistic, while its owners believe it is protected."
        ),
        raised_when=(
            "The TLSA lookup returned records without the AD bit from a validating resolver. "
            "(cleartext trusts the AD bit of the resolver it is pointed at: point --nameserver at a "
            "validating one.)"
        ),
        evidence=(("mx", "the MX host"), ("tlsa", "the TLSA records found")),
    ),
    FindingInfo(
        code=DomainCode.DANE_TLSA_UNUSABLE,
        title="TLSA records unusable for SMTP",
        severity=Severity.LOW,
        description=(
            "An MX host's validated TLSA records are all PKIX-TA (0) or PKIX-EE (1), or of unknown "
            "parameters: RFC 7672 3.1.3 tells SMTP senders to treat these as unusable."
        ),
        risk=(
            "Senders then require TLS but authenticate nothing: an attacker on the path who presents any "
            "certificate still gets the mail."
        ),
        raised_when="Validated TLSA records exist for the MX host and none is DANE-TA (2) or DANE-EE (3).",
        evidence=(("mx", "the MX host"), ("tlsa", "the TLSA records found")),
    ),
    FindingInfo(
        code=DomainCode.DNSSEC_BOGUS,
        title="DNSSEC validation fails",
        severity=Severity.HIGH,
        description=(
            "The validating resolver refused an answer of the domain's mail records (MX, TLSA, MTA-STS, "
            "SRV): the signatures are expired, missing or do not match the keys (SERVFAIL, while the "
            "same question with checking disabled is answered)."
        ),
        risk=(
            "Every validating resolver refuses these answers: DANE senders defer mail to the domain, and "
            "clients and senders behind validating resolvers cannot find its servers or its policy."
        ),
        raised_when=(
            "A lookup of the domain view ended with SERVFAIL, and the same question with the CD (checking "
            "disabled) bit got an answer."
        ),
        evidence=(("names", "the names and types whose answers fail validation"),),
    ),
)

DOMAIN_CATALOGUE: Mapping[DomainCode, FindingInfo] = MappingProxyType(
    {DomainCode(e.code): e for e in _DOMAIN_ENTRIES}
)
"""Every domain code, with its meaning."""


def info(code: Code | DomainCode | str) -> FindingInfo:
    """The catalogue entry for ``code`` (an endpoint or a domain code); ValueError for an unknown one."""
    if isinstance(code, DomainCode):
        return DOMAIN_CATALOGUE[code]
    try:
        return CATALOGUE[Code(code)]
    except ValueError:
        return DOMAIN_CATALOGUE[DomainCode(code)]
