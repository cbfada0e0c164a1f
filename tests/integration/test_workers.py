"""`cleartext scan --workers N`: the per-endpoint work on N processes, everything exactly-once in one.

Through the real CLI, against the real lab (Dovecot, Postfix on 127.0.0.2–5) and against loopback ranges
where nothing listens (127.0.9.0/24: every connection refused at once) or small servers started here on
127.0.0.1. Processes are found and checked by pid in /proc. All traffic stays on this machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cleartext.scan.workers import worker_of
from tests.conftest import ROOT, overlap_servers, parse_records, run_cli

FAST = ["--allow-reserved", "--connect-timeout", "1", "--read-timeout", "1", "--no-progress"]
LAB_FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--no-progress"]
HOSTS = {  # Dovecot and Postfix: they answer every connection, so verdicts do not depend on timing
    "plain.lab.example": "127.0.0.2",
    "mail.lab.example": "127.0.0.3",
    "secure.lab.example": "127.0.0.4",
    "legacy.lab.example": "127.0.0.5",
}

Verdict = tuple[str, int, str, frozenset[str]]


def verdicts(records: list[dict[str, Any]]) -> Counter[Verdict]:
    return Counter(
        (r["address"], r["port"], r["status"], frozenset(f["code"] for f in r["findings"])) for r in records
    )


def endpoints(records: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    return Counter((r["address"], r["port"]) for r in records)


def children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc: no psutil needed)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for a reaper (the container's init may not reap promptly)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def wait_dead(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def start_scan(args: list[str], store: Path | str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cleartext", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CLEARTEXT_STORE": str(store)},
    )


def wait_for_lines(out: Path, lines: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < lines):
        time.sleep(0.05)
    assert out.exists() and len(out.read_text().splitlines()) >= lines, "the scan did not get going"


def stored(store: Path) -> tuple[int, list[tuple[str, int]], bool]:
    """(records counted, endpoints listed, finished) of the one scan in the store."""
    from cleartext.store import open_store

    st = open_store(str(store), create=False)
    try:
        (info,) = st.scans()
        listed = [(r.observation.address, r.observation.port) for r in st.records(info.scan_id)]
        return st.count(info.scan_id), listed, info.finished_at is not None
    finally:
        st.close()


def resume_to_the_end(args: list[str], out: Path, store: Path, total: int) -> Counter[tuple[str, int]]:
    """``cleartext <args> --resume``; then the output holds all ``total`` endpoints, each exactly once."""
    result = run_cli(*args, "--resume", *FAST, env={"CLEARTEXT_STORE": str(store)})
    assert result.returncode == 0, result.stderr
    counts = endpoints(parse_records(out.read_text()))
    assert len(counts) == total, "nothing lost"
    assert max(counts.values()) == 1, "nothing twice"
    return counts


# --- the same verdicts, every endpoint once ---------------------------------------------------------------


def test_two_workers_give_the_same_verdicts_as_one_process(lab: dict[str, Any], tmp_path: Path) -> None:
    args = ["scan", *HOSTS, *LAB_FAST, "--ca-file", lab["ca_file"]]
    for host, address in HOSTS.items():
        args += ["--resolve", f"{host}:{address}"]
    runs = {}
    for workers in (1, 2):
        out, store = tmp_path / f"w{workers}.jsonl", tmp_path / f"w{workers}.duckdb"
        result = run_cli(*args, "--workers", str(workers), "--out", str(out), "--store", str(store))
        assert result.returncode == 0, result.stderr
        records = parse_records(out.read_text())
        assert len(records) == len(HOSTS) * 7 and max(endpoints(records).values()) == 1
        count, listed, finished = stored(store)
        assert count == len(records) and finished
        assert sorted(listed) == sorted(endpoints(records)), "the store holds exactly the output's endpoints"
        runs[workers] = verdicts(records)
    assert runs[2] == runs[1]
    # The lab's profiles are there, not just statuses: the comparison is of real findings.
    assert ("127.0.0.2", 143, "success", frozenset({"cleartext-login", "no-tls"})) in runs[2]
    assert any(a == "127.0.0.5" and "legacy-tls" in codes for a, _, _, codes in runs[2])


def test_records_are_whole_and_carry_their_findings_through_the_store(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    """What the worker rendered (JSON line) and what it pickled (the store's Record) agree."""
    from cleartext.store import open_store

    out, store = tmp_path / "scan.jsonl", tmp_path / "store.duckdb"
    args = ["127.0.0.3", "127.0.0.5", *LAB_FAST, "--workers", "2", "--out", str(out), "--store", str(store)]
    result = run_cli("scan", *args)
    assert result.returncode == 0, result.stderr
    lines = {(r["address"], r["port"]): r for r in parse_records(out.read_text())}
    st = open_store(str(store), create=False)
    try:
        (info,) = st.scans()
        for record in st.records(info.scan_id):
            line = lines[(record.observation.address, record.observation.port)]
            assert record.observation.status.value == line["status"]
            assert sorted(f.code for f in record.findings) == sorted(f["code"] for f in line["findings"])
    finally:
        st.close()


def test_workers_zero_means_one_per_usable_cpu(tmp_path: Path) -> None:
    result = run_cli("scan", "127.0.9.0/28", "--ports", "25,993", "--workers", "0", "--no-store", *FAST)
    assert result.returncode == 0, result.stderr
    records = parse_records(result.stdout)
    assert len(records) == 32 and max(endpoints(records).values()) == 1


# --- usage errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "-1"], "invalid --workers -1"),
        (["--workers", "2", "--broker", "redis://127.0.0.1:1/0"], "--workers is for a scan on this machine"),
    ],
)
def test_bad_workers_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = run_cli("scan", "127.0.9.0/30", "--ports", "25", *FAST, *args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and result.stdout == ""
    assert len(lines) == 1 and lines[0].startswith("cleartext: error: ") and message in lines[0], lines


# --- kill safety -----------------------------------------------------------------------------------------


def test_sigkill_of_the_parent_takes_the_workers_and_resume_is_exact(tmp_path: Path) -> None:
    out, store = tmp_path / "scan.jsonl", tmp_path / "store.duckdb"
    args = ["scan", "127.0.9.0/24", "--ports", "25,993", "--rate", "150", "--out", str(out), "--workers", "2"]
    proc = start_scan([*args, *FAST], store)
    try:
        wait_for_lines(out, 40)
        workers = children(proc.pid)
        assert len(workers) >= 2, "two workers (and multiprocessing's resource tracker)"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert wait_dead(workers, 5) == [], "a worker outlived its parent"
    before = len(out.read_text().splitlines())
    assert 0 < before < 512, "killed mid-scan"
    counts = resume_to_the_end(args, out, store, 512)
    count, listed, finished = stored(store)
    assert count == 512 and finished and sorted(listed) == sorted(counts)


def test_sigterm_stops_cleanly_and_resume_completes(tmp_path: Path) -> None:
    out, store = tmp_path / "scan.jsonl", tmp_path / "store.duckdb"
    args = ["scan", "127.0.9.0/24", "--ports", "25", "--rate", "60", "--out", str(out), "--workers", "2"]
    proc = start_scan([*args, *FAST], store)
    try:
        wait_for_lines(out, 20)
        workers = children(proc.pid)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted; --resume continues" in stderr and "Traceback" not in stderr
    assert wait_dead(workers, 1) == [], "the parent reaped its workers before it exited"
    assert Path(f"{out}.state").exists()
    resume_to_the_end(args, out, store, 256)


def test_a_worker_that_dies_ends_the_scan_with_one_line_and_resume_completes(tmp_path: Path) -> None:
    out, store = tmp_path / "scan.jsonl", tmp_path / "store.duckdb"
    args = ["scan", "127.0.9.0/24", "--ports", "25", "--rate", "60", "--out", str(out), "--workers", "2"]
    proc = start_scan([*args, *FAST], store)
    try:
        wait_for_lines(out, 20)
        # The workers are the spawned interpreters, not multiprocessing's resource tracker.
        workers = [p for p in children(proc.pid) if b"spawn_main" in _cmdline(p)]
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        _, stderr = proc.communicate(timeout=15)  # must not hang
    finally:
        proc.kill()
    assert proc.returncode == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {workers[0]}) was killed by SIGKILL" in lines[0], stderr
    assert "--resume continues" in lines[0]
    assert wait_dead(workers, 1) == []
    kept = endpoints(parse_records(out.read_text()))
    assert 0 < len(kept) < 256 and max(kept.values()) == 1
    resume_to_the_end(args, out, store, 256)
    count, _, finished = stored(store)
    assert count == 256 and finished


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


