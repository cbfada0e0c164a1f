"""Notifications on a PostgreSQL store: the same tables, ledger and exactly-once rules as on DuckDB,
one notify run at a time (an advisory lock), and a real delivery over TLS.

The server is a cluster of the test's own (tests/pg.py) on 127.0.0.1, stopped at the end of the module.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleartext.enrich import Enricher
from cleartext.notify.compose import Operator
from cleartext.notify.ledger import Journal, NewMessage, NotifyStore, journal_path
from cleartext.notify.run import NotifyOptions, run
from cleartext.notify.smtp import Relay, SmtpSettings
from cleartext.notify.subscriptions import Recipient
from cleartext.store import StoreError, open_store
from tests.integration.test_notify_smtpd import HOST, attribution_files, make_pki, seed_store, smtp_server
from tests.pg import PostgresServer, postgres_server


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal of a PostgreSQL store lives in the user's state directory: the test's own here."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def test_tables_ledger_and_reconcile_on_postgresql(pg: PostgresServer, tmp_path: Path) -> None:
    url = pg.create_database()
    with open_store(url) as st:
        ns = NotifyStore(st)
        ns.subscribe(Recipient("cert@fr.example", "fr", "CERT-FR"), [("country", "FR"), ("asn", "64500")])
        assert ns.unsubscribe("cert@fr.example", [("asn", "64500")]) == 1
        ns.unsubscribe("gone@b.example")
        assert [s.label for s in ns.subscriptions()] == ["FR"] and ns.optouts() == {"gone@b.example"}
        ns.add(
            "S1", [NewMessage(m, f"<{m}>", "en", "subscription", 2) for m in ("a@a.example", "b@b.example")]
        )
        assert ns.claim("S1", "a@a.example") is not None and ns.claim("S1", "a@a.example") is None
        assert ns.claim("S1", "b@b.example") is not None
        journal = Journal(journal_path(st))
        assert journal.path.is_relative_to(tmp_path / "state")
        journal.mark("S1", "b@b.example", 1)
    with open_store(url) as st:  # a new process, as after a kill
        ns = NotifyStore(st)
        settled = {row.recipient: state for row, state in ns.reconcile(Journal(journal_path(st)))}
        assert settled == {"a@a.example": "pending", "b@b.example": "assumed-sent"}
        assert {r.recipient: (r.state, r.attempts) for r in ns.ledger("S1")} == {
            "a@a.example": ("pending", 1),
            "b@b.example": ("assumed-sent", 1),
        }


def test_one_notify_run_at_a_time(pg: PostgresServer) -> None:
    url = pg.create_database()
    with open_store(url) as first, open_store(url) as second:
        one, two = NotifyStore(first), NotifyStore(second)
        with one.run_lock():
            with pytest.raises(StoreError, match="another `cleartext notify` is running"):
                two.run_lock().__enter__()
            assert two.store.url == one.store.url
        with two.run_lock():  # released when the first run ended
            pass


def test_delivers_from_a_postgresql_store_once(pg: PostgresServer, tmp_path: Path) -> None:
    url = pg.create_database()
    seed_store(url)
    with open_store(url) as st:
        NotifyStore(st).subscribe(Recipient("ops@a.example"), [("asn", "64500")])
        NotifyStore(st).subscribe(Recipient("cert@fr.example", "fr"), [("country", "FR")])
    pki = make_pki(tmp_path)
    data = attribution_files(tmp_path)
    operator = Operator("CERT Example", "notify@cert.example", "optout@cert.example")
    with smtp_server(pki) as server, Enricher.from_paths(**data.paths()) as enricher:
        settings = SmtpSettings(host=HOST, port=server.port, ca_files=(pki.ca,), timeout=10)
        for _ in range(2):
            with open_store(url) as st:
                run(st, NotifyOptions(), enricher.lookup, operator, Relay(settings))
        got = collections.Counter(m.rcpt_tos[0] for m in server.handler.received())
        assert all(m.tls_at_mail for m in server.handler.received())
    assert got == {"ops@a.example": 1, "cert@fr.example": 1}
    with open_store(url) as st:
        assert {r.state for r in NotifyStore(st).ledger()} == {"sent"}
