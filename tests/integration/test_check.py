"""`cleartext check`, the mail admin's view, against the real lab, with MX lookups on a local DNS server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from tests.conftest import run_cli

FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--endpoint-timeout", "40"]

ZONE = {
    ("secure.example.", "MX"): ["10 mail.lab.example."],
    ("mail.lab.example.", "A"): ["127.0.0.4"],
    ("plain.example.", "MX"): ["10 mx1.plain.example.", "20 mx2.plain.example."],
    ("mx1.plain.example.", "A"): ["127.0.0.2"],
    ("mx2.plain.example.", "A"): ["127.0.0.3"],
}


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    """A tiny authoritative DNS server on 127.0.0.1 (UDP), answering from ZONE; bounded lifetime."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        for _ in range(10_000):  # bounded: at most 10,000 polls of 0.2 s
            if stop.is_set():
                return
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            key = (question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype))
            answers = ZONE.get(key)
            if answers:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", key[1], *answers))
            elif not any(name == key[0] for name, _ in ZONE):
                response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{sock.getsockname()[1]}"
    stop.set()
    thread.join(timeout=2)
    sock.close()


def test_secure_domain_via_mx_is_clean(lab: dict[str, Any], nameserver: str) -> None:
    result = run_cli(
        "check", "secure.example", "--nameserver", nameserver, "--ca-file", lab["ca_file"], *FAST
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mail.lab.example" in result.stdout
    assert "No findings" in result.stdout
    assert "overall grade  A" in result.stdout


def test_plain_domain_lists_every_mx_and_how_to_fix(lab: dict[str, Any], nameserver: str) -> None:
    result = run_cli("check", "plain.example", "--nameserver", nameserver, "--ca-file", lab["ca_file"], *FAST)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert out.index("mx1.plain.example") < out.index("mx2.plain.example"), "MX hosts in preference order"
    assert "overall grade  F" in out
    assert "EXPOSED: passwords can be sent before TLS" in out
    assert "NO TLS" in out
    # The fix is given for the software found: Dovecot for IMAP/POP3, Postfix for SMTP.
    assert "How to fix (Dovecot)" in out and "How to fix (Postfix)" in out
    assert "smtpd_tls_auth_only" in out


def test_check_json_output(lab: dict[str, Any]) -> None:
    result = run_cli("check", "127.0.0.4", "--ports", "993,143", "--json", *FAST)
    assert result.returncode == 1  # without the lab CA the certificate is untrusted
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith('{"version":2') for line in lines)


def test_nothing_answers_is_exit_3(lab: dict[str, Any]) -> None:
    result = run_cli("check", "127.0.0.99", *FAST)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "No mail port answered" in result.stdout


def test_hostile_banner_reaches_the_terminal_as_inert_text(lab: dict[str, Any]) -> None:
    result = run_cli("check", "127.0.0.7", "--ports", "2537=smtp", *FAST)
    assert result.returncode == 1
    out = result.stdout
    assert "\x1b" not in out and "\x00" not in out and "\x07" not in out
    assert "cleartext-login" in out
    json_result = run_cli("check", "127.0.0.7", "--ports", "2537=smtp", "--json", *FAST)
    assert "\\\\x1b[2J" in json_result.stdout and "[bold red]pwned" in json_result.stdout
