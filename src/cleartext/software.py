"""Which mail server software answered: told from its greeting and, failing that, its capability list.

Why: a finding is only useful to a mail admin with the fix *for the software they run* (see
:mod:`cleartext.remediation`), and a CERT analyst groups findings by product. The greeting is the one thing
every server says without being asked, and most products sign it by default ("Dovecot ready.",
"ESMTP Postfix", "ESMTP Exim 4.96"). Admins can change greetings, so when nothing matches we return None
and the remediation falls back to generic text: a wrong product name would send an admin to the wrong
configuration file, which is worse than no name.

Rules, in order of trust:

* Only signatures that are specific to one product are matched. Generic texts ("220 host ESMTP",
  "+OK <apop-timestamp>", "* OK IMAP4rev1 server ready") identify nothing.
* Product words must stand alone: "postfix" inside "postfix.example.com" is a host name, not a product.
  In SMTP, the first word of the greeting is the server's host name (RFC 5321) and is dropped when it
  looks like one (a dot, a colon, an address literal) or when "ESMTP" follows it.
* A product is only reported for a protocol it serves (Postfix never answers on IMAP; Dovecot answers on
  SMTP only as its submission service), so a stray word cannot produce an impossible pairing.

Server text is hostile. We look at the first 1 KB of the greeting and at most 64 capability lines of 256
characters; control characters become spaces; every pattern is a literal phrase with bounded repetitions
and no nested quantifiers, so matching is linear in that bounded input whatever bytes arrive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from cleartext.record import Protocol

__all__ = ["Software", "display_name", "identify", "identify_version", "serves"]

MAX_GREETING = 1024  # characters of the greeting we look at
MAX_CAPABILITY_LINES = 64
MAX_CAPABILITY_LINE = 256


class Software(StrEnum):
    """The products we can recognise reliably. Values are stable strings stored in records."""

    DOVECOT = "dovecot"
    POSTFIX = "postfix"
    EXIM = "exim"
    COURIER = "courier"
    EXCHANGE = "exchange"
    IIS_SMTP = "iis-smtp"  # "Microsoft ESMTP MAIL Service, Version: ..." (IIS SMTP, incl. Exchange 2000/2003)
    CYRUS = "cyrus"
    SENDMAIL = "sendmail"
    QMAIL = "qmail"
    ZIMBRA = "zimbra"
    HMAILSERVER = "hmailserver"
    MDAEMON = "mdaemon"
    OPENSMTPD = "opensmtpd"
    HARAKA = "haraka"
    GMAIL = "gmail"
    UW_IMAP = "uw-imap"
    QPOPPER = "qpopper"
    KERIO = "kerio"
    COMMUNIGATE = "communigate"
    ICEWARP = "icewarp"
    MAILENABLE = "mailenable"
    AXIGEN = "axigen"
    SMARTERMAIL = "smartermail"


_ALL = frozenset(Protocol)
_SMTP = frozenset({Protocol.SMTP})
_ACCESS = frozenset({Protocol.IMAP, Protocol.POP3})

_SERVES: Mapping[Software, frozenset[Protocol]] = MappingProxyType(
    {
        Software.DOVECOT: _ALL,  # IMAP, POP3, and SMTP through its submission service (2.3+)
        Software.POSTFIX: _SMTP,
        Software.EXIM: _SMTP,
        Software.COURIER: _ALL,  # Courier-MTA (ESMTP) and Courier-IMAP (IMAP, POP3)
        Software.EXCHANGE: _ALL,
        Software.IIS_SMTP: _SMTP,
        Software.CYRUS: _ACCESS,
        Software.SENDMAIL: _SMTP,
        Software.QMAIL: frozenset({Protocol.SMTP, Protocol.POP3}),  # qmail-smtpd, qmail-pop3d
        Software.ZIMBRA: _ACCESS,  # Zimbra's SMTP is a Postfix and says so
        Software.HMAILSERVER: _ALL,
        Software.MDAEMON: _ALL,
        Software.OPENSMTPD: _SMTP,
        Software.HARAKA: _SMTP,
        Software.GMAIL: _ALL,
        Software.UW_IMAP: _ACCESS,
        Software.QPOPPER: frozenset({Protocol.POP3}),
        Software.KERIO: _ALL,
        Software.COMMUNIGATE: _ALL,
        Software.ICEWARP: _ALL,
        Software.MAILENABLE: _ALL,
        Software.AXIGEN: _ALL,
        Software.SMARTERMAIL: _ALL,
    }
)

_NAMES: Mapping[Software, str] = MappingProxyType(
    {
        Software.DOVECOT: "Dovecot",
        Software.POSTFIX: "Postfix",
        Software.EXIM: "Exim",
        Software.COURIER: "Courier",
        Software.EXCHANGE: "Microsoft Exchange",
        Software.IIS_SMTP: "Microsoft IIS SMTP service",
        Software.CYRUS: "Cyrus IMAP",
        Software.SENDMAIL: "Sendmail",
        Software.QMAIL: "qmail",
        Software.ZIMBRA: "Zimbra",
        Software.HMAILSERVER: "hMailServer",
        Software.MDAEMON: "MDaemon",
        Software.OPENSMTPD: "OpenSMTPD",
        Software.HARAKA: "Haraka",
        Software.GMAIL: "Gmail (Google)",
        Software.UW_IMAP: "UW IMAP",
        Software.QPOPPER: "Qpopper",
        Software.KERIO: "Kerio Connect",
        Software.COMMUNIGATE: "CommuniGate Pro",
        Software.ICEWARP: "IceWarp",
        Software.MAILENABLE: "MailEnable",
        Software.AXIGEN: "Axigen",
        Software.SMARTERMAIL: "SmarterMail",
    }
)


def _software(value: Software | str) -> Software | None:
    try:
        return Software(str(value).strip().lower())
    except ValueError:
        return None


def serves(software: Software | str, protocol: Protocol) -> bool:
    """Whether ``software`` can be the server on ``protocol`` (False for unknown names)."""
    sw = _software(software)
    return sw is not None and protocol in _SERVES[sw]


def display_name(software: Software | str | None) -> str:
    """The product's name as people write it ("Dovecot", "Microsoft Exchange"); the raw value if unknown."""
    if software is None:
        return "unknown"
    sw = _software(software)
    return _NAMES[sw] if sw is not None else str(software)[:40]


