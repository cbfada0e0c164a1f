"""`cleartext scan --discover` against the lab: one connection per endpoint, the greeting (after the TLS
handshake on implicit-TLS ports), no capabilities, no STARTTLS, no login verdict — and records that say so."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cleartext.assess import grade
from cleartext.record import record_from_dict
from cleartext.render import verdict
from tests.conftest import ROOT, parse_records, run_cli

pytestmark = pytest.mark.lab

FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--endpoint-timeout", "20"]
HOSTS = {"plain.lab.example": "127.0.0.2", "tls10.lab.example": "127.0.0.6"}

Records = dict[tuple[str, int], dict[str, Any]]


@pytest.fixture(scope="module")
def discovered(lab: dict[str, Any]) -> Records:
    args = ["scan", *HOSTS, *FAST, "--discover", "--ca-file", lab["ca_file"], "--no-store"]
    for host, address in HOSTS.items():
        args += ["--resolve", f"{host}:{address}"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    records = parse_records(result.stdout)
    assert len(records) == len(HOSTS) * 7
    return {(r["address"], r["port"]): r for r in records}


def test_one_connection_and_the_greeting_only(discovered: Records) -> None:
    schema = json.loads((ROOT / "src" / "cleartext" / "schema" / "record.schema.json").read_text())
    for record in discovered.values():
        jsonschema.validate(record, schema)
        assert record["depth"] == "discovery"
        assert record["connections"] <= 1
        assert record["plain"] is None and record["matrix"] is None
        assert "capabilities" not in record["timings_ms"] and "starttls" not in record["timings_ms"]
    imap = discovered[("127.0.0.2", 143)]
    assert imap["status"] == "success" and imap["software"] == "dovecot"
    assert imap["greeting"] and imap["greeting"].startswith("* OK")


def test_no_login_verdict_is_claimed(discovered: Records) -> None:
    # The plaintext profile allows login in clear: a full scan says cleartext-login; discovery did not
    # look, so it must not say so — nor call the port sound.
    for port in (110, 143, 587):
        record = discovered[("127.0.0.2", port)]
        assert record["status"] == "success"
        assert record["findings"] == []
        rec = record_from_dict(record)
        assert grade([rec]) is None
        assert "login not checked" in verdict(rec)


def test_implicit_tls_facts_come_with_the_handshake(discovered: Records) -> None:
    record = discovered[("127.0.0.6", 993)]  # openssl s_server: TLS 1.0/1.1 only, and no greeting
    assert record["status"] == "read-timeout" and record["connections"] == 1
    assert record["tls"]["version"] == "TLSv1.1" and record["tls"]["chain"]
    codes = {f["code"] for f in record["findings"]}
    # The real handshake offered TLS 1.0-1.3 and got 1.1: no modern TLS, legacy TLS.
    assert {"no-modern-tls", "legacy-tls"} <= codes


def test_silent_and_closed_ports_end_in_a_status(lab: dict[str, Any], tmp_path: Path) -> None:
    silent = next(h for h in lab["hostile"] if h["profile"] == "silent")
    out = tmp_path / "d.jsonl"
    result = run_cli(
        "scan",
        f"{silent['address']}",
        "--ports",
        f"{silent['port']}=smtp,1=imap",
        *FAST,
        "--read-timeout",
        "1",
        "--discover",
        "--no-store",
        "--out",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    by_port = {r["port"]: r for r in parse_records(out.read_text())}
    assert by_port[silent["port"]]["status"] == "read-timeout"
    assert by_port[1]["status"] == "refused"
