"""Unit tests for notifications: input validation, matching, the ledger's states on a real DuckDB store,
the journal, the message (structure, both languages, escaping, attachments), rate limits and backoff."""

from __future__ import annotations

import csv
import datetime as dt
import email
import email.policy
import io
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from cleartext.enrich.model import Attribution
from cleartext.notify.compose import (
    MAIL_POLICY,
    Affected,
    Operator,
    Planned,
    build_message,
    inert,
    message_id_for,
)
from cleartext.notify.ledger import Journal, NewMessage, NotifyStore, journal_path
from cleartext.notify.run import _limit, backoff
from cleartext.notify.subscriptions import (
    COUNTRIES,
    Matcher,
    Recipient,
    Subscription,
    SubscriptionError,
    check_email,
    check_lang,
    check_name,
    country_of,
    parse_selector,
)
from cleartext.record import Record, Severity, Status
from cleartext.report.shadowserver_schema import COLUMNS
from cleartext.store import StoreError, open_store
from tests.store_contract import make_record

# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("abuse@example.net", "abuse@example.net"),
        ("  Abuse@Example.NET ", "abuse@example.net"),
        ("first.last+cert@mail.example.co.uk", "first.last+cert@mail.example.co.uk"),
        ("o'brien@xn--bcher-kva.example", "o'brien@xn--bcher-kva.example"),
    ],
)
def test_valid_addresses(text: str, canonical: str) -> None:
    assert check_email(text) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abuse",
        "abuse@",
        "@example.net",
        "abuse@localhost",  # one label: not a deliverable domain
        "abuse@[192.0.2.1]",
        "abuse@192.0.2.1",
        "a b@example.net",
        "abuse@example.net\r\nBcc: x@evil.example",  # header injection
        "ab..use@example.net",
        ".abuse@example.net",
        "abuse@-example.net",
        "abusé@example.net",  # no SMTPUTF8
        '"quoted"@example.net',
        "abuse@example.net,other@example.net",
        "x" * 65 + "@example.net",
    ],
)
def test_invalid_addresses(text: str) -> None:
    with pytest.raises(SubscriptionError) as info:
        check_email(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("asn", "64500", ("asn", "64500")),
        ("asn", "AS64500", ("asn", "64500")),
        ("asn", "as4200000000", ("asn", "4200000000")),
        ("cidr", "192.0.2.0/24", ("cidr", "192.0.2.0/24")),
        ("cidr", "2001:DB8::/32", ("cidr", "2001:db8::/32")),
        ("cidr", "192.0.2.7/32", ("cidr", "192.0.2.7/32")),
        ("country", "fr", ("country", "FR")),
        ("country", " NL ", ("country", "NL")),
        ("country", "XK", ("country", "XK")),
    ],
)
def test_selectors(kind: str, text: str, expected: tuple[str, str]) -> None:
    assert parse_selector(kind, text) == expected


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("asn", "0", "invalid AS number"),
        ("asn", "4294967296", "invalid AS number"),
        ("asn", "AS-FOO", "invalid AS number"),
        ("cidr", "192.0.2.0/33", "invalid CIDR"),
        ("cidr", "192.0.2.1/24", "host bits set (did you mean 192.0.2.0/24?)"),
        ("cidr", "192.0.2.0", "no prefix length"),
        ("cidr", "not-a-prefix", "invalid CIDR"),
        ("cidr", "192.0.2.0/24/8", "invalid CIDR"),
        ("country", "ZZ", "unknown country code"),
        ("country", "FRA", "unknown country code"),
        ("country", "UK", "unknown country code"),  # GB is the code
        ("country", "", "unknown country code"),
    ],
)
def test_bad_selectors(kind: str, text: str, message: str) -> None:
    with pytest.raises(
        SubscriptionError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        parse_selector(kind, text)


def test_countries_are_iso_3166_alpha_2() -> None:
    assert len(COUNTRIES) == 250  # the 249 assigned codes and XK
    assert (
        {"FR", "DE", "NL", "GB", "US", "XK"} <= COUNTRIES and "UK" not in COUNTRIES and "EU" not in COUNTRIES
    )


def test_lang_and_name() -> None:
    assert check_lang("FR") == "fr" and check_lang("en") == "en"
    with pytest.raises(SubscriptionError, match="unknown language"):
        check_lang("de")
    assert check_name("  CERT-FR  ") == "CERT-FR" and check_name("") is None and check_name(None) is None
    for bad in ("a\nb", "x\u202ey", "z" * 201):
        with pytest.raises(SubscriptionError):
            check_name(bad)


# --- matching ---------------------------------------------------------------------------------------


def test_matcher_by_asn_prefix_and_country() -> None:
    matcher = Matcher(
        [
            Subscription("isp@a.example", "asn", "64500"),
            Subscription("uni@b.example", "cidr", "192.0.2.128/25"),
            Subscription("v6@b.example", "cidr", "2001:db8::/32"),
            Subscription("cert@fr.example", "country", "FR"),
        ]
    )
    fr = Attribution(asn=64500, country="FR")
    assert matcher.match("192.0.2.10", fr) == {"isp@a.example": ["AS64500"], "cert@fr.example": ["FR"]}
    assert matcher.match("192.0.2.200", Attribution()) == {"uni@b.example": ["192.0.2.128/25"]}
    assert matcher.match("2001:db8::25", Attribution(asn=64999)) == {"v6@b.example": ["2001:db8::/32"]}
    assert matcher.match("198.51.100.1", Attribution(asn=64501, country="DE")) == {}


def test_country_source_and_fallback() -> None:
    both = Attribution(country="FR", registry_country="DE")
    assert country_of(both, "geo") == "FR" and country_of(both, "registry") == "DE"
    # Only RIR data (no geolocation): a CERT still hears about its country's registrants, and vice versa.
    assert country_of(Attribution(registry_country="NL"), "geo") == "NL"
    assert country_of(Attribution(country="nl"), "registry") == "NL"
    assert country_of(Attribution(), "geo") is None


# --- the tables, on a real DuckDB store -------------------------------------------------------------


@pytest.fixture
def ns(tmp_path: Path) -> NotifyStore:
    store = open_store(str(tmp_path / "store.duckdb"))
    return NotifyStore(store)


def test_subscribe_and_unsubscribe(ns: NotifyStore) -> None:
    added = ns.subscribe(Recipient("cert@fr.example", "fr", "CERT-FR"), [("country", "FR"), ("asn", "64500")])
    assert added == 2
    assert ns.subscribe(Recipient("cert@fr.example", "en", None), [("country", "FR")], keep_lang=True) == 0
    assert ns.recipients()["cert@fr.example"] == Recipient("cert@fr.example", "fr", "CERT-FR")
    ns.subscribe(Recipient("cert@fr.example", "en", None), [])  # --lang given: changes the language
    assert ns.recipients()["cert@fr.example"].lang == "en"
    assert ns.unsubscribe("cert@fr.example", [("asn", "64500")]) == 1
    assert [s.label for s in ns.subscriptions()] == ["FR"] and not ns.optouts()
    assert ns.unsubscribe("cert@fr.example", [("country", "FR")]) == 1
    assert ns.recipients() == {} and not ns.optouts()  # asked for less, not for nothing
    # Without selectors: gone entirely and opted out (also as an abuse contact) ...
    ns.subscribe(Recipient("noc@b.example"), [("asn", "64501")])
    assert ns.unsubscribe("noc@b.example") == 1
    assert ns.optouts() == {"noc@b.example"} and ns.subscriptions() == []
    assert ns.unsubscribe("noc@b.example") == 0  # idempotent
    # ... until they subscribe again, which is consent.
    ns.subscribe(Recipient("noc@b.example"), [("asn", "64501")])
    assert ns.optouts() == set()


def test_tables_survive_reopening_and_newer_versions_are_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "store.duckdb")
    with open_store(path) as store:
        NotifyStore(store).subscribe(Recipient("a@a.example"), [("asn", "1")])
    with open_store(path) as store:
        assert [s.email for s in NotifyStore(store).subscriptions()] == ["a@a.example"]
        store._execute("UPDATE meta SET value = '99' WHERE key = 'notify_schema_version'")
    with open_store(path) as store, pytest.raises(StoreError, match="upgrade cleartext"):
        NotifyStore(store)


