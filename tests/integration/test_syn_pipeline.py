"""Two stages for real: zmap or masscan finds the open ports, cleartext assesses exactly those.

Two network namespaces of the test's own, joined by a veth pair on the RFC 2544 benchmarking range: the
scanner's side has 198.18.0.1/24; the targets' side answers for every address of 198.18.0.128/26 (routed
to its loopback) with SMTP on 25 and POP3 on 110 (tests/syn_targets.py). The SYN scanner's packets go
to the veth and nowhere else: its side has no other interface and no route beyond 198.18.0.0/24.

The same opt-out file serves both stages (zmap's -b, masscan's --excludefile, cleartext's --exclude).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces and raw sockets need root")

NETNS = ROOT / "lab" / "netns.py"
TARGETS = "198.18.0.128/26"
SCANNER = "198.18.0.1"
OPTED_OUT = "198.18.0.130"
CLEARTEXT = [sys.executable, "-m", "cleartext"]
FAST = [
    "--connect-timeout",
    "2",
    "--read-timeout",
    "3",
    "--endpoint-timeout",
    "20",
    "--no-store",
    "--no-progress",
    "--max-connections",
    "1",
]


def sh(ns: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A shell command line (a pipeline) inside namespace ``ns``."""
    return subprocess.run(
        [sys.executable, str(NETNS), "exec", ns, "--", "bash", "-c", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tag = secrets.token_hex(2)
    a, b = f"ct-syn-a-{tag}", f"ct-syn-b-{tag}"
    va, vb = f"ct-va{tag}", f"ct-vb{tag}"
    server: subprocess.Popen[str] | None = None
    try:
        for ns in (a, b):
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("link", "add", va, "type", "veth", "peer", "name", vb)
        ip("link", "set", va, "netns", a)
        ip("link", "set", vb, "netns", b)
        ip("-n", a, "addr", "add", f"{SCANNER}/24", "dev", va)
        ip("-n", b, "addr", "add", "198.18.0.254/24", "dev", vb)
        ip("-n", a, "link", "set", va, "up")
        ip("-n", b, "link", "set", vb, "up")
        ip("-n", b, "route", "add", "local", TARGETS, "dev", "lo")
        mac = (
            subprocess.run(
                ["ip", "-n", b, "-o", "link", "show", vb],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            .stdout.split("link/ether")[1]
            .split()[0]
        )
        server = subprocess.Popen(
            [
                sys.executable,
                str(NETNS),
                "exec",
                b,
                "--",
                sys.executable,
                str(ROOT / "tests" / "syn_targets.py"),
                "--seconds",
                "300",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        optout = tmp_path_factory.mktemp("syn") / "optout.txt"
        optout.write_text(f"# the same file for both stages\n{OPTED_OUT}/32\n")
        yield {"scanner": a, "targets": b, "iface": va, "mac": mac, "optout": optout}
    finally:
        if server is not None:  # the one process this fixture started (its children die with it)
            server.terminate()
            server.wait(10)
        for ns in (a, b):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith('{"version"')]


def expected(port: int) -> set[tuple[str, int]]:
    import ipaddress

    return {(str(a), port) for a in ipaddress.ip_network(TARGETS) if str(a) != OPTED_OUT}


@pytest.mark.skipif(shutil.which("zmap") is None, reason="zmap not installed (scripts/install-system-deps)")
def test_zmap_piped_into_cleartext(wire: dict[str, Any]) -> None:
    zmap = (
        f"zmap -p 25 {TARGETS} -i {wire['iface']} -S {SCANNER} -G {wire['mac']} -r 500 -P 2 -c 2 -q "
        f"-b {wire['optout']} --output-fields=saddr,sport -o -"
    )
    scan = (
        f"{' '.join(CLEARTEXT)} scan --endpoints - --allow-reserved --exclude {wire['optout']} "
        f"{' '.join(FAST)}"
    )
    t0 = time.monotonic()
    result = sh(wire["scanner"], f"set -o pipefail; {zmap} | {scan}", timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    got = records(result.stdout)
    assert {(r["address"], r["port"]) for r in got} == expected(25)
    assert all(r["status"] == "success" and r["login"]["exposed"] for r in got)
    assert time.monotonic() - t0 < 170


@pytest.mark.skipif(shutil.which("masscan") is None, reason="masscan not installed (install-system-deps)")
@pytest.mark.parametrize("flag", ["-oL", "-oJ", "-oG"])
def test_masscan_output_file_into_cleartext(wire: dict[str, Any], tmp_path: Path, flag: str) -> None:
    listing = tmp_path / f"masscan{flag}.out"
    masscan = (
        f"timeout 60 masscan {TARGETS} -p25,110 --interface {wire['iface']} "
        f"--router-mac {wire['mac']} --adapter-ip {SCANNER} --rate 500 --retries 2 --wait 2 "
        f"--excludefile {wire['optout']} {flag} {listing}"
    )
    found = sh(wire["scanner"], masscan + " >/dev/null 2>&1; test -s " + str(listing), timeout=120)
    assert found.returncode == 0, "masscan wrote nothing"
    scan = f"{' '.join(CLEARTEXT)} scan --endpoints {listing} --allow-reserved {' '.join(FAST)}"
    result = sh(wire["scanner"], scan, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    got = {(r["address"], r["port"]): r for r in records(result.stdout)}
    assert set(got) == expected(25) | expected(110)
    assert all(r["login"]["exposed"] for r in got.values())
    assert {r["protocol"] for r in got.values()} == {"smtp", "pop3"}