# --- politeness across workers ---------------------------------------------------------------------------


def test_every_port_of_an_address_goes_to_one_worker() -> None:
    # Stable across processes (no PYTHONHASHSEED in it), and spread over the workers.
    assert worker_of("127.0.0.1", 4) == worker_of("127.0.0.1", 4)
    spread = Counter(worker_of(f"10.0.{i // 256}.{i % 256}", 4) for i in range(4096))
    assert set(spread) == {0, 1, 2, 3} and min(spread.values()) > 800
    code = "from cleartext.scan.workers import worker_of; print(worker_of('192.0.2.7', 7))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, env={**os.environ}
    )
    assert int(other.stdout) == worker_of("192.0.2.7", 7)


@pytest.fixture
def slow_servers() -> Iterator[tuple[list[int], dict[str, int]]]:
    """Six SMTP servers on 127.0.0.1 that answer after 0.5 s and record how many clients overlap."""
    with overlap_servers(6, 0.5) as servers:
        yield servers


def test_per_host_limit_holds_across_workers(slow_servers: tuple[list[int], dict[str, int]]) -> None:
    """Six ports of one address, two workers, --per-host 2: never more than two connections at once.

    Had the ports been spread over the workers, each worker's own limit of 2 would allow 4.
    """
    ports, state = slow_servers
    spec = ",".join(f"{p}=smtp" for p in ports)
    result = run_cli("scan", "127.0.0.1", "--ports", spec, "--per-host", "2", "--workers", "2", *FAST)
    assert result.returncode == 0, result.stderr
    assert [r["status"] for r in parse_records(result.stdout)] == ["refused-by-policy"] * 6
    assert state["max"] == 2
    state["max"] = 0
    result = run_cli("scan", "127.0.0.1", "--ports", spec, "--per-host", "0", "--workers", "2", *FAST)
    assert result.returncode == 0, result.stderr
    assert state["max"] == 6, "without the limit all six ports are probed at once"