# --- text normalisation -------------------------------------------------------------------------------

_CONTROL_TO_SPACE = {code: " " for code in (*range(0x20), 0x7F)}
_VERSION = r"(?P<v>[0-9][0-9A-Za-z._+~-]{0,47})"
_HEAD = r"(?<![\w.-])"  # a product word starts at a word start that is not inside a host name
_TAIL = r"(?![\w-]|\.\w)"  # ...and ends before a space, punctuation or a sentence-ending dot


def _word(phrase: str) -> str:
    """A regex for ``phrase`` standing alone: not part of a longer word and not a host-name label."""
    return _HEAD + re.escape(phrase) + _TAIL


def _lines(text: str | bytes | None, max_chars: int) -> list[str]:
    """The first ``max_chars`` of ``text`` split into lines, control characters turned into spaces."""
    if text is None:
        return []
    # bytes are decoded as Latin-1: every byte maps to one character, so nothing can fail or grow.
    text = text[:max_chars].decode("latin-1") if isinstance(text, bytes) else str(text)[:max_chars]
    # A printable line has none of the control characters to translate (the common case, and a third
    # of this function's cost saved: identify() runs up to three times per endpoint).
    return [
        " ".join((line if line.isprintable() else line.translate(_CONTROL_TO_SPACE)).split())
        for line in text.splitlines()
    ]


_SMTP_CODE = re.compile(r"^[0-9]{3}(?:[ -]|$)")
_IMAP_STATUS = re.compile(r"^\* ?(?:OK|PREAUTH|BYE|NO|BAD)\b ?", re.IGNORECASE)
_POP_STATUS = re.compile(r"^[+-](?:OK|ERR)\b ?", re.IGNORECASE)


