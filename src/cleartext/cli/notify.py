"""Notification commands: `cleartext subscribe`, `unsubscribe`, `subscriptions`, `notify`, `notifications`.

Like every cleartext command, bad input is one line on stderr and exit status 2 with nothing done: an invalid
address, a malformed prefix, an unknown country code, an SMTP relay without TLS (nothing is sent).

The notify package (and with it Jinja2, the store drivers) is imported inside the commands: this module
is imported by every `cleartext` invocation, and `cleartext scan` should not start slower.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cleartext.cli._options import (
    EXIT_FINDINGS,
    CaFileOpt,
    ContactsOpt,
    CountrySourceOpt,
    DataDirOpt,
    EhloOpt,
    IptoasnOpt,
    JsonOpt,
    MmdbOpt,
    RirOpt,
    RpslOpt,
    ScanIdOpt,
    StoreOpt,
    attribution_files,
    attributor,
    check_ca_files,
    country_source,
    fail,
    lookup_of,
    open_store,
)

if TYPE_CHECKING:
    from cleartext.notify.ledger import LedgerRow, NotifyStore
    from cleartext.store import Store
AsnOpt = Annotated[list[str] | None, typer.Option("--asn", metavar="N", help="An AS number (repeatable).")]
CidrOpt = Annotated[
    list[str] | None, typer.Option("--cidr", metavar="PREFIX", help="An IPv4/IPv6 prefix (repeatable).")
]
CountryOpt = Annotated[
    list[str] | None,
    typer.Option("--country", metavar="CC", help="An ISO 3166-1 alpha-2 country code (repeatable)."),
]


def _open(url: str | None, *, create: bool) -> tuple[Store, NotifyStore]:
    """The store and its notification tables (created on first use)."""
    from cleartext.notify.ledger import NotifyStore

    store = open_store(url, create=create)
    try:
        return store, NotifyStore(store)
    except BaseException:
        store.close()
        raise


def _selectors(
    asn: list[str] | None, cidr: list[str] | None, country: list[str] | None
) -> list[tuple[str, str]]:
    from cleartext.notify.subscriptions import parse_selector

    out: list[tuple[str, str]] = []
    for kind, values in (("asn", asn), ("cidr", cidr), ("country", country)):
        for value in values or []:
            selector = parse_selector(kind, value)
            if selector not in out:
                out.append(selector)
    return out


def _email(text: str) -> str:
    from cleartext.notify.subscriptions import check_email

    return check_email(text)


def subscribe(
    email: Annotated[str, typer.Argument(help="The recipient's e-mail address.")],
    asn: AsnOpt = None,
    cidr: CidrOpt = None,
    country: CountryOpt = None,
    lang: Annotated[
        str | None, typer.Option("--lang", help="Language of the messages: en or fr (default en).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Name used in the greeting and To: header.")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Subscribe a recipient to notifications about ASNs, prefixes or whole countries."""
    from cleartext.notify.subscriptions import Recipient, check_lang, check_name, describe

    address = _email(email)
    selectors = _selectors(asn, cidr, country)
    if not selectors:
        fail("nothing to subscribe to: give --asn, --cidr or --country")
    language = check_lang(lang) if lang is not None else "en"
    display = check_name(name)
    st, ns = _open(store, create=True)
    with st:
        added = ns.subscribe(Recipient(address, language, display), selectors, keep_lang=lang is None)
    print(f"{address}: {added} new subscription(s) ({describe(selectors)})")


def unsubscribe(
    email: Annotated[str, typer.Argument(help="The recipient's e-mail address.")],
    asn: AsnOpt = None,
    cidr: CidrOpt = None,
    country: CountryOpt = None,
    store: StoreOpt = None,
) -> None:
    """Remove subscriptions; with no --asn/--cidr/--country, remove the address and opt it out entirely."""
    address = _email(email)
    selectors = _selectors(asn, cidr, country)
    st, ns = _open(store, create=True)
    with st:
        removed = ns.unsubscribe(address, selectors or None)
    if selectors:
        print(f"{address}: {removed} subscription(s) removed")
    else:
        print(f"{address}: {removed} subscription(s) removed; opted out (never written to again)")


