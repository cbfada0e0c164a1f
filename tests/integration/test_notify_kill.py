"""Exactly once under SIGKILL: a real `cleartext notify` process killed mid-run, started again.

The kills are placed by the test SMTP server at the two points that matter, so the test is the same
every time: the server holds a command, the test kills the client with SIGKILL, then the server goes on.

- killed while the server holds RCPT TO of a message (the ledger says ``sending``, no end of data was
  written): the server never gets the dot and discards the transaction; the next run sends it again.
- killed while the server holds the end of data of a message (the journal says the dot was written):
  the server then accepts the message, as a real one would; the next run counts it as delivered
  (``assumed-sent``) instead of sending it a second time.

The third run, not killed, finishes the rest. Every recipient must be in the server's mailbox exactly
once: none twice, none lost.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cleartext.notify.ledger import NotifyStore, journal_path
from cleartext.notify.subscriptions import Recipient
from cleartext.store import open_store
from tests.conftest import ROOT
from tests.integration.test_notify_smtpd import (
    HOST,
    Attribution,
    Behaviour,
    Pki,
    attribution_files,
    make_pki,
    seed_store,
    smtp_server,
)

RUN_TIMEOUT_S = 60
PEOPLE = [f"a{i}@d{i}.example" for i in range(1, 7)]  # sent in this order (sorted by address)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Attribution:
    return attribution_files(tmp_path_factory.mktemp("attribution"))


class Killer:
    """Kills the running `cleartext notify` when the server reaches an armed (hook, recipient) point."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.armed: tuple[str, str] | None = None
        self.fired: list[tuple[str, str]] = []
        self.ready = threading.Event()

    def hook(self, kind: str):  # type: ignore[no-untyped-def]
        def at(address: str) -> None:
            if self.armed != (kind, address):
                return
            self.armed = None
            self.fired.append((kind, address))
            assert self.ready.wait(10) and self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)  # dead before the server says another word

        return at


def start(args: list[str], killer: Killer, log: Path) -> tuple[int, str, str]:
    """Run `cleartext notify` as a real process; returns (exit status, stdout, stderr)."""
    out, err = log.with_suffix(".out"), log.with_suffix(".err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cleartext", *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=ROOT,
            env={**os.environ, "NO_COLOR": "1"},
        )
        killer.proc = proc
        killer.ready.set()
        try:
            code = proc.wait(timeout=RUN_TIMEOUT_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            killer.ready.clear()
    return code, out.read_text(), err.read_text()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def states(store: Path) -> dict[str, tuple[str, int]]:
    with open_store(str(store)) as st:
        return {row.recipient: (row.state, row.attempts) for row in NotifyStore(st).ledger()}


def test_sigkill_mid_run_sends_every_message_exactly_once(
    tmp_path: Path, pki: Pki, data: Attribution
) -> None:
    store = tmp_path / "store.duckdb"
    seed_store(store)
    with open_store(str(store)) as st:
        ns = NotifyStore(st)
        for person in PEOPLE:
            ns.subscribe(Recipient(person), [("asn", "64500")])
    killer = Killer()
    behaviour = Behaviour(on_rcpt=killer.hook("rcpt"), on_data=killer.hook("data"))
    with smtp_server(pki, behaviour=behaviour) as server:
        args = [
            "notify", "--store", str(store), *data.args(), "--smtp-host", HOST,
            "--smtp-port", str(server.port), "--ca-file", str(pki.ca), "--from", "notify@cert.example",
        ]  # fmt: skip

        def mailbox() -> collections.Counter[str]:
            return collections.Counter(m.rcpt_tos[0] for m in server.handler.received())

        # 1. Killed while the server holds RCPT TO of the second message.
        killer.armed = ("rcpt", PEOPLE[1])
        code, _, _ = start(args, killer, tmp_path / "run1")
        assert code == -signal.SIGKILL and killer.fired == [("rcpt", PEOPLE[1])]
        assert mailbox() == {PEOPLE[0]: 1}
        ledger = states(store)
        assert ledger[PEOPLE[0]] == ("sent", 1) and ledger[PEOPLE[1]] == ("sending", 1)
        assert {ledger[p][0] for p in PEOPLE[2:]} == {"pending"}

        # 2. Started again, killed while the server holds the end of data of the fourth message.
        killer.armed = ("data", PEOPLE[3])
        code, _, err = start(args, killer, tmp_path / "run2")
        assert code == -signal.SIGKILL and killer.fired[-1] == ("data", PEOPLE[3])
        assert f"reconciled {PEOPLE[1]}" in err and "sending -> pending" in err
        wait_for(lambda: PEOPLE[3] in mailbox())  # the server stores it once the hook returns
        assert mailbox() == dict.fromkeys(PEOPLE[:4], 1)  # the server accepted the fourth after the kill
        ledger = states(store)
        assert ledger[PEOPLE[1]] == ("sent", 2) and ledger[PEOPLE[3]] == ("sending", 1)
        assert (ledger[PEOPLE[3]][0], journal_path_of(store).exists()) == ("sending", True)

        # 3. Started again and left alone: the fourth is not sent twice, the rest go out.
        code, out, err = start(args, killer, tmp_path / "run3")
        assert code == 0, err
        assert f"reconciled {PEOPLE[3]}" in err and "sending -> assumed-sent" in err
        assert (
            sorted(line.split("\t")[1] for line in out.splitlines() if line.startswith("sent\t"))
            == PEOPLE[4:]
        )
        assert mailbox() == dict.fromkeys(PEOPLE, 1)
        assert server.handler.mail_without_tls == 0

    ledger = states(store)
    assert ledger[PEOPLE[3]] == ("assumed-sent", 1)
    assert {ledger[p][0] for p in PEOPLE if p != PEOPLE[3]} == {"sent"}
    assert not journal_path_of(store).exists()  # settled


def journal_path_of(store: Path) -> Path:
    with open_store(str(store)) as st:
        return journal_path(st)