def _is_host_name(first: str, rest: str) -> bool:
    """Whether the first word of an SMTP greeting is the server's name, which RFC 5321 puts there.

    It is when it looks like a domain or an address literal, and also when "ESMTP"/"SMTP" follows it
    (a single-label name such as "postfix" must not pass for the product). "Microsoft" is the one
    product word that starts greetings without a host name ("Microsoft ESMTP MAIL Service, ...").
    """
    if "." in first or ":" in first or first.startswith("["):
        return True
    following = rest.split(" ", 1)[0].upper().rstrip(",")
    return following in ("ESMTP", "SMTP") and first.lower() != "microsoft"


def _greeting_text(protocol: Protocol, greeting: str | bytes | None) -> str:
    """The greeting reduced to its free text: status codes, IMAP response codes and SMTP host name gone."""
    out: list[str] = []
    for index, line in enumerate(_lines(greeting, MAX_GREETING)):
        if protocol is Protocol.SMTP:
            line = _SMTP_CODE.sub("", line, count=1)
            if index == 0:
                first, _, rest = line.partition(" ")
                if rest and _is_host_name(first, rest):
                    line = rest
        elif protocol is Protocol.IMAP:
            line = _IMAP_STATUS.sub("", line, count=1)
            if line.startswith("["):
                close = line.find("]")
                line = line[close + 1 :].lstrip() if close != -1 else ""
        else:
            line = _POP_STATUS.sub("", line, count=1)
        if line:
            out.append(line)
    return "\n".join(out)


def _capability_lines(
    protocol: Protocol, greeting: str | bytes | None, capabilities: Iterable[str] | None
) -> list[str]:
    """Capability lines without SMTP reply codes; IMAP capabilities in the greeting's response code too."""
    lines: list[str] = []
    if protocol is Protocol.IMAP:
        for line in _lines(greeting, MAX_GREETING):
            line = _IMAP_STATUS.sub("", line, count=1)
            if line[:12].upper() == "[CAPABILITY " and "]" in line:
                lines.append(line[12 : line.find("]")])
    if capabilities is not None:
        for count, raw in enumerate(capabilities):
            if count >= MAX_CAPABILITY_LINES:
                break
            for line in _lines(raw if isinstance(raw, str | bytes) else str(raw), MAX_CAPABILITY_LINE):
                if protocol is Protocol.SMTP:
                    line = _SMTP_CODE.sub("", line, count=1)
                lines.append(line)
    return lines


# --- signatures ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Signature:
    software: Software
    protocols: frozenset[Protocol]
    pattern: re.Pattern[str]


def _sig(
    software: Software, protocols: Iterable[Protocol], pattern: str, flags: int = re.IGNORECASE
) -> _Signature:
    return _Signature(software, frozenset(protocols), re.compile(pattern, flags))


_S, _I, _P = Protocol.SMTP, Protocol.IMAP, Protocol.POP3