def test_rate_is_shared_not_multiplied() -> None:
    """--rate is the whole scan's: 64 connections at 40/s take ~1.6 s whatever the number of workers."""
    start = time.monotonic()
    result = run_cli("scan", "127.0.9.0/26", "--ports", "25", "--rate", "40", "--workers", "2", *FAST)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr
    assert len(parse_records(result.stdout)) == 64
    assert elapsed >= 64 / 40 - 0.2


def test_opt_out_reaches_the_workers_within_a_second(tmp_path: Path) -> None:
    exclude = tmp_path / "optout.txt"
    exclude.write_text("# nobody yet\n")
    out = tmp_path / "scan.jsonl"
    args = ["scan", "127.0.9.0/24", "--ports", "25", "--rate", "100", "--exclude", str(exclude)]
    started = time.time()
    proc = start_scan([*args, "--out", str(out), "--workers", "2", *FAST], "none")
    try:
        wait_for_lines(out, 20)
        exclude.write_text("127.0.9.0/24  # the whole range opts out\n")
        changed = time.time()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    records = parse_records(out.read_text())
    by_status = Counter(r["status"] for r in records)
    # After the change, new connections stop within a second (rate 100/s, plus the parent's slack).
    assert by_status["refused"] <= (changed - started + 1.0) * 100 + 10, by_status
    assert by_status["refused"] >= 20
    assert all(r["connections"] == 0 for r in records if r["status"] == "blocklisted")
    assert max(endpoints(records).values()) == 1