def _new(ns: NotifyStore, *recipients: str, scan: str = "S1") -> None:
    ns.add(scan, [NewMessage(r, f"<{r}>", "en", "subscription", 1) for r in recipients])


def test_ledger_claim_mark_and_retry_time(ns: NotifyStore) -> None:
    _new(ns, "a@a.example", "b@b.example")
    _new(ns, "a@a.example")  # already there: unchanged
    assert [r.state for r in ns.ledger("S1")] == ["pending", "pending"]
    row = ns.claim("S1", "a@a.example")
    assert row is not None and row.state == "sending" and row.attempts == 1
    assert ns.claim("S1", "a@a.example") is None  # claimed: not due
    ns.mark("S1", "a@a.example", "sent", code=250)
    done = ns.row("S1", "a@a.example")
    assert done is not None and done.state == "sent" and done.sent_at is not None
    assert ns.claim("S1", "a@a.example") is None  # sent: never again
    assert ns.claim("S1", "a@a.example", resend_uncertain=True) is None  # only assumed-sent rows
    # A temporary failure waits for its time.
    ns.claim("S1", "b@b.example")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    ns.mark("S1", "b@b.example", "failed-temporary", code=451, error="451 later", next_attempt_at=later)
    assert ns.claim("S1", "b@b.example") is None
    ns.mark(
        "S1",
        "b@b.example",
        "failed-temporary",
        next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
    )
    again = ns.claim("S1", "b@b.example")
    assert again is not None and again.attempts == 2


