"""Distributed scans end to end: a coordinator, real `cleartext worker` processes, Redis, PostgreSQL.

Everything runs on this machine: Redis and PostgreSQL are our own servers on 127.0.0.1
(tests/distributed_cluster.py, tests/pg.py), and the targets are loopback ranges where nothing listens
(127.0.9.0/24: every connection is refused at once), with --rate to make a scan last a few seconds.
Faults (a worker killed, Redis or PostgreSQL restarted) are in test_distributed_faults.py.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ROOT, run_cli
from tests.distributed_cluster import (
    RedisServer,
    Workers,
    cli_env,
    redis_server,
    scan_row,
    shard_rows,
    stored_endpoints,
    wait_until,
    workers,
)
from tests.pg import PostgresServer, free_port, postgres_server

FAST = ["--allow-reserved", "--connect-timeout", "1", "--read-timeout", "1"]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def broker() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def cluster(pg: PostgresServer, broker: RedisServer) -> Iterator[tuple[str, Workers]]:
    """A fresh database, an empty queue, and two workers (stopped at the end)."""
    broker.client().flushall()
    url = pg.create_database()
    with workers(broker.url, url) as pool:
        pool.start(2)
        yield url, pool


def submit(
    broker: RedisServer, store: str, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cleartext", "scan", *args, "--broker", broker.url, "--store", store],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=cli_env(),
    )


def records_started(url: str, scan_id: str) -> list[tuple[str, str, dt.datetime | None]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT address, status, started_at FROM records WHERE scan_id = %s", (scan_id,)
        ).fetchall()
    return [(str(a), str(s), t) for a, s, t in rows]


def test_usage_errors_are_one_line(pg: PostgresServer, broker: RedisServer, tmp_path: Path) -> None:
    """Wrong stores, brokers and options: one line on stderr, exit 2, nothing queued or stored."""
    url = pg.create_database()
    duckdb = str(tmp_path / "x.duckdb")
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    scan = ["scan", "127.0.9.0/30", *FAST, "--broker"]
    cases = [
        ([*scan, broker.url, "--store", duckdb], "postgresql://"),
        ([*scan, "http://127.0.0.1:1", "--store", url], "redis://"),
        ([*scan, broker.url, "--store", url, "--out", "x.jsonl"], "--out"),
        ([*scan, nobody, "--store", url], "cannot reach"),
        (["worker", "--broker", broker.url, "--store", duckdb], "postgresql://"),
        (["status", "nope", "--store", url], "no scan 'nope'"),
    ]
    for args, expected in cases:
        result = run_cli(*args, timeout=60, env={"CLEARTEXT_STORE": "none"})
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and expected in result.stderr, (args, result.stderr)
    assert broker.client().keys("cleartext:*") == []


def test_scan_across_workers_with_a_shared_rate(cluster: tuple[str, Workers], broker: RedisServer) -> None:
    """Four shards over two workers: every endpoint stored once, counted once, at the scan's rate."""
    url, pool = cluster
    rate = 60
    started = time.monotonic()
    result = submit(
        broker, url, "127.0.9.0/26", "--ports", "25,993", *FAST, "--rate", str(rate), "--shards", "4",
        "--wait", "--progress-interval", "1",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr + pool.all_logs()
    scan_id = result.stdout.strip()
    assert "128 endpoints in 4 shards queued" in result.stderr
    assert "128 endpoints: 128 refused" in result.stderr and "finished" in result.stderr

    endpoints = stored_endpoints(url, scan_id)
    assert len(endpoints) == 128 and len({(a, p) for a, p, _ in endpoints}) == 128
    assert Counter(p for _, p, _ in endpoints) == {25: 64, 993: 64}
    row = scan_row(url, scan_id)
    assert row["finished_at"] is not None and row["counts"] == {"refused": 128}
    assert row["params"]["distributed"] is True and row["params"]["shards"] == 4
    shards = shard_rows(url, scan_id)
    assert [s["state"] for s in shards] == ["done"] * 4 and sum(s["size"] for s in shards) == 128
    pids = {s["token"].split("/")[1] for s in shards}
    assert len(pids) == 2, "both workers took shards"

    # The rate is the whole scan's: two workers together stay at 60 new connections a second (each
    # refused endpoint is one connection). Alone, each would pace itself at 60/s: twice as fast.
    times = sorted(t.timestamp() for _, _, t in records_started(url, scan_id) if t is not None)
    span = times[-1] - times[0]
    assert span >= (128 - 12) / rate - 0.2, span
    busiest = max(sum(1 for t in times if s <= t < s + 1.0) for s in times)
    assert busiest <= rate * 1.25 + 6, busiest
    assert elapsed < 60

    status = run_cli("status", scan_id, "--store", url, "--json", timeout=60)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["distributed"] is True and info["finished_at"] is not None
    assert (info["shards"], info["shards_done"], info["shards_running"], info["shards_queued"]) == (
        4,
        4,
        0,
        0,
    )
    assert (info["endpoints"], info["done"], info["stored"], info["counts"]) == (
        128,
        128,
        128,
        {"refused": 128},
    )
    text = run_cli("status", scan_id, "--store", url, timeout=60)
    assert "4 done, 0 running, 0 stalled, 0 queued" in text.stdout
    assert "128 of 128 done (100.0%): 128 stored" in text.stdout and "128 refused" in text.stdout


def test_status_while_running(cluster: tuple[str, Workers], broker: RedisServer) -> None:
    """`cleartext status` from another process mid-scan: shards running and queued, a rate, an ETA."""
    url, _ = cluster
    # 256 endpoints at 20/s: ~13 s, long enough for two `status` runs (each a new interpreter, slow on a
    # loaded machine) to land while it runs.
    result = submit(broker, url, "127.0.9.0/24", "--ports", "25", *FAST, "--rate", "20", "--shards", "8")
    assert result.returncode == 0, result.stderr
    scan_id = result.stdout.strip()

    def midway() -> dict | None:
        status = run_cli("status", scan_id, "--store", url, "--json", timeout=60)
        info = json.loads(status.stdout)
        midway = info["shards_done"] >= 1 and info["shards_queued"] >= 1 and info["shards_running"] >= 1
        return info if midway else None

    info = wait_until(midway, 30, step=0.3, what="a scan half done")
    assert info["finished_at"] is None
    assert 0 < info["done"] < 256 and info["rate"] > 0 and info["eta_s"] is not None
    text = run_cli("status", scan_id, "--store", url, timeout=60).stdout
    assert "running for" in text and "ETA" in text
    wait_until(lambda: scan_row(url, scan_id)["finished_at"], 60, step=0.2, what="the scan to finish")
    assert len(stored_endpoints(url, scan_id)) == 256


def test_an_opt_out_reaches_every_worker_within_two_seconds(
    cluster: tuple[str, Workers], broker: RedisServer, tmp_path: Path
) -> None:
    """The coordinator (--wait) publishes each change of --exclude; all workers obey within ~2 s."""
    url, pool = cluster
    exclude = tmp_path / "optout.txt"
    exclude.write_text("# nobody yet\n")
    rate = 50
    coordinator = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cleartext",
            "scan",
            "127.0.9.0/24",
            "--ports",
            "25",
            *FAST,
            "--rate",
            str(rate),
            "--shards",
            "4",
            "--exclude",
            str(exclude),
            "--wait",
            "--broker",
            broker.url,
            "--store",
            url,
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    try:
        scan_id = wait_until(lambda: coordinator.stdout.readline().strip(), 30, what="the scan id")  # type: ignore[union-attr]
        wait_until(lambda: len(stored_endpoints(url, scan_id)) >= 30, 30, step=0.1, what="30 records")
        exclude.write_text("127.0.9.0/24  # the whole range opts out\n")
        changed = dt.datetime.now(dt.UTC).timestamp()
        _, stderr = coordinator.communicate(timeout=90)
    finally:
        if coordinator.poll() is None:
            coordinator.kill()
            coordinator.wait(10)
    assert coordinator.returncode == 0, stderr + pool.all_logs()
    assert "exclusion list" in stderr and "published" in stderr
    records = records_started(url, scan_id)
    late = [
        (a, t) for a, s, t in records if s == "refused" and t is not None and t.timestamp() > changed + 2.0
    ]
    assert late == [], f"connections more than 2 s after the opt-out: {late[:5]}"
    statuses = Counter(s for _, s, _ in records)
    first = min(t.timestamp() for _, _, t in records if t is not None)
    # At 50 connections/s for the whole scan, the connections made before the opt-out took effect
    # everywhere (2 s after the change) are at most that many seconds' worth, plus a burst.
    assert 30 <= statuses["refused"] <= (changed + 2.0 - first) * rate + 10, (changed - first, statuses)
    # Endpoints already waiting for a connection get a `blocklisted` record; the rest are passed over.
    assert len(records) == len({a for a, _, _ in records}) <= 256
    assert set(statuses) <= {"refused", "blocklisted"}
    row = scan_row(url, scan_id)
    assert row["finished_at"] is not None and sum(row["counts"].values()) == len(records)
    info = json.loads(run_cli("status", scan_id, "--store", url, "--json", timeout=60).stdout)
    assert info["done"] == 256 and info["stored"] + info["skipped"] == 256


def test_shards_run_twice_leave_each_endpoint_once(cluster: tuple[str, Workers], broker: RedisServer) -> None:
    """Every shard of a finished scan delivered and run again (`requeue --all`): nothing doubles."""
    url, _ = cluster
    result = submit(broker, url, "127.0.9.0/27", "--ports", "25,993", *FAST, "--shards", "3", "--wait")
    assert result.returncode == 0, result.stderr
    scan_id = result.stdout.strip()
    first = sorted(stored_endpoints(url, scan_id))
    assert len(first) == 64
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(
            "UPDATE shards SET state = 'queued', done = 0, checkpoint = NULL, counts = NULL "
            "WHERE scan_id = %s",
            (scan_id,),
        )
        conn.execute("UPDATE scans SET finished_at = NULL, counts = NULL WHERE scan_id = %s", (scan_id,))
        before = conn.execute("SELECT max(started_at) FROM records WHERE scan_id = %s", (scan_id,)).fetchone()
    again = run_cli("requeue", scan_id, "--all", "--broker", broker.url, "--store", url, timeout=60)
    assert again.returncode == 0 and "3 shard(s)" in again.stderr, again.stderr
    wait_until(lambda: scan_row(url, scan_id)["finished_at"], 60, step=0.2, what="the second run to finish")
    assert sorted(stored_endpoints(url, scan_id)) == first, "each endpoint once, none lost"
    assert scan_row(url, scan_id)["counts"] == {"refused": 64}
    assert [s["attempts"] for s in shard_rows(url, scan_id)] == [2, 2, 2]
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        after = conn.execute("SELECT min(started_at) FROM records WHERE scan_id = %s", (scan_id,)).fetchone()
    assert before is not None and after is not None and after[0] > before[0], "every record was rewritten"


def test_a_large_plan_travels_through_the_store(
    pg: PostgresServer, broker: RedisServer, tmp_path: Path
) -> None:
    """A target file too large to repeat in every message: messages carry no plan, workers read it."""
    broker.client().flushall()
    url = pg.create_database()
    targets = tmp_path / "targets.txt"
    # 2,000 single addresses that do not collapse into networks (every other address): a plan of
    # about 40 KB, beyond what a message carries.
    targets.write_text("".join(f"127.0.{10 + i // 128}.{2 * (i % 128)}\n" for i in range(2000)))
    with workers(broker.url, url) as pool:
        result = submit(broker, url, f"@{targets}", "--ports", "25", *FAST, "--shards", "2")
        assert result.returncode == 0, result.stderr
        scan_id = result.stdout.strip()
        queued = broker.client().hvals("cleartext:cleartext-shards.msgs")
        assert len(queued) == 2 and all(json.loads(m)["args"][0]["plan"] is None for m in queued)
        pool.start(1)
        wait_until(lambda: scan_row(url, scan_id)["finished_at"], 90, step=0.3, what="the scan to finish")
    assert len(stored_endpoints(url, scan_id)) == 2000


def test_status_of_a_scan_that_was_not_distributed(tmp_path: Path) -> None:
    """`cleartext status` on any store: a one-machine scan shows what the store has."""
    store = str(tmp_path / "store.duckdb")
    scan = run_cli("scan", "127.0.9.0/30", "--ports", "25", *FAST, "--no-progress", "--store", store)
    assert scan.returncode == 0, scan.stderr
    scan_id = json.loads(run_cli("scans", "--store", store, "--json").stdout.splitlines()[0])["scan_id"]
    status = run_cli("status", scan_id, "--store", store, "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["distributed"] is False and info["stored"] == 4 and info["counts"] == {"refused": 4}
    text = run_cli("status", scan_id, "--store", store).stdout
    assert "(one machine)" in text and "4 stored" in text and "4 refused" in text
