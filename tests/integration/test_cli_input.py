"""Bad input never scans: a one-line error on stderr, exit status 2, nothing on stdout.

Every otherwise-valid target here is 127.0.0.99 (loopback, nothing listens), so even a regression that
scanned would send nothing beyond this machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


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
