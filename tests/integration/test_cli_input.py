"""Bad input never scans: a one-line error on stderr, exit status 2, nothing on stdout.

Every otherwise-valid target here is 127.0.0.99 (loopback, nothing listens), so even a regression that
scanned would send nothing beyond this machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import ROOT, TEST_STORE, run_cli
from tests.dns_server import dns_server


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["scan", "300.1.1.1"], "invalid target"),
        (["scan", "1.2.3.4/40"], "invalid target"),
        (["scan", "127.0.0.99", "--allow-reserved", "--ports", "0"], "invalid port"),
        (["scan", "127.0.0.99", "--allow-reserved", "--ports", "8080"], "not a mail port"),
        (["scan", "127.0.0.99", "--allow-reserved", "--ports", "25=http"], "unknown service"),
        (["scan", "127.0.0.2"], "reserved range (loopback)"),
        (["scan", "10.0.0.0/8"], "reserved range (private)"),
        (["scan", "@/nonexistent/targets.txt"], "cannot read target file"),
        (["scan", "127.0.0.99", "--allow-reserved", "--resolve", "nocolon"], "invalid --resolve"),
        (["scan", "127.0.0.99", "--allow-reserved", "--ca-file", "/nonexistent.pem"], "cannot read CA file"),
        (["scan", "127.0.0.99", "--allow-reserved", "--ehlo-name", "bad name!"], "invalid --ehlo-name"),
        (["scan", "127.0.0.99", "--allow-reserved", "--nameserver", "not-an-ip"], "invalid --nameserver"),
        (["check", "127.0.0.4"], "reserved range"),
        (["check", "127.0.0.0/24", "--allow-reserved"], "not a network"),
        (["check", "bad host!"], "invalid target"),
        (["check", "bücher..example"], "invalid target"),
        # Values typer checks itself: one line like ours, not a box.
        (["scan", "127.0.0.99", "--allow-reserved", "--rate", "0"], "invalid value for '--rate'"),
        (["scan", "127.0.0.99", "--allow-reserved", "--concurrency", "x"], "for '--concurrency'"),
        (["serve", "--port", "abc"], "invalid value for '--port'"),
        (["scan"], "nothing to scan"),
        (["scan", "127.0.0.99", "--no-such-flag"], "no such option"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cleartext: error:"), result.stderr
    assert message in lines[0]
    assert result.stdout == ""


def test_bad_line_in_target_file_names_the_line(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text("127.0.0.99\n# fine\nnot/a/target\n")
    result = run_cli("scan", f"@{targets}", "--allow-reserved")
    assert result.returncode == 2
    assert f"{targets}:3" in result.stderr
    assert result.stdout == ""


def test_usage_error_from_the_parser_is_exit_2() -> None:
    result = run_cli("scan", "--no-such-flag", "127.0.0.99", "--allow-reserved")
    assert result.returncode == 2
    result = run_cli("scan", "127.0.0.99", "--allow-reserved", "--max-connections", "0")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--max-connections" in result.stderr


def test_help_and_no_arguments_still_show_the_help() -> None:
    assert run_cli("scan", "--help").returncode == 0
    bare = run_cli()
    assert bare.returncode == 2 and "Usage" in bare.stdout and "scan" in bare.stdout


def test_unwritable_output_is_exit_2() -> None:
    result = run_cli("scan", "127.0.0.99", "--allow-reserved", "--out", "/nonexistent/dir/out.jsonl")
    assert result.returncode == 2
    assert "cannot write" in result.stderr


def test_hostname_resolving_to_reserved_space_is_blocklisted_not_scanned() -> None:
    """A name is not reserved, but where it points may be: such endpoints get a record, and no packet."""
    result = run_cli("scan", "sneaky.example", "--resolve", "sneaky.example:127.0.0.99", "--ports", "25,993")
    assert result.returncode == 0, result.stderr
    records = [line for line in result.stdout.splitlines() if line]
    assert len(records) == 2
    for line in records:
        assert '"status":"blocklisted"' in line and '"connections":0' in line
        assert "reserved range (loopback)" in line


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cleartext: error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert result.stdout == ""


def test_show_on_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    scan = run_cli("scan", "127.0.0.99", "--allow-reserved", "--ports", "25", "--no-store")
    assert scan.returncode == 0, scan.stderr
    records = tmp_path / "records.jsonl"
    records.write_bytes(scan.stdout.encode() + b'{"address": "\xff\xfe"}\n')
    assert_one_line_error(run_cli("show", str(records)), f"{records}:2: not UTF-8 text")
    assert_one_line_error(run_cli("show", str(tmp_path)), f"cannot read {tmp_path}")


@pytest.mark.parametrize("content", ["key", "garbage", "empty", "broken"])
def test_ca_file_without_a_certificate_is_refused(tmp_path: Path, content: str) -> None:
    path = tmp_path / "ca.pem"
    if content == "key":
        key = ec.generate_private_key(ec.SECP256R1())
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        expected = "holds a private key, no certificate"
    elif content == "garbage":
        path.write_bytes(b"\x00\x01 not a certificate at all\n")
        expected = "holds no PEM certificate"
    elif content == "empty":
        path.write_bytes(b"")
        expected = "holds no PEM certificate"
    else:
        path.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        expected = "a certificate in it cannot be read"
    for command in (["scan", "127.0.0.99", "--allow-reserved"], ["check", "127.0.0.99", "--allow-reserved"]):
        assert_one_line_error(run_cli(*command, "--ca-file", str(path)), f"CA file {path}", expected)


def test_scan_of_nothing_but_an_unresolvable_name_is_an_error(tmp_path: Path) -> None:
    store = tmp_path / "store.duckdb"
    with dns_server({}) as nameserver:  # every name: NXDOMAIN
        alone = run_cli("scan", "nowhere.example", "--nameserver", nameserver, "--store", str(store))
        assert_one_line_error(alone, "cannot resolve nowhere.example", "nothing to scan")
        assert not store.exists()
        two = run_cli("scan", "nowhere.example", "gone.example", "--nameserver", nameserver, "--no-store")
        assert_one_line_error(two, "cannot resolve nowhere.example", "(and 1 more); nothing to scan")
        # Beside a target that remains, an unresolvable name is a warning and the scan goes on.
        mixed = run_cli(
            "scan", "nowhere.example", "127.0.0.99", "--allow-reserved", "--ports", "25",
            "--nameserver", nameserver, "--no-store",
        )
    assert mixed.returncode == 0, mixed.stderr
    assert "cleartext: warning: cannot resolve nowhere.example" in mixed.stderr
    assert json.loads(mixed.stdout)["address"] == "127.0.0.99"


def test_internationalised_hostnames_are_accepted_as_their_a_labels() -> None:
    result = run_cli(
        "scan", "bücher.example", "--resolve", "bücher.example:127.0.0.99", "--ports", "25", "--no-store"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["hostname"] == "xn--bcher-kva.example"


def test_out_onto_a_file_with_another_scan_needs_append(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    base = ["scan", "127.0.0.99", "--allow-reserved", "--ports", "25", "--no-store", "--out", str(out)]
    assert run_cli(*base).returncode == 0
    first = out.read_bytes()
    assert first.count(b"\n") == 1
    again = run_cli(*base)
    assert_one_line_error(again, f"{out} already holds records", "--append", "--resume")
    assert out.read_bytes() == first  # nothing lost, nothing added
    appended = run_cli(*base, "--append")
    assert appended.returncode == 0, appended.stderr
    assert out.read_bytes().startswith(first) and out.read_bytes().count(b"\n") == 2
    resumed = run_cli(*base, "--resume")  # the scan that wrote it is complete: nothing more to do
    assert resumed.returncode == 0, resumed.stderr
    assert out.read_bytes().count(b"\n") == 2


def test_serve_on_a_port_in_use_says_so_in_one_line() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        port = holder.getsockname()[1]
        # The session's store exists once any test has scanned into it; make sure it does.
        assert run_cli("scan", "127.0.0.99", "--allow-reserved", "--ports", "25").returncode == 0
        result = subprocess.run(
            [sys.executable, "-m", "cleartext", "serve", "--store", str(TEST_STORE), "--port", str(port)],
            capture_output=True, text=True, timeout=60, cwd=ROOT, stdin=subprocess.DEVNULL,
        )
    finally:
        holder.close()
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")