def test_reconcile_uses_the_journal(ns: NotifyStore, tmp_path: Path) -> None:
    """A dead run's `sending` rows: with a journal mark of that attempt, assumed sent; else due again."""
    _new(ns, "before-dot@a.example", "after-dot@a.example", "old-mark@a.example", "sent@a.example")
    journal = Journal(tmp_path / "journal")
    for mail in ("before-dot@a.example", "after-dot@a.example", "old-mark@a.example", "sent@a.example"):
        ns.claim("S1", mail)
    ns.mark("S1", "sent@a.example", "sent")
    journal.mark("S1", "after-dot@a.example", 1)
    journal.mark("S1", "old-mark@a.example", 7)  # a mark of another attempt says nothing about this one
    with journal.path.open("a") as handle:
        handle.write("S1\ttorn@a.exa")  # a line cut by the kill: ignored
    settled = {row.recipient: state for row, state in ns.reconcile(journal)}
    assert settled == {
        "before-dot@a.example": "pending",
        "after-dot@a.example": "assumed-sent",
        "old-mark@a.example": "pending",
    }
    states = {r.recipient: r.state for r in ns.ledger("S1")}
    assert states["sent@a.example"] == "sent" and states["after-dot@a.example"] == "assumed-sent"
    assert not journal.path.exists()  # settled: emptied
    assert ns.reconcile(journal) == []
    assert ns.claim("S1", "after-dot@a.example") is None
    assert ns.claim("S1", "after-dot@a.example", resend_uncertain=True) is not None


def test_journal_path(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "r.duckdb")) as store:
        assert journal_path(store) == tmp_path / "r.duckdb.notify-journal"


# --- the message ------------------------------------------------------------------------------------

OPERATOR = Operator(name="CERT Example", from_addr="notify@cert.example", contact="optout@cert.example")
HOSTILE = "220 <img src=x onerror=alert(1)> \u202egnp.exe ESMTP"


def _plan(lang: str) -> Planned:
    login = make_record("192.0.2.10", 143, ("cleartext-login", "cert-expired"), software="dovecot")
    hostile = make_record(
        "192.0.2.11", 25, ("no-tls",), software="postfix", greeting=HOSTILE, hostname="=1+2"
    )
    hostile.findings[0].severity = Severity.MEDIUM
    attribution = Attribution(asn=64500, country="FR")
    return Planned(
        Recipient("ops@a.example", lang, "Ops <A>"),
        "subscription",
        ["AS64500"],
        [Affected(login, attribution), Affected(hostile, attribution)],
    )


