"""The guard against scanning the Internet by mistake (docs/operating.md, "The Internet-scale guard").

`cleartext scan 1.2.3.4/0` (meant: /32) must end at once with exit 2 and one line, before any socket
exists: the refused runs are traced with strace, and a socket of an Internet family (or a connect) in
the trace fails the test. Runs that pass the guard use reserved ranges with --allow-reserved, every
address of which is on the opt-out list, inside the test session's network namespace (loopback only):
no connection is even attempted.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli

# The IPv4 space, and 10/8 + 172.16/12: 16,777,216 + 1,048,576 addresses, just over a /8.
OVER_A_SLASH_8 = ["10.0.0.0/8", "172.16.0.0/12", "--allow-reserved"]


def traced_cli(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the real CLI under strace; return its result and every Internet socket or connect it made."""
    trace = tmp_path / "trace.txt"
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=socket,connect", "-o", str(trace),
         sys.executable, "-m", "cleartext", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1", "CLEARTEXT_STORE": str(tmp_path / "store.duckdb")},
    )
    calls = trace.read_text().splitlines()
    # The trace names every socket and connect of every thread: Internet families are what a scan, a
    # DNS lookup or a broker connection would need (the C library's own AF_UNIX lookups, nscd, are not).
    internet = [c for c in calls if re.search(r"socket\(AF_INET6?,|connect\(\d+, \{sa_family=AF_INET6?,", c)]
    return result, internet


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1.2.3.4/0"], "1.2.3.4/0 covers 4,294,967,296 addresses (did you mean 1.2.3.4/32?)"),
        (["8.8.8.8", "1.0.0.0/7", "--ports", "25"], "1.0.0.0/7 covers 33,554,432 addresses"),
        (["::/64", "--ports", "993"], "::/64 covers 18,446,744,073,709,551,616 addresses"),
        ([*OVER_A_SLASH_8], "the targets cover 17,825,792 addresses"),
        (["0.0.0.0/0", "--internet-scale"], "needs an opt-out file: --exclude FILE"),
        # The distributed coordinator: refused before it reaches the broker or the store.
        (
            ["0.0.0.0/0", "--broker", "redis://127.0.0.1:9/0", "--store", "postgresql://127.0.0.1:9/x"],
            "pass --internet-scale and an opt-out file",
        ),
    ],
)
def test_internet_scale_scan_is_refused_before_any_socket(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result, sockets = traced_cli(tmp_path, "scan", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cleartext: error: "), result.stderr
    assert message in lines[0]
    assert result.stdout == ""
    assert sockets == [], "the guard must run before any socket exists"
    assert not (tmp_path / "store.duckdb").exists()


def test_the_trace_sees_a_scan_that_passes_the_guard(tmp_path: Path) -> None:
    """The witness above can fail: a scan the guard lets through does show up in the trace."""
    result, sockets = traced_cli(
        tmp_path, "scan", "127.0.0.99", "--allow-reserved", "--ports", "25", "--no-store",
        "--connect-timeout", "1",
    )
    assert result.returncode == 0, result.stderr
    assert any("127.0.0.99" in call and "connect(" in call for call in sockets), sockets


def test_confirmed_internet_scale_scan_gets_the_conservative_rate(tmp_path: Path) -> None:
    optout = tmp_path / "optout.txt"
    optout.write_text("10.0.0.0/8\n172.16.0.0/12\n")  # everything: no connection is attempted
    store = tmp_path / "store.duckdb"
    common = [*OVER_A_SLASH_8, "--internet-scale", "--exclude", str(optout), "--ports", "25"]
    # One shard in a hundred thousand: ~180 positions of the order, each passed over unscanned.
    result = run_cli("scan", *common, "--shard", "0/100000", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "Internet-scale scan of 17,825,792 addresses at most 1,000 new connections per second" in (
        result.stderr
    )
    assert "(--rate to change)" in result.stderr
    assert result.stdout == ""  # excluded addresses get no record
    faster = run_cli("scan", *common, "--shard", "1/100000", "--store", str(store), "--rate", "5000")
    assert faster.returncode == 0, faster.stderr
    assert "at most 5,000 new connections per second" in faster.stderr
    listed = run_cli("scans", "--json", "--store", str(store))
    rates = sorted(json.loads(line)["params"]["rate"] for line in listed.stdout.splitlines())
    assert rates == [1000.0, 5000.0]


def test_a_slash_8_and_below_need_no_confirmation(tmp_path: Path) -> None:
    optout = tmp_path / "optout.txt"
    optout.write_text("10.0.0.0/8\n")
    result = run_cli(
        "scan", "10.0.0.0/8", "--allow-reserved", "--exclude", str(optout), "--ports", "25",
        "--shard", "0/100000", "--no-store",
    )
    assert result.returncode == 0, result.stderr
    assert "Internet-scale" not in result.stderr
