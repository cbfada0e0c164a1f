"""How to fix each finding, for the software that was found: steps, a configuration snippet, references.

Why this exists: a finding that says "cleartext-login" helps nobody until the mail admin knows which line
of which file to change. `cleartext check` prints the :class:`Remedy` once per software and finding,
notification e-mails quote it, and ``docs/findings.md`` is rendered from the same table, so the advice
exists once. Given the host checked and the ports of the finding, its commands are the admin's own
(``openssl s_client -connect HOST:25 -starttls smtp``); without them they name mail.example.com.

What is covered. Concrete configuration for Dovecot (2.3, with the 2.4 names where they differ), Postfix,
Exim, Courier, Microsoft Exchange, Cyrus IMAP (imapd.conf, cyrus.conf) and OpenSMTPD (smtpd.conf); a
hosted-service note for Gmail; generic text for everything else.
The advice must be *correct for the software found*, so a product is only used for a protocol it serves
(:func:`cleartext.software.serves`): a "Postfix" IMAP endpoint is a mis-identification and gets the
generic text. Dovecot does answer on SMTP: its submission service (Dovecot 2.3+) is configured with the
same ``ssl`` and plaintext-authentication settings as IMAP and POP3.

Sources. Setting names were checked against Postfix postconf(5) (3.7), ``doveconf -d`` (2.3.19) and the
Dovecot 2.3-to-2.4 upgrade notes, the Exim option list and specification, Courier's shipped imapd,
imapd-ssl, pop3d-ssl and esmtpd files and couriertls source, the Exchange cmdlet reference, Cyrus's
imapoptions (imapd.conf(5), 3.x) and OpenSMTPD's smtpd.conf(5) and smtp_session.c (AUTH is advertised
and accepted only on a secured session). Paths
such as ``/etc/letsencrypt/live/mail.example.com/`` and names such as ``EX01`` are examples to adapt.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cleartext.findings import Code, DomainCode
from cleartext.record import Protocol
from cleartext.software import Software, display_name, serves

__all__ = ["GENERIC", "PLACEHOLDER", "SPECIFIC", "Remedy", "Site", "domain_remedy", "remedy", "targets"]

GENERIC = "generic"
"""The label of the fallback advice, for software we do not know or could not identify."""


@dataclass(frozen=True, slots=True)
class Remedy:
    """Advice for one finding on one kind of server.

    ``software`` is the label of the advice actually given ("Dovecot", "generic"), which is not always
    the software identified: an unknown product, or one seen on a protocol it cannot serve, gets the
    generic advice and the label says so.
    """

    software: str
    steps: tuple[str, ...]
    config: str | None = None  # a snippet to paste, with comments saying where it goes
    references: tuple[str, ...] = ()  # RFCs and documentation, by name


# --- shared vocabulary ---------------------------------------------------------------------------------

_RFC8314 = "RFC 8314: Cleartext Considered Obsolete: Use of TLS for Email Submission and Access"
_RFC3207 = "RFC 3207: SMTP Service Extension for Secure SMTP over Transport Layer Security"
_RFC2595 = "RFC 2595: Using TLS with IMAP, POP3 and ACAP"
_RFC9051 = "RFC 9051: IMAP4rev2 (STARTTLS, LOGINDISABLED)"
_RFC2449 = "RFC 2449: POP3 Extension Mechanism (CAPA)"
_RFC4954 = "RFC 4954: SMTP Service Extension for Authentication, section 4"
_RFC8996 = "RFC 8996: Deprecating TLS 1.0 and TLS 1.1"
_RFC7568 = "RFC 7568: Deprecating Secure Sockets Layer Version 3.0"
_RFC9325 = "RFC 9325 (BCP 195): Recommendations for Secure Use of TLS and DTLS"
_RFC7465 = "RFC 7465: Prohibiting RC4 Cipher Suites"
_RFC5280 = "RFC 5280: Internet X.509 Public Key Infrastructure Certificate and CRL Profile"
_RFC9525 = "RFC 9525: Service Identity in TLS"
_RFC8555 = "RFC 8555: Automatic Certificate Management Environment (ACME)"
_RFC7672 = "RFC 7672: SMTP Security via Opportunistic DANE TLS"
_RFC8461 = "RFC 8461: SMTP MTA Strict Transport Security (MTA-STS)"
_NIST = "NIST SP 800-131A Rev. 2: Transitioning the Use of Cryptographic Algorithms and Key Lengths"
_ACME_TOOLS = "certbot, acme.sh and dehydrated documentation (issuing, renewal hooks)"

_DOVECOT_SSL = (
    "Dovecot documentation: SSL configuration (ssl, ssl_cert, ssl_key, ssl_min_protocol, ssl_cipher_list)"
)
_DOVECOT_AUTH = "Dovecot documentation: disable_plaintext_auth (2.3) / auth_allow_cleartext (2.4)"
_DOVECOT_24 = "Dovecot documentation: Upgrading Dovecot 2.3 to 2.4 (renamed settings)"
_POSTCONF = "postconf(5): smtpd_tls_* and smtpd_sasl_* parameters"
_POSTFIX_TLS = "Postfix TLS_README"
_POSTFIX_MASTER = "master(5)"
_EXIM_TLS = "Exim specification: Encrypted SMTP connections using TLS/SSL"
_EXIM_AUTH = "Exim specification: SMTP authentication (auth_advertise_hosts, server_advertise_condition)"
_EXIM_DEBIAN = "Debian exim4 README.Debian (split configuration, MAIN_TLS_ENABLE, update-exim4.conf)"
_COURIER_IMAP = "Courier-IMAP imapd(8); the imapd, imapd-ssl, pop3d and pop3d-ssl configuration files"
_COURIER_TLS = "couriertls(1): TLS_PROTOCOL, TLS_CIPHER_LIST, TLS_PRIORITY, TLS_CERTFILE"
_COURIER_ESMTP = "Courier esmtpd configuration file (ESMTPAUTH, ESMTPAUTH_TLS, ESMTP_TLS_REQUIRED)"
_GNUTLS_PRIO = "GnuTLS manual: Priority strings"
_MS_IMAP = "Microsoft Learn: Set-ImapSettings"
_MS_POP = "Microsoft Learn: Set-PopSettings"
_MS_RECV = "Microsoft Learn: Set-ReceiveConnector (AuthMechanism)"
_MS_CERT = "Microsoft Learn: Import-ExchangeCertificate, Enable-ExchangeCertificate"
_MS_TLS = "Microsoft Learn: Exchange Server TLS configuration best practices"
_MS_SCHANNEL = "Microsoft Learn: Transport Layer Security (TLS) registry settings"
_MS_CIPHERS = "Microsoft Learn: Disable-TlsCipherSuite"
_CYRUS_CONF = (
    "Cyrus IMAP imapd.conf(5) and cyrus.conf(5): allowplaintext, tls_required, tls_server_cert, "
    "tls_versions, tls_ciphers"
)
_SMTPD_CONF = "OpenSMTPD smtpd.conf(5): pki, listen on ... tls, tls-require, smtps, auth, protocols, ciphers"

OPENSSL_CIPHERS = (
    "ALL:!kRSA:!SRP:!kDHd:!DSS:!aNULL:!eNULL:!EXPORT:!DES:!3DES:!MD5:!PSK:!RC4:!ADH:!LOW@STRENGTH"
)
"""An OpenSSL cipher string without any of our weak classes (it is Dovecot 2.3's own default)."""

GNUTLS_VERSIONS = "NORMAL:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1"
"""A GnuTLS priority string for TLS 1.2 and later."""

GNUTLS_STRONG = GNUTLS_VERSIONS + ":-RSA:-3DES-CBC:-ARCFOUR-128"
"""The same without static-RSA key exchange, 3DES and RC4 (NULL, anonymous and export are not in NORMAL)."""

_LE = "/etc/letsencrypt/live/mail.example.com"


def _name(protocol: Protocol) -> str:
    return {Protocol.SMTP: "SMTP", Protocol.IMAP: "IMAP", Protocol.POP3: "POP3"}[protocol]


def _ports(protocol: Protocol) -> str:
    return {
        Protocol.SMTP: "ports 25 and 587 with STARTTLS, 465 with implicit TLS",
        Protocol.IMAP: "port 143 with STARTTLS, 993 with implicit TLS",
        Protocol.POP3: "port 110 with STLS, 995 with implicit TLS",
    }[protocol]


def _implicit(protocol: Protocol) -> str:
    return {Protocol.SMTP: "465", Protocol.IMAP: "993", Protocol.POP3: "995"}[protocol]


@dataclass(frozen=True, slots=True)
class Site:
    """Where advice is for: the host being checked and the ports a finding was seen on, with whether each
    starts with TLS. The default (no host, no ports) is the documentation's: commands name
    mail.example.com and the protocol's standard ports."""

    host: str | None = None
    ports: tuple[tuple[int, bool], ...] = ()  # (port, implicit TLS)

    @property
    def connect(self) -> str:
        """What a command connects to: the host (an IPv6 address in brackets), or the placeholder."""
        if not self.host:
            return PLACEHOLDER
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def sni(self) -> str | None:
        """The name for -servername: the host when it is a name, None for an address."""
        if not self.host:
            return PLACEHOLDER
        return None if _is_address(self.host) else self.host


PLACEHOLDER = "mail.example.com"
"""The host name advice uses when it is not for a host in particular (the documentation)."""

_ANYWHERE = Site()
_STANDARD = {  # (STARTTLS port, implicit-TLS port, openssl's -starttls name)
    Protocol.SMTP: (587, 465, "smtp"),
    Protocol.IMAP: (143, 993, "imap"),
    Protocol.POP3: (110, 995, "pop3"),
}


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _openssl(protocol: Protocol, site: Site, port: int, implicit: bool) -> str:
    tag = _STANDARD[protocol][2]
    return (
        f"openssl s_client -connect {site.connect}:{port}"
        + ("" if implicit else f" -starttls {tag}")
        + (f" -servername {site.sni}" if site.sni else "")
    )


def _s_client(protocol: Protocol, site: Site = _ANYWHERE) -> str:
    """The openssl commands that show what a client sees: on the ports of the finding, or for the
    documentation on the protocol's STARTTLS and implicit-TLS ports."""
    if not site.ports:
        starttls, implicit, _ = _STANDARD[protocol]
        return (
            f"Check from outside: `{_openssl(protocol, site, starttls, False)}` (and "
            f"`{_openssl(protocol, site, implicit, True)}` for the implicit-TLS port), then re-scan with "
            "cleartext."
        )
    commands = [f"`{_openssl(protocol, site, port, implicit)}`" for port, implicit in site.ports[:3]]
    return f"Check from outside: {' and '.join(commands)}, then re-scan with cleartext."


def _plain_capabilities(protocol: Protocol, site: Site = _ANYWHERE) -> str:
    """How to look at the capability list a client sees before TLS (what cleartext judges), on the port of
    the finding (the first without implicit TLS) or the protocol's STARTTLS port."""
    plain = [port for port, implicit in site.ports if not implicit]
    port = plain[0] if plain else site.ports[0][0] if site.ports else _STANDARD[protocol][0]
    command = f"`nc -C {site.connect} {port}`"
    return {
        Protocol.SMTP: (
            f"See what a client sees before TLS: {command}, then type `EHLO test`; "
            "the reply must list STARTTLS and must not list AUTH."
        ),
        Protocol.IMAP: (
            f"See what a client sees before TLS: {command}, then type `a CAPABILITY`; "
            "the reply must list STARTTLS and LOGINDISABLED and no AUTH= mechanism."
        ),
        Protocol.POP3: (
            f"See what a client sees before TLS: {command}, then type `CAPA`; the "
            "reply must list STLS and neither USER nor a SASL mechanism."
        ),
    }[protocol]


def _cipher_list(site: Site) -> str:
    """The nmap command that lists the suites a server accepts, on the finding's ports."""
    if not site.ports:
        return (
            f"List what the server accepts: `nmap --script ssl-enum-ciphers -p 993 {site.connect}` "
            "(use the port of the finding), then re-scan with cleartext."
        )
    ports = ",".join(str(port) for port, _ in site.ports)
    return (
        f"List what the server accepts: `nmap --script ssl-enum-ciphers -p {ports} {site.connect}`, "
        "then re-scan with cleartext."
    )


def _remedy(label: str, steps: list[str], config: str | None, refs: list[str]) -> Remedy:
    return Remedy(label, tuple(steps), config.strip("\n") + "\n" if config else None, tuple(refs))


# --- generic advice ------------------------------------------------------------------------------------

_ROTATE = (
    "Treat passwords used on this port before the fix as exposed: find in the server's logs which "
    "accounts logged in without TLS and have them change their passwords."
)


def _cert_check(protocol: Protocol, site: Site = _ANYWHERE) -> str:
    """The command that shows the certificate a client of ``protocol`` really gets: on an implicit-TLS
    port of the finding if it has one, else on its first port."""
    starttls, implicit, tag = _STANDARD[protocol]
    port, tls = next((p for p in site.ports if p[1]), site.ports[0]) if site.ports else (implicit, True)
    command = (
        f"{_openssl(protocol, site, port, tls)} </dev/null | openssl x509 -noout -subject -issuer -dates "
        "-ext subjectAltName"
    )
    if site.ports:
        return f"Look at what the server really serves: `{command}` (`-showcerts` lists the whole chain)."
    plain = "25 or 587" if protocol is Protocol.SMTP else str(starttls)
    return (
        f"Look at what the server really serves: `{command}` (for port {plain} add `-starttls {tag}`; "
        "`-showcerts` lists the whole chain)."
    )


_ACME = (
    "Get a certificate from a publicly trusted CA; free ACME CAs (Let's Encrypt and others, RFC 8555) "
    "can be automated: `certbot certonly --standalone -d mail.example.com` (needs port 80; or "
    "`--webroot -w <dir>`, or a DNS-01 plugin when port 80 is closed), `acme.sh --issue --standalone "
    "-d mail.example.com`, or dehydrated (`dehydrated -c` with the name in domains.txt)."
)

_RELOAD = (
    "Mail daemons read the certificate only when they start: make every renewal reload them (certbot "
    "`--deploy-hook 'systemctl reload postfix dovecot'`, acme.sh `--install-cert ... --reloadcmd`, "
    "dehydrated's `deploy_cert` hook). A renewed file on disk while the daemon still serves the old "
    "certificate is the most common cause of an expired certificate on a mail server."
)

_CHAIN = (
    "Serve the full chain: the server's certificate followed by the intermediate certificates "
    "(certbot's fullchain.pem, acme.sh's --fullchain-file), never the certificate alone."
)

_KEY = (
    "Use an RSA key of at least 2048 bits (3072 is a good choice) or an ECDSA P-256 key, and a new key "
    "for the new certificate (certbot `--key-type ecdsa --elliptic-curve secp256r1` or "
    "`--key-type rsa --rsa-key-size 3072`; acme.sh `--keylength ec-256` or `--keylength 3072`); do not "
    "reuse the old key (certbot `--reuse-key`)."
)

_NAMES = (
    "Put on the certificate (subjectAltName) every name clients use to reach this server: for port 25 "
    "the MX host name (what DANE, RFC 7672, and MTA-STS, RFC 8461, check); for 587/465/993/995/143/110 "
    "the host name configured in mail clients (e.g. mail.example.com, imap.example.com). A wildcard "
    "covers one label only."
)


def _generic(
    code: Code, protocol: Protocol, identified: str | None, site: Site = _ANYWHERE
) -> Remedy:
    """Advice that holds for any server; ``identified`` names a recognised product we have no table for."""
    prefix = (
        [
            f"cleartext identified this server as {identified}; the steps below are generic, "
            "look up the matching settings in its documentation."
        ]
        if identified
        else []
    )
    name = _name(protocol)
    steps: list[str]
    refs: list[str]
    match code:
        case Code.CLEARTEXT_LOGIN:
            specific = {
                Protocol.IMAP: (
                    "Refuse LOGIN and AUTHENTICATE until STARTTLS has succeeded, so that the "
                    "capability list before TLS shows LOGINDISABLED and no AUTH= mechanism "
                    "(RFC 9051, RFC 2595)."
                ),
                Protocol.POP3: (
                    "Refuse USER/PASS, APOP and AUTH until STLS has succeeded, and list neither USER "
                    "nor SASL mechanisms in CAPA before TLS (RFC 2595, RFC 2449)."
                ),
                Protocol.SMTP: (
                    "Offer AUTH only after STARTTLS (RFC 4954, section 4), or only on the implicit-TLS "
                    "port 465. Port 25 is for mail between servers and normally needs no AUTH at all; "
                    "users submit on 587 (STARTTLS required) or 465."
                ),
            }[protocol]
            steps = [
                specific,
                f"Offer implicit TLS on port {_implicit(protocol)} and point mail clients to it: "
                "RFC 8314 prefers implicit TLS for submission and mail access.",
                _ROTATE,
                _plain_capabilities(protocol, site),
                "Hiding the login is not enough: cleartext starts a login in clear and cancels it "
                "before any credential, so the finding stays until the server refuses the login "
                "itself, not only drops it from the capability list.",
            ]
            refs = [
                _RFC8314,
                {Protocol.IMAP: _RFC9051, Protocol.POP3: _RFC2449, Protocol.SMTP: _RFC4954}[protocol],
            ]
            refs.append(_RFC3207 if protocol is Protocol.SMTP else _RFC2595)
        case Code.NO_TLS:
            steps = [
                f"Install a certificate and enable TLS for {name}: {_ports(protocol)}.",
                "Make sure the capability list advertises STARTTLS/STLS once it works.",
                "If a firewall, load balancer or proxy terminates or inspects this protocol, check that "
                "it passes STARTTLS through instead of refusing it.",
                _s_client(protocol, site),
            ]
            refs = [_RFC8314, _RFC3207 if protocol is Protocol.SMTP else _RFC2595]
        case Code.STARTTLS_FAILED:
            steps = [
                "Read the server's log at the time of the scan: a missing or unreadable certificate or "
                "key, a key that does not match the certificate, or a TLS library error is the usual "
                "cause.",
                "Check that key and certificate belong together: `openssl x509 -in cert.pem -noout "
                "-pubkey | sha256sum` and `openssl pkey -in key.pem -pubout | sha256sum` must print the "
                "same value.",
                "If STARTTLS is advertised but refused, either make it work or stop advertising it "
                "(the server's TLS support is probably disabled or half-configured).",
                "A firewall or proxy with protocol inspection (for example SMTP 'fixup'/ESMTP "
                "inspection) can break the upgrade: test from inside and outside to tell them apart.",
                _s_client(protocol, site),
            ]
            refs = [_RFC3207 if protocol is Protocol.SMTP else _RFC2595, _RFC8314]
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                f"Make the {name} capability list advertise STARTTLS/STLS: clients and sending servers "
                "only try TLS when it is advertised.",
                "When the server software is configured to advertise it, something in between removes "
                "it: firewalls with SMTP inspection (for example Cisco ASA 'inspect esmtp') replace "
                "STARTTLS with a masked keyword. Disable that inspection or exempt the mail server.",
                _plain_capabilities(protocol, site),
            ]
            refs = [_RFC3207 if protocol is Protocol.SMTP else _RFC2595]
        case Code.LEGACY_TLS:
            steps = [
                "Disable SSLv3, TLS 1.0 and TLS 1.1; keep TLS 1.2 and TLS 1.3 (RFC 8996, RFC 7568).",
                "On port 25 (mail between servers) TLS is opportunistic: a sender that cannot do "
                "TLS 1.2 falls back to clear text. Practically every mail server today speaks TLS 1.2; "
                "if you keep an old version for a known partner, keep it on port 25 only.",
                _s_client(protocol, site).replace("openssl s_client ", "openssl s_client -tls1_1 ")
                + " With `-tls1_1` the handshake must now fail.",
            ]
            refs = [_RFC8996, _RFC7568, _RFC9325]
        case Code.NO_MODERN_TLS:
            steps = [
                "Enable TLS 1.2 and TLS 1.3. A server without TLS 1.2 runs a TLS library from before "
                "2012 (OpenSSL older than 1.0.1) or has TLS 1.2 switched off: upgrade the operating "
                "system and the mail software, then check that no setting caps the highest version.",
                _s_client(protocol, site).replace("openssl s_client ", "openssl s_client -tls1_2 "),
            ]
            refs = [_RFC9325, _RFC8996]
        case Code.WEAK_CIPHER:
            steps = [
                "Remove NULL, anonymous, EXPORT, RC4, DES and 3DES suites and static-RSA key exchange "
                "(TLS_RSA_WITH_*) from the server's cipher configuration; keep ECDHE (and DHE) with "
                "AES-GCM or ChaCha20-Poly1305. TLS 1.3 suites are all fine.",
                f"With OpenSSL-based servers a safe cipher string is `{OPENSSL_CIPHERS}`.",
                _cipher_list(site),
            ]
            refs = [_RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [_ACME, _RELOAD, _CHAIN, _cert_check(protocol, site)]
            refs = [_RFC5280, _RFC8555, _ACME_TOOLS]
        case Code.CERT_NOT_YET_VALID:
            steps = [
                "Check the clock of the machine that issued the certificate (and of this server): a "
                "certificate whose validity starts in the future was usually made on a machine whose "
                "clock is wrong. Run NTP (chrony, systemd-timesyncd) everywhere.",
                "Reissue the certificate once the clocks are right.",
                "cleartext compares notBefore with its own UTC clock at scan time; a certificate issued "
                "minutes before the scan can show this briefly.",
                _cert_check(protocol, site),
            ]
            refs = [_RFC5280, _RFC8555]
        case Code.CERT_UNTRUSTED:
            steps = [
                "A self-signed certificate or one from a private CA is only trusted by clients you "
                "configure yourself; for a server used from the Internet, replace it. " + _ACME,
                _CHAIN + " A missing intermediate is the most frequent cause of this finding with a "
                "certificate from a public CA.",
                _RELOAD,
                _cert_check(protocol, site),
            ]
            refs = [_RFC5280, _RFC8555, _ACME_TOOLS]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "Reissue the certificate with those names (certbot: one `-d` per name), or, if the "
                "server hosts several names, configure it to choose the certificate by SNI.",
                _RELOAD,
                _cert_check(protocol, site),
            ]
            refs = [_RFC9525, _RFC7672, _RFC8461]
        case Code.CERT_WEAK_KEY:
            steps = [
                _KEY,
                "Get a new certificate for the new key. " + _ACME,
                _RELOAD,
                _cert_check(protocol, site),
            ]
            refs = [_NIST, _RFC9325]
        case Code.CERT_WEAK_SIGNATURE:
            steps = [
                "Replace the certificate (or the intermediate named in the evidence) with one signed "
                "with SHA-256 or better. Public CAs have not issued SHA-1 certificates since 2016; a "
                "SHA-1 or MD5 signature means a private CA or a very old certificate.",
                "For a private CA, sign new certificates with `-sha256` (openssl x509/ca) and re-issue "
                "the CA certificate itself if it is the one signed with SHA-1.",
                _ACME,
                _cert_check(protocol, site),
            ]
            refs = [_NIST, _RFC9325]
    return _remedy(GENERIC, prefix + steps, None, refs)