def _build(lang: str) -> EmailMessage:
    msg = build_message(
        _plan(lang),
        scan_id="20261128T081500Z-3f9a",
        scan_started=dt.datetime(2026, 11, 28, 8, 15, tzinfo=dt.UTC),
        operator=OPERATOR,
        message_id=message_id_for("20261128T081500Z-3f9a", "ops@a.example", OPERATOR.from_addr),
    )
    parsed = email.message_from_bytes(msg.as_bytes(policy=email.policy.SMTP), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_message_structure(lang: str) -> None:
    msg = _build(lang)
    assert msg.get_content_type() == "multipart/mixed"
    alternative = next(p for p in msg.walk() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    assert msg["To"].addresses[0].addr_spec == "ops@a.example"
    assert msg["To"].addresses[0].display_name == "Ops <A>"
    assert msg["Message-ID"] == message_id_for("20261128T081500Z-3f9a", "OPS@a.example", "x@cert.example")
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["List-Unsubscribe"] == "<mailto:optout@cert.example?subject=unsubscribe>"
    assert msg["Content-Language"] == lang
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert set(files) == {
        "2026-11-28-scan_imap-AS64500.csv",
        "2026-11-28-scan_imap_vulnerable-AS64500.csv",
        "2026-11-28-scan_smtp-AS64500.csv",
    }
    for name, data in files.items():
        rows = list(csv.reader(io.StringIO(data.decode() if isinstance(data, bytes) else data)))
        report_type = name.split("-")[3]
        assert tuple(rows[0]) == COLUMNS[report_type]
        assert len(rows) == 2


def test_english_and_french_words() -> None:
    en = _build("en")
    text = en.get_body(("plain",)).get_content()
    assert en["Subject"] == "[CERT Example] 2 mail server endpoint(s) to secure (scan 20261128T081500Z-3f9a)"
    assert text.startswith("Hello Ops <A>,")
    assert "cleartext-login: Password accepted before encryption (severity high)" in text
    assert (
        "192.0.2.10 port 143 (imap, mail.example), Dovecot: cleartext-login (high), cert-expired (medium)"
        in text
    )
    assert "disable_plaintext_auth = yes" in text  # the Dovecot fix, not the generic one
    assert "smtpd_tls_security_level = may" in text  # the Postfix fix for no-tls on 25
    assert "you subscribed to notifications for AS64500" in text
    assert 'reply to optout@cert.example with the word "unsubscribe"' in text
    fr = _build("fr")
    texte = " ".join(fr.get_body(("plain",)).get_content().split())  # no-break spaces before : and ;
    assert "point(s) d'accès de messagerie à sécuriser" in fr["Subject"]
    assert texte.startswith("Bonjour Ops <A>,") and "\u00a0: " in fr.get_body(("plain",)).get_content()
    assert "cleartext-login : Mot de passe accepté avant le chiffrement (gravité élevée)" in texte
    assert (
        "cert-expired (moyenne)" in texte and "Les étapes de correction ci-dessous sont en anglais" in texte
    )
    assert "vous êtes abonné(e) aux notifications pour AS64500" in texte
    assert "répondez à optout@cert.example" in texte
    html = fr.get_body(("html",)).get_content()
    assert '<html lang="fr">' in html and "Résumé" in html


@pytest.mark.parametrize("lang", ["en", "fr"])
def test_server_text_is_inert(lang: str) -> None:
    msg = _build(lang)
    html = msg.get_body(("html",)).get_content()
    text = msg.get_body(("plain",)).get_content()
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\u202e" not in html and "\u202e" not in text and "\\u202egnp.exe" in text
    assert "<script" not in html and "<style" not in html and "src=" not in html.replace("src=x", "")
    assert "Ops &lt;A&gt;" in html  # the subscriber's name is escaped too
    smtp_csv = next(p for p in msg.iter_attachments() if p.get_filename().endswith("scan_smtp-AS64500.csv"))
    content = smtp_csv.get_content()
    rows = list(csv.DictReader(io.StringIO(content.decode() if isinstance(content, bytes) else content)))
    assert rows[0]["hostname"] == "'=1+2"  # neutralised for spreadsheets


def test_inert_and_message_id() -> None:
    assert inert("a\x1b[31mb\u200bc\x00") == "a\\x1b[31mb\\u200bc\\x00"
    one = message_id_for("S", "a@a.example", "n@cert.example")
    assert one == message_id_for("S", "A@A.EXAMPLE", "other@cert.example")
    assert one != message_id_for("S2", "a@a.example", "n@cert.example")
    assert one.startswith("<cleartext.S.") and one.endswith("@cert.example>")


# --- rate limits and backoff ------------------------------------------------------------------------


def test_rate_limits_per_run_and_per_domain() -> None:
    due = ["a1@x.example", "a2@x.example", "a3@X.example", "b1@y.example", "c1@z.example", "c2@z.example"]
    chosen, deferred = _limit(due, per_run=4, per_domain=2)
    assert chosen == ["a1@x.example", "a2@x.example", "b1@y.example", "c1@z.example"]
    assert deferred == ["a3@X.example", "c2@z.example"]
    assert _limit(due, per_run=100, per_domain=1)[0] == ["a1@x.example", "b1@y.example", "c1@z.example"]


def test_backoff_doubles_and_is_bounded() -> None:
    assert [backoff(n, 60).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff(40, 600).total_seconds() == 24 * 3600


def test_every_finding_code_has_a_french_text() -> None:
    """A code added to the catalogue without a translation would reach French recipients in English."""
    from cleartext.findings import Code
    from cleartext.notify.templates import FR_FINDINGS

    assert set(FR_FINDINGS) == {code.value for code in Code}
    assert all(all(part.strip() for part in text) for text in FR_FINDINGS.values())


def _message(plan: Planned) -> EmailMessage:
    msg = build_message(
        plan,
        scan_id="20261128T081500Z-3f9a",
        scan_started=dt.datetime(2026, 11, 28, 8, 15, tzinfo=dt.UTC),
        operator=OPERATOR,
        message_id=message_id_for("20261128T081500Z-3f9a", plan.recipient.email, OPERATOR.from_addr),
    )
    parsed = email.message_from_bytes(msg.as_bytes(policy=MAIL_POLICY), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _silent_after_handshake(address: str) -> Record:
    """An implicit-TLS port whose handshake worked and that then said nothing: findings, no greeting."""
    record = make_record(address, 993, ("cert-expired", "cert-untrusted"))
    record.observation.status = Status.READ_TIMEOUT
    record.observation.greeting = None
    return record


@pytest.mark.parametrize("lang", ["en", "fr"])
@pytest.mark.parametrize("with_csv", [True, False])
def test_what_a_message_lists_it_attaches_or_says_why_not(lang: str, with_csv: bool) -> None:
    """Every endpoint the body lists is in an attached CSV file or named as not in one, with its status;
    a message without attachment does not speak of what its CSV files hold."""
    attribution = Attribution(asn=64500, country="FR")
    endpoints = [Affected(_silent_after_handshake("192.0.2.20"), attribution)]
    if with_csv:
        endpoints.append(Affected(make_record("192.0.2.10", 143, ("cleartext-login",)), attribution))
    plan = Planned(Recipient("ops@a.example", lang), "subscription", ["AS64500"], endpoints)
    msg = _message(plan)
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = msg.get_body(("html",)).get_content()
    in_csv = set()
    for part in msg.iter_attachments():
        data = part.get_content()
        rows = csv.DictReader(io.StringIO(data.decode() if isinstance(data, bytes) else data))
        in_csv |= {(row["ip"], row["port"]) for row in rows}
    listed = set(re.findall(r"^- (\S+) port (\d+) \(", text, re.MULTILINE))
    assert ("192.0.2.20", "993") in listed
    _, _, after = text.partition("PIÈCES JOINTES" if lang == "fr" else "ATTACHMENTS")
    outside = r"^- (\S+) port (\d+) \(\w+\)\u00a0?: (?:status|statut) read-timeout$"
    named = set(re.findall(outside, after, re.MULTILINE))
    assert listed <= in_csv | named, (listed, in_csv, named)
    assert named == {("192.0.2.20", "993")} and ("192.0.2.20", "993") not in in_csv
    assert "<code>192.0.2.20:993</code> (imaps)" in html
    if with_csv:
        assert in_csv == {("192.0.2.10", "143")}
        said = "1 of your endpoint(s) are not in" if lang == "en" else "1 de vos points d'accès ne figurent"
        assert said in text.replace("\n", " ")
    else:
        assert not list(msg.iter_attachments())
        assert "Shadowserver report format" not in text and "format des rapports Shadowserver" not in text
        assert ("Aucun fichier CSV n'est joint" if lang == "fr" else "No CSV file is attached") in text
