"""`cleartext notify` delivering to a real SMTP server on loopback: over TLS, to the right people, once.

The server is aiosmtpd with STARTTLS required and a certificate from a test CA (test_notify_smtpd.py);
the store is a DuckDB file seeded with records built here; attribution comes from real data files
(iptoasn, a country MMDB, a contacts CSV) written by the tests. Most runs go through the real CLI; the
retry and rate-limit tests drive :func:`cleartext.notify.run.run` in-process to stay fast, against the
same real server.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import email
import email.policy
import io
import json
import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from cleartext.enrich import Enricher
from cleartext.notify.compose import Operator
from cleartext.notify.ledger import LedgerRow, NotifyStore
from cleartext.notify.run import NotifyOptions, RunReport, run
from cleartext.notify.smtp import Relay, RelayError, SmtpSettings
from cleartext.notify.subscriptions import Recipient
from cleartext.report.shadowserver_schema import COLUMNS
from cleartext.store import open_store
from tests.conftest import run_cli
from tests.integration.test_notify_smtpd import (
    HOST,
    HOSTILE_GREETING,
    Attribution,
    Behaviour,
    Pki,
    Server,
    attribution_files,
    make_pki,
    seed_store,
    smtp_server,
)

OPERATOR = Operator("CERT Example", "notify@cert.example", "optout@cert.example")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Attribution:
    return attribution_files(tmp_path_factory.mktemp("attribution"))


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def flat(text: str) -> str:
    """Text with its line breaks and runs of spaces as single spaces: wrapping is not content."""
    return " ".join(text.split())


def notify_args(store: Path, server: Server, pki: Pki, data: Attribution, *extra: str) -> list[str]:
    return [
        "notify", "--store", str(store), *data.args(), "--smtp-host", HOST, "--smtp-port", str(server.port),
        "--ca-file", str(pki.ca), "--from", "notify@cert.example", "--contact", "optout@cert.example",
        "--operator", "CERT Example", *extra,
    ]  # fmt: skip


def notify_here(store: Path, server: Server, pki: Pki, data: Attribution, **options: object) -> RunReport:
    """One run in this process, against the same real server and store."""
    settings = SmtpSettings(host=HOST, port=server.port, tls=server.tls, ca_files=(pki.ca,), timeout=10)
    with Enricher.from_paths(**data.paths()) as enricher, open_store(str(store)) as st:
        return run(st, NotifyOptions(**options), enricher.lookup, OPERATOR, Relay(settings))  # type: ignore[arg-type]


def subscribe(store: Path, *subs: tuple[str, str, str, str]) -> None:
    """(email, lang, kind, value) subscriptions, straight into the store."""
    with open_store(str(store)) as st:
        ns = NotifyStore(st)
        for mail, lang, kind, value in subs:
            ns.subscribe(Recipient(mail, lang), [(kind, value)])


def _rows(store: Path) -> list[LedgerRow]:
    with open_store(str(store)) as st:
        return NotifyStore(st).ledger()


def ledger(store: Path) -> dict[str, dict[str, object]]:
    with open_store(str(store)) as st:
        return {row.recipient: row.to_dict() for row in NotifyStore(st).ledger()}


def test_delivers_over_tls_to_each_owner_once(tmp_path: Path, pki: Pki, data: Attribution) -> None:
    store = tmp_path / "store.duckdb"
    scan_id = seed_store(store)
    done = run_cli("subscribe", "cert@fr.example", "--country", "fr", "--lang", "fr", "--name", "CERT-FR",
                   "--store", str(store))  # fmt: skip
    assert done.returncode == 0, done.stderr
    subscribe(
        store, ("ops@a.example", "en", "asn", "64500"), ("net@b.example", "en", "cidr", "192.0.2.128/25")
    )
    with open_store(str(store)) as st:
        NotifyStore(st).subscribe(Recipient("ops@a.example", "en", "Ops A"), [])
    with smtp_server(pki) as server:
        first = run_cli(*notify_args(store, server, pki, data, "--abuse-contacts"), timeout=120)
        assert first.returncode == 0, first.stderr
        got = server.handler.received()
        # Run again: everything is done; nothing is sent twice.
        second = notify_here(store, server, pki, data, abuse_contacts=True)
        assert len(server.handler.received()) == len(got) and server.handler.mail_commands == len(got)
    assert second.already_done == 5 and second.outcomes == []
    assert first.stdout.count("sent\t") == 5 and "5 recipient(s); 5 sent" in first.stderr

    # Every message went over TLS (the server saw TLS before MAIL FROM), one per recipient.
    assert server.handler.mail_without_tls == 0
    assert all(m.tls_at_mail and m.tls_version in ("TLSv1.2", "TLSv1.3") for m in got)
    by_rcpt = {m.rcpt_tos[0]: parse(m.content) for m in got}
    assert sorted(m.rcpt_tos[0] for m in got) == [
        "abuse@d.example",  # 203.0.113.5: nobody subscribed; the contacts CSV's cidr row
        "cert@fr.example",  # everything in FR: 192.0.2.10, .11, .140
        "net@b.example",  # 192.0.2.140 only
        "noc@c.example",  # 198.51.100.20: nobody subscribed; the contacts CSV's asn row
        "ops@a.example",  # AS64500: 192.0.2.10 and .11
    ]
    assert all(len(m.rcpt_tos) == 1 and m.mail_from == "notify@cert.example" for m in got)

    ops = by_rcpt["ops@a.example"]
    assert ops["To"].addresses[0].display_name == "Ops A" and ops["From"].addresses[0].addr_spec == (
        "notify@cert.example"
    )
    text = flat(ops.get_body(("plain",)).get_content())
    assert f"(scan {scan_id})" in text and "3 endpoint(s)" in text and "(AS64500)" in text
    for endpoint in ("192.0.2.10 port 143", "192.0.2.10 port 110", "192.0.2.11 port 25"):
        assert endpoint in text
    for other in ("192.0.2.12", "192.0.2.140", "198.51.100", "203.0.113"):  # clean, or someone else's
        assert other not in text
    assert "cleartext-login (high)" in text and "disable_plaintext_auth = yes" in text
    assert "optout@cert.example" in text

    fr = by_rcpt["cert@fr.example"]
    texte = flat(fr.get_body(("plain",)).get_content())
    assert texte.startswith("Bonjour CERT-FR,") and "4 point(s) d'accès" in texte and "(FR)" in texte
    assert "Versions SSL/TLS obsolètes acceptées" in texte and "192.0.2.140 port 587" in texte
    html = fr.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    # The attachments: Shadowserver CSV, the schema's headers, only the recipient's endpoints.
    files = {p.get_filename(): p.get_content() for p in fr.iter_attachments()}
    assert files and all(name.endswith("-FR.csv") for name in files)
    ips: set[str] = set()
    for name, content in files.items():
        rows = list(csv.reader(io.StringIO(content if isinstance(content, str) else content.decode())))
        assert tuple(rows[0]) == COLUMNS[name.split("-")[3]]
        ips |= {dict(zip(rows[0], row, strict=True))["ip"] for row in rows[1:]}
        if "scan_smtp-" in name:
            banner = next(dict(zip(rows[0], r, strict=True))["banner"] for r in rows[1:] if "192.0.2.11" in r)
            assert banner == HOSTILE_GREETING.replace("\\x1b", "\\x1b")
    assert ips == {"192.0.2.10", "192.0.2.11", "192.0.2.140"}

    rows = ledger(store)
    assert {r["state"] for r in rows.values()} == {"sent"}
    assert rows["abuse@d.example"]["source"] == "abuse-contact" and rows["ops@a.example"]["attempts"] == 1
    assert rows["ops@a.example"]["message_id"] == ops["Message-ID"]


def test_implicit_tls(tmp_path: Path, pki: Pki, data: Attribution) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    subscribe(store, ("ops@a.example", "en", "asn", "64500"))
    with smtp_server(pki, "implicit") as server:
        report = notify_here(store, server, pki, data)
    assert [o.state for o in report.outcomes] == ["sent"]
    (got,) = server.handler.received()
    assert got.rcpt_tos == ["ops@a.example"] and got.tls_at_mail


def test_refuses_a_relay_without_starttls(tmp_path: Path, pki: Pki, data: Attribution) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    subscribe(store, ("ops@a.example", "en", "asn", "64500"))
    with smtp_server(None, "none") as server:
        done = run_cli(*notify_args(store, server, pki, data), timeout=60)
        assert server.handler.mail_commands == 0 and server.handler.received() == []
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "does not offer STARTTLS" in done.stderr
    assert "nothing sent" in done.stderr and done.stdout == ""
    # The ledger says why nothing went out: the message is pending, with the relay's refusal on it.
    rows = ledger(store)
    assert set(rows) == {"ops@a.example"}
    row = rows["ops@a.example"]
    assert row["state"] == "pending" and row["attempts"] == 0
    assert "nothing sent" in str(row["last_error"]) and "does not offer STARTTLS" in str(row["last_error"])
    listing = run_cli("notifications", "--store", str(store), env={"COLUMNS": "80"})
    assert listing.returncode == 0 and "does not offer STARTTLS" in flat(listing.stdout)


def test_certificate_is_verified(tmp_path: Path, pki: Pki, data: Attribution) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    subscribe(store, ("ops@a.example", "en", "asn", "64500"))
    with smtp_server(pki) as server:
        settings = SmtpSettings(host=HOST, port=server.port, ca_files=(pki.other_ca,), timeout=10)
        with Enricher.from_paths(**data.paths()) as enricher, open_store(str(store)) as st:
            with pytest.raises(RelayError, match=r"certificate .* not trusted"):
                run(st, NotifyOptions(), enricher.lookup, OPERATOR, Relay(settings))
            assert server.handler.mail_commands == 0
            (row,) = NotifyStore(st).ledger()
            assert row.state == "pending" and row.attempts == 0 and "not trusted" in str(row.last_error)
            insecure = SmtpSettings(host=HOST, port=server.port, insecure_skip_verify=True, timeout=10)
            report = run(st, NotifyOptions(), enricher.lookup, OPERATOR, Relay(insecure))
        assert [o.state for o in report.outcomes] == ["sent"]
        assert server.handler.received()[0].tls_at_mail  # unverified, but still encrypted


def test_temporary_failures_retried_with_backoff_permanent_recorded(
    tmp_path: Path, pki: Pki, data: Attribution
) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    subscribe(
        store,
        ("greylisted@a.example", "en", "asn", "64500"),  # 451 once, then accepted
        ("unknown@a.example", "en", "asn", "64500"),  # 550 at RCPT: permanent
        ("full@a.example", "en", "asn", "64500"),  # 452 at the end of data, always: gives up
        ("rejected@a.example", "en", "asn", "64500"),  # 554 at the end of data: permanent
        ("fine@a.example", "en", "asn", "64500"),
    )
    behaviour = Behaviour(
        rcpt_replies={"greylisted@a.example": ["451 4.7.1 greylisted, try again later"]},
        always_rcpt={"unknown@a.example": "550 5.1.1 no such user"},
        data_replies={
            "full@a.example": ["452 4.2.2 mailbox full"] * 5,
            "rejected@a.example": ["554 5.7.1 spam"],
        },
    )
    # The backoff is long enough for the second run to start before it ends, even on a loaded machine;
    # the third run waits for the retry time the ledger recorded.
    options = {"retry_base_s": 3.0, "max_attempts": 2}
    with smtp_server(pki, behaviour=behaviour) as server:
        first = notify_here(store, server, pki, data, **options)
        states = {o.recipient: o.state for o in first.outcomes}
        assert states == {
            "fine@a.example": "sent",
            "full@a.example": "failed-temporary",
            "greylisted@a.example": "failed-temporary",
            "rejected@a.example": "failed-permanent",
            "unknown@a.example": "failed-permanent",
        }
        assert first.failed
        # Right away: nothing is due (the backoff has not passed), nothing is attempted.
        second = notify_here(store, server, pki, data, **options)
        assert second.outcomes == [] and second.waiting == 2 and second.already_done == 3
        assert server.handler.rcpt_attempts["greylisted@a.example"] == 1
        retry_at = max(r.next_attempt_at for r in _rows(store) if r.next_attempt_at is not None)
        time.sleep(max(0.0, (retry_at - dt.datetime.now(dt.UTC)).total_seconds()) + 0.1)
        third = notify_here(store, server, pki, data, **options)
        assert {o.recipient: o.state for o in third.outcomes} == {
            "greylisted@a.example": "sent",
            "full@a.example": "failed-permanent",  # the second 452: max_attempts reached
        }
        got = collections.Counter(m.rcpt_tos[0] for m in server.handler.received())
    assert got == {"fine@a.example": 1, "greylisted@a.example": 1}
    rows = ledger(store)
    assert rows["greylisted@a.example"]["attempts"] == 2 and rows["greylisted@a.example"]["state"] == "sent"
    assert rows["unknown@a.example"]["last_code"] == 550 and "no such user" in str(
        rows["unknown@a.example"]["last_error"]
    )
    assert rows["rejected@a.example"]["last_code"] == 554
    assert rows["full@a.example"]["state"] == "failed-permanent" and rows["full@a.example"]["attempts"] == 2
    assert "gave up after 2 attempt(s)" in str(rows["full@a.example"]["last_error"])
    listing = run_cli("notifications", "--store", str(store), "--json")
    assert listing.returncode == 0, listing.stderr
    assert [json.loads(line) for line in listing.stdout.splitlines()] == [rows[r] for r in sorted(rows)]
    # Readable at 80 columns: no line longer, every recipient and state whole, every error in full.
    text = run_cli("notifications", "--store", str(store), env={"COLUMNS": "80"})
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines and all(len(line) <= 80 for line in lines), lines
    for mail, row in rows.items():
        assert any(mail in line and str(row["state"]) in line for line in lines), (mail, lines)
        assert flat(str(row["last_error"] or "")) in flat(text.stdout)


def test_rate_limits(tmp_path: Path, pki: Pki, data: Attribution) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    people = ["a1@x.example", "a2@x.example", "a3@x.example", "b1@y.example", "b2@y.example"]
    subscribe(store, *((p, "en", "asn", "64500") for p in people))
    with smtp_server(pki) as server:
        first = notify_here(store, server, pki, data, rate_per_run=3, rate_per_domain=2)
        sent_first = sorted(m.rcpt_tos[0] for m in server.handler.received())
        second = notify_here(store, server, pki, data, rate_per_run=3, rate_per_domain=2)
        sent_all = collections.Counter(m.rcpt_tos[0] for m in server.handler.received())
    assert sent_first == ["a1@x.example", "a2@x.example", "b1@y.example"]  # 2 per domain, 3 per run
    assert sorted(o.recipient for o in first.outcomes if o.state == "deferred") == [
        "a3@x.example",
        "b2@y.example",
    ]
    assert not first.failed and first.count("sent") == 3
    assert second.count("sent") == 2 and second.already_done == 3
    assert sent_all == dict.fromkeys(people, 1)


def test_logs_in_inside_tls(tmp_path: Path, pki: Pki, data: Attribution) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    subscribe(store, ("ops@a.example", "en", "asn", "64500"))
    password = tmp_path / "password"
    password.write_text("s3cret, with spaces\n")
    with smtp_server(pki, credentials=("relay-user", "s3cret, with spaces")) as server:
        wrong = tmp_path / "wrong"
        wrong.write_text("guess\n")
        refused = run_cli(*notify_args(store, server, pki, data, "--smtp-user", "relay-user",
                                       "--smtp-password-file", str(wrong)), timeout=60)  # fmt: skip
        assert refused.returncode == 2 and "SMTP login as relay-user refused" in refused.stderr
        assert "guess" not in refused.stderr and refused.stderr.count("\n") == 1
        assert server.handler.mail_commands == 0
        settings = SmtpSettings(
            host=HOST, port=server.port, ca_files=(pki.ca,), user="relay-user", password="s3cret, with spaces"
        )
        with Enricher.from_paths(**data.paths()) as enricher, open_store(str(store)) as st:
            report = run(st, NotifyOptions(), enricher.lookup, OPERATOR, Relay(settings))
    assert [o.state for o in report.outcomes] == ["sent"] and server.handler.received()[0].tls_at_mail
