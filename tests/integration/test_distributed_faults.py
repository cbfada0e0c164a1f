"""Distributed scans under faults: a worker SIGKILLed mid-shard, Redis and PostgreSQL restarted mid-scan.

Each test runs a real scan of loopback addresses where nothing listens (every connection refused at once),
slowed by --rate so that the fault lands mid-scan, with real `cleartext worker` processes against our own
Redis and PostgreSQL servers on 127.0.0.1 (tests/distributed_cluster.py). The claim each test checks:
the scan ends, every endpoint is stored exactly once and counted once, and no worker crashed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import ROOT
from tests.distributed_cluster import (
    RedisServer,
    RestartablePostgres,
    Workers,
    cli_env,
    redis_server,
    restartable_postgres,
    scan_row,
    shard_rows,
    stored_endpoints,
    wait_until,
    workers,
)

FAST = ["--allow-reserved", "--connect-timeout", "1", "--read-timeout", "1"]
SCAN = ["127.0.9.0/24", "--ports", "25,993", *FAST]  # 512 endpoints, one connection each
OUTAGE_S = 3.0


@pytest.fixture(scope="module")
def pg() -> Iterator[RestartablePostgres]:
    with restartable_postgres() as server:
        yield server


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def cluster(pg: RestartablePostgres, broker: RedisServer) -> Iterator[tuple[str, Workers]]:
    url = pg.create_database()
    with workers(broker.url, url) as pool:
        yield url, pool


def submit(broker: RedisServer, store: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cleartext", "scan", *args, "--broker", broker.url, "--store", store],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def assert_complete(url: str, scan_id: str, pool: Workers, timeout: float = 90) -> None:
    """The scan finishes with each of its 512 endpoints stored once and counted once."""
    wait_until(lambda: scan_row(url, scan_id)["finished_at"], timeout, step=0.2, what="the scan to finish")
    endpoints = stored_endpoints(url, scan_id)
    assert len({(a, p) for a, p, _ in endpoints}) == len(endpoints) == 512, pool.all_logs()
    assert scan_row(url, scan_id)["counts"] == {"refused": 512}
    assert all(row["state"] == "done" and row["done"] == row["size"] for row in shard_rows(url, scan_id))


def test_a_worker_killed_mid_shard_has_its_shard_redone_elsewhere(
    cluster: tuple[str, Workers], broker: RedisServer
) -> None:
    url, pool = cluster
    victim, survivor = pool.start(2)
    scan_id = submit(broker, url, *SCAN, "--rate", "60", "--shards", "4")

    def victim_midway() -> dict | None:
        for row in shard_rows(url, scan_id):
            token = row["token"] or ""
            if row["state"] == "running" and f"/{victim.pid}/" in token and 0 < row["done"] < row["size"]:
                return row
        return None

    row = wait_until(victim_midway, 30, step=0.1, what="the victim's shard half done")
    pool.kill(victim)
    killed = time.monotonic()
    assert victim.returncode == -9

    def retaken() -> dict | None:
        again = shard_rows(url, scan_id)[row["shard"]]
        return again if again["attempts"] >= 2 else None

    again = wait_until(retaken, 60, step=0.1, what="the shard to be taken again")
    redelivered = time.monotonic() - killed
    print(f"\nredelivery: shard {row['shard']} taken again {redelivered:.1f} s after SIGKILL")
    # Dramatiq's Redis broker hands a dead worker's messages back once its heartbeat is 10 s old
    # (HEARTBEAT_TIMEOUT_MS), and the survivor looks on its next fetch, within a second.
    assert redelivered < 20, redelivered
    assert f"/{survivor.pid}/" in again["token"]
    assert_complete(url, scan_id, pool)
    log = pool.log(survivor)
    assert f"shard {row['shard']}/4 of {scan_id}: attempt 2, resuming after" in log, log
    assert survivor.poll() is None


def test_a_stopped_worker_hands_its_shard_back(cluster: tuple[str, Workers], broker: RedisServer) -> None:
    """SIGTERM mid-shard: the worker checkpoints, queues the shard again and exits; another continues."""
    url, pool = cluster
    victim, survivor = pool.start(2)
    scan_id = submit(broker, url, *SCAN, "--rate", "60", "--shards", "4")

    def victim_midway() -> dict | None:
        for row in shard_rows(url, scan_id):
            token = row["token"] or ""
            if row["state"] == "running" and f"/{victim.pid}/" in token and 0 < row["done"] < row["size"]:
                return row
        return None

    row = wait_until(victim_midway, 30, step=0.1, what="the victim's shard half done")
    victim.send_signal(signal.SIGTERM)
    assert victim.wait(timeout=30) == 0
    log = pool.log(victim)
    assert f"shard {row['shard']}/4 of {scan_id}: handed back after" in log and "worker stopped" in log, log
    assert_complete(url, scan_id, pool)
    assert f"shard {row['shard']}/4 of {scan_id}: attempt 2, resuming after" in pool.log(survivor)


def test_redis_restarted_mid_scan(cluster: tuple[str, Workers], broker: RedisServer) -> None:
    """Redis goes away for a few seconds (saved, as a broker restarted for maintenance would be)."""
    url, pool = cluster
    procs = pool.start(2)
    scan_id = submit(broker, url, *SCAN, "--rate", "80", "--shards", "2")
    wait_until(lambda: len(stored_endpoints(url, scan_id)) >= 60, 30, step=0.1, what="60 records")
    broker.stop(save=True)
    stopped = time.time()
    time.sleep(OUTAGE_S)
    restarted = time.time()
    broker.start()
    assert_complete(url, scan_id, pool)
    # No connection without Redis, where the rate's tokens (and the opt-out list) live: no endpoint was
    # started while it was away (a probe starts when its first connection is about to be made).
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        during = conn.execute(
            "SELECT count(*) FROM records WHERE scan_id = %s AND started_at > to_timestamp(%s) "
            "AND started_at < to_timestamp(%s)",
            (scan_id, stopped + 0.5, restarted),
        ).fetchone()
    assert during == (0,), during
    assert all(p.poll() is None for p in procs), "no worker crashed"
    logs = pool.all_logs()
    assert "Redis unreachable" in logs and "paused" in logs and "resumed" in logs, logs


def test_postgres_restarted_mid_scan(
    cluster: tuple[str, Workers], broker: RedisServer, pg: RestartablePostgres
) -> None:
    """The store goes away for a few seconds: workers pause, reconnect and lose nothing."""
    url, pool = cluster
    procs = pool.start(2)
    scan_id = submit(broker, url, *SCAN, "--rate", "80", "--shards", "2")
    wait_until(lambda: len(stored_endpoints(url, scan_id)) >= 60, 30, step=0.1, what="60 records")
    pg.stop_server()
    time.sleep(OUTAGE_S)
    pg.start_server()
    assert_complete(url, scan_id, pool)
    assert all(p.poll() is None for p in procs), "no worker crashed"
    logs = pool.all_logs()
    assert "store: write failed" in logs or "store: checkpoint failed" in logs, logs
    assert "paused" in logs and "resumed" in logs, logs
