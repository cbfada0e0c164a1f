"""The scan engine through the real CLI: shards, resume after SIGKILL, exclusions, rate and per-host limits,
progress lines, a full disk and a closed pipe.

Targets are loopback ranges where nothing listens (127.0.9.0/24 and neighbours: every connection is
refused at once), plus small servers these tests start on 127.0.0.1 — all traffic stays on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, overlap_servers, parse_records, run_cli

FAST = ["--allow-reserved", "--connect-timeout", "1", "--read-timeout", "1", "--no-progress"]


def endpoints(records: list[dict]) -> list[tuple[str, int]]:
    return [(r["address"], r["port"]) for r in records]


def test_shards_together_cover_every_endpoint_exactly_once() -> None:
    seen: list[tuple[str, int]] = []
    for shard in range(3):
        result = run_cli(
            "scan", "127.0.9.0/27", "--ports", "25,993", "--seed", "11", "--shard", f"{shard}/3", *FAST
        )
        assert result.returncode == 0, result.stderr
        part = endpoints(parse_records(result.stdout))
        assert 15 <= len(part) <= 28  # about a third each
        seen += part
    assert len(seen) == 64 and len(set(seen)) == 64


def test_order_is_scattered_and_follows_the_seed() -> None:
    a = run_cli("scan", "127.0.9.0/26", "--ports", "25", "--seed", "1", "--concurrency", "1", *FAST)
    b = run_cli("scan", "127.0.9.0/26", "--ports", "25", "--seed", "2", "--concurrency", "1", *FAST)
    order_a = [r["address"] for r in parse_records(a.stdout)]
    order_b = [r["address"] for r in parse_records(b.stdout)]
    assert sorted(order_a) == sorted(order_b) and order_a != order_b
    assert order_a != sorted(order_a, key=lambda x: int(x.rsplit(".", 1)[1]))


def test_resume_after_sigkill_keeps_every_endpoint_exactly_once(tmp_path: Path) -> None:
    out = tmp_path / "scan.jsonl"
    store = tmp_path / "store.duckdb"
    args = ["scan", "127.0.9.0/24", "--ports", "25,993", "--rate", "150", "--out", str(out), *FAST]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cleartext", *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "CLEARTEXT_STORE": str(store)},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not out.exists() or out.stat().st_size < 20_000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    before = len(out.read_text().splitlines())
    assert 0 < before < 512, "killed mid-scan"
    result = run_cli(*args, "--resume", env={"CLEARTEXT_STORE": str(store)})
    assert result.returncode == 0, result.stderr
    records = parse_records(out.read_text())
    counts = Counter(endpoints(records))
    assert len(counts) == 512, "nothing lost"
    assert max(counts.values()) == 1, "nothing twice"
    # The store holds the same: one scan, continued by the resumption, every endpoint once, finished.
    from cleartext.store import open_store

    st = open_store(str(store), create=False)
    try:
        (info,) = st.scans()
        assert st.count(info.scan_id) == 512 and info.finished_at is not None
        assert sorted(
            (r.observation.address, r.observation.port) for r in st.records(info.scan_id)
        ) == sorted(counts)
    finally:
        st.close()


def test_resume_refuses_other_arguments_and_missing_state(tmp_path: Path) -> None:
    out = tmp_path / "scan.jsonl"
    assert run_cli("scan", "127.0.9.0/30", "--ports", "25", "--out", str(out), *FAST).returncode == 0
    other = run_cli("scan", "127.0.9.0/29", "--ports", "25", "--out", str(out), "--resume", *FAST)
    assert other.returncode == 2 and "other targets" in other.stderr
    missing = run_cli(
        "scan", "127.0.9.0/30", "--ports", "25", "--out", str(tmp_path / "x.jsonl"), "--resume", *FAST
    )
    assert missing.returncode == 2 and "nothing to resume" in missing.stderr
    stdout = run_cli("scan", "127.0.9.0/30", "--ports", "25", "--resume", *FAST)
    assert stdout.returncode == 2 and "--resume needs --out" in stdout.stderr
    # Resuming a finished scan adds nothing.
    again = run_cli("scan", "127.0.9.0/30", "--ports", "25", "--out", str(out), "--resume", *FAST)
    assert again.returncode == 0 and len(out.read_text().splitlines()) == 4


def test_exclusion_file_is_reread_while_scanning(tmp_path: Path) -> None:
    exclude = tmp_path / "optout.txt"
    exclude.write_text("# nobody yet\n")
    out = tmp_path / "scan.jsonl"
    args = [
        "scan",
        "127.0.9.0/24",
        "--ports",
        "25",
        "--rate",
        "100",
        "--exclude",
        str(exclude),
        "--out",
        str(out),
    ]
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cleartext", *args, *FAST],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CLEARTEXT_STORE": "none"},
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 20):
        time.sleep(0.05)
    exclude.write_text("127.0.9.0/24  # the whole range opts out\n")
    changed = time.time()
    proc.wait(timeout=30)
    records = parse_records(out.read_text())
    elapsed_to_change = changed - started
    by_status = Counter(r["status"] for r in records)
    # At 100 connections/s the whole range takes 2.6 s; the opt-out came after `elapsed_to_change`
    # seconds and must stop new connections within one more second.
    assert by_status["refused"] <= (elapsed_to_change + 1.0) * 100 + 10, (elapsed_to_change, by_status)
    assert by_status["refused"] >= 20
    excluded = [r for r in records if r["status"] == "blocklisted"]
    assert excluded and all(r["connections"] == 0 for r in excluded)
    assert len({(r["address"], r["port"]) for r in records}) == len(records) <= 256


def test_rate_limit_spaces_new_connections() -> None:
    start = time.monotonic()
    result = run_cli("scan", "127.0.9.0/26", "--ports", "25", "--rate", "40", *FAST)
    elapsed = time.monotonic() - start
    assert result.returncode == 0
    assert len(parse_records(result.stdout)) == 64
    assert elapsed >= 64 / 40 - 0.2, "64 connections at 40/s cannot take less than ~1.6 s"


@pytest.fixture
def slow_servers() -> Iterator[tuple[list[int], dict[str, int]]]:
    """Four SMTP servers on 127.0.0.1 that answer after 0.3 s and record how many clients overlap."""
    with overlap_servers(4, 0.3) as servers:
        yield servers


def test_per_host_limit_caps_connections_to_one_address(
    slow_servers: tuple[list[int], dict[str, int]],
) -> None:
    ports, state = slow_servers
    spec = ",".join(f"{p}=smtp" for p in ports)
    result = run_cli("scan", "127.0.0.1", "--ports", spec, "--per-host", "2", *FAST)
    assert result.returncode == 0, result.stderr
    assert [r["status"] for r in parse_records(result.stdout)] == ["refused-by-policy"] * 4
    assert state["max"] == 2
    state["max"] = 0
    run_cli("scan", "127.0.0.1", "--ports", spec, "--per-host", "0", *FAST)
    assert state["max"] == 4, "without the limit all four ports are probed at once"


def test_progress_lines_when_not_a_terminal() -> None:
    result = run_cli(
        "scan",
        "127.0.9.0/28",
        "--ports",
        "25",
        "--allow-reserved",
        "--rate",
        "20",
        "--progress",
        "--progress-interval",
        "0.2",
        "--connect-timeout",
        "1",
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith('{"progress"')]
    assert len(lines) >= 2
    last = lines[-1]["progress"]
    assert last["done"] == 16 and last["total"] == 16 and last["status"]["refused"] == 16
    assert all({"rate", "eta_s", "elapsed_s"} <= set(line["progress"]) for line in lines)


def test_full_disk_ends_cleanly_with_one_line() -> None:
    result = run_cli("scan", "127.0.9.0/29", "--ports", "25", "--out", "/dev/full", *FAST)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
    assert not os.path.exists("/dev/full.state")


def test_a_full_store_ends_cleanly_and_resume_scans_nothing_twice(tmp_path: Path) -> None:
    """The store's disk fills mid-scan (a 512 KB tmpfs in a mount namespace of its own): one line, exit
    1, every endpoint in the output counted, and --resume completes the scan with each endpoint once.

    The record whose batch failed is in the output already; if it were not counted as done, --resume
    would scan it again (it did, before this test).
    """
    if os.geteuid() != 0:
        pytest.skip("needs root for a tmpfs in a mount namespace")
    mnt, out = tmp_path / "mnt", tmp_path / "out.jsonl"
    mnt.mkdir()
    scan = [sys.executable, "-m", "cleartext", "scan", "127.0.8.0/22", *FAST]  # 7,168 refused endpoints
    script = f"mount -t tmpfs -o size=512k none {mnt} && exec " + " ".join(
        [*scan, "--store", str(mnt / "s.duckdb"), "--out", str(out)]
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    if "No space left" not in result.stderr and ("mount" in result.stderr or "unshare" in result.stderr):
        pytest.skip(f"no tmpfs in a mount namespace here: {result.stderr.strip()}")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], result.stderr
    kept = len(out.read_text().splitlines())
    assert 0 < kept < 7168
    assert f"; {kept} endpoints were kept; --resume continues" in lines[0]
    resumed = subprocess.run(
        [*scan, "--no-store", "--out", str(out), "--resume"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    assert resumed.returncode == 0, resumed.stderr
    got = endpoints(parse_records(out.read_text()))
    assert len(got) == len(set(got)) == 7168


def test_a_scan_too_large_for_an_old_keyed_duckdb_store_is_warned_about_first(tmp_path: Path) -> None:
    """A store made before records lost their primary key keeps its index in memory (~80 bytes per
    endpoint): 4 M endpoints into one, and the operator is told so, with what to use instead, before the
    first connection. A store made now has no such index and gets no warning."""
    import duckdb

    from cleartext.store import open_store

    old, new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    for path in (old, new):
        open_store(str(path)).close()
    with duckdb.connect(str(old)) as conn:
        conn.execute("ALTER TABLE records ADD PRIMARY KEY (scan_id, address, port)")
    argv = [sys.executable, "-m", "cleartext", "scan", "127.64.0.0/10", "--ports", "25", *FAST]
    firsts = []
    for path in (old, new):
        proc = subprocess.Popen(
            [*argv, "--store", str(path), "--out", str(tmp_path / f"{path.stem}.jsonl")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        try:
            assert proc.stderr is not None
            time.sleep(3)
            proc.send_signal(signal.SIGINT)
            rest = proc.communicate(timeout=120)[1]
        finally:
            proc.kill()
        assert "interrupted" in rest, rest
        firsts.append(rest.splitlines()[0])
    assert firsts[0].startswith("cleartext: warning: this DuckDB store (made by an earlier cleartext)")
    assert "4,194,304 endpoints" in firsts[0] and "postgresql://" in firsts[0] and "--no-store" in firsts[0]
    assert "warning" not in firsts[1], firsts[1]


def test_closed_pipe_ends_quietly() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m cleartext scan 127.0.9.0/26 --ports 25,993 {' '.join(FAST)} | head -n 2",
        shell=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert len(proc.stdout.splitlines()) == 2
    assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "3/3"], "invalid --shard"),
        (["--shard", "a/b"], "invalid --shard"),
        (["--shard", "0/0"], "invalid --shard"),
        (["--exclude", "/nonexistent/optout"], "cannot read exclusion file"),
    ],
)
def test_bad_engine_arguments(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("scan", "127.0.9.0/30", "--ports", "25", *FAST, *args)
    assert result.returncode == 2 and message in result.stderr
    assert result.stdout == ""


def test_bad_exclusion_line_names_the_line(tmp_path: Path) -> None:
    exclude = tmp_path / "optout.txt"
    exclude.write_text("127.0.9.1\nnot-an-address\n")
    result = run_cli("scan", "127.0.9.0/30", "--ports", "25", "--exclude", str(exclude), *FAST)
    assert result.returncode == 2 and f"{exclude}:2" in result.stderr


def test_scan_writes_its_records_into_the_store(tmp_path: Path) -> None:
    store = tmp_path / "results.duckdb"
    result = run_cli("scan", "127.0.9.0/29", "--ports", "25,993", "--store", str(store), *FAST)
    assert result.returncode == 0, result.stderr
    assert "in the store" in result.stderr
    listed = run_cli("scans", "--store", str(store), "--json")
    assert listed.returncode == 0, listed.stderr
    (scan,) = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()] or [None]
    assert scan is not None and scan["endpoints"] == 16 and scan["counts"] == {"refused": 16}
    assert scan["params"]["targets"] == ["127.0.9.0/29"]
    nothing = tmp_path / "none.duckdb"
    assert (
        run_cli(
            "scan", "127.0.9.0/30", "--ports", "25", "--no-store", "--store", str(nothing), *FAST
        ).returncode
        == 0
    )
    assert not nothing.exists()


def test_unusable_store_is_exit_2_before_scanning(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.duckdb"
    bad.write_text("this is not a database\n")
    result = run_cli("scan", "127.0.9.0/30", "--ports", "25", "--store", str(bad), *FAST)
    assert result.returncode == 2 and result.stderr.startswith("cleartext: error:")
    assert result.stdout == ""


def test_waiting_for_the_rate_limit_does_not_eat_the_endpoint_deadline() -> None:
    """16 endpoints at 4 connections/s take 4 s; each endpoint's own deadline is 1 s, and none expires."""
    result = run_cli(
        "scan", "127.0.9.0/28", "--ports", "25", "--rate", "4", "--endpoint-timeout", "1", *FAST
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    statuses = Counter(r["status"] for r in parse_records(result.stdout))
    assert statuses == {"refused": 16}, statuses