# Greeting signatures, most specific first; the first that matches decides.
_GREETING_SIGNATURES: tuple[_Signature, ...] = (
    # Microsoft. Exchange 2007+ says "Microsoft ESMTP MAIL Service ready at <date>"; the IIS SMTP service
    # (also the SMTP front of Exchange 2000/2003) says "Microsoft ESMTP MAIL Service, Version: <v> ready".
    _sig(Software.IIS_SMTP, [_S], r"Microsoft ESMTP MAIL Service, Version: ?" + _VERSION),
    _sig(Software.EXCHANGE, [_S], r"Microsoft ESMTP MAIL Service ready at"),
    _sig(Software.EXCHANGE, [_S], r"Microsoft Exchange Internet Mail Service " + _VERSION),
    _sig(Software.EXCHANGE, [_I, _P], _HEAD + r"Microsoft Exchange[^\n]{0,60}? [Vv]ersion,? " + _VERSION),
    _sig(Software.EXCHANGE, [_I, _P], _word("Microsoft Exchange")),
    # Google.
    _sig(Software.GMAIL, [_S], _word("gsmtp")),
    _sig(Software.GMAIL, [_I], r"^Gimap ready\b"),
    _sig(Software.GMAIL, [_P], r"^Gpop ready\b"),
    # Unix MTAs, as their default banners print them.
    _sig(Software.POSTFIX, [_S], _HEAD + r"Postfix \((?:Postfix-)?(?P<v>[0-9][0-9.]{0,19})[)-]"),
    _sig(Software.POSTFIX, [_S], _word("Postfix")),
    _sig(Software.EXIM, [_S], _HEAD + r"Exim " + _VERSION),
    _sig(Software.EXIM, [_S], _word("Exim")),
    _sig(Software.SENDMAIL, [_S], _HEAD + r"Sendmail " + _VERSION),
    _sig(Software.SENDMAIL, [_S], _word("Sendmail")),
    _sig(Software.OPENSMTPD, [_S], _word("OpenSMTPD")),
    _sig(Software.HARAKA, [_S], _HEAD + r"Haraka[/ ]" + _VERSION),
    _sig(Software.HARAKA, [_S], _word("Haraka")),
    _sig(Software.QMAIL, [_S, _P], _HEAD + r"qmail(?![\w]|\.\w)"),
    # IMAP/POP3 servers.
    _sig(Software.DOVECOT, [_S, _I, _P], _word("Dovecot")),
    _sig(Software.COURIER, [_I], _HEAD + r"Courier-IMAP" + _TAIL),
    _sig(Software.COURIER, [_P], r"^Hello there\.$", 0),  # Courier's fixed POP3 greeting
    _sig(Software.CYRUS, [_I, _P], _HEAD + r"Cyrus (?:IMAP4?|POP3)(?: Murder)? v?" + _VERSION),
    _sig(Software.CYRUS, [_I, _P], _HEAD + r"Cyrus (?:IMAP4?|POP3)" + _TAIL),
    _sig(Software.ZIMBRA, [_I, _P], _HEAD + r"Zimbra " + _VERSION + r" (?:IMAP4rev1|POP3) "),
    _sig(Software.ZIMBRA, [_I, _P], _word("Zimbra")),
    _sig(
        Software.UW_IMAP,
        [_I],
        r"IMAP4rev1 v?(?P<v>[0-9]{4}[a-z]?\.[0-9]{1,4}[0-9A-Za-z.-]{0,20}) (?:at|server ready)\b",
    ),
    _sig(
        Software.UW_IMAP,
        [_P],
        r"^POP3 \S{1,255} v?(?P<v>[0-9]{4}[a-z]?\.[0-9]{1,4}[0-9A-Za-z.-]{0,20}) server ready\b",
    ),
    _sig(Software.QPOPPER, [_P], r"^Qpop(?:per)? \(version (?P<v>[^)\s]{1,40})"),
    _sig(Software.HMAILSERVER, [_I], r"^IMAPrev1$", 0),  # its default greeting, typo included
    # Commercial suites whose default banners carry the product name.
    _sig(Software.MDAEMON, [_S, _I, _P], _HEAD + r"MDaemon v?" + _VERSION),
    _sig(Software.MDAEMON, [_S, _I, _P], _word("MDaemon")),
    _sig(Software.KERIO, [_S, _I, _P], _HEAD + r"Kerio (?:Connect|MailServer) " + _VERSION),
    _sig(Software.KERIO, [_S, _I, _P], _HEAD + r"Kerio (?:Connect|MailServer)" + _TAIL),
    _sig(
        Software.COMMUNIGATE, [_S, _I, _P], _HEAD + r"CommuniGate Pro(?: [A-Z0-9]{1,8} Server)? " + _VERSION
    ),
    _sig(Software.COMMUNIGATE, [_S, _I, _P], _word("CommuniGate Pro")),
    _sig(Software.ICEWARP, [_S, _I, _P], _HEAD + r"(?:IceWarp|Merak) " + _VERSION),
    _sig(Software.ICEWARP, [_S, _I, _P], _HEAD + r"(?:IceWarp|Merak)" + _TAIL),
    _sig(Software.MAILENABLE, [_S, _I, _P], _HEAD + r"MailEnable(?: Service, Version: ?" + _VERSION + r")?"),
    _sig(Software.AXIGEN, [_S, _I, _P], _word("Axigen")),
    _sig(Software.SMARTERMAIL, [_S, _I, _P], _word("SmarterMail")),
)

