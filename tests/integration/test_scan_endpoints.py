"""`cleartext scan --endpoints`: exactly the listed endpoints of the lab, from a file or stdin, resumable
from a file; bad lists are one-line errors before any packet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, TEST_STORE, parse_records, run_cli

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
LISTED = ["127.0.0.2:143", "127.0.0.3:25", "127.0.0.4:993", "127.0.0.7:2537", "127.0.0.99:25"]


def write_list(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "endpoints.txt"
    path.write_text("# discovered\n" + "\n".join(lines) + "\n")
    return path


def test_exactly_the_listed_endpoints_with_their_services(lab: dict[str, Any], tmp_path: Path) -> None:
    result = run_cli("scan", "--endpoints", str(write_list(tmp_path, LISTED)), "--ports", "2537=smtp", *FAST)
    assert result.returncode == 0, result.stderr
    got = {(r["address"], r["port"]): r for r in parse_records(result.stdout)}
    assert set(got) == {(a, int(p)) for a, _, p in (x.rpartition(":") for x in LISTED)}
    assert got[("127.0.0.4", 993)]["tls_mode"] == "implicit"
    assert got[("127.0.0.7", 2537)]["protocol"] == "smtp"
    assert got[("127.0.0.99", 25)]["status"] == "refused"
    assert got[("127.0.0.2", 143)]["login"]["exposed"] is True


def test_a_list_from_stdin(lab: dict[str, Any]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cleartext", "scan", "--endpoints", "-", *FAST],
        input="127.0.0.3:25\n[::1]:25\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "CLEARTEXT_STORE": str(TEST_STORE)},
    )
    assert result.returncode == 0, result.stderr
    got = {(r["address"], r["port"]) for r in parse_records(result.stdout)}
    assert got == {("127.0.0.3", 25), ("::1", 25)}


def test_resume_reads_the_list_again_and_scans_nothing_twice(lab: dict[str, Any], tmp_path: Path) -> None:
    listing, out = write_list(tmp_path, LISTED[:3]), tmp_path / "out.jsonl"
    first = run_cli("scan", "--endpoints", str(listing), "--out", str(out), *FAST)
    assert first.returncode == 0, first.stderr
    again = run_cli("scan", "--endpoints", str(listing), "--out", str(out), "--resume", *FAST)
    assert again.returncode == 0, again.stderr
    assert len(parse_records(out.read_text())) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoints", "{bad}"], "endpoints.txt:3: 'not an endpoint'"),
        (["--endpoints", "{missing}"], "no such file"),
        (["127.0.0.2", "--endpoints", "{good}"], "targets or --endpoints, not both"),
        (["--endpoints", "-", "--resume", "--out", "{out}"], "cannot be read again"),
        (["--endpoints", "{good}", "--list-format", "xml"], "invalid --list-format"),
        ([], "nothing to scan"),
    ],
)
def test_bad_lists_are_one_line_before_any_packet(tmp_path: Path, args: list[str], message: str) -> None:
    good = write_list(tmp_path, ["127.0.0.2:143"])
    bad = tmp_path / "bad" / "endpoints.txt"
    bad.parent.mkdir()
    bad.write_text("# x\n127.0.0.2:143\nnot an endpoint\n")
    paths = {"bad": bad, "good": good, "missing": tmp_path / "nope.txt", "out": tmp_path / "o.jsonl"}
    result = run_cli("scan", *(a.format(**paths) for a in args), *FAST)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.startswith("cleartext: error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr
    assert not parse_records(result.stdout)
