"""`cleartext check`, the mail admin's view, against the real lab, with MX lookups on a local DNS server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import run_cli
from tests.dns_server import DROP, SERVFAIL, dns_server

FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--endpoint-timeout", "40"]

ZONE = {
    ("secure.example.", "MX"): ["10 mail.lab.example."],
    ("mail.lab.example.", "A"): ["127.0.0.4"],
    ("plain.example.", "MX"): ["10 mx1.plain.example.", "20 mx2.plain.example."],
    ("mx1.plain.example.", "A"): ["127.0.0.2"],
    ("mx2.plain.example.", "A"): ["127.0.0.3"],
    # An internationalised domain (bücher.example), as DNS holds it: A-labels.
    ("xn--bcher-kva.example.", "MX"): ["10 mail.lab.example."],
    # RFC 7505: the domain accepts no mail, though its name has an address.
    ("nomail.example.", "MX"): ["0 ."],
    ("nomail.example.", "A"): ["127.0.0.4"],
    # The MX lookup fails, or is never answered; the name has an address that must not be checked instead.
    ("servfail.example.", "MX"): SERVFAIL,
    ("servfail.example.", "A"): ["127.0.0.4"],
    ("silent.example.", "MX"): DROP,
    ("silent.example.", "A"): ["127.0.0.4"],
}


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    """A tiny authoritative DNS server on 127.0.0.1 (UDP), answering from ZONE."""
    with dns_server(ZONE) as address:
        yield address


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


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cleartext: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""


def test_internationalised_domain_is_checked_by_its_a_labels(lab: dict[str, Any], nameserver: str) -> None:
    """bücher.example: the MX query asks for xn--bcher-kva.example (IDNA 2008 / UTS 46) and finds the host."""
    result = run_cli(
        "check", "bücher.example", "--ports", "993", "--nameserver", nameserver, "--ca-file", lab["ca_file"],
        *FAST,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mail.lab.example" in result.stdout and "No findings" in result.stdout
    pinned = run_cli(
        "check", "BÜCHER.example", "--resolve", "bücher.example:127.0.0.4", "--ports", "993", *FAST
    )
    assert pinned.returncode == 1, pinned.stdout + pinned.stderr  # checked; the name is not on the cert
    assert "127.0.0.4" in pinned.stdout and "cert-hostname-mismatch" in pinned.stdout


def test_null_mx_is_said_not_checked_through_the_a_record(lab: dict[str, Any], nameserver: str) -> None:
    result = run_cli("check", "nomail.example", "--nameserver", nameserver, *FAST)
    assert_one_line_error(
        result, "nomail.example publishes a null MX (RFC 7505)", "--resolve nomail.example:ADDRESS"
    )


def test_failed_mx_lookup_is_said_not_papered_over(lab: dict[str, Any], nameserver: str) -> None:
    failed = run_cli("check", "servfail.example", "--nameserver", nameserver, *FAST)
    assert_one_line_error(failed, "cannot look up the MX of servfail.example", "answered SERVFAIL")
    silent = run_cli("check", "silent.example", "--nameserver", nameserver, *FAST)
    assert_one_line_error(silent, "cannot look up the MX of silent.example", "no answer", "within 5 s")