# Capability signatures: used only when the greeting identified nothing (a customised banner).
_CAPABILITY_SIGNATURES: tuple[_Signature, ...] = (
    # Exchange-only ESMTP keywords (XEXCH50: Exchange 2000-2010; X-ANONYMOUSTLS, X-EXPS: 2007 and later).
    _sig(Software.EXCHANGE, [_S], r"^(?:X-ANONYMOUSTLS|XEXCH50|X-EXPS)\b"),
    _sig(Software.COURIER, [_S], r"^XVERP=Courier\b"),
    _sig(Software.SENDMAIL, [_S], r"\bHello .{1,300}, pleased to meet you\b"),  # first EHLO line
    _sig(Software.GMAIL, [_I], _HEAD + r"X-GM-EXT-1" + _TAIL),
    # POP3 CAPA "IMPLEMENTATION <text>" (RFC 2449): the product names itself.
    _sig(Software.COURIER, [_P], r"^IMPLEMENTATION Courier\b"),
    _sig(Software.CYRUS, [_P], r"^IMPLEMENTATION Cyrus POP3(?: Murder)? v?" + _VERSION),
    _sig(Software.CYRUS, [_P], r"^IMPLEMENTATION Cyrus\b"),
    _sig(Software.QPOPPER, [_P], r"^IMPLEMENTATION Qpopper-version-" + _VERSION),
    _sig(Software.QPOPPER, [_P], r"^IMPLEMENTATION Qpopper\b"),
    _sig(Software.ZIMBRA, [_P], r"^IMPLEMENTATION Zimbra"),
    _sig(Software.DOVECOT, [_P], r"^IMPLEMENTATION Dovecot\b"),
)


@lru_cache(maxsize=8)
def _for_protocol(signatures: tuple[_Signature, ...], protocol: Protocol) -> tuple[_Signature, ...]:
    """The signatures that can name a product on ``protocol``, in their order: chosen once, not on every
    search (identify runs up to three times per endpoint)."""
    return tuple(s for s in signatures if protocol in s.protocols and protocol in _SERVES[s.software])


def _search(
    signatures: tuple[_Signature, ...], protocol: Protocol, texts: Sequence[str]
) -> tuple[Software, str | None] | None:
    for signature in _for_protocol(signatures, protocol):
        for text in texts:
            match = signature.pattern.search(text)
            if match is None:
                continue
            version = match.groupdict().get("v")
            return signature.software, version.rstrip(".-") if version else None
    return None


def _identify(
    protocol: Protocol, greeting: str | bytes | None, capabilities: Sequence[str] | None
) -> tuple[Software, str | None] | None:
    protocol = Protocol(protocol)
    text = _greeting_text(protocol, greeting)
    found = None
    if text:
        # Match line by line so that ^/$ anchor at line boundaries and a phrase never spans two lines.
        found = _search(_GREETING_SIGNATURES, protocol, text.split("\n"))
    if found is None:
        caps = _capability_lines(protocol, greeting, capabilities)
        if caps:
            found = _search(_CAPABILITY_SIGNATURES, protocol, caps)
    return found


def identify(
    protocol: Protocol, greeting: str | bytes | None, capabilities: Sequence[str] | None = None
) -> Software | None:
    """The product behind an endpoint, from what it said before being asked anything else.

    ``greeting`` is the greeting as received or as sanitised into the record (all lines); ``capabilities``
    the capability lines (EHLO reply, CAPA, CAPABILITY) if they were asked. Returns None when nothing
    specific matched. Never raises on hostile input.
    """
    found = _identify(protocol, greeting, capabilities)
    return found[0] if found else None


def identify_version(
    protocol: Protocol, greeting: str | bytes | None, capabilities: Sequence[str] | None = None
) -> str | None:
    """The version string the product printed next to its name ("4.96", "2.3.19.1"), if it printed one.

    Only as trustworthy as the banner: admins edit banners, and distributions patch software without
    changing the number. Useful for grouping in reports, not for deciding whether a server is vulnerable.
    """
    found = _identify(protocol, greeting, capabilities)
    return found[1] if found else None