def subscriptions(
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List recipients, what each subscribes to, and the addresses that opted out."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    st, ns = _open(store, create=False)
    with st:
        recipients = ns.recipients()
        subs = ns.subscriptions()
        optouts = sorted(ns.optouts())
    by_email: dict[str, list[str]] = {}
    for sub in subs:
        by_email.setdefault(sub.email, []).append(sub.label)
    if as_json:
        for address, recipient in recipients.items():
            row = {"email": address, "lang": recipient.lang, "name": recipient.name}
            print(json.dumps({**row, "subscriptions": by_email.get(address, [])}, sort_keys=True))
        for address in optouts:
            print(json.dumps({"email": address, "opted_out": True}, sort_keys=True))
        return
    table = Table(title="subscriptions", title_justify="left")
    for column in ("email", "lang", "name", "subscribed to"):
        table.add_column(column)
    for address, recipient in recipients.items():
        table.add_row(
            Text(address),
            Text(recipient.lang),
            Text(recipient.name or ""),
            Text(", ".join(by_email.get(address, []))),
        )
    for address in optouts:
        table.add_row(Text(address), Text(""), Text(""), Text("(opted out)"))
    Console(highlight=False, file=sys.stdout).print(table)


def notify(
    scan: ScanIdOpt = None,
    store: StoreOpt = None,
    dry_run: Annotated[
        Path | None,
        typer.Option(
            "--dry-run", metavar="DIR", help="Write the messages (.eml) into DIR instead of sending."
        ),
    ] = None,
    mmdb: MmdbOpt = None,
    iptoasn: IptoasnOpt = None,
    rir: RirOpt = None,
    rpsl: RpslOpt = None,
    contacts: ContactsOpt = None,
    data_dir: DataDirOpt = None,
    country: CountrySourceOpt = "geo",
    abuse_contacts: Annotated[
        bool,
        typer.Option(
            "--abuse-contacts", help="Write to the abuse contact of endpoints nobody subscribed to."
        ),
    ] = False,
    abuse_lang: Annotated[
        str, typer.Option("--abuse-lang", help="Language for abuse contacts: en or fr.")
    ] = "en",
    smtp_host: Annotated[str | None, typer.Option("--smtp-host", help="The operator's SMTP relay.")] = None,
    smtp_port: Annotated[
        int | None,
        typer.Option("--smtp-port", help="Default 587 (starttls) or 465 (implicit).", min=1, max=65535),
    ] = None,
    smtp_user: Annotated[
        str | None, typer.Option("--smtp-user", help="Log in as this user (inside TLS).")
    ] = None,
    smtp_password_file: Annotated[
        Path | None, typer.Option("--smtp-password-file", help="File holding the password (first line).")
    ] = None,
    tls: Annotated[str, typer.Option("--tls", help="starttls (default) or implicit.")] = "starttls",
    ca_file: CaFileOpt = None,
    insecure_skip_verify: Annotated[
        bool,
        typer.Option("--insecure-skip-verify", help="Do not verify the relay's certificate (still TLS)."),
    ] = False,
    smtp_timeout: Annotated[
        float, typer.Option("--smtp-timeout", help="Seconds to wait for each SMTP reply.", min=1)
    ] = 30.0,
    ehlo_name: EhloOpt = None,
    from_addr: Annotated[str | None, typer.Option("--from", help="Sender address (From:).")] = None,
    contact: Annotated[
        str | None, typer.Option("--contact", help="Where replies and opt-outs go (default: --from).")
    ] = None,
    operator_name: Annotated[
        str, typer.Option("--operator", help="Who is writing, as shown to readers.")
    ] = "cleartext scanner",
    rate_per_run: Annotated[
        int, typer.Option("--rate-per-run", help="Messages at most per run.", min=1)
    ] = 1000,
    rate_per_domain: Annotated[
        int, typer.Option("--rate-per-domain", help="Messages at most per recipient domain per run.", min=1)
    ] = 100,
    retry_base: Annotated[
        float, typer.Option("--retry-base", help="Seconds before the first retry of a 4xx (doubles).", min=0)
    ] = 600.0,
    max_attempts: Annotated[
        int,
        typer.Option("--max-attempts", help="Attempts before a temporary failure is final.", min=1, max=50),
    ] = 5,
    resend_uncertain: Annotated[
        list[str] | None,
        typer.Option(
            "--resend-uncertain",
            metavar="RECIPIENT",
            help="Send again this recipient's assumed-sent message (repeatable; 'all': every one).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Notify owners by e-mail: one message per recipient per scan, over TLS, exactly once.

    The scan is the newest unless --scan names another.
    """
    from cleartext.notify.compose import Operator
    from cleartext.notify.run import NotifyOptions, Outcome, run
    from cleartext.notify.smtp import DEFAULT_PORTS, TLS_MODES, Relay, SmtpSettings
    from cleartext.notify.subscriptions import SubscriptionError, check_email, check_lang, check_name

    if tls not in TLS_MODES:
        fail(f"unknown --tls {tls!r}: expected starttls or implicit")
    source = country_source(country)
    resends: list[str] = []
    for value in resend_uncertain or []:
        if value.strip().lower() == "all":
            resends.append("all")
            continue
        try:
            resends.append(check_email(value))
        except SubscriptionError as exc:
            fail(str(exc).replace("e-mail address", "--resend-uncertain address"))
    try:
        abuse_language = check_lang(abuse_lang)
        name = check_name(operator_name) or "cleartext scanner"
        sender = check_email(from_addr) if from_addr else None
        reply_to = check_email(contact) if contact else sender
    except SubscriptionError as exc:
        fail(str(exc).replace("e-mail address", "--from/--contact address"))
    if dry_run is None:
        if smtp_host is None:
            fail("--smtp-host is needed to send (or --dry-run DIR to write the messages instead)")
        smtp_host = smtp_host.strip()
        if not smtp_host:
            fail("--smtp-host is empty: give the SMTP relay's host name or address")
        if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", smtp_host):
            fail(f"invalid --smtp-host {smtp_host!r}: expected a host name or an IP address")
        if sender is None:
            fail("--from is needed to send")
    if sender is None:
        sender = "cleartext@example.invalid"
    if reply_to is None:
        reply_to = sender
    if dry_run is not None and dry_run.exists() and not dry_run.is_dir():
        fail(f"--dry-run {dry_run} is not a directory")
    check_ca_files(ca_file)
    password: str | None = None
    if smtp_password_file is not None:
        try:
            lines = smtp_password_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            fail(f"cannot read --smtp-password-file {smtp_password_file}: {reason}")
        password = lines[0] if lines else ""
        if smtp_user is None:
            fail("--smtp-password-file needs --smtp-user")
    relay: Relay | None = None
    if dry_run is None:
        assert smtp_host is not None
        settings = SmtpSettings(
            host=smtp_host,
            port=smtp_port or DEFAULT_PORTS[tls],
            tls=tls,
            user=smtp_user,
            password=password,
            ca_files=tuple(ca_file or ()),
            insecure_skip_verify=insecure_skip_verify,
            timeout=smtp_timeout,
            ehlo_name=ehlo_name,
        )
        try:
            relay = Relay(settings)
        except (OSError, ValueError) as exc:  # an unreadable or malformed CA file
            fail(f"cannot load CA files: {exc}")
    files = attribution_files(data_dir, mmdb=mmdb, iptoasn=iptoasn, rir=rir, rpsl=rpsl, contacts=contacts)
    lookup = lookup_of(attributor(files))
    options = NotifyOptions(
        scan_id=scan,
        dry_run=dry_run,
        abuse_contacts=abuse_contacts,
        abuse_lang=abuse_language,
        country_source=source,
        rate_per_run=rate_per_run,
        rate_per_domain=rate_per_domain,
        retry_base_s=retry_base,
        max_attempts=max_attempts,
        resend_uncertain=tuple(dict.fromkeys(resends)),
    )
    operator = Operator(name=name, from_addr=sender, contact=reply_to)

    def show(outcome: Outcome) -> None:
        if not as_json:
            print(f"{outcome.state}\t{outcome.recipient}\t{outcome.detail}", flush=True)

    def reconciled(row: LedgerRow, state: str) -> None:
        line = f"cleartext: reconciled {row.recipient} (scan {row.scan_id}): {row.state} -> {state}"
        print(line, file=sys.stderr, flush=True)

    st, _ = _open(store, create=False)
    with st:
        try:
            report = run(st, options, lookup, operator, relay, on_outcome=show, on_reconciled=reconciled)
        except OSError as exc:  # the dry-run directory
            fail(f"cannot write messages: {exc.strerror or exc}")
    for contact_text in report.skipped_contacts:
        print(f"cleartext: skipped abuse contact {contact_text!r}: not an e-mail address", file=sys.stderr)
    if as_json:
        print(json.dumps(report.to_dict(), sort_keys=True))
    if report.fatal:
        print(f"cleartext: error: {report.fatal}", file=sys.stderr)
    print(report.summary(), file=sys.stderr)
    if report.failed:
        raise typer.Exit(EXIT_FINDINGS)


def notifications(
    scan: ScanIdOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The notification ledger: every message, its state, attempts, last error (of one scan with --scan)."""
    st, ns = _open(store, create=False)
    with st:
        rows = ns.ledger(st.resolve_scan(scan) if scan is not None else None)
    if as_json:
        for row in rows:
            print(json.dumps(row.to_dict(), sort_keys=True))
        return
    sys.stdout.write(render_ledger(rows, shutil.get_terminal_size((80, 24)).columns))


def render_ledger(rows: Sequence[LedgerRow], width: int) -> str:
    """The ledger as text that reads at 80 columns: per scan, one line per message (state, recipient,
    attempts, endpoints, next attempt), and its last error wrapped on indented lines below it.

    A seven-column table squeezed every column into a few characters at 80 columns. The relay's words
    (last_error) are server text: control characters are escaped before they reach the terminal.
    """
    from cleartext.text import sanitize

    width = max(40, width)
    if not rows:
        return "no notifications\n"
    state_w = max(len(r.state) for r in rows)
    mail_w = min(max(len(r.recipient) for r in rows), 40)
    out: list[str] = []
    scan = None
    for row in rows:
        if row.scan_id != scan:
            scan = row.scan_id
            out.append(f"{'' if not out else chr(10)}scan {sanitize(scan, 100)}")
        facts = [
            f"{row.attempts} attempt{'s' if row.attempts != 1 else ''}",
            f"{row.endpoints} endpoint{'s' if row.endpoints != 1 else ''}",
        ]
        if row.next_attempt_at is not None and row.state == "failed-temporary":
            facts.append("next " + row.next_attempt_at.strftime("%Y-%m-%d %H:%MZ"))
        line = f"  {row.state:<{state_w}}  {row.recipient:<{mail_w}}  {', '.join(facts)}"
        if len(line) > width:  # a long address: the facts go on a line of their own
            out.append(f"  {row.state:<{state_w}}  {row.recipient}")
            line = " " * (state_w + 4) + ", ".join(facts)
        out.append(line)
        if row.last_error:
            indent = " " * (state_w + 4)
            text = sanitize(row.last_error, 1000)
            out.extend(textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent))
    return "\n".join(out) + "\n"
