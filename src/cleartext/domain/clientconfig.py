"""Client autoconfiguration, sans-IO: RFC 6186/8314 SRV records, Thunderbird autoconfig, Autodiscover POX.

Mail clients configure themselves from what the domain publishes. These functions read it — bytes and
DNS records in, typed :class:`~cleartext.domain.model.ClientServer` entries out — and never raise on
what a server sent: XML that is oversized, malformed, or declares a DTD or an entity (the billion-laughs
bomb, external entities) is refused by defusedxml before any expansion can happen, and becomes one error
string.

Formats:
- SRV (RFC 6186, updated by RFC 8314 5.1): ``_imap._tcp``, ``_imaps._tcp``, ``_pop3._tcp``,
  ``_pop3s._tcp``, ``_submission._tcp``, ``_submissions._tcp``; a target of "." says the service is not
  offered. Lower priority numbers are preferred.
- Thunderbird autoconfig ``config-v1.1.xml``: ``clientConfig/emailProvider/incomingServer`` (imap, pop3)
  and ``outgoingServer`` (smtp) with ``hostname``, ``port``, ``socketType`` (plain, SSL, STARTTLS) and
  ``authentication`` (password-cleartext, password-encrypted, OAuth2, NTLM, GSSAPI, ...).
- Microsoft Autodiscover POX (responseschema 2006a): ``Account/Protocol`` with ``Type`` (IMAP, POP3,
  SMTP), ``Server``, ``Port``, ``SSL`` (on/off), ``Encryption`` (None, SSL, TLS, Auto) and ``SPA``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from cleartext.domain.model import ClientServer, Socket
from cleartext.text import sanitize

# RFC 6186 service names and their implicit-TLS twins (RFC 8314 5.1).
SRV_SERVICES = ("imap", "imaps", "pop3", "pop3s", "submission", "submissions")
TWINS = {"imap": "imaps", "pop3": "pop3s", "submission": "submissions"}

MAX_SERVERS = 32  # servers kept from one document
MAX_ELEMENTS = 5000  # elements walked in one document
# Published authentication methods that do not hand the password itself to whoever reads the wire:
# challenge-response ones (autoconfig password-encrypted = CRAM-MD5 and the like; Autodiscover SPA = NTLM),
# and those that use no password at all. Everything else (password-cleartext, OAuth2's bearer token, a
# method we do not know) counts as sending it.
CHALLENGE_AUTH = frozenset({"password-encrypted", "ntlm", "gssapi", "spa"})
NO_PASSWORD_AUTH = frozenset({"client-ip-address", "tls-certificate", "none"})

_AUTOCONFIG_SOCKET = {
    "plain": Socket.PLAIN,
    "ssl": Socket.SSL,
    "tls": Socket.SSL,
    "starttls": Socket.STARTTLS,
}
_AUTODISCOVER_ENCRYPTION = {
    "none": Socket.PLAIN,
    "ssl": Socket.SSL,
    "tls": Socket.STARTTLS,
    "auto": Socket.AUTO,
}
_IMPLICIT_PORTS = {465, 993, 995}


class XmlError(ValueError):
    """A document we refuse to read; the message is one line for the record."""


def parse_xml(data: bytes) -> ET.Element:
    """Parse hostile XML: no DTD, no entity declaration, no external reference, ever."""
    try:
        return DET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise XmlError(f"refused: {exc.__class__.__name__} (DTDs and entities are not accepted)") from None
    except ET.ParseError as exc:
        raise XmlError(f"malformed XML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise XmlError(f"malformed XML: {exc.__class__.__name__}") from None


def _local(tag: object) -> str:
    """The tag without its namespace, lower case (``{ns}Protocol`` -> ``protocol``)."""
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].lower()


def _walk(root: ET.Element) -> Iterable[ET.Element]:
    for count, element in enumerate(root.iter()):
        if count >= MAX_ELEMENTS:
            return
        yield element


def _child_text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


def _children_text(element: ET.Element, name: str) -> list[str]:
    return [(child.text or "").strip() for child in element if _local(child.tag) == name]


def _port(text: str | None) -> int | None:
    if text is None or not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def _hostname(text: str | None, domain: str) -> str | None:
    """A host name from a document: placeholders filled in (%EMAILDOMAIN%), checked, lower case."""
    if not text:
        return None
    name = text.replace("%EMAILDOMAIN%", domain).strip().rstrip(".").lower()
    if not name or len(name) > 253 or any(c.isspace() or c in "/\\%@:" for c in name):
        return None
    labels = name.split(".")
    if any(not label or len(label) > 63 for label in labels):
        return None
    return name


def parse_autoconfig(data: bytes, domain: str) -> tuple[list[ClientServer], list[str]]:
    """Servers named by a Thunderbird ``config-v1.1.xml`` document, and what was wrong with it."""
    try:
        root = parse_xml(data)
    except XmlError as exc:
        return [], [str(exc)]
    if _local(root.tag) != "clientconfig":
        return [], [f"not an autoconfig document: root element {sanitize(_local(root.tag), 60)!r}"]
    servers: list[ClientServer] = []
    errors: list[str] = []
    for element in _walk(root):
        kind = _local(element.tag)
        if kind not in ("incomingserver", "outgoingserver"):
            continue
        protocol = (element.get("type") or "").strip().lower()
        if (kind == "incomingserver" and protocol not in ("imap", "pop3")) or (
            kind == "outgoingserver" and protocol != "smtp"
        ):
            continue  # exchange, ews, jmap...: not ours to judge
        host = _hostname(_child_text(element, "hostname"), domain)
        port = _port(_child_text(element, "port"))
        socket_text = (_child_text(element, "sockettype") or "").lower()
        socket = _AUTOCONFIG_SOCKET.get(socket_text, Socket.UNKNOWN)
        auth = [sanitize(a, 60).lower() for a in _children_text(element, "authentication") if a][:8]
        if host is None or port is None:
            errors.append(f"{protocol} server without a usable hostname or port")
            continue
        if len(servers) < MAX_SERVERS:
            servers.append(ClientServer("autoconfig", protocol, host, port, socket, auth))
    if not servers and not errors:
        errors.append("no IMAP, POP3 or SMTP server in the document")
    return servers, errors


def parse_autodiscover(data: bytes, domain: str) -> tuple[list[ClientServer], list[str]]:
    """Servers named by an Autodiscover POX response (``Account/Protocol``), and what was wrong with it."""
    try:
        root = parse_xml(data)
    except XmlError as exc:
        return [], [str(exc)]
    if _local(root.tag) != "autodiscover":
        return [], [f"not an Autodiscover response: root element {sanitize(_local(root.tag), 60)!r}"]
    servers: list[ClientServer] = []
    errors: list[str] = []
    for element in _walk(root):
        tag = _local(element.tag)
        if tag == "error":
            message = _child_text(element, "message") or ""
            errors.append(
                f"Autodiscover error: {sanitize(message, 200)}" if message else "Autodiscover error"
            )
            continue
        if tag == "action" and (element.text or "").strip().lower().startswith("redirect"):
            errors.append("Autodiscover redirect (not followed)")
            continue
        if tag != "protocol":
            continue
        kind = (_child_text(element, "type") or "").strip().upper()
        protocol = {"IMAP": "imap", "POP3": "pop3", "SMTP": "smtp"}.get(kind)
        if protocol is None:
            continue  # EXCH, EXPR, WEB...
        host = _hostname(_child_text(element, "server"), domain)
        port = _port(_child_text(element, "port"))
        if host is None or port is None:
            errors.append(f"{protocol} server without a usable hostname or port")
            continue
        encryption = (_child_text(element, "encryption") or "").strip().lower()
        if encryption:
            socket = _AUTODISCOVER_ENCRYPTION.get(encryption, Socket.UNKNOWN)
        else:
            ssl = (_child_text(element, "ssl") or "on").strip().lower()  # SSL defaults to on
            if ssl == "off":
                socket = Socket.PLAIN
            else:
                socket = Socket.SSL if port in _IMPLICIT_PORTS else Socket.STARTTLS
        spa = (_child_text(element, "spa") or "off").strip().lower() == "on"
        auth = ["spa"] if spa else ["password-cleartext"]
        if len(servers) < MAX_SERVERS:
            servers.append(ClientServer("autodiscover", protocol, host, port, socket, auth))
    if not servers and not errors:
        errors.append("no IMAP, POP3 or SMTP server in the response")
    return servers, errors


def autodiscover_request(email: str) -> bytes:
    """The POX request body Outlook sends (responseschema 2006a)."""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\r\n'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">'
        f"<Request><EMailAddress>{email}</EMailAddress>"
        "<AcceptableResponseSchema>"
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
        "</AcceptableResponseSchema></Request></Autodiscover>"
    ).encode()


def sends_password(server: ClientServer) -> bool:
    """Whether the published authentication hands over the password (or a token) itself. A method we do
    not know counts as such, and so does none being named (clients then use a password)."""
    methods = {m.lower() for m in server.authentication}
    if not methods:
        return True
    return any(m not in CHALLENGE_AUTH and m not in NO_PASSWORD_AUTH for m in methods)


def srv_preference(priorities: dict[str, int | None]) -> list[tuple[str, str, str]]:
    """Plaintext services (RFC 6186: IMAP on 143, POP3 on 110, submission on 587) that a client following
    the SRV records would choose over their implicit-TLS twin (RFC 8314 5.1), as (service, twin, why).

    ``priorities``: service -> the best (lowest) priority of its usable targets, None when the service
    is not published, or published with target "." (not offered).
    """
    out: list[tuple[str, str, str]] = []
    for plain, twin in TWINS.items():
        p, t = priorities.get(plain), priorities.get(twin)
        if p is None:
            continue
        if t is None:
            out.append((plain, twin, "the implicit-TLS service is not published or is marked not offered"))
        elif p < t:
            out.append((plain, twin, f"priority {p} is preferred over the implicit-TLS service's {t}"))
    return out
