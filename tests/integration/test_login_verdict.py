"""The login verdict equals what a real login does, on every endpoint of the lab.

The lab's manifest carries each endpoint's ground truth (``plaintext_login``: what a real login with the
lab account does before TLS, checked by tests/integration/test_lab_logins.py with Python's own clients).
Here the real `cleartext scan` runs over every endpoint -- Dovecot, Postfix, Exim and Courier configured
to hide a login they take or advertise one they refuse, plaintext on implicit-TLS ports, and the hostile
servers -- and its verdict must equal that truth: never an exposed server called safe, never a refusing
one called exposed.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import parse_records, run_cli
from tests.conncount import Counts, syn_counter

pytestmark = pytest.mark.lab

FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--endpoint-timeout", "40",
        "--no-store", "--no-progress"]
Records = dict[tuple[str, int], dict[str, Any]]
Scanned = tuple[Records, list[dict[str, Any]], Counts]


@pytest.fixture(scope="module")
def scanned(lab: dict[str, Any]) -> Scanned:
    """Every lab endpoint scanned with the defaults, and the connections the kernel saw each get."""
    truth = [*lab["endpoints"], *lab["hostile"]]
    records: Records = {}
    with syn_counter() as syns:
        for address in sorted({e["address"] for e in truth}):
            ports = ",".join(
                f"{e['port']}={e['service']}" if "service" in e else str(e["port"])
                for e in truth if e["address"] == address
            )
            result = run_cli("scan", address, "--ports", ports, "--ca-file", lab["ca_file"], *FAST)
            assert result.returncode == 0, result.stderr
            records.update({(r["address"], r["port"]): r for r in parse_records(result.stdout)})
        counts = syns()
    return records, truth, counts


@pytest.fixture(scope="module")
def verdicts(scanned: Scanned) -> tuple[Records, list[dict[str, Any]]]:
    records, truth, _ = scanned
    return records, truth


def codes(record: dict[str, Any]) -> set[str]:
    return {f["code"] for f in record["findings"]}


def test_every_login_verdict_equals_a_real_login(verdicts: tuple[Records, list[dict[str, Any]]]) -> None:
    records, truth = verdicts
    wrong = []
    for e in truth:
        r = records[(e["address"], e["port"])]
        exposed = (r["login"] or {}).get("exposed") is True
        expected = e["plaintext_login"] == "accepted"
        if exposed != expected or ("cleartext-login" in codes(r)) != expected:
            wrong.append((e["address"], e["port"], e["profile"], e["plaintext_login"], r["login"]))
    assert not wrong, wrong
    assert sum(e["plaintext_login"] == "accepted" for e in truth) >= 10
    assert sum(e["plaintext_login"] == "refused" for e in truth) >= 8


Verdicts = tuple[Records, list[dict[str, Any]]]


def test_hidden_logins_are_exposed_with_their_evidence(verdicts: Verdicts) -> None:
    records, truth = verdicts
    hidden = [e for e in truth if e["plaintext_login"] == "accepted" and not e["advertised"]
              and e.get("tls") != "plaintext"]
    assert {e["protocol"] if "protocol" in e else e["service"] for e in hidden} >= {"smtp", "imap", "pop3"}
    for e in hidden:
        r = records[(e["address"], e["port"])]
        login = next(f for f in r["findings"] if f["code"] == "cleartext-login")
        assert login["severity"] == "high"
        assert login["evidence"]["basis"] == "probed-accepted"
        assert r["login"]["basis"] == "probed-accepted"
        if e["profile"] == "pop3-no-capa":  # no capability list: nothing was hidden, nothing advertised
            assert r["login"]["advertised"] is None and login["evidence"]["hidden"] is False
        else:
            assert r["login"]["advertised"] is False
            assert login["evidence"]["hidden"] is True, (e, login["evidence"])


def test_advertised_but_refused_is_a_note_not_an_alarm(verdicts: Verdicts) -> None:
    records, truth = verdicts
    liars = [e for e in truth if e["plaintext_login"] == "refused" and e["advertised"]]
    assert {e["protocol"] for e in liars} >= {"smtp", "imap", "pop3"}
    for e in liars:
        r = records[(e["address"], e["port"])]
        assert r["login"] == {**r["login"], "exposed": False, "basis": "probed-refused", "advertised": True}
        note = next(f for f in r["findings"] if f["code"] == "login-advertised-refused")
        assert note["severity"] == "info" and note["evidence"]["refused"]
        assert r["findings"] and all(f["code"] != "cleartext-login" for f in r["findings"])


def test_plaintext_on_an_implicit_tls_port_is_no_tls(verdicts: tuple[Records, list[dict[str, Any]]]) -> None:
    records, truth = verdicts
    plain_ports = [e for e in truth if e.get("tls") == "plaintext"]
    assert {e["port"] for e in plain_ports} == {465, 993, 995}
    for e in plain_ports:
        r = records[(e["address"], e["port"])]
        assert r["tls_mode"] == "implicit" and r["status"] == "success"
        assert {"no-tls", "cleartext-login"} <= codes(r) and "starttls-failed" not in codes(r)
        no_tls = next(f for f in r["findings"] if f["code"] == "no-tls")
        assert no_tls["evidence"]["implicit_tls_port"] is True


def test_starttls_injection(verdicts: tuple[Records, list[dict[str, Any]]]) -> None:
    records, truth = verdicts
    by_profile = {(e["profile"], e.get("server")): records[(e["address"], e["port"])] for e in truth}
    vulnerable = by_profile[("starttls-injection", None)]
    assert vulnerable["plain"]["starttls_injection"] == "answered"
    finding = next(f for f in vulnerable["findings"] if f["code"] == "starttls-injection")
    assert finding["severity"] == "high" and finding["evidence"]["reply"]
    # Courier's POP3 before 1.1.5 (Debian 12 ships 1.0.16) is a real one: CVE-2021-38084.
    courier_pop3 = records[("127.0.0.9", 110)]
    assert courier_pop3["plain"]["starttls_injection"] == "answered"
    # Postfix and Exim discard what follows STARTTLS; Dovecot, which closes on it, is not sent the check.
    for (profile, server), r in by_profile.items():
        if server in ("postfix", "exim") and r["plain"] and r["plain"]["starttls_accepted"]:
            assert r["plain"]["starttls_injection"] == "ignored", (profile, server)
            assert "starttls-injection" not in codes(r)
        if server == "dovecot" and r["plain"] and r["plain"]["starttls_accepted"]:
            assert r["plain"]["starttls_injection"] == "skipped"


def test_within_six_connections(scanned: Scanned) -> None:
    """At most six connections per endpoint as the kernel counted them (SYNs leaving the namespace), and
    each record's own count equal to the kernel's."""
    records, truth, syns = scanned
    assert max(r["connections"] for r in records.values()) <= 6
    endpoints = {(e["address"], e["port"]) for e in truth}
    assert set(syns) == endpoints, "connections to something that was not scanned, or none to an endpoint"
    over = {e: n for e, n in syns.items() if n > 6}
    assert not over, over
    miscounted = {
        e: (syns[e], records[e]["connections"]) for e in endpoints if syns[e] != records[e]["connections"]
    }
    assert not miscounted, miscounted
    assert max(syns.values()) >= 3, "the lab has endpoints that take the raw hellos (or a second STARTTLS)"


def test_a_second_starttls_needs_no_second_slot(lab: dict[str, Any], scanned: Scanned) -> None:
    """With one connection per host at a time (--per-host 1), STARTTLS asked again on a fresh connection
    (after a broken handshake; after USER on a POP3 server without STLS) still finishes, as it did with
    the defaults: the retry used to wait for the slot its own first connection held, forever."""
    records, truth, _ = scanned
    retried = [e for e in truth if e["profile"] in ("starttls-broken", "pop3-no-capa")]
    assert len(retried) == 2
    for e in retried:
        before = records[(e["address"], e["port"])]
        assert before["connections"] >= 2, "the endpoint takes the second STARTTLS path"
        result = run_cli("scan", e["address"], "--ports", f"{e['port']}={e['service']}", "--per-host", "1",
                         "--ca-file", lab["ca_file"], *FAST, timeout=60)
        assert result.returncode == 0, result.stderr
        [record] = parse_records(result.stdout)
        assert (record["status"], record["connections"], codes(record)) == (
            before["status"], before["connections"], codes(before)
        )
