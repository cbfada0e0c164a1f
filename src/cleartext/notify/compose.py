"""One message per recipient: summary, affected endpoints, each finding explained with the fix for the
software found, the Shadowserver CSV report attached, how to opt out — as plain text and HTML.

Why this shape. The reader is a mail administrator (or a CERT forwarding to one) who did not ask to be
scanned: the message opens with what was found and that no password was tried, then lists the endpoints,
then the fixes, grouped by finding and by (software, protocol) so that one Postfix fix is not repeated
for twenty endpoints. The CSV attachment is the same Shadowserver-schema file CERTs already feed to
IntelMQ (written by :func:`cleartext.report.shadowserver.write_reports`, so the two never disagree).

Hostile text. Greetings and host names come from scanned servers or imported files. In HTML they are
escaped by Jinja2's autoescape; in plain text and HTML alike the ``inert`` filter writes control and
invisible characters (bidi overrides, zero-width spaces, escape sequences) as ``\\xNN``; in the CSV the
report writer neutralises formula starts. Nothing a server sent reaches a header: headers carry only
the operator's words, validated addresses, the scan id and counts.

The Message-ID is a function of (scan, recipient) only (:func:`message_id_for`): a message rebuilt after
a crash carries the same id, so a copy that did get through twice is recognisably the same message.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import re
import tempfile
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from cleartext.enrich.model import Attribution
from cleartext.notify.subscriptions import Recipient
from cleartext.notify.templates import TEMPLATES, WORDS, finding_text
from cleartext.record import Protocol, Record, Severity
from cleartext.remediation import GENERIC, remedy
from cleartext.report.shadowserver import SplitBy, report_types, service, write_reports
from cleartext.software import Software, display_name

__all__ = [
    "MAIL_POLICY",
    "MAX_GREETING",
    "MAX_LISTED",
    "Affected",
    "Operator",
    "Planned",
    "build_message",
    "message_id_for",
]

MAX_LISTED = 200  # endpoints listed in the body; all of them are in the CSV attachment
MAX_GROUP_LISTED = 20  # endpoints named under one (finding, software, protocol) fix
MAX_GREETING = 160  # characters of a greeting shown in the body
PROTOCOLS = ("smtp", "pop3", "imap")


@dataclass(frozen=True, slots=True)
class Operator:
    """Who sends: a name shown to readers, the From address, and where replies and opt-outs go."""

    name: str
    from_addr: str
    contact: str


@dataclass(slots=True)
class Affected:
    """One endpoint with findings, as a recipient sees it."""

    record: Record
    attribution: Attribution


@dataclass(slots=True)
class Planned:
    """Everything one recipient is told about one scan."""

    recipient: Recipient
    source: str  # "subscription" or "abuse-contact"
    reasons: list[str] = field(default_factory=list)  # subscription labels that matched, in order
    endpoints: list[Affected] = field(default_factory=list)
    split_by: SplitBy = "asn"  # how the attached CSV files are split by owner


class _MailPolicy(EmailPolicy):
    """``email.policy.SMTP``, but a header is never folded right after its name.

    When a header does not fit on its first line but its value fits on a line of its own, Python folds
    it as ``Subject:`` + CRLF + the whole value: legal, but mail clients then show the subject with a
    leading blank, or nothing in a narrow list. Such a header is folded at its last space that fits the
    first line instead.
    """

    def _fold(self, name: str, value: Any, refold_binary: bool = False) -> str:
        folded: str = super()._fold(name, value, refold_binary)  # type: ignore[misc]
        bare = f"{name}:{self.linesep} "
        if not folded.startswith(bare):
            return folded
        rest = folded[len(bare) :]
        first, sep, others = rest.partition(self.linesep)
        room = (self.max_line_length or 78) - len(name) - 2  # after "Name: " on the first line
        cut = first.rfind(" ", 0, room + 1)
        if cut > 0:
            return f"{name}: {first[:cut]}{self.linesep} {first[cut + 1 :]}{sep}{others}"
        return f"{name}: {rest}"  # a first word longer than a line: it stays on the first line (< 998)


# What messages are written with: SMTP line ends, headers folded as _MailPolicy says.
MAIL_POLICY = _MailPolicy(linesep="\r\n")


def message_id_for(scan_id: str, recipient: str, from_addr: str) -> str:
    """``<cleartext.SCAN.HASH@from-domain>``: the same for the same (scan, recipient), whatever the run."""
    digest = hashlib.sha256(f"{scan_id}\n{recipient.lower()}".encode()).hexdigest()[:32]
    domain = from_addr.rsplit("@", 1)[-1].lower()
    safe_scan = re.sub(r"[^A-Za-z0-9.-]", "-", scan_id)
    return f"<cleartext.{safe_scan}.{digest}@{domain}>"


def inert(value: object) -> str:
    """Control and invisible characters as ``\\xNN``/``\\uNNNN``: what a reader sees is what was sent."""
    text = "" if value is None else str(value)
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
    return "".join(out)


def wrap(value: object, width: int = 100, indent: str = "") -> str:
    """Plain-text paragraphs filled to ``width``; words (codes, addresses, commands) are never split."""
    lines = []
    for paragraph in str(value).split("\n"):
        filled = textwrap.wrap(paragraph, width, break_long_words=False, break_on_hyphens=False)
        lines.extend(filled or [""])
    return ("\n" + indent).join(lines)


def code_spans(value: str) -> Markup:
    """HTML for remediation text: each part escaped, `backticked` parts in <code> (our text, not servers')."""
    parts = str(value).split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: show the text as it is
        return Markup(escape(value))
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(dict(TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )
    env.filters["inert"] = inert
    env.filters["code_spans"] = code_spans
    env.filters["wrap"] = wrap
    return env


_ENV = _environment()


def _software_label(software: str | None) -> str | None:
    if not software:
        return None
    try:
        return display_name(Software(software))
    except ValueError:
        return inert(software)


def _greeting(record: Record) -> str | None:
    greeting = record.observation.greeting
    if not greeting:
        return None
    first = greeting.split("\\x0a", 1)[0]  # the record escapes line feeds; the first line says enough
    return first if len(first) <= MAX_GREETING else first[:MAX_GREETING] + "…"


def _title(code: str, lang: str) -> str:
    try:
        return finding_text(code, lang)[0]
    except ValueError:  # a code this version does not know (a newer scanner's record)
        return code


def _endpoint_order(item: Affected) -> tuple[int, int, str, int]:
    try:
        ip = ipaddress.ip_address(item.record.observation.address)
        return (ip.version, int(ip), "", item.record.observation.port)
    except ValueError:
        return (9, 0, item.record.observation.address, item.record.observation.port)


def context(plan: Planned, scan_id: str, scan_started: dt.datetime, operator: Operator, message_id: str,
            attachments: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """The template context: every number and list the message shows, in the recipient's language."""
    lang = plan.recipient.lang
    words = WORDS[lang]
    endpoints = sorted(plan.endpoints, key=_endpoint_order)
    worst: dict[str, Severity] = {}
    counts: dict[str, dict[str, int]] = {}
    # (code) -> (software label, protocol) -> [endpoint names], with the remedy to show.
    groups: dict[str, dict[tuple[str, str], tuple[Any, list[str]]]] = {}
    listed: list[dict[str, Any]] = []
    # Endpoints that fit no Shadowserver report type are in no attached CSV file: the message says which.
    outside: list[dict[str, Any]] = []
    unlisted_outside = 0
    for item in endpoints:
        obs = item.record.observation
        protocol = obs.protocol.value
        name = f"{obs.address}:{obs.port}"
        if not report_types(item.record):
            where = {"address": obs.address, "port": obs.port, "service": service(obs)}
            outside.append({**where, "status": obs.status.value})
            if len(listed) >= MAX_LISTED:
                unlisted_outside += 1
        codes_here: list[str] = []
        for finding in sorted(item.record.findings, key=lambda f: (-f.severity.rank, f.code)):
            if finding.code in codes_here:
                continue
            codes_here.append(finding.code)
            if finding.code not in worst or finding.severity.rank > worst[finding.code].rank:
                worst[finding.code] = finding.severity
            counts.setdefault(finding.code, dict.fromkeys(PROTOCOLS, 0))[protocol] += 1
            try:
                fix = remedy(finding.code, obs.software, Protocol(protocol))
            except ValueError:  # a code this version does not know (a newer scanner's record)
                continue
            entry = groups.setdefault(finding.code, {}).setdefault((fix.software, protocol), (fix, []))
            entry[1].append(name)
        if len(listed) < MAX_LISTED:
            listed.append(
                {
                    "address": obs.address,
                    "port": obs.port,
                    "service": service(obs),
                    "hostname": obs.hostname,
                    "software": _software_label(obs.software),
                    "findings": [
                        f"{f.code} ({words[f.severity.value]})"
                        for f in sorted(item.record.findings, key=lambda f: (-f.severity.rank, f.code))
                    ],
                    "greeting": _greeting(item.record),
                }
            )
    order = sorted(worst, key=lambda c: (-worst[c].rank, c))
    summary = [
        {
            "code": code,
            "title": _title(code, lang),
            "severity": words[worst[code].value],
            **counts[code],
            "total": sum(counts[code].values()),
        }
        for code in order
    ]
    findings = []
    for code in order:
        if code not in groups:
            continue
        title, description, risk = finding_text(code, lang)
        findings.append(
            {
                "code": code,
                "title": title,
                "description": description,
                "risk": risk,
                "severity": words[worst[code].value],
                "groups": [
                    {
                        "software": words["generic"] if software == GENERIC else software,
                        "protocol": protocol,
                        "endpoints": names[:MAX_GROUP_LISTED],
                        "more": max(0, len(names) - MAX_GROUP_LISTED),
                        "steps": list(fix.steps),
                        "config": fix.config.rstrip("\n") if fix.config else None,
                        "references": list(fix.references),
                    }
                    for (software, protocol), (fix, names) in sorted(groups[code].items())
                ],
            }
        )
    if plan.source == "abuse-contact":
        reasons = words["abuse-contact"]
        why = (
            "your address is listed as the abuse contact of these addresses (public registration data or "
            "the sender's own contact list)"
            if lang == "en"
            else "votre adresse est indiquée comme contact abuse de ces adresses (données d'enregistrement "
            "publiques ou liste de contacts de l'expéditeur)"
        )
    else:
        reasons = ", ".join(plan.reasons)
        why = (
            f"you subscribed to notifications for {reasons}"
            if lang == "en"
            else f"vous êtes abonné(e) aux notifications pour {reasons}"
        )
    return {
        "lang": lang,
        "recipient": plan.recipient,
        "operator": operator,
        "scan": {"id": scan_id, "date": scan_started.strftime("%Y-%m-%d %H:%M UTC")},
        "total": len(endpoints),
        "reasons": reasons,
        "why": why,
        "summary": summary,
        "endpoints": listed,
        "more": max(0, len(endpoints) - len(listed)),
        "more_outside": unlisted_outside,  # of "more", how many are in no CSV file either
        "outside": outside[:MAX_LISTED],
        "outside_more": max(0, len(outside) - MAX_LISTED),
        "findings": findings,
        "attachments": list(attachments),
        "message_id": message_id,
        "subject": subject(plan, scan_id, operator),
    }


def subject(plan: Planned, scan_id: str, operator: Operator) -> str:
    template = WORDS[plan.recipient.lang]["subject"]
    return template.format(operator=operator.name, count=len(plan.endpoints), scan=scan_id)


def csv_attachments(plan: Planned) -> list[tuple[str, bytes]]:
    """The recipient's endpoints as Shadowserver CSV files: (file name, content), sorted by name."""
    with tempfile.TemporaryDirectory(prefix="cleartext-notify-") as tmp:
        written = write_reports(((a.record, a.attribution) for a in plan.endpoints), Path(tmp), plan.split_by)
        return [(path.name, path.read_bytes()) for path in sorted(written)]


def build_message(
    plan: Planned,
    *,
    scan_id: str,
    scan_started: dt.datetime,
    operator: Operator,
    message_id: str,
    date: dt.datetime | None = None,
) -> EmailMessage:
    """The whole message: headers, text and HTML alternatives, CSV attachments."""
    attachments = csv_attachments(plan)
    ctx = context(plan, scan_id, scan_started, operator, message_id, [name for name, _ in attachments])
    lang = plan.recipient.lang
    text = _ENV.get_template(f"{lang}.txt").render(ctx)
    html = _ENV.get_template(f"{lang}.html").render(ctx)
    msg = EmailMessage()
    msg["From"] = Address(display_name=operator.name, addr_spec=operator.from_addr)
    msg["To"] = Address(display_name=plan.recipient.name or "", addr_spec=plan.recipient.email)
    msg["Subject"] = ctx["subject"]
    msg["Date"] = format_datetime(date or dt.datetime.now(dt.UTC))
    msg["Message-ID"] = message_id
    msg["Reply-To"] = operator.contact
    # RFC 3834: an automatic message; vacation responders and ticket systems should not answer it.
    msg["Auto-Submitted"] = "auto-generated"
    msg["List-Unsubscribe"] = f"<mailto:{operator.contact}?subject=unsubscribe>"
    msg["X-Cleartext-Scan"] = scan_id
    msg.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    msg.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    for name, data in attachments:
        msg.add_attachment(data, maintype="text", subtype="csv", filename=name)
    msg["Content-Language"] = lang  # last: set_content and add_attachment move or drop Content-* headers
    return msg