# --- Gmail: hosted ---------------------------------------------------------------------------------------


def _gmail(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    steps = [
        "This endpoint is operated by Google (Gmail / Google Workspace): its TLS and authentication "
        "settings are not configured by the domain's administrator.",
        "Check that this is the host you meant to scan (MX and client settings); if a finding persists "
        "on Google's own servers, report it to Google rather than changing anything locally.",
    ]
    if code is Code.CERT_HOSTNAME_MISMATCH:
        steps.append(
            "A name mismatch on a Google server usually means a custom name (CNAME) points at Google's "
            "mail servers; clients must use Google's own host names (smtp.gmail.com, imap.gmail.com)."
        )
    return _remedy("Gmail (Google-hosted)", steps, None, [_RFC8314])


# --- Dovecot ---------------------------------------------------------------------------------------------

_DOVECOT_RELOAD = (
    "Apply with `doveadm reload` (or `systemctl reload dovecot`) and review the effective settings with "
    "`doveconf -n`: a `protocol`, `local` or `remote` block can override a global value."
)


def _dovecot_listener(protocol: Protocol) -> str:
    return {
        Protocol.IMAP: (
            "# conf.d/10-master.conf: implicit TLS on 993 (RFC 8314)\n"
            "service imap-login {\n  inet_listener imaps {\n    port = 993\n    ssl = yes\n  }\n}\n"
        ),
        Protocol.POP3: (
            "# conf.d/10-master.conf: implicit TLS on 995 (RFC 8314)\n"
            "service pop3-login {\n  inet_listener pop3s {\n    port = 995\n    ssl = yes\n  }\n}\n"
        ),
        Protocol.SMTP: (
            "# conf.d/20-submission.conf / 10-master.conf: submission with STARTTLS on 587 and\n"
            "# implicit TLS on 465 (RFC 8314)\n"
            "service submission-login {\n  inet_listener submission {\n    port = 587\n  }\n"
            "  inet_listener submissions {\n    port = 465\n    ssl = yes\n  }\n}\n"
        ),
    }[protocol]


_DOVECOT_CERT = (
    "# Dovecot 2.3, conf.d/10-ssl.conf (the '<' makes Dovecot read the file)\n"
    f"ssl_cert = <{_LE}/fullchain.pem\n"
    f"ssl_key = <{_LE}/privkey.pem\n"
    "# Dovecot 2.4: ssl_server_cert_file = .../fullchain.pem\n"
    "#              ssl_server_key_file = .../privkey.pem\n"
)


def _dovecot(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "Dovecot"
    service = {
        Protocol.IMAP: "IMAP",
        Protocol.POP3: "POP3",
        Protocol.SMTP: "its submission service (Dovecot 2.3+)",
    }[protocol]
    cert_steps = [
        "Point Dovecot at the full chain and the key (below); Dovecot reads the key as root before "
        "dropping privileges, so the key file can stay readable by root only.",
        _DOVECOT_RELOAD,
    ]
    refs = [_DOVECOT_SSL]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            steps = [
                "Set `disable_plaintext_auth = yes` (Dovecot 2.3, conf.d/10-auth.conf) or "
                "`auth_allow_cleartext = no` (Dovecot 2.4). Dovecot then announces LOGINDISABLED on "
                "IMAP, drops USER and plaintext SASL mechanisms from POP3 CAPA and offers no plaintext "
                f"AUTH before STARTTLS; this covers {service}.",
                "For stronger protection set `ssl = required`: every authentication, with any "
                "mechanism, is refused until TLS is active.",
                "Dovecot allows plaintext authentication anyway from the server itself and from "
                "`login_trusted_networks`; if cleartext scanned from such an address, re-scan from "
                "outside before concluding.",
                _DOVECOT_RELOAD,
                _ROTATE,
                _plain_capabilities(protocol, site),
            ]
            config = (
                "# Dovecot 2.3\n"
                "# conf.d/10-auth.conf\n"
                "disable_plaintext_auth = yes\n"
                "# conf.d/10-ssl.conf: refuse any authentication before TLS\n"
                "ssl = required\n"
                "\n"
                "# Dovecot 2.4: the same with the renamed setting\n"
                "#auth_allow_cleartext = no\n"
                "#ssl = required\n"
            )
            refs = [_DOVECOT_AUTH, _DOVECOT_24, _RFC8314]
        case Code.NO_TLS:
            steps = [
                f"Enable TLS for {service}: set `ssl = yes` (or `required`) with a certificate and key; "
                "Dovecot then offers STARTTLS/STLS on the plain port.",
                "Add an implicit-TLS listener (below) and point clients to it.",
                *cert_steps,
                _s_client(protocol, site),
            ]
            config = (
                "# conf.d/10-ssl.conf\nssl = required\n" + _DOVECOT_CERT + "\n" + _dovecot_listener(protocol)
            )
            refs = [_DOVECOT_SSL, _DOVECOT_24, _RFC8314]
        case Code.STARTTLS_FAILED:
            steps = [
                "Look in the log (`journalctl -u dovecot` or /var/log/mail.log) for the TLS error at the "
                'time of the scan, e.g. "Can\'t load SSL certificate" or "Can\'t open file".',
                "In Dovecot 2.3 the file names need the `<` prefix (`ssl_cert = </path`); without it "
                "Dovecot takes the path itself as the certificate. Dovecot 2.4 uses "
                "`ssl_server_cert_file = /path` without `<`.",
                "Check that the key matches the certificate: `openssl x509 -in fullchain.pem -noout "
                "-pubkey | sha256sum` and `openssl pkey -in privkey.pem -pubout | sha256sum` must agree.",
                _DOVECOT_RELOAD,
                _s_client(protocol, site),
            ]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _DOVECOT_24]
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "Dovecot always advertises STARTTLS/STLS when `ssl` is `yes` or `required`, and refuses "
                "the command when `ssl = no`. A server that accepts STARTTLS without advertising it is "
                "therefore usually not Dovecot itself but something in front of it: a mail proxy "
                "(nginx mail module, HAProxy, a Dovecot proxy), a load balancer or a firewall that "
                "rewrites the capability list.",
                "Connect to Dovecot directly from the proxy's host and compare the capability list; "
                "fix the proxy so that it advertises STARTTLS (nginx: `starttls on;`) or passes it "
                "through.",
                _plain_capabilities(protocol, site),
            ]
            config = None
            refs = [_DOVECOT_SSL, _RFC2595 if protocol is not Protocol.SMTP else _RFC3207]
        case Code.LEGACY_TLS:
            steps = [
                "Set `ssl_min_protocol = TLSv1.2` (Dovecot 2.3 and 2.4; it is the default since 2.3.15, "
                "so an older value is set explicitly somewhere). Dovecot 2.2 used "
                "`ssl_protocols = !SSLv3 !TLSv1 !TLSv1.1` instead.",
                _DOVECOT_RELOAD,
                _s_client(protocol, site).replace("openssl s_client ", "openssl s_client -tls1_1 ")
                + " With `-tls1_1` the handshake must now fail.",
            ]
            config = "# conf.d/10-ssl.conf\nssl_min_protocol = TLSv1.2\n"
            refs = [_DOVECOT_SSL, _RFC8996, _RFC7568]
        case Code.NO_MODERN_TLS:
            steps = [
                "Make sure `ssl_min_protocol` (2.2: `ssl_protocols`) does not exclude TLS 1.2, e.g. "
                "`doveconf ssl_min_protocol`.",
                "Dovecot gets TLS 1.2 from OpenSSL 1.0.1 and TLS 1.3 from OpenSSL 1.1.1: check "
                "`dovecot --version` and `openssl version`, and upgrade the system if they are older.",
                _DOVECOT_RELOAD,
            ]
            config = "# conf.d/10-ssl.conf\nssl_min_protocol = TLSv1.2\n"
            refs = [_DOVECOT_SSL, _RFC9325]
        case Code.WEAK_CIPHER:
            steps = [
                "Set `ssl_cipher_list` to a list without weak suites. The value below is Dovecot 2.3's "
                "own default; a weak cipher usually means an old value was copied into the "
                "configuration.",
                "Optionally let the server choose the suite: `ssl_prefer_server_ciphers = yes` "
                "(Dovecot 2.4: `ssl_server_prefer_ciphers = server`).",
                _DOVECOT_RELOAD,
            ]
            config = (
                f"# conf.d/10-ssl.conf\nssl_cipher_list = {OPENSSL_CIPHERS}\n"
                "ssl_prefer_server_ciphers = yes\n"
            )
            refs = [_DOVECOT_SSL, _RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [_ACME, _RELOAD, *cert_steps, _cert_check(protocol, site)]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _RFC8555, _ACME_TOOLS]
        case Code.CERT_NOT_YET_VALID:
            steps = [
                "Check the clocks (NTP) of this server and of the machine that issued the certificate, "
                "then reissue it.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _RFC5280]
        case Code.CERT_UNTRUSTED:
            steps = [
                "If the certificate is self-signed (such as the one Debian's package sets up, "
                "/etc/dovecot/private/dovecot.pem), replace it with one from a public CA. " + _ACME,
                _CHAIN + " For Dovecot that means `ssl_cert = <.../fullchain.pem`, not cert.pem.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _RFC5280, _RFC8555]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "Dovecot can serve a certificate per name (SNI): put `ssl_cert` and `ssl_key` lines "
                "inside a `local_name mail.example.com { ... }` block for each name.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _RFC9525]
        case Code.CERT_WEAK_KEY:
            steps = [_KEY, *cert_steps, _cert_check(protocol, site)]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _NIST]
        case Code.CERT_WEAK_SIGNATURE:
            steps = [
                "Replace the certificate (or the intermediate) with one signed with SHA-256 or better. "
                + _ACME,
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _DOVECOT_CERT
            refs = [_DOVECOT_SSL, _NIST]
    return _remedy(label, steps, config, refs)


# --- Postfix ---------------------------------------------------------------------------------------------

_POSTFIX_RELOAD = (
    "Apply with `postfix reload`; check the effective values with `postconf -n` and `postconf -M` "
    "(a `-o` option in master.cf overrides main.cf for that service)."
)

_POSTFIX_SUITE = (
    "If Postfix is managed by a suite (Zimbra, Plesk, cPanel, iRedMail, Mail-in-a-Box, ...), make the "
    "change through the suite, which rewrites main.cf and master.cf."
)

_POSTFIX_MASTER_CF = (
    "# /etc/postfix/master.cf: submission with TLS required (587) and implicit TLS (465).\n"
    "# Copy the chroot column (5th) from your existing smtp line.\n"
    "submission inet n       -       -       -       -       smtpd\n"
    "  -o syslog_name=postfix/submission\n"
    "  -o smtpd_tls_security_level=encrypt\n"
    "  -o smtpd_sasl_auth_enable=yes\n"
    "submissions inet n      -       -       -       -       smtpd\n"
    "  -o syslog_name=postfix/submissions\n"
    "  -o smtpd_tls_wrappermode=yes\n"
    "  -o smtpd_sasl_auth_enable=yes\n"
)

_POSTFIX_CERT = (
    "# /etc/postfix/main.cf (Postfix 3.4 or later): key first, then certificate and chain\n"
    f"smtpd_tls_chain_files = {_LE}/privkey.pem, {_LE}/fullchain.pem\n"
    "# Postfix before 3.4 instead:\n"
    f"#smtpd_tls_cert_file = {_LE}/fullchain.pem\n"
    f"#smtpd_tls_key_file = {_LE}/privkey.pem\n"
)


def _postfix(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "Postfix"
    cert_steps = [
        "Point Postfix at the key and the full chain with `smtpd_tls_chain_files` (below).",
        _POSTFIX_RELOAD,
    ]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            steps = [
                "Set `smtpd_tls_auth_only = yes` in main.cf: Postfix then neither announces nor accepts "
                "AUTH on a connection that has not done STARTTLS.",
                "Port 25 must keep `smtpd_tls_security_level = may`: RFC 3207 forbids requiring TLS on "
                "a publicly referenced MX. Require TLS on the submission port instead "
                "(`-o smtpd_tls_security_level=encrypt`, which implies TLS-only AUTH) and offer "
                "implicit TLS on 465 (`-o smtpd_tls_wrappermode=yes`).",
                "Better still, enable SASL only on 587/465 (`-o smtpd_sasl_auth_enable=yes` in "
                "master.cf) and leave `smtpd_sasl_auth_enable = no` in main.cf, so port 25 offers no "
                "AUTH at all; move any clients that still submit on port 25 first.",
                _POSTFIX_SUITE,
                _POSTFIX_RELOAD,
                _ROTATE,
                _plain_capabilities(protocol, site),
            ]
            config = (
                "# /etc/postfix/main.cf\n"
                "smtpd_tls_security_level = may\n"
                "smtpd_tls_auth_only = yes\n"
                "\n" + _POSTFIX_MASTER_CF
            )
            refs = [_POSTCONF, _POSTFIX_MASTER, _RFC4954, _RFC8314, _RFC3207]
        case Code.NO_TLS:
            steps = [
                "Give Postfix a certificate and enable opportunistic TLS on port 25 "
                "(`smtpd_tls_security_level = may`); on a publicly referenced MX TLS must not be "
                "required (RFC 3207).",
                "Require TLS on 587 and offer implicit TLS on 465 with the master.cf entries below.",
                "`postfix tls enable-server` (Postfix 3.1+) sets up a self-signed certificate as a "
                "start; replace it with a publicly trusted one.",
                _POSTFIX_SUITE,
                _POSTFIX_RELOAD,
                _s_client(protocol, site),
            ]
            config = (
                _POSTFIX_CERT
                + "smtpd_tls_security_level = may\nsmtpd_tls_loglevel = 1\n\n"
                + _POSTFIX_MASTER_CF
            )
            refs = [_POSTCONF, _POSTFIX_TLS, _POSTFIX_MASTER, _RFC3207, _RFC8314]
        case Code.STARTTLS_FAILED:
            steps = [
                "Set `smtpd_tls_loglevel = 1` and read the mail log at the time of the scan: "
                '"TLS library problem", "cannot load certificate" or "cannot get private key" name '
                "the cause.",
                "Check the key and certificate files named by `postconf smtpd_tls_chain_files "
                "smtpd_tls_cert_file smtpd_tls_key_file`: they must exist, the key must match the "
                "certificate, and `smtpd_tls_chain_files` must list the key before the certificate.",
                "`posttls-finger -c -l may mail.example.com` (shipped with Postfix) shows the handshake "
                "from the client side.",
                _POSTFIX_RELOAD,
                _s_client(protocol, site),
            ]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _POSTFIX_TLS]
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "Look for `smtpd_discard_ehlo_keywords` and `smtpd_discard_ehlo_keyword_address_maps` "
                "(`postconf -n | grep discard_ehlo`): they can hide STARTTLS from some or all clients.",
                "If Postfix advertises STARTTLS when tested locally, a firewall with SMTP inspection "
                "(e.g. Cisco ASA 'inspect esmtp') strips it on the way: disable the inspection for "
                "the mail server.",
                _POSTFIX_RELOAD,
                _plain_capabilities(protocol, site),
            ]
            config = (
                "# /etc/postfix/main.cf: make sure STARTTLS is not discarded\nsmtpd_discard_ehlo_keywords =\n"
            )
            refs = [_POSTCONF, _RFC3207]
        case Code.LEGACY_TLS:
            steps = [
                "Set the lowest protocol version to TLS 1.2 for both opportunistic (port 25) and "
                "mandatory (587/465) TLS. The `>=` syntax needs Postfix 3.6; older versions use the "
                "exclusion list shown in the comment.",
                "On port 25 a sender limited to TLS 1.0 then delivers in clear; if a known partner "
                "still needs it, keep `smtpd_tls_protocols` at `>=TLSv1` and raise only "
                "`smtpd_tls_mandatory_protocols`.",
                _POSTFIX_RELOAD,
                _s_client(protocol, site).replace("openssl s_client ", "openssl s_client -tls1_1 ")
                + " With `-tls1_1` the handshake must now fail.",
            ]
            config = (
                "# /etc/postfix/main.cf (Postfix 3.6 or later)\n"
                "smtpd_tls_protocols = >=TLSv1.2\n"
                "smtpd_tls_mandatory_protocols = >=TLSv1.2\n"
                "# Postfix before 3.6:\n"
                "#smtpd_tls_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1\n"
                "#smtpd_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1\n"
            )
            refs = [_POSTCONF, _RFC8996, _RFC7568]
        case Code.NO_MODERN_TLS:
            steps = [
                "Check that `smtpd_tls_protocols` and `smtpd_tls_mandatory_protocols` do not exclude "
                "TLS 1.2/1.3 (`postconf smtpd_tls_protocols smtpd_tls_mandatory_protocols`).",
                "Postfix gets TLS 1.2 from OpenSSL 1.0.1 and TLS 1.3 from OpenSSL 1.1.1: check the "
                'library it uses with `ldd "$(postconf -h daemon_directory)/smtpd" | grep -i ssl` and '
                "upgrade the system if it is older.",
                _POSTFIX_RELOAD,
            ]
            config = (
                "# /etc/postfix/main.cf\n"
                "smtpd_tls_protocols = >=TLSv1.2\n"
                "smtpd_tls_mandatory_protocols = >=TLSv1.2\n"
            )
            refs = [_POSTCONF, _RFC9325]
        case Code.WEAK_CIPHER:
            steps = [
                "Exclude the weak classes with `smtpd_tls_exclude_ciphers`, which applies at every "
                "security level; keep Postfix's default cipher grades (its tls_*_cipherlist values "
                "should not be edited).",
                "Postfix deliberately allows anonymous (aNULL) suites for opportunistic TLS on port 25, "
                "where senders do not verify certificates anyway; excluding them, as below, removes "
                "that finding at no practical cost.",
                "`kRSA` removes static-RSA key exchange; a few very old senders then fall back to clear "
                "text on port 25. Drop `kRSA` from the list if you must serve them.",
                _POSTFIX_RELOAD,
            ]
            config = (
                "# /etc/postfix/main.cf\n"
                "smtpd_tls_exclude_ciphers = aNULL, eNULL, EXPORT, LOW, DES, 3DES, RC4, MD5, kRSA\n"
            )
            refs = [_POSTCONF, _POSTFIX_TLS, _RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [
                _ACME,
                _RELOAD.replace("'systemctl reload postfix dovecot'", "'postfix reload'"),
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _RFC8555, _ACME_TOOLS]
        case Code.CERT_NOT_YET_VALID:
            steps = [
                "Check the clocks (NTP) of this server and of the machine that issued the certificate, "
                "then reissue it.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _RFC5280]
        case Code.CERT_UNTRUSTED:
            steps = [
                "If the certificate is self-signed (such as Debian's snakeoil certificate, "
                "/etc/ssl/certs/ssl-cert-snakeoil.pem), replace it with one from a public CA. " + _ACME,
                _CHAIN + " With Postfix before 3.4, `smtpd_tls_cert_file` must name fullchain.pem.",
                "On port 25, many sending servers do not verify certificates, but DANE (RFC 7672) and "
                "MTA-STS (RFC 8461) senders do and will refuse to deliver.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _POSTFIX_TLS, _RFC7672, _RFC8461]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "Postfix 3.4+ can choose a certificate per name (SNI) with `tls_server_sni_maps`.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _RFC9525, _RFC7672]
        case Code.CERT_WEAK_KEY:
            steps = [_KEY, *cert_steps, _cert_check(protocol, site)]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _NIST]
        case Code.CERT_WEAK_SIGNATURE:
            steps = [
                "Replace the certificate (or the intermediate) with one signed with SHA-256 or better. "
                + _ACME,
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _POSTFIX_CERT
            refs = [_POSTCONF, _NIST]
    return _remedy(label, steps, config, refs)


# --- Exim -------------------------------------------------------------------------------------------------

_EXIM_APPLY = (
    "Where the setting goes: the main section of the Exim configuration. On Debian, with the split "
    "configuration, put it in a file under /etc/exim4/conf.d/main/ (or use the MAIN_TLS_* macros in "
    "/etc/exim4/exim4.conf.localmacros), then run `update-exim4.conf` and `systemctl restart exim4`. "
    "Check with `exim -bP <option>`."
)

_EXIM_LIBRARY = (
    "Exim is built either with OpenSSL or with GnuTLS (Debian's exim4-daemon-light/-heavy use GnuTLS); "
    "`exim -bV` names the library. The settings differ, so use the matching half of the snippet."
)

_EXIM_CERT = (
    "# Exim main section; the files must be readable by the Exim user (Debian-exim on Debian),\n"
    "# so copy them out of /etc/letsencrypt with a deploy hook rather than pointing at live/.\n"
    "tls_certificate = /etc/exim4/tls/fullchain.pem\n"
    "tls_privatekey = /etc/exim4/tls/privkey.pem\n"
    "# Debian split configuration: MAIN_TLS_ENABLE = yes, MAIN_TLS_CERTIFICATE and\n"
    "# MAIN_TLS_PRIVATEKEY in /etc/exim4/exim4.conf.localmacros\n"
)


def _exim(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "Exim"
    cert_steps = [
        "Point Exim at the full chain and the key (below); Exim reads them per connection as its own "
        "user, not as root.",
        _EXIM_APPLY,
    ]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            steps = [
                "Advertise AUTH only on encrypted connections: `auth_advertise_hosts = "
                "${if eq{$tls_in_cipher}{}{}{*}}`. Exim refuses AUTH from hosts it did not advertise it "
                "to.",
                "Give each plaintext authenticator (PLAIN, LOGIN) the same condition with "
                "`server_advertise_condition`; Debian's example authenticators in "
                "/etc/exim4/conf.d/auth/30_exim4-config_examples already carry it.",
                "Offer STARTTLS everywhere (`tls_advertise_hosts = *`) and implicit TLS on 465 "
                "(`daemon_smtp_ports` and `tls_on_connect_ports`; on Debian the listening ports are set "
                "with SMTPLISTENEROPTIONS in /etc/default/exim4).",
                _EXIM_APPLY,
                _ROTATE,
                _plain_capabilities(protocol, site),
            ]
            config = (
                "# Exim main section\n"
                "tls_advertise_hosts = *\n"
                "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}\n"
                "daemon_smtp_ports = 25 : 465 : 587\n"
                "tls_on_connect_ports = 465\n"
                "\n"
                "# in each plaintext authenticator (driver = plaintext), e.g. PLAIN and LOGIN:\n"
                "#  server_advertise_condition = ${if eq{$tls_in_cipher}{}{}{*}}\n"
            )
            refs = [_EXIM_AUTH, _EXIM_TLS, _EXIM_DEBIAN, _RFC4954, _RFC8314]
        case Code.NO_TLS:
            steps = [
                "Give Exim a certificate and key and advertise STARTTLS to every host "
                "(`tls_advertise_hosts = *`, which recent Exim versions use by default).",
                "Offer implicit TLS on 465 with `tls_on_connect_ports`.",
                *cert_steps,
                _s_client(protocol, site),
            ]
            config = (
                _EXIM_CERT
                + "tls_advertise_hosts = *\ndaemon_smtp_ports = 25 : 465 : 587\ntls_on_connect_ports = 465\n"
            )
            refs = [_EXIM_TLS, _EXIM_DEBIAN, _RFC3207, _RFC8314]
        case Code.STARTTLS_FAILED:
            steps = [
                "Read Exim's main and panic logs (/var/log/exim4/mainlog and paniclog on Debian) at the "
                'time of the scan: "TLS error on connection" names the cause, often a key the Exim '
                "user cannot read.",
                "Check that `tls_certificate` and `tls_privatekey` exist, belong together and are "
                "readable by the Exim user: `sudo -u Debian-exim cat /etc/exim4/tls/privkey.pem "
                ">/dev/null`.",
                _EXIM_APPLY,
                _s_client(protocol, site),
            ]
            config = _EXIM_CERT
            refs = [_EXIM_TLS]
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "Check `exim -bP tls_advertise_hosts`: Exim advertises STARTTLS only to hosts in that "
                "list (it should be `*`).",
                "If Exim advertises STARTTLS when tested locally, a firewall with SMTP inspection "
                "(e.g. Cisco ASA 'inspect esmtp') strips it on the way: disable the inspection for "
                "the mail server.",
                _EXIM_APPLY,
                _plain_capabilities(protocol, site),
            ]
            config = "# Exim main section\ntls_advertise_hosts = *\n"
            refs = [_EXIM_TLS, _RFC3207]
        case Code.LEGACY_TLS | Code.NO_MODERN_TLS:
            steps = [
                _EXIM_LIBRARY,
                "With OpenSSL, `openssl_options` switches the old versions off; with GnuTLS, "
                "`tls_require_ciphers` takes a GnuTLS priority string that does the same.",
                _EXIM_APPLY,
            ]
            if code is Code.NO_MODERN_TLS:
                steps.insert(
                    0,
                    "Make sure no setting caps the version (`exim -bP openssl_options "
                    "tls_require_ciphers`) and that the TLS library is recent enough (OpenSSL 1.0.1 "
                    "or GnuTLS 3.0 for TLS 1.2); upgrade the system otherwise.",
                )
            config = (
                "# Exim main section, Exim built with OpenSSL:\n"
                "openssl_options = +no_sslv3 +no_tlsv1 +no_tlsv1_1\n"
                "# Exim built with GnuTLS: a priority string instead\n"
                f"#tls_require_ciphers = {GNUTLS_VERSIONS}\n"
            )
            refs = [_EXIM_TLS, _GNUTLS_PRIO, _RFC8996]
        case Code.WEAK_CIPHER:
            steps = [
                _EXIM_LIBRARY,
                "Set `tls_require_ciphers` (main section, for incoming connections) to a list without "
                "weak suites: an OpenSSL cipher string or a GnuTLS priority string.",
                "Validate a GnuTLS string first with `gnutls-cli --priority '<string>' --list`.",
                _EXIM_APPLY,
            ]
            config = (
                "# Exim main section, Exim built with OpenSSL:\n"
                f"tls_require_ciphers = {OPENSSL_CIPHERS}\n"
                "# Exim built with GnuTLS:\n"
                f"#tls_require_ciphers = {GNUTLS_STRONG}\n"
            )
            refs = [_EXIM_TLS, _GNUTLS_PRIO, _RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [
                _ACME,
                _RELOAD.replace("'systemctl reload postfix dovecot'", "'systemctl restart exim4'"),
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EXIM_CERT
            refs = [_EXIM_TLS, _RFC8555, _ACME_TOOLS]
        case Code.CERT_NOT_YET_VALID:
            steps = [
                "Check the clocks (NTP) of this server and of the machine that issued the certificate, "
                "then reissue it.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EXIM_CERT
            refs = [_EXIM_TLS, _RFC5280]
        case Code.CERT_UNTRUSTED:
            steps = [
                "If the certificate is self-signed (Debian's exim-gencert creates one), replace it with "
                "one from a public CA. " + _ACME,
                _CHAIN + " For Exim, `tls_certificate` must name the fullchain file.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EXIM_CERT
            refs = [_EXIM_TLS, _RFC5280, _RFC8555]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "Exim can choose the certificate by SNI: `tls_certificate` is expanded, so it can use "
                "`$tls_in_sni`.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EXIM_CERT
            refs = [_EXIM_TLS, _RFC9525]
        case Code.CERT_WEAK_KEY:
            steps = [_KEY, *cert_steps, _cert_check(protocol, site)]
            config = _EXIM_CERT
            refs = [_EXIM_TLS, _NIST]
        case Code.CERT_WEAK_SIGNATURE:
            steps = [
                "Replace the certificate (or the intermediate) with one signed with SHA-256 or better. "
                + _ACME,
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EXIM_CERT
            refs = [_EXIM_TLS, _NIST]
    return _remedy(label, steps, config, refs)


# --- Courier ----------------------------------------------------------------------------------------------


def _courier_files(protocol: Protocol) -> tuple[str, str, str]:
    """(plain config file, TLS config file, TLS_CERTFILE) for the Courier server of ``protocol``."""
    return {
        Protocol.IMAP: ("imapd", "imapd-ssl", "imapd.pem"),
        Protocol.POP3: ("pop3d", "pop3d-ssl", "pop3d.pem"),
        Protocol.SMTP: ("esmtpd", "esmtpd-ssl", "esmtpd.pem"),
    }[protocol]


def _courier(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "Courier"
    plain, ssl, pem = _courier_files(protocol)
    where = (
        "Courier's configuration files live in /etc/courier (distribution packages) or "
        "/usr/lib/courier/etc (source builds); restart the matching Courier service afterwards (the "
        "implicit-TLS listener is a separate service on some systems, e.g. courier-imap-ssl)."
    )
    library = (
        "couriertls is built either with OpenSSL or with GnuTLS (Debian and Ubuntu use GnuTLS): "
        "`ldd \"$(command -v couriertls)\" | grep -E 'gnutls|ssl'`. With GnuTLS, TLS_PROTOCOL and "
        "TLS_CIPHER_LIST are ignored and TLS_PRIORITY decides; check a priority string with "
        "`gnutls-cli --priority '<string>' --list`."
    )
    cert_config = (
        f"# /etc/courier/{ssl} (and {plain} for STARTTLS): key, certificate and chain in one file\n"
        f"TLS_CERTFILE=/etc/courier/{pem}\n"
        f"# build it with: cat {_LE}/privkey.pem {_LE}/fullchain.pem > /etc/courier/{pem}\n"
        "# keep the owner and mode (0600) of the file it replaces\n"
    )
    cert_steps = [
        f"Courier reads the private key, the certificate and the chain from one file (TLS_CERTFILE, "
        f"by default {pem}): concatenate them as shown below, on every renewal.",
        where,
    ]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            if protocol is Protocol.IMAP:
                steps = [
                    "Set `IMAP_TLS_REQUIRED=1` in imapd-ssl: Courier then announces LOGINDISABLED until "
                    "STARTTLS and refuses LOGIN.",
                    "Keep AUTH=PLAIN out of `IMAP_CAPABILITY` (before TLS) and list it only in "
                    "`IMAP_CAPABILITY_TLS` (after STARTTLS), as in Courier's shipped imapd file.",
                ]
                config = (
                    "# /etc/courier/imapd-ssl\nIMAPDSTARTTLS=YES\nIMAP_TLS_REQUIRED=1\n\n"
                    "# /etc/courier/imapd: no plaintext SASL before STARTTLS\n"
                    'IMAP_CAPABILITY="IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT '
                    'THREAD=REFERENCES SORT QUOTA IDLE"\n'
                    'IMAP_CAPABILITY_TLS="$IMAP_CAPABILITY AUTH=PLAIN"\n'
                )
            elif protocol is Protocol.POP3:
                steps = [
                    "Set `POP3_TLS_REQUIRED=1` in pop3d-ssl: Courier then refuses USER/PASS until STLS.",
                    "List SASL mechanisms only after STLS: empty `POP3AUTH` and put them in "
                    "`POP3AUTH_TLS` (pop3d file).",
                    "Courier's POP3 server keeps listing USER in CAPA even with POP3_TLS_REQUIRED=1, "
                    "so cleartext (which judges CAPA and never sends a credential) may still report "
                    "this finding. Confirm by hand that `USER test` before STLS is refused with -ERR.",
                ]
                config = (
                    "# /etc/courier/pop3d-ssl\nPOP3_STARTTLS=YES\nPOP3_TLS_REQUIRED=1\n\n"
                    '# /etc/courier/pop3d: SASL only after STLS\nPOP3AUTH=""\nPOP3AUTH_TLS="LOGIN PLAIN"\n'
                )
            else:
                steps = [
                    "Courier's ESMTP server advertises the mechanisms in `ESMTPAUTH` before STARTTLS and "
                    "those in `ESMTPAUTH_TLS` after it: empty the first, list PLAIN and LOGIN in the second.",
                    "Require TLS on the submission port (esmtpd-msa, 587) with `ESMTP_TLS_REQUIRED=1`; do "
                    "not require it on port 25 (RFC 3207).",
                ]
                config = (
                    '# /etc/courier/esmtpd\nESMTPAUTH=""\nESMTPAUTH_TLS="PLAIN LOGIN"\n\n'
                    "# /etc/courier/esmtpd-msa (submission, port 587)\nESMTP_TLS_REQUIRED=1\n"
                )
            steps += [where, _ROTATE, _plain_capabilities(protocol, site)]
            refs = [_COURIER_ESMTP if protocol is Protocol.SMTP else _COURIER_IMAP, _RFC8314]
        case Code.NO_TLS:
            if protocol is Protocol.SMTP:
                steps = [
                    "Courier's esmtpd advertises STARTTLS automatically when both TLS_CERTFILE and "
                    "COURIERTLS (the couriertls program) exist: install the certificate file and check "
                    "the COURIERTLS path in esmtpd.",
                    "Start the implicit-TLS listener on 465 with `ESMTPDSSLSTART=YES` in esmtpd-ssl.",
                ]
                config = "# /etc/courier/esmtpd-ssl\nESMTPDSSLSTART=YES\n\n" + cert_config
            else:
                starttls, sslstart = (
                    ("IMAPDSTARTTLS", "IMAPDSSLSTART")
                    if protocol is Protocol.IMAP
                    else ("POP3_STARTTLS", "POP3DSSLSTART")
                )
                steps = [
                    f"Enable STARTTLS (`{starttls}=YES`) and the implicit-TLS listener "
                    f"(`{sslstart}=YES`) in {ssl}, with a certificate in TLS_CERTFILE.",
                ]
                config = f"# /etc/courier/{ssl}\n{starttls}=YES\n{sslstart}=YES\n\n" + cert_config
            steps += [*cert_steps, _s_client(protocol, site)]
            refs = [
                _COURIER_IMAP if protocol is not Protocol.SMTP else _COURIER_ESMTP,
                _COURIER_TLS,
                _RFC8314,
            ]
        case Code.STARTTLS_FAILED:
            steps = [
                "Read the mail log at the time of the scan: couriertls reports why the handshake "
                'failed ("couriertls: ...").',
                f"Check that TLS_CERTFILE ({pem}) exists, is readable by Courier and holds the private "
                "key together with the matching certificate and chain, and that COURIERTLS points to an "
                "executable couriertls.",
                where,
                _s_client(protocol, site),
            ]
            config = cert_config
            refs = [_COURIER_TLS]
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "Courier advertises STARTTLS/STLS when it is enabled (IMAPDSTARTTLS, POP3_STARTTLS) and "
                "couriertls and TLS_CERTFILE are in place; when it accepts STARTTLS without advertising "
                "it, look at custom capability settings (IMAP_CAPABILITY) and at proxies or firewalls "
                "in front of the server.",
                where,
                _plain_capabilities(protocol, site),
            ]
            config = None
            refs = [_COURIER_IMAP, _RFC2595 if protocol is not Protocol.SMTP else _RFC3207]
        case Code.LEGACY_TLS | Code.NO_MODERN_TLS:
            steps = [
                library,
                'OpenSSL builds: `TLS_PROTOCOL="TLSv1.2+"` allows TLS 1.2 and later'
                + (
                    " (TLS_STARTTLS_PROTOCOL does the same for STARTTLS on 143)"
                    if protocol is Protocol.IMAP
                    else ""
                )
                + ". GnuTLS builds: set TLS_PRIORITY.",
                f"Set it in {ssl} and {plain} (every Courier server reads its own files).",
                where,
            ]
            if code is Code.NO_MODERN_TLS:
                steps.insert(
                    0,
                    "Remove any TLS_PROTOCOL or TLS_PRIORITY value that caps the version, and upgrade "
                    "the system if its TLS library predates TLS 1.2.",
                )
            config = (
                f"# /etc/courier/{ssl}\n"
                "# couriertls built with OpenSSL:\n"
                'TLS_PROTOCOL="TLSv1.2+"\n'
                + ('TLS_STARTTLS_PROTOCOL="TLSv1.2+"\n' if protocol is Protocol.IMAP else "")
                + "# couriertls built with GnuTLS (Debian, Ubuntu):\n"
                f'TLS_PRIORITY="{GNUTLS_VERSIONS}"\n'
            )
            refs = [_COURIER_TLS, _GNUTLS_PRIO, _RFC8996]
        case Code.WEAK_CIPHER:
            steps = [
                library,
                "OpenSSL builds: set TLS_CIPHER_LIST. GnuTLS builds: set TLS_PRIORITY; NORMAL already "
                "excludes NULL, anonymous and export suites, the additions remove static RSA, 3DES and "
                "RC4.",
                where,
            ]
            config = (
                f"# /etc/courier/{ssl}\n"
                "# couriertls built with OpenSSL:\n"
                f'TLS_CIPHER_LIST="{OPENSSL_CIPHERS}"\n'
                "# couriertls built with GnuTLS (Debian, Ubuntu):\n"
                f'TLS_PRIORITY="{GNUTLS_STRONG}"\n'
            )
            refs = [_COURIER_TLS, _GNUTLS_PRIO, _RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [
                _ACME,
                "Courier reads its certificate file when a connection starts, but the file must be "
                "rebuilt from the renewed key and chain: run the `cat` below from the ACME client's "
                "renewal hook (certbot `--deploy-hook`, acme.sh `--reloadcmd`).",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = cert_config
            refs = [_COURIER_TLS, _RFC8555, _ACME_TOOLS]
        case Code.CERT_NOT_YET_VALID:
            steps = [
                "Check the clocks (NTP) of this server and of the machine that issued the certificate, "
                "then reissue it.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = cert_config
            refs = [_COURIER_TLS, _RFC5280]
        case Code.CERT_UNTRUSTED:
            steps = [
                "If it is the self-signed certificate Courier generates at installation (mkimapdcert, "
                "mkpop3dcert, mkesmtpdcert), replace it with one from a public CA. " + _ACME,
                _CHAIN,
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = cert_config
            refs = [_COURIER_TLS, _RFC5280, _RFC8555]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "Courier can serve a certificate per name: with SNI it looks for TLS_CERTFILE.<name> "
                "(e.g. imapd.pem.mail.example.com) next to the configured file.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = cert_config
            refs = [_COURIER_TLS, _RFC9525]
        case Code.CERT_WEAK_KEY:
            steps = [_KEY, *cert_steps, _cert_check(protocol, site)]
            config = cert_config
            refs = [_COURIER_TLS, _NIST]
        case Code.CERT_WEAK_SIGNATURE:
            steps = [
                "Replace the certificate (or the intermediate) with one signed with SHA-256 or better. "
                + _ACME,
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = cert_config
            refs = [_COURIER_TLS, _NIST]
    return _remedy(label, steps, config, refs)


# --- Microsoft Exchange -----------------------------------------------------------------------------------

_EX_SERVICE = {Protocol.IMAP: "IMAP", Protocol.POP3: "POP", Protocol.SMTP: "SMTP"}

_EX_RESTART = {
    Protocol.IMAP: "Restart-Service MSExchangeIMAP4, MSExchangeIMAP4BE",
    Protocol.POP3: "Restart-Service MSExchangePOP3, MSExchangePOP3BE",
    Protocol.SMTP: "Restart-Service MSExchangeFrontEndTransport, MSExchangeTransport",
}

_EX_CERT = (
    "# Exchange Management Shell. Import the new certificate (a .pfx with its chain, e.g. from\n"
    "# win-acme or your CA) and bind it to the mail services.\n"
    "Import-ExchangeCertificate -Server EX01 `\n"
    "  -FileData ([System.IO.File]::ReadAllBytes('C:\\certs\\mail.pfx')) `\n"
    "  -Password (Read-Host -AsSecureString 'PFX password')\n"
    "Get-ExchangeCertificate -Server EX01 |\n"
    "  Format-List Thumbprint, Subject, CertificateDomains, Services, NotAfter\n"
    "Enable-ExchangeCertificate -Server EX01 -Thumbprint <new-thumbprint> -Services IMAP,POP,SMTP\n"
    "Set-ImapSettings -X509CertificateName mail.contoso.com\n"
    "Set-PopSettings -X509CertificateName mail.contoso.com\n"
    "Restart-Service MSExchangeIMAP4, MSExchangeIMAP4BE, MSExchangePOP3, MSExchangePOP3BE\n"
)

_SCHANNEL = "HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Control\\SecurityProviders\\SCHANNEL"

_EX_PROTOCOLS_REG = (
    "Windows Registry Editor Version 5.00\n"
    "\n"
    "; Disable SSL 3.0, TLS 1.0 and TLS 1.1 in SChannel (server and client side); reboot afterwards.\n"
    + "".join(
        f"\n[{_SCHANNEL}\\Protocols\\{p}\\{side}]\n"
        '"Enabled"=dword:00000000\n"DisabledByDefault"=dword:00000001\n'
        for p in ("SSL 3.0", "TLS 1.0", "TLS 1.1")
        for side in ("Server", "Client")
    )
)

_EX_TLS12_REG = (
    "Windows Registry Editor Version 5.00\n"
    "\n"
    "; Enable TLS 1.2 in SChannel and let .NET use the system's TLS versions; reboot afterwards.\n"
    + "".join(
        f"\n[{_SCHANNEL}\\Protocols\\TLS 1.2\\"
        f'{side}]\n"Enabled"=dword:00000001\n"DisabledByDefault"=dword:00000000\n'
        for side in ("Server", "Client")
    )
    + "".join(
        f"\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\{node}Microsoft\\.NETFramework\\{v}]\n"
        '"SystemDefaultTlsVersions"=dword:00000001\n"SchUseStrongCrypto"=dword:00000001\n'
        for node in ("", "WOW6432Node\\")
        for v in ("v4.0.30319", "v2.0.50727")
    )
)

_EX_CIPHERS = (
    "Windows Registry Editor Version 5.00\n"
    "\n"
    "; Switch off NULL, DES, 3DES and RC4 in SChannel; reboot afterwards.\n"
    + "".join(
        f'\n[{_SCHANNEL}\\Ciphers\\{c}]\n"Enabled"=dword:00000000\n'
        for c in (
            "NULL",
            "DES 56/56",
            "Triple DES 168",
            "RC4 128/128",
            "RC4 64/128",
            "RC4 56/128",
            "RC4 40/128",
        )
    )
    + "\n; PowerShell (Windows Server 2016 and later): remove static-RSA and remaining weak suites\n"
    "; Get-TlsCipherSuite | Where-Object { $_.Name -like 'TLS_RSA_*' -or $_.Name -like '*_3DES_*' -or\n"
    ";   $_.Name -like '*_RC4_*' -or $_.Name -like '*_NULL_*' -or $_.Name -like '*_DES_*' } |\n"
    ";   ForEach-Object { Disable-TlsCipherSuite -Name $_.Name }\n"
)


def _exchange(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "Microsoft Exchange"
    restart = _EX_RESTART[protocol]
    health = (
        "Microsoft's Exchange Health Checker script (HealthChecker.ps1) reports the TLS settings of each "
        "server and flags inconsistent ones."
    )
    cert_steps = [
        "Import the certificate with its chain and bind it to IMAP, POP and SMTP (below); for IMAP and "
        "POP also name it in Set-ImapSettings/Set-PopSettings -X509CertificateName and restart the "
        "services. Windows ACME clients such as win-acme or Certify The Web automate this.",
    ]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            if protocol is Protocol.SMTP:
                steps = [
                    "On every Receive connector that faces clients or the Internet, require TLS for "
                    "basic authentication: AuthMechanism must contain BasicAuthRequireTLS, which "
                    "Exchange only accepts together with BasicAuth and Tls (`-AuthMechanism "
                    "Tls,BasicAuthRequireTLS` alone is rejected).",
                    "If the scan lists NTLM or GSSAPI before STARTTLS, the connector offers Integrated "
                    "Windows authentication in clear: remove Integrated from Internet-facing connectors "
                    "and keep it only on an internal connector that needs it.",
                    "Clients submit on 587 (Client Frontend connector); optionally require TLS there "
                    "with `-RequireTLS $true`. Port 25 must keep accepting mail without TLS.",
                ]
                config = (
                    "# Exchange Management Shell\n"
                    "Get-ReceiveConnector | Format-Table Identity, Bindings, AuthMechanism -AutoSize\n"
                    'Set-ReceiveConnector "EX01\\Client Frontend EX01" '
                    "-AuthMechanism Tls,BasicAuth,BasicAuthRequireTLS\n"
                    'Set-ReceiveConnector "EX01\\Default Frontend EX01" '
                    "-AuthMechanism Tls,BasicAuth,BasicAuthRequireTLS,ExchangeServer\n"
                    f"{restart}\n"
                )
                refs = [_MS_RECV, _RFC4954, _RFC8314]
            else:
                cmdlet = "Set-ImapSettings" if protocol is Protocol.IMAP else "Set-PopSettings"
                steps = [
                    f"Run `{cmdlet} -LoginType SecureLogin`: Exchange then refuses plaintext login until "
                    "the connection is encrypted.",
                    "Restart the front-end and back-end services for the change to take effect.",
                    f"Point clients to {_ports(protocol)}.",
                ]
                config = f"# Exchange Management Shell\n{cmdlet} -LoginType SecureLogin\n{restart}\n"
                refs = [_MS_IMAP if protocol is Protocol.IMAP else _MS_POP, _RFC8314, _RFC2595]
            steps += [_ROTATE, _plain_capabilities(protocol, site)]
        case Code.NO_TLS:
            if protocol is Protocol.SMTP:
                steps = [
                    "Bind a certificate that contains the connector's FQDN to SMTP "
                    "(`Enable-ExchangeCertificate -Services SMTP`) and make sure the Receive "
                    "connector's AuthMechanism contains Tls; Exchange then advertises STARTTLS.",
                ]
                config = (
                    "# Exchange Management Shell\n"
                    "Get-ReceiveConnector | Format-Table Identity, Fqdn, AuthMechanism -AutoSize\n"
                    "Enable-ExchangeCertificate -Server EX01 -Thumbprint <thumbprint> -Services SMTP\n"
                    'Set-ReceiveConnector "EX01\\Default Frontend EX01" '
                    "-AuthMechanism Tls,BasicAuth,BasicAuthRequireTLS,ExchangeServer\n"
                    f"{restart}\n"
                )
            else:
                cmdlet = "Set-ImapSettings" if protocol is Protocol.IMAP else "Set-PopSettings"
                svc = "IMAP" if protocol is Protocol.IMAP else "POP"
                steps = [
                    f"Bind a certificate to {svc} and name it in `{cmdlet} -X509CertificateName`; "
                    "Exchange then offers STARTTLS/STLS and the implicit-TLS port.",
                ]
                config = (
                    "# Exchange Management Shell\n"
                    f"Enable-ExchangeCertificate -Server EX01 -Thumbprint <thumbprint> -Services {svc}\n"
                    f"{cmdlet} -X509CertificateName mail.contoso.com -LoginType SecureLogin\n"
                    f"{restart}\n"
                )
            steps += [_s_client(protocol, site)]
            refs = [
                _MS_CERT,
                _MS_RECV
                if protocol is Protocol.SMTP
                else (_MS_IMAP if protocol is Protocol.IMAP else _MS_POP),
                _RFC8314,
            ]
        case Code.STARTTLS_FAILED:
            steps = [
                "List the certificates and their services: the one bound to this service must be "
                "valid, have its private key (HasPrivateKey) and contain the name clients use.",
                "After replacing a certificate, bind the new one (Enable-ExchangeCertificate) and "
                "restart the services; for SMTP the certificate must contain the connector's FQDN.",
                "Check the SChannel event log (System, source Schannel) for handshake errors, e.g. "
                "when TLS versions or cipher suites were switched off without leaving a common one.",
                _s_client(protocol, site),
            ]
            config = (
                "# Exchange Management Shell\n"
                "Get-ExchangeCertificate -Server EX01 |\n"
                "  Format-List Thumbprint, Subject, CertificateDomains, Services, NotAfter,\n"
                "    HasPrivateKey, Status\n"
                "Enable-ExchangeCertificate -Server EX01 -Thumbprint <thumbprint> "
                f"-Services {_EX_SERVICE[protocol]}\n"
                f"{restart}\n"
            )
            refs = [_MS_CERT, _MS_TLS]
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "Exchange advertises STARTTLS when the connector (or the IMAP/POP service) has a usable "
                "certificate; a server that accepts STARTTLS without advertising it is most often "
                "behind a firewall with SMTP inspection (e.g. Cisco ASA 'inspect esmtp'), which masks "
                "the keyword. Disable that inspection for the Exchange server.",
                "Compare the EHLO/CAPABILITY reply from inside the network with the one from outside.",
                _plain_capabilities(protocol, site),
            ]
            config = None
            refs = [
                _MS_RECV if protocol is Protocol.SMTP else _MS_TLS,
                _RFC3207 if protocol is Protocol.SMTP else _RFC2595,
            ]
        case Code.LEGACY_TLS:
            steps = [
                "Exchange uses Windows SChannel: disable SSL 3.0, TLS 1.0 and TLS 1.1 in the registry "
                "(below, import with `reg import`) and reboot. Microsoft's guidance is to disable them on "
                "all Exchange servers of the organisation only after TLS 1.2 is enabled everywhere.",
                "Make sure TLS 1.2 is enabled and .NET uses it (SystemDefaultTlsVersions, "
                "SchUseStrongCrypto), otherwise Exchange's own connections break.",
                health,
            ]
            config = _EX_PROTOCOLS_REG
            refs = [_MS_TLS, _MS_SCHANNEL, _RFC8996]
        case Code.NO_MODERN_TLS:
            steps = [
                "Enable TLS 1.2 in SChannel and in .NET (below) and reboot; Windows Server 2008 R2 and "
                "2012 need the registry keys, newer versions need them when someone switched TLS 1.2 off.",
                "Run a supported Exchange version and cumulative update; older ones cannot use TLS 1.2.",
                health,
            ]
            config = _EX_TLS12_REG
            refs = [_MS_TLS, _MS_SCHANNEL, _RFC9325]
        case Code.WEAK_CIPHER:
            steps = [
                "Switch the weak ciphers off in SChannel (below) and remove static-RSA suites "
                "(TLS_RSA_*) from the cipher suite order, then reboot. Very old clients that only speak "
                "TLS_RSA_* suites stop connecting.",
                health,
            ]
            config = _EX_CIPHERS
            refs = [_MS_TLS, _MS_CIPHERS, _MS_SCHANNEL, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [
                "Renew the certificate (Exchange admin center or your CA; for an ACME CA use win-acme "
                "or Certify The Web, which can install into Exchange).",
                *cert_steps,
                "Remove the expired certificate afterwards (Remove-ExchangeCertificate) so it cannot be "
                "bound again.",
                _cert_check(protocol, site),
            ]
            config = _EX_CERT
            refs = [_MS_CERT, _RFC5280]
        case Code.CERT_NOT_YET_VALID:
            steps = [
                "Check the clocks of the Exchange servers and of the issuing CA (Windows Time service, "
                "domain hierarchy), then reissue the certificate.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EX_CERT
            refs = [_MS_CERT, _RFC5280]
        case Code.CERT_UNTRUSTED:
            steps = [
                'If it is Exchange\'s self-signed default certificate ("Microsoft Exchange", created '
                "at setup), replace it on client- and Internet-facing services with one from a public CA.",
                'Import it with its chain (a .pfx exported with "include all certificates in the '
                'path") so that the intermediate certificates are served.',
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EX_CERT
            refs = [_MS_CERT, _RFC5280]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES + " For Exchange also include autodiscover names where clients use them.",
                "For SMTP the certificate must contain the Receive connector's FQDN (Get-ReceiveConnector "
                "| Format-Table Identity, Fqdn); for IMAP/POP the X509CertificateName set below.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EX_CERT
            refs = [_MS_CERT, _RFC9525]
        case Code.CERT_WEAK_KEY:
            steps = [
                "Request a new certificate with a new key of at least 2048 bits (New-ExchangeCertificate "
                "-GenerateRequest -KeySize 2048 or larger, or from your ACME client).",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EX_CERT
            refs = [_MS_CERT, _NIST]
        case Code.CERT_WEAK_SIGNATURE:
            steps = [
                "Replace the certificate (or the intermediate) with one signed with SHA-256 or better; "
                "for an internal Active Directory CA, switch the CA to SHA-256 first.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _EX_CERT
            refs = [_MS_CERT, _NIST]
    return _remedy(label, steps, config, refs)


def _new_certificate_steps(code: Code, cert_steps: list[str], protocol: Protocol, site: Site) -> list[str]:
    """The steps of a certificate to reissue (not yet valid, weak key, weak signature): the same for
    every product but its own cert_steps (where the files go, how to apply)."""
    first = {
        Code.CERT_NOT_YET_VALID: [
            "Check the clocks (NTP) of this server and of the machine that issued the certificate, then "
            "reissue it."
        ],
        Code.CERT_WEAK_KEY: [_KEY],
        Code.CERT_WEAK_SIGNATURE: [
            "Replace the certificate (or the intermediate) with one signed with SHA-256 or better. " + _ACME
        ],
    }[code]
    return [*first, *cert_steps, _cert_check(protocol, site)]


# --- Cyrus IMAP ---------------------------------------------------------------------------------------------

_CYRUS_APPLY = (
    "Cyrus's service processes read /etc/imapd.conf when they start, and preforked ones keep the old "
    "values: restart it (`systemctl restart cyrus-imapd`). `cyr_info conf` (Cyrus 3) prints the "
    "settings in effect; an option prefixed with a service name from cyrus.conf (e.g. "
    "`imap_allowplaintext`, `pop3_tls_versions`) overrides the global one for that service."
)

_CYRUS_CERT = (
    "# /etc/imapd.conf (Cyrus 3.1.8 or later; earlier releases call them tls_cert_file and tls_key_file).\n"
    "# Cyrus reads both files as the cyrus user: copy them out of /etc/letsencrypt with a deploy hook.\n"
    "tls_server_cert: /etc/cyrus/tls/fullchain.pem\n"
    "tls_server_key: /etc/cyrus/tls/privkey.pem\n"
)

_CYRUS_LISTENERS = (
    "# /etc/cyrus.conf, SERVICES section: implicit TLS on 993 and 995 (RFC 8314)\n"
    '  imaps   cmd="imapd -s" listen="imaps" prefork=1\n'
    '  pop3s   cmd="pop3d -s" listen="pop3s" prefork=1\n'
)


def _cyrus(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "Cyrus IMAP"
    cert_steps = [
        "Point Cyrus at the full chain and the key with `tls_server_cert` and `tls_server_key` (below).",
        _CYRUS_APPLY,
    ]
    refs = [_CYRUS_CONF]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            steps = [
                "Set `allowplaintext: no` in /etc/imapd.conf (the default since Cyrus 3.0): Cyrus then "
                "announces LOGINDISABLED on IMAP, offers no USER and no plaintext SASL mechanism on POP3, "
                "and refuses them until STARTTLS/STLS has succeeded.",
                "Look for a service-specific override that turns it back on, e.g. "
                "`imap_allowplaintext: yes` or `pop3_allowplaintext: yes`.",
                "For stronger protection set `tls_required: yes`: every authentication, with any "
                "mechanism, is refused before TLS.",
                _CYRUS_APPLY,
                _ROTATE,
                _plain_capabilities(protocol, site),
            ]
            config = (
                "# /etc/imapd.conf\n"
                "allowplaintext: no\n"
                "# refuse any authentication before TLS\n"
                "tls_required: yes\n"
            )
            refs = [_CYRUS_CONF, _RFC8314, _RFC2595]
        case Code.NO_TLS:
            steps = [
                "Give Cyrus a certificate and key (below): with `tls_server_cert` set, Cyrus offers "
                "STARTTLS on IMAP and STLS on POP3.",
                "Add implicit-TLS services for 993 and 995 to cyrus.conf (below) and point clients to them.",
                *cert_steps,
                _s_client(protocol, site),
            ]
            config = _CYRUS_CERT + "\n" + _CYRUS_LISTENERS
            refs = [_CYRUS_CONF, _RFC8314, _RFC2595]
        case Code.STARTTLS_FAILED:
            steps = [
                "Read the log at the time of the scan (`journalctl -u cyrus-imapd`, or the mail log): "
                '"unable to get certificate" or "unable to get private key" name the file.',
                "Check that both files exist, belong together and are readable by the cyrus user: "
                "`sudo -u cyrus cat /etc/cyrus/tls/privkey.pem >/dev/null`; `openssl x509 -in "
                "fullchain.pem -noout -pubkey | sha256sum` and `openssl pkey -in privkey.pem -pubout | "
                "sha256sum` must agree.",
                _CYRUS_APPLY,
                _s_client(protocol, site),
            ]
            config = _CYRUS_CERT
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "Cyrus advertises STARTTLS/STLS whenever it has a server certificate. A server that "
                "accepts STARTTLS without announcing it usually has something in front of Cyrus: a mail "
                "proxy (nginx mail module, a Murder frontend, HAProxy) or a firewall that rewrites the "
                "capability list.",
                "Compare the capability list from the proxy's host with the one clients get, and make the "
                "proxy advertise STARTTLS (nginx: `starttls on;`) or pass it through.",
                _plain_capabilities(protocol, site),
            ]
            config = None
            refs = [_CYRUS_CONF, _RFC2595]
        case Code.LEGACY_TLS | Code.NO_MODERN_TLS:
            steps = [
                "Set `tls_versions: tls1_2 tls1_3` in /etc/imapd.conf: Cyrus disables every version not "
                "in the list (its default list still includes tls1_0 and tls1_1).",
                "TLS 1.2 needs OpenSSL 1.0.1 and TLS 1.3 OpenSSL 1.1.1: if neither is accepted, upgrade "
                "the system.",
                _CYRUS_APPLY,
                _s_client(protocol, site).replace("openssl s_client ", "openssl s_client -tls1_1 ")
                + " With `-tls1_1` the handshake must now fail.",
            ]
            config = "# /etc/imapd.conf\ntls_versions: tls1_2 tls1_3\n"
            refs = [_CYRUS_CONF, _RFC8996, _RFC7568]
        case Code.WEAK_CIPHER:
            steps = [
                "Set `tls_ciphers` (Cyrus 2.5 and later; `tls_cipher_list` before) to a list without weak "
                "suites, and let the server choose with `tls_prefer_server_ciphers: 1`.",
                _CYRUS_APPLY,
                _cipher_list(site),
            ]
            config = f"# /etc/imapd.conf\ntls_ciphers: {OPENSSL_CIPHERS}\ntls_prefer_server_ciphers: 1\n"
            refs = [_CYRUS_CONF, _RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [
                _ACME,
                _RELOAD.replace("'systemctl reload postfix dovecot'", "'systemctl restart cyrus-imapd'"),
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _CYRUS_CERT
            refs = [_CYRUS_CONF, _RFC8555, _ACME_TOOLS]
        case Code.CERT_UNTRUSTED:
            steps = [
                "If the certificate is self-signed (a package's test certificate), replace it with one "
                "from a public CA. " + _ACME,
                _CHAIN + " For Cyrus, `tls_server_cert` must name the fullchain file.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _CYRUS_CERT
            refs = [_CYRUS_CONF, _RFC5280, _RFC8555]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "`tls_server_cert` takes two files separated by a comma (an RSA and an EC certificate), "
                "not one per name: put every name on one certificate.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _CYRUS_CERT
            refs = [_CYRUS_CONF, _RFC9525]
        case Code.CERT_NOT_YET_VALID | Code.CERT_WEAK_KEY | Code.CERT_WEAK_SIGNATURE:
            steps = _new_certificate_steps(code, cert_steps, protocol, site)
            config = _CYRUS_CERT
            refs = [_CYRUS_CONF, _RFC5280 if code is Code.CERT_NOT_YET_VALID else _NIST]
    return _remedy(label, steps, config, refs)


# --- OpenSMTPD ----------------------------------------------------------------------------------------------

_OPENSMTPD_APPLY = (
    "Check the file with `smtpd -n`, then restart (`systemctl restart opensmtpd`; `rcctl restart smtpd` "
    "on OpenBSD): smtpd reads smtpd.conf and the certificates only when it starts."
)

_OPENSMTPD_CERT = (
    "# /etc/smtpd.conf (OpenSMTPD 6.4 or later): one pki per name, named by the listeners below\n"
    f'pki mail.example.com cert "{_LE}/fullchain.pem"\n'
    f'pki mail.example.com key "{_LE}/privkey.pem"\n'
)

_OPENSMTPD_LISTENERS = (
    "# STARTTLS on 25; TLS required before anything on 587, then AUTH; implicit TLS on 465.\n"
    "# (egress is OpenBSD's interface group: on Linux name an interface or an address.)\n"
    "listen on egress tls pki mail.example.com\n"
    "listen on egress port submission tls-require pki mail.example.com auth\n"
    "listen on egress smtps pki mail.example.com auth\n"
)


def _opensmtpd(code: Code, protocol: Protocol, site: Site = _ANYWHERE) -> Remedy:
    label = "OpenSMTPD"
    cert_steps = [
        "Name the full chain and the key in a `pki` block and give every listener `pki` with that name "
        "(below).",
        _OPENSMTPD_APPLY,
    ]
    refs = [_SMTPD_CONF]
    config: str | None
    match code:
        case Code.CLEARTEXT_LOGIN:
            steps = [
                "OpenSMTPD offers and accepts AUTH only inside TLS, on listeners with `auth`. If AUTH was "
                "taken here in clear, something else answers under its banner or in front of it (a proxy, "
                "a filter, another daemon on this port): find it with `ss -ltnp` on the server.",
                "Give the submission port `tls-require` so that no transaction starts before TLS, and "
                "`auth` only on the submission and smtps listeners (below); port 25 needs no AUTH.",
                _OPENSMTPD_APPLY,
                _ROTATE,
                _plain_capabilities(protocol, site),
            ]
            config = _OPENSMTPD_CERT + "\n" + _OPENSMTPD_LISTENERS
            refs = [_SMTPD_CONF, _RFC4954, _RFC8314]
        case Code.NO_TLS:
            steps = [
                "Declare a `pki` for the server's name and add `tls pki <name>` to the port-25 listener "
                "(STARTTLS offered), `tls-require` to the submission listener and an `smtps` listener for "
                "465 (below).",
                *cert_steps,
                _s_client(protocol, site),
            ]
            config = _OPENSMTPD_CERT + "\n" + _OPENSMTPD_LISTENERS
            refs = [_SMTPD_CONF, _RFC3207, _RFC8314]
        case Code.STARTTLS_FAILED:
            steps = [
                "Read the log at the time of the scan (`journalctl -u opensmtpd` or /var/log/maillog) "
                "and run `smtpd -n`: a pki whose files cannot be read, or whose key does not match the "
                "certificate, is the usual cause.",
                "Check that key and certificate belong together: `openssl x509 -in fullchain.pem -noout "
                "-pubkey | sha256sum` and `openssl pkey -in privkey.pem -pubout | sha256sum` must agree.",
                _OPENSMTPD_APPLY,
                _s_client(protocol, site),
            ]
            config = _OPENSMTPD_CERT
        case Code.STARTTLS_NOT_ADVERTISED:
            steps = [
                "OpenSMTPD advertises STARTTLS on every listener with `tls` or `tls-require`. If that "
                "listener has it, a firewall with SMTP inspection (e.g. Cisco ASA 'inspect esmtp') strips "
                "it on the way: disable the inspection for the mail server.",
                _plain_capabilities(protocol, site),
            ]
            config = "# /etc/smtpd.conf\nlisten on egress tls pki mail.example.com\n"
            refs = [_SMTPD_CONF, _RFC3207]
        case Code.LEGACY_TLS | Code.NO_MODERN_TLS:
            steps = [
                "OpenSMTPD speaks TLS through libtls, whose default is TLS 1.2 and 1.3. An older version "
                "accepted means a `protocols` option on the listener allows it (\"all\", \"legacy\"): set "
                'it to "tlsv1.2,tlsv1.3" or remove it. A release without TLS 1.2 must be upgraded.',
                _OPENSMTPD_APPLY,
                _s_client(protocol, site).replace("openssl s_client ", "openssl s_client -tls1_1 ")
                + " With `-tls1_1` the handshake must now fail.",
            ]
            config = (
                "# /etc/smtpd.conf: on each listener\n"
                'listen on egress tls pki mail.example.com protocols "tlsv1.2,tlsv1.3"\n'
            )
            refs = [_SMTPD_CONF, _RFC8996, _RFC7568]
        case Code.WEAK_CIPHER:
            steps = [
                "Set the listener's `ciphers` to \"secure\" (libtls's default set: ECDHE or DHE with AEAD "
                "suites) or remove a `ciphers` option that widened it; on releases with a global "
                "`smtp ciphers` line, check that one too.",
                _OPENSMTPD_APPLY,
                _cipher_list(site),
            ]
            config = (
                "# /etc/smtpd.conf: on each listener\n"
                'listen on egress tls pki mail.example.com ciphers "secure"\n'
            )
            refs = [_SMTPD_CONF, _RFC9325, _RFC7465]
        case Code.CERT_EXPIRED:
            steps = [
                _ACME,
                _RELOAD.replace("'systemctl reload postfix dovecot'", "'systemctl restart opensmtpd'"),
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _OPENSMTPD_CERT
            refs = [_SMTPD_CONF, _RFC8555, _ACME_TOOLS]
        case Code.CERT_UNTRUSTED:
            steps = [
                "If the certificate is self-signed, replace it with one from a public CA. " + _ACME,
                _CHAIN + " For OpenSMTPD, the pki `cert` must name the fullchain file.",
                "On port 25, many sending servers do not verify certificates, but DANE (RFC 7672) and "
                "MTA-STS (RFC 8461) senders do and will refuse to deliver.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _OPENSMTPD_CERT
            refs = [_SMTPD_CONF, _RFC5280, _RFC8555]
        case Code.CERT_HOSTNAME_MISMATCH:
            steps = [
                _NAMES,
                "A listener may carry several `pki` options, one per name: OpenSMTPD chooses the "
                "certificate by SNI.",
                *cert_steps,
                _cert_check(protocol, site),
            ]
            config = _OPENSMTPD_CERT
            refs = [_SMTPD_CONF, _RFC9525]
        case Code.CERT_NOT_YET_VALID | Code.CERT_WEAK_KEY | Code.CERT_WEAK_SIGNATURE:
            steps = _new_certificate_steps(code, cert_steps, protocol, site)
            config = _OPENSMTPD_CERT
            refs = [_SMTPD_CONF, _RFC5280 if code is Code.CERT_NOT_YET_VALID else _NIST]
    return _remedy(label, steps, config, refs)


# --- the login probe's own findings: the same advice shape for every product ----------------------------

_INJECTION_FIX = {
    Software.POSTFIX: (
        "Upgrade Postfix: releases since 2.8.5 / 2.7.5 / 2.6.10 / 2.5.13 discard what a client pipelined "
        "after STARTTLS (CVE-2011-0411). Run `postconf mail_version` to see yours."
    ),
    Software.EXIM: (
        "Upgrade Exim to a supported release; current Exim refuses commands pipelined after STARTTLS."
    ),
    Software.DOVECOT: (
        "Upgrade Dovecot to a supported release (2.3.14.1 fixed the same flaw in its submission service, "
        "CVE-2021-33515)."
    ),
    Software.COURIER: (
        "Upgrade Courier: its POP3 server before 1.1.5 runs commands pipelined after STLS inside TLS "
        "(CVE-2021-38084; Debian 12 ships courier-pop 1.0.16). Restart courier-pop(-ssl) afterwards."
    ),
    Software.EXCHANGE: "Install the current Cumulative Update and Security Update for your Exchange version.",
}

_HIDDEN_LOGIN = {
    Software.POSTFIX: (
        "If AUTH was missing from the EHLO reply yet accepted, check `smtpd_sasl_exceptions_networks` "
        "and `smtpd_discard_ehlo_keywords`: they only hide AUTH. `smtpd_tls_auth_only = yes` is what "
        "refuses it before STARTTLS."
    ),
    Software.EXIM: (
        "If AUTH was missing from the EHLO reply yet accepted, `auth_advertise_hosts` or an "
        "authenticator's `server_advertise_condition` hid it: deny unencrypted AUTH in `acl_smtp_auth` "
        "(`deny !encrypted = *`) or use `server_condition` to refuse it without TLS."
    ),
    Software.DOVECOT: (
        "Dovecot lists every mechanism it accepts; if a login was accepted although not listed, "
        "something in front of Dovecot (a proxy, a firewall with protocol inspection) rewrites the list."
    ),
}


def _login_probe_remedy(
    code: Code, sw: Software | None, protocol: Protocol, site: Site = _ANYWHERE
) -> Remedy:
    """starttls-injection and login-advertised-refused: short advice with the product's own fix where
    it has one."""
    label = display_name(sw) if sw is not None else GENERIC
    name = _name(protocol)
    if code is Code.STARTTLS_INJECTION:
        fix = _INJECTION_FIX.get(sw) if sw is not None else None
        steps = [
            fix
            or "Upgrade the server software to a release that discards input pipelined after STARTTLS "
            "(CVE-2011-0411 and its 2011 siblings).",
            "Until then, point clients to the implicit-TLS port (465, 993, 995): with no plaintext phase "
            "there is nothing to inject into.",
            f"Check: `printf 'STARTTLS\\r\\nNOOP\\r\\n'` in one segment to the {name} port (testssl.sh "
            "`--starttls` does it): no answer to the second command may come back inside TLS.",
        ]
        refs = [_RFC3207 if protocol is Protocol.SMTP else _RFC2595, _RFC8314]
        return _remedy(label if sw in _BUILDERS else GENERIC, steps, None, refs)
    steps = [
        f"Stop advertising a login before TLS in the {name} capability list: the server already refuses "
        "it, so the list only misleads clients. Nothing is exposed.",
        {
            Protocol.IMAP: "Advertise LOGINDISABLED and no AUTH= mechanism before STARTTLS (RFC 9051).",
            Protocol.POP3: "List neither USER nor SASL mechanisms in CAPA before STLS (RFC 2595).",
            Protocol.SMTP: "List AUTH in the EHLO reply only after STARTTLS (RFC 4954, section 4).",
        }[protocol],
        _plain_capabilities(protocol, site),
    ]
    refs = [_RFC8314, {Protocol.IMAP: _RFC9051, Protocol.POP3: _RFC2449, Protocol.SMTP: _RFC4954}[protocol]]
    return _remedy(label if sw in _BUILDERS else GENERIC, steps, None, refs)


# --- dispatch ---------------------------------------------------------------------------------------------

_Builder = Callable[[Code, Protocol, Site], Remedy]

_BUILDERS: dict[Software, _Builder] = {
    Software.DOVECOT: _dovecot,
    Software.POSTFIX: _postfix,
    Software.EXIM: _exim,
    Software.COURIER: _courier,
    Software.EXCHANGE: _exchange,
    Software.CYRUS: _cyrus,
    Software.OPENSMTPD: _opensmtpd,
    Software.GMAIL: _gmail,
}

SPECIFIC: tuple[Software, ...] = tuple(_BUILDERS)
"""Products with their own advice (every other product gets the generic text)."""


def targets() -> list[tuple[str, Protocol]]:
    """Every (software label key, protocol) pair with its own advice, generic first: what the doc lists."""
    pairs: list[tuple[str, Protocol]] = [(GENERIC, p) for p in Protocol]
    pairs += [(sw.value, p) for sw in SPECIFIC for p in Protocol if serves(sw, p)]
    return pairs


def remedy(
    code: Code | str,
    software: str | None,
    protocol: Protocol,
    *,
    host: str | None = None,
    ports: Sequence[tuple[int, bool]] = (),
) -> Remedy:
    """The advice for ``code`` on a server running ``software`` (a :class:`Software` value or None).

    ``host`` (the name or address being checked) and ``ports`` (where the finding was seen: port, implicit
    TLS) make the commands in the advice the admin's own: ``openssl s_client`` on those ports of that
    host, certificates for that name. Without them the advice is the documentation's, for
    mail.example.com on the protocol's standard ports.

    Falls back to generic advice when the software is unknown, has no table of its own, or cannot
    serve ``protocol``. Raises ValueError for an unknown code or protocol.
    """
    code = Code(code)
    protocol = Protocol(protocol)
    site = Site(host.rstrip(".").lower() if host else None, tuple(ports))
    sw: Software | None = None
    if software:
        try:
            sw = Software(str(software).strip().lower())
        except ValueError:
            sw = None
    if sw is not None and not serves(sw, protocol):
        sw = None
    if code in (Code.STARTTLS_INJECTION, Code.LOGIN_ADVERTISED_REFUSED):
        fix = _login_probe_remedy(code, sw, protocol, site)
    elif sw is not None and sw in _BUILDERS:
        fix = _BUILDERS[sw](code, protocol, site)
        hint = _HIDDEN_LOGIN.get(sw)
        if code is Code.CLEARTEXT_LOGIN and hint is not None:
            # The probe may have found a login the capability list hid: say how this product hides it.
            fix = dataclasses.replace(fix, steps=(*fix.steps, hint))
    else:
        fix = _generic(code, protocol, display_name(sw) if sw is not None else None, site)
    return _for_host(fix, site)


def _for_host(fix: Remedy, site: Site) -> Remedy:
    """Name the checked host wherever the advice names a host: certificates, paths, SNI blocks. An address
    is no name for a certificate, so advice for an address keeps the placeholder there."""
    if not site.host or _is_address(site.host):
        return fix
    return dataclasses.replace(
        fix,
        steps=tuple(step.replace(PLACEHOLDER, site.host) for step in fix.steps),
        config=fix.config.replace(PLACEHOLDER, site.host) if fix.config else None,
    )


# --- the domain view ------------------------------------------------------------------------------------
#
# Domain findings are fixed in DNS zones, in small files on a web server and in the mail server's
# certificate handling, not in one mail server product's settings: one text per code, with the records
# or the file to publish. ``example.com`` and the host names are examples to adapt.

_RFC6186 = "RFC 6186: Use of SRV Records for Locating Email Submission/Access Services"
_RFC8460 = "RFC 8460: SMTP TLS Reporting"
_RFC7671 = "RFC 7671: The DANE Protocol: Updates and Operational Guidance"
_RFC6698 = "RFC 6698: The DANE Transport Layer Security (TLS) Protocol: TLSA"
_RFC4035 = "RFC 4035: Protocol Modifications for the DNS Security Extensions"
_AUTOCONFIG = "Thunderbird autoconfiguration: config-v1.1.xml (socketType, authentication)"
_AUTODISCOVER = "Microsoft Learn: Autodiscover for Exchange (POX responseschema 2006a: SSL, Encryption, SPA)"

_AUTOCONFIG_XML = """\
<!-- https://autoconfig.example.com/mail/config-v1.1.xml
     (and https://example.com/.well-known/autoconfig/mail/config-v1.1.xml) -->
<clientConfig version="1.1">
  <emailProvider id="example.com">
    <domain>example.com</domain>
    <incomingServer type="imap">
      <hostname>imap.example.com</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>  <!-- sent inside TLS -->
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.example.com</hostname>
      <port>465</port>
      <socketType>SSL</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </outgoingServer>
  </emailProvider>
</clientConfig>
<!-- Autodiscover (POX), per Protocol: <SSL>on</SSL> <Encryption>SSL</Encryption> with port 993/995/465 -->"""

_SRV_ZONE = """\
; RFC 6186 + RFC 8314: implicit TLS preferred (lower priority number), plaintext ports after it or not at all
_imaps._tcp.example.com.       3600 IN SRV 0 1 993 imap.example.com.
_imap._tcp.example.com.        3600 IN SRV 10 1 143 imap.example.com.
_submissions._tcp.example.com. 3600 IN SRV 0 1 465 smtp.example.com.
_submission._tcp.example.com.  3600 IN SRV 10 1 587 smtp.example.com.
_pop3s._tcp.example.com.       3600 IN SRV 0 1 995 pop.example.com.
; a service you do not offer: target "."
_pop3._tcp.example.com.        3600 IN SRV 0 0 0 ."""

_MTA_STS = """\
; DNS: announce the policy; change the id whenever the policy file changes
_mta-sts.example.com.  3600 IN TXT "v=STSv1; id=20260101T000000;"
_smtp._tls.example.com. 3600 IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@example.com"
; mta-sts.example.com: an A/AAAA record and a certificate valid for that name

# https://mta-sts.example.com/.well-known/mta-sts.txt  (HTTP 200, text/plain, no redirect)
version: STSv1
mode: enforce
mx: mx1.example.com
mx: *.mx.example.com
max_age: 1209600"""

_TLSA = """\
# the SHA-256 of the public key the MX serves on port 25 ("3 1 1": DANE-EE, SPKI, SHA2-256)
openssl x509 -in /etc/letsencrypt/live/mx1.example.com/cert.pem -noout -pubkey \\
  | openssl pkey -pubin -outform DER | sha256sum
; publish it in the signed zone, one record per key in use (current and next during a key roll)
_25._tcp.mx1.example.com. 3600 IN TLSA 3 1 1 <hex digest from above>"""

_RENEW_TLSA = (
    "Keep the key across renewals where you can (certbot: `--reuse-key`), so a 3 1 1 record stays "
    "valid; when the key must change, publish the new key's TLSA record beside the old one, wait two "
    "TTLs, then switch the certificate and remove the old record (RFC 7671 8.1)."
)


def _domain_steps(code: DomainCode) -> tuple[list[str], str | None, list[str]]:
    match code:
        case DomainCode.AUTOCONFIG_CLEARTEXT_PASSWORD:
            return (
                [
                    "Change the published configuration so that every server uses TLS: socketType SSL "
                    "with ports 993, 995 and 465 (or STARTTLS with 143, 110 and 587 where the server "
                    "requires it); in Autodiscover, <SSL>on</SSL> and <Encryption>SSL</Encryption> (or TLS).",
                    "Check that the servers really offer what the file now says (`cleartext check "
                    "imap.example.com`), then make them refuse logins before TLS, so clients configured "
                    "earlier fail safe.",
                    "Clients that configured themselves from the old file keep their settings: tell users to "
                    "re-run account setup or switch the account to SSL/TLS, and treat the passwords used so "
                    "far as exposed.",
                ],
                _AUTOCONFIG_XML,
                [_RFC8314, _AUTOCONFIG, _AUTODISCOVER],
            )
        case DomainCode.AUTOCONFIG_TLS_NOT_OFFERED:
            return (
                [
                    "Either enable TLS on the server the file names (see that endpoint's own findings: "
                    "no-tls or starttls-failed, with the fix for its software), or correct the file to name "
                    "the host and port that do offer TLS.",
                    "Keep the file and the servers in step: the host name in the file must also be on the "
                    "server's certificate.",
                ],
                _AUTOCONFIG_XML,
                [_RFC8314, _AUTOCONFIG, _AUTODISCOVER],
            )
        case DomainCode.SRV_PREFERS_PLAINTEXT:
            return (
                [
                    "Publish the implicit-TLS services (_imaps, _pop3s, _submissions) with a lower priority "
                    "number than their plaintext twins (RFC 8314 5.1), or drop the plaintext ones.",
                    "For a service you do not offer, publish target \".\" — on the plaintext service, not on "
                    "its implicit-TLS twin.",
                    "Make the plaintext ports refuse logins before STARTTLS, so clients that still use them "
                    "stay safe.",
                ],
                _SRV_ZONE,
                [_RFC8314, _RFC6186],
            )
        case DomainCode.NO_SMTP_TLS_POLICY:
            return (
                [
                    "Publish an MTA-STS policy (RFC 8461): the _mta-sts TXT record, the policy file over "
                    "HTTPS at mta-sts.<domain>, listing every MX; start with mode testing and a TLS-RPT "
                    "record, read the reports for a few weeks, then switch to mode enforce.",
                    "If the zone is DNSSEC-signed, publish TLSA records for each MX host as well (DANE, RFC "
                    "7672): DANE-aware senders then insist on TLS with exactly your certificate.",
                    "Either way, every MX must offer STARTTLS with a certificate that names it and chains "
                    "to a public CA (for MTA-STS).",
                ],
                _MTA_STS,
                [_RFC8461, _RFC7672, _RFC8460],
            )
        case DomainCode.MTA_STS_TESTING:
            return (
                [
                    "Read the TLS-RPT reports (the _smtp._tls rua address): when they show no failures for "
                    "a few weeks, change the policy file to `mode: enforce`.",
                    "Change the id in the _mta-sts TXT record at the same time, so senders fetch the new "
                    "policy.",
                ],
                _MTA_STS,
                [_RFC8461, _RFC8460],
            )
        case DomainCode.MTA_STS_INVALID:
            return (
                [
                    "Publish exactly one _mta-sts TXT record, `v=STSv1; id=<1-32 letters and digits>;`.",
                    "Serve the policy at https://mta-sts.<domain>/.well-known/mta-sts.txt with HTTP 200 and "
                    "no redirect, under a certificate valid for mta-sts.<domain> from a public CA.",
                    "The file needs `version: STSv1`, `mode:`, `max_age:` (at most 31557600) and one `mx:` "
                    "line per MX host or pattern. Check it with `curl -sS "
                    "https://mta-sts.example.com/.well-known/mta-sts.txt`.",
                ],
                _MTA_STS,
                [_RFC8461],
            )
        case DomainCode.MTA_STS_MX_MISMATCH:
            return (
                [
                    "Add an `mx:` line for every MX host (or a `*.example.com` pattern, which covers exactly "
                    "one label), or remove MX records that should not receive mail.",
                    "Change the MX records and the policy together, policy first, and change the id in the "
                    "_mta-sts TXT record each time.",
                ],
                _MTA_STS,
                [_RFC8461],
            )
        case DomainCode.MTA_STS_MX_CERT_INVALID:
            return (
                [
                    "Give each MX host a certificate from a public CA that names the MX host itself (the "
                    "name in the MX record), served with its intermediates on port 25 with STARTTLS.",
                    _RELOAD,
                    "Test as a sender would: `openssl s_client -starttls smtp -connect mx1.example.com:25 "
                    "-servername mx1.example.com -verify_hostname mx1.example.com -verify_return_error`.",
                ],
                None,
                [_RFC8461, _RFC9525, _RFC8555],
            )
        case DomainCode.MTA_STS_SHORT_MAX_AGE:
            return (
                [
                    "Set max_age to weeks or more (1209600 is two weeks; at most 31557600) once the policy "
                    "is stable, and change the id in the _mta-sts TXT record.",
                ],
                _MTA_STS,
                [_RFC8461],
            )
        case DomainCode.TLS_RPT_MISSING:
            return (
                [
                    "Publish one _smtp._tls TXT record, `v=TLSRPTv1; rua=mailto:tlsrpt@example.com`, with a "
                    "mailbox (or an https: endpoint) that someone reads or a report parser processes.",
                ],
                _MTA_STS,
                [_RFC8460],
            )
        case DomainCode.DANE_TLSA_MISMATCH:
            return (
                [
                    "Compute the digest of the key the MX serves now and publish it as a 3 1 1 TLSA record "
                    "at _25._tcp.<mx> (or restore the key the records name).",
                    _RENEW_TLSA,
                    "Check with `posttls-finger -t30 -T180 -c -L verbose,summary example.com` or "
                    "`danetool --check mx1.example.com --port 25 --starttls-proto smtp`.",
                ],
                _TLSA,
                [_RFC7672, _RFC7671, _RFC6698],
            )
        case DomainCode.DANE_TLSA_INSECURE:
            return (
                [
                    "Sign the zone of the MX host with DNSSEC and publish its DS record at the parent (your "
                    "registrar), or remove the TLSA records if DANE is not intended.",
                    "Check the chain of trust: `delv _25._tcp.mx1.example.com TLSA` must say \"fully "
                    "validated\".",
                ],
                _TLSA,
                [_RFC7672, _RFC4035],
            )
        case DomainCode.DANE_TLSA_UNUSABLE:
            return (
                [
                    "Replace PKIX-TA/PKIX-EE (usage 0/1) records with DANE-EE (3 1 1) records of the MX's "
                    "key, or DANE-TA (2 1 1) records of your CA's intermediate key.",
                ],
                _TLSA,
                [_RFC7672, _RFC7671],
            )
        case DomainCode.DNSSEC_BOGUS:
            return (
                [
                    "Find the broken link: `delv +vtrace <name> <type>` or DNSViz show whether signatures "
                    "expired, a key rolled without its DS at the parent, or a record changed without being "
                    "re-signed.",
                    "Re-sign the zone (and automate it: signatures expire), or fix the DS record at the "
                    "registrar. Removing the DS (going unsigned) stops DANE but restores resolution.",
                ],
                None,
                [_RFC4035, _RFC7672],
            )


def domain_remedy(code: DomainCode | str) -> Remedy:
    """The advice for a domain finding (one text per code: zone records, policy files, certificates).
    Raises ValueError for an unknown code."""
    steps, config, refs = _domain_steps(DomainCode(code))
    return _remedy(GENERIC, steps, config, refs)
