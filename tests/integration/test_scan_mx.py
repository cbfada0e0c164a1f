"""`cleartext scan --mx`: mail domains to their MX endpoints, each scanned once, each domain's outcome
recorded -- against the real lab, with a local DNS server answering the MX and address lookups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import parse_records, run_cli
from tests.dns_server import DROP, SERVFAIL, dns_server

pytestmark = pytest.mark.lab

FAST = [
    "--allow-reserved",
    "--connect-timeout",
    "2",
    "--read-timeout",
    "3",
    "--endpoint-timeout",
    "30",
    "--no-progress",
    "--no-store",
]
ZONE = {
    # Three domains at one provider: its MX endpoint is scanned once.
    ("one.example.", "MX"): ["10 mail.lab.example."],
    ("two.example.", "MX"): ["10 mail.lab.example."],
    ("three.example.", "MX"): ["5 mail.lab.example.", "10 backup.lab.example."],
    ("mail.lab.example.", "A"): ["127.0.0.3"],
    ("backup.lab.example.", "A"): ["127.0.0.4"],
    # No MX: the domain itself (RFC 5321 5.1).
    ("bare.example.", "A"): ["127.0.0.2"],
    ("nomail.example.", "MX"): ["0 ."],
    ("broken.example.", "MX"): SERVFAIL,
    ("silent.example.", "MX"): DROP,
    ("ghost.example.", "MX"): ["10 nowhere.ghost.example."],
}
DOMAINS = [
    "one.example",
    "two.example",
    "three.example",
    "bare.example",
    "nomail.example",
    "gone.example",
    "broken.example",
    "silent.example",
    "ghost.example",
]


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    with dns_server(ZONE) as address:
        yield address


def test_domains_to_their_mx_endpoints_once_each(
    lab: dict[str, Any], nameserver: str, tmp_path: Path
) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("# a sector's domains\n" + "\n".join(DOMAINS) + "\n")
    out = tmp_path / "mx.jsonl"
    result = run_cli(
        "scan",
        "--mx",
        f"@{domains}",
        "--nameserver",
        nameserver,
        "--out",
        str(out),
        "--ca-file",
        lab["ca_file"],
        *FAST,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    records = parse_records(out.read_text())
    got = {(r["address"], r["port"]): r for r in records}
    assert len(records) == len(got) == 3  # .3 (three domains share it), .4, .2: port 25 only
    assert set(got) == {("127.0.0.3", 25), ("127.0.0.4", 25), ("127.0.0.2", 25)}
    # The MX host name is kept: the certificate is checked against it (mail.lab.example matches).
    assert got[("127.0.0.3", 25)]["hostname"] == "mail.lab.example"
    assert got[("127.0.0.3", 25)]["tls"]["hostname_match"] is True
    assert got[("127.0.0.2", 25)]["hostname"] == "bare.example"
    lines = (tmp_path / "mx.jsonl.domains.jsonl").read_text().splitlines()
    outcomes = {o["domain"]: o for o in map(json.loads, lines)}
    assert list(outcomes) == DOMAINS  # in the list's order
    status = {d: o["status"] for d, o in outcomes.items()}
    assert status == {
        "one.example": "ok",
        "two.example": "ok",
        "three.example": "ok",
        "bare.example": "implicit-mx",
        "nomail.example": "null-mx",
        "gone.example": "nxdomain",
        "broken.example": "servfail",
        "silent.example": "timeout",
        "ghost.example": "no-address",
    }
    assert [h["host"] for h in outcomes["three.example"]["mx"]] == ["mail.lab.example", "backup.lab.example"]
    assert "9 domains" in result.stderr and "3 MX endpoints" in result.stderr


def test_resume_scans_the_same_list_without_asking_dns_again(
    lab: dict[str, Any], nameserver: str, tmp_path: Path
) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text("one.example\nthree.example\n")
    out = tmp_path / "mx.jsonl"
    first = run_cli("scan", "--mx", str(domains), "--nameserver", nameserver, "--out", str(out), *FAST)
    assert first.returncode == 0, first.stderr
    # A nameserver that is gone: --resume must not need it.
    again = run_cli(
        "scan", "--mx", str(domains), "--nameserver", "127.0.0.1:9", "--out", str(out), "--resume", *FAST
    )
    assert again.returncode == 0, again.stderr
    assert len(parse_records(out.read_text())) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [("one.example\nnot a domain!\n", "domains.txt:2: 'not a domain!' is not a domain name")],
)
def test_a_bad_domain_list_is_one_line_before_any_query(tmp_path: Path, content: str, message: str) -> None:
    domains = tmp_path / "domains.txt"
    domains.write_text(content)
    result = run_cli("scan", "--mx", str(domains), "--nameserver", "127.0.0.1:9", *FAST)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
