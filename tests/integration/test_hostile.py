"""Hostile and odd servers (lab/hostile.py): bounded waits, bounded reads, the right status, never a hang.

Each profile misbehaves in one way; the scan must end with the status that names it, in about the time
its deadlines allow, and keep whatever evidence it gathered before things went wrong.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest

from tests.conftest import ROOT, parse_records, run_cli

sys.path.insert(0, str(ROOT / "lab"))
import hostile

READ_TIMEOUT = 2.0
PORTS = ",".join(f"{p.port}={p.service}" for p in hostile.PROFILES)


@pytest.fixture(scope="module")
def hostile_records(lab: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], float]:
    start = time.monotonic()
    result = run_cli(
        "scan",
        "127.0.0.7",
        "--ports",
        PORTS,
        "--allow-reserved",
        "--connect-timeout",
        "2",
        "--read-timeout",
        str(READ_TIMEOUT),
        "--endpoint-timeout",
        "20",
        "--ca-file",
        lab["ca_file"],
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    by_port = {r["port"]: r for r in parse_records(result.stdout)}
    names = {p.port: p.name for p in hostile.PROFILES}
    return {names[port]: record for port, record in by_port.items()}, elapsed


EXPECTED_STATUS = {
    "starttls-broken": "tls-error",
    "starttls-hidden": "success",
    "drip": "read-timeout",
    "endless-line": "protocol-error",
    "silent": "read-timeout",
    "hangup": "closed",
    "tls-garbage": "tls-error",
    "not-mail": "not-mail",
    "policy": "refused-by-policy",
    "rc4-export-sslv3": "tls-error",
    "pop3-no-capa": "success",
    "flood": "protocol-error",
    "evil-banner": "success",
    "pop3-hidden-login": "success",
    "starttls-injection": "success",
}


def test_every_profile_gets_its_status(hostile_records: tuple[dict[str, dict[str, Any]], float]) -> None:
    records, _ = hostile_records
    assert set(records) == set(EXPECTED_STATUS)
    for name, status in EXPECTED_STATUS.items():
        assert records[name]["status"] == status, (name, records[name]["status_detail"])


def test_hostile_servers_cannot_hold_the_scanner(
    hostile_records: tuple[dict[str, dict[str, Any]], float],
) -> None:
    records, elapsed = hostile_records
    # All endpoints run concurrently: the whole scan is bounded by a few per-step deadlines, not by the
    # drip server's 600 seconds or the flood server's megabytes.
    assert elapsed < 30
    for name in ("drip", "silent"):
        assert records[name]["timings_ms"]["total"] < (READ_TIMEOUT + 1.5) * 1000
    for name in ("endless-line", "flood"):
        assert records[name]["bytes_received"] <= 256 * 1024
        assert "longer than" in records[name]["status_detail"]


def test_starttls_broken_keeps_the_plaintext_evidence(
    hostile_records: tuple[dict[str, dict[str, Any]], float],
) -> None:
    r = hostile_records[0]["starttls-broken"]
    assert r["plain"]["starttls_advertised"] is True and r["plain"]["starttls_accepted"] is True
    assert r["tls"]["error"]
    assert {f["code"] for f in r["findings"]} == {"starttls-failed"}


def test_hidden_starttls_is_found_by_asking(hostile_records: tuple[dict[str, dict[str, Any]], float]) -> None:
    r = hostile_records[0]["starttls-hidden"]
    assert r["plain"]["starttls_advertised"] is False and r["plain"]["starttls_accepted"] is True
    assert r["plain"]["auth_mechanisms"] == [] and r["tls"]["auth_mechanisms"] == ["PLAIN"]
    assert "starttls-not-advertised" in {f["code"] for f in r["findings"]}
    assert "cleartext-login" not in {f["code"] for f in r["findings"]}


def test_sslv3_rc4_and_export_from_raw_hellos(
    hostile_records: tuple[dict[str, dict[str, Any]], float],
) -> None:
    """OpenSSL 3 can speak none of these; the hand-built hellos still find them."""
    r = hostile_records[0]["rc4-export-sslv3"]
    versions = r["matrix"]["versions"]
    assert versions["SSLv3"] == "accepted" and versions["TLSv1.3"] == "rejected"
    found = {f["code"]: f for f in r["findings"]}
    assert (
        found["legacy-tls"]["severity"] == "high" and "SSLv3" in found["legacy-tls"]["evidence"]["versions"]
    )
    assert "rc4" in found["weak-cipher"]["evidence"]["classes"]
    assert found["weak-cipher"]["severity"] in ("medium", "high")


def test_pop3_without_capa_takes_user_in_clear(
    hostile_records: tuple[dict[str, dict[str, Any]], float],
) -> None:
    """An RFC 1939 server: no CAPA, no SASL; the USER probe (a made-up name, never PASS) settles it."""
    r = hostile_records[0]["pop3-no-capa"]
    login = next(f for f in r["findings"] if f["code"] == "cleartext-login")
    assert login["evidence"]["basis"] == "probed-accepted" and login["evidence"]["inferred"] is False
    assert r["login"] == {"exposed": True, "basis": "probed-accepted", "advertised": None,
                          "accepted": ["USER"], "refused": ["AUTH PLAIN"]}
    assert {f["code"] for f in r["findings"]} == {"cleartext-login", "no-tls"}


def test_not_mail_policy_and_garbage_are_told_apart(
    hostile_records: tuple[dict[str, dict[str, Any]], float],
) -> None:
    records = hostile_records[0]
    assert "SSH-2.0" in records["not-mail"]["greeting"]
    assert records["policy"]["greeting"].startswith("554")
    assert records["tls-garbage"]["matrix"]["versions"]["TLSv1.2"] == "unknown"
    assert records["tls-garbage"]["connections"] <= 2, "no more hellos once the answer is not TLS"


def test_hostile_banner_is_escaped_in_the_record(
    hostile_records: tuple[dict[str, dict[str, Any]], float],
) -> None:
    r = hostile_records[0]["evil-banner"]
    assert "\x1b" not in r["greeting"] and "\x00" not in r["greeting"]
    # Escaped once: the lines are sanitised as they arrive, and joining them escapes nothing again.
    assert r["greeting"] == (
        "220 evil.lab.example \\x1b[2J\\x1b[31m[bold red]pwned[/bold red] <script>x</script>\\x00 ESMTP"
    )


def test_silent_implicit_tls_port_is_a_read_timeout_with_one_connection(lab: dict[str, Any]) -> None:
    """The silent server on an implicit-TLS port: silence, not broken TLS, and no raw hellos after it."""
    result = run_cli(
        "scan",
        "127.0.0.7",
        "--ports",
        "2529=smtps",
        "--allow-reserved",
        "--read-timeout",
        "1",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    (record,) = parse_records(result.stdout)
    assert record["status"] == "read-timeout" and record["findings"] == []
    assert record["connections"] == 1
