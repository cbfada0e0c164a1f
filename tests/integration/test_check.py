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
    # An MX that is no host name: it must not reach the commands check suggests.
    ("oddmx.example.", "MX"): ["10 mx\\;touch\\032x.example."],
}


@pytest.fixture(scope="module")
def nameserver() -> Iterator[str]:
    """A tiny authoritative DNS server on 127.0.0.1 (UDP), answering from ZONE."""
    with dns_server(ZONE) as address:
        yield address


def test_secure_domain_via_mx_is_clean(lab: dict[str, Any], nameserver: str) -> None:
    # The servers' view only: the domain view (tests/integration/test_domain_view.py) would add that
    # secure.example publishes no MTA-STS and no TLSA record.
    args = ["--nameserver", nameserver, "--ca-file", lab["ca_file"], *FAST, "--no-domain"]
    result = run_cli("check", "secure.example", *args)
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
    assert "How to fix it: Dovecot on mx1.plain.example" in out
    assert "How to fix it: Postfix on mx1.plain.example" in out
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
        *FAST, "--no-domain",  # the servers' view: the domain view would add that it has no MTA-STS/DANE
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
    odd = run_cli("check", "oddmx.example", "--nameserver", nameserver, *FAST)
    assert_one_line_error(odd, "the MX of oddmx.example names no valid host name")


LEGACY = ["legacy.lab.example", "--resolve", "legacy.lab.example:127.0.0.5"]


def test_check_reads_like_advice(lab: dict[str, Any]) -> None:
    """The legacy host (six findings on six ports, Postfix and Dovecot): a verdict per port, each finding
    once with its ports, the fixes once per software and finding, commands for the host checked."""
    result = run_cli("check", *LEGACY, "--ca-file", lab["ca_file"], *FAST)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert len(out.splitlines()) < 200, "today's detail belongs to --full"
    assert "╭" not in out  # no boxes but the verdict table
    found = out[out.index("What was found on legacy.lab.example") : out.index("How to fix it")]
    for code in ("legacy-tls", "weak-cipher", "cert-expired", "cert-untrusted", "cert-weak-key"):
        assert found.count(code) == 1, code
    assert "[25 smtp, 465 smtps, 110 pop3, 995 pop3s, 143 imap, 993 imaps]" in " ".join(found.split())
    assert out.count("How to fix it: Postfix on legacy.lab.example (25 smtp, 465 smtps)") == 1
    assert out.count("How to fix it: Dovecot on legacy.lab.example (110 pop3, 995 pop3s, 143 imap") == 1
    flat = " ".join(out.split())
    assert "-connect legacy.lab.example:25 -starttls smtp -servername legacy.lab.example" in flat
    assert "certbot certonly --standalone -d legacy.lab.example" in flat
    assert "mail.example.com" not in out
    # A shared step (how to get a certificate) is given once per software, then named.
    assert flat.count("free ACME CAs") == 2
    assert "Get a certificate from a publicly trusted CA (as above)" in flat
    # The certificate is self-signed, and says so in words; no Python literal reaches the text.
    assert "self-signed (CN=legacy.lab.example vouches for itself)" in flat
    for literal in ("True", "False", "None", "<Certificate", "candidates exhausted", "{'"):
        assert literal not in out, literal


def test_check_full_keeps_every_finding_of_every_port(lab: dict[str, Any]) -> None:
    result = run_cli("check", *LEGACY, "--ports", "25,993", "--full", "--ca-file", lab["ca_file"], *FAST)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert out.count("cert-expired  127.0.0.5:25 (smtp)") == 1
    assert out.count("cert-expired  127.0.0.5:993 (imaps)") == 1
    flat = " ".join(out.split())
    assert "self signed: yes" in flat and "key type rsa, key bits 1024" in flat
    assert "-connect legacy.lab.example:993 -servername legacy.lab.example" in flat
    for literal in ("True", "False", "<Certificate", "{'"):
        assert literal not in out, literal


def test_port_25_advice_tests_port_25(lab: dict[str, Any]) -> None:
    """Postfix on 25 without AUTH in clear and without the lab CA: the checks it suggests are on port 25."""
    pinned = ["--resolve", "mail.lab.example:127.0.0.4"]
    result = run_cli("check", "mail.lab.example", *pinned, "--ports", "25", *FAST)
    assert result.returncode == 1, result.stdout + result.stderr
    flat = " ".join(result.stdout.split())
    assert "-connect mail.lab.example:25 -starttls smtp" in flat
    assert ":587" not in flat and ":465" not in flat
    # Not self-signed: a CA this machine does not know, and how to check with a private CA.
    assert "issued by CN=cleartext lab CA" in flat and "--ca-file CA.pem" in flat
    assert "vouches for itself" not in flat
