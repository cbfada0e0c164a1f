"""Distributed scans under faults: a worker SIGKILLed mid-shard, Redis and PostgreSQL restarted mid-scan.

Each test runs a real scan of loopback addresses where nothing listens (every connection refused at once),
slowed by --rate so that the fault lands mid-scan, with real `cleartext worker` processes against our own
Redis and PostgreSQL servers on 127.0.0.1 (tests/distributed_cluster.py). The claim each test checks:
the scan ends, every endpoint is stored exactly once and counted once, and no worker crashed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
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
    # An expected reconnect is a warning, in one line: no CRITICAL, no traceback.
    assert "CRITICAL" not in logs and "Traceback" not in logs, logs


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


# -- a worker that cannot work yet, or ever ---------------------------------------------------------------

LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3} (INFO|WARNING|ERROR) \[\d+\] ")


def wrong_password_url(pg: RestartablePostgres) -> str:
    """A role whose password the server checks (the test cluster trusts everyone else), named with a
    wrong password."""
    with psycopg.connect(pg.url(), autocommit=True, connect_timeout=10) as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'alice'").fetchone():
            conn.execute("CREATE ROLE alice LOGIN PASSWORD 'right-secret'")
        hba = pg.data / "pg_hba.conf"
        rule = "host all alice 127.0.0.1/32 scram-sha-256\n"
        if rule not in hba.read_text():
            hba.write_text(rule + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    url = f"postgresql://alice:wrong-secret@127.0.0.1:{pg.port}/postgres"

    def refused() -> bool:
        try:
            psycopg.connect(url, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            return "password authentication failed" in str(exc)
        return False

    wait_until(refused, 10, step=0.2, what="the server to check alice's password")
    return url


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_refused_store_login_is_one_line_and_an_exit(
    pg: RestartablePostgres, broker: RedisServer, processes: str
) -> None:
    """A wrong store password is not a store that is down: say so once, exit, do not retry forever."""
    url = wrong_password_url(pg)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cleartext", "worker", "--broker", broker.url, "--store", url,
         "--processes", processes],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cli_env(), start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:  # still retrying: stop it and everything it started
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    lines = (stdout + stderr).strip().splitlines()
    assert proc.returncode not in (0, None)
    assert len(lines) == 1, lines
    assert lines[0].startswith("cleartext: error: cannot use the store")
    assert "password authentication failed" in lines[0] and "wrong-secret" not in lines[0]


def test_a_worker_waits_for_a_refusing_broker_and_is_ready_only_then(pg: RestartablePostgres) -> None:
    url = pg.create_database()
    later = RedisServer()  # not started yet: its port refuses connections
    try:
        with workers(later.url, url) as pool:
            proc = pool.spawn()
            wait_until(lambda: pool.log(proc).count("not answering") >= 2, 30, what="two tries")
            log = pool.log(proc)
            assert "worker ready" not in log and "Traceback" not in log, log
            assert all(LOG_LINE.match(line) for line in log.splitlines()), log
            later.start()
            wait_until(lambda: "worker ready" in pool.log(proc), 60, what="the worker to be ready")
            log = pool.log(proc)
            assert proc.poll() is None and "Traceback" not in log and "CRITICAL" not in log, log
            assert all(LOG_LINE.match(line) for line in log.splitlines()), log
    finally:
        later.stop()
        later.remove()


def test_a_worker_waits_for_a_silent_broker_in_one_line_per_try(pg: RestartablePostgres) -> None:
    """A broker that accepts connections and never answers: no traceback, never "ready", and a SIGTERM
    ends the wait."""
    url = pg.create_database()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the kernel's backlog; nothing ever reads them
        broker = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        with workers(broker, url) as pool:
            proc = pool.spawn()
            wait_until(lambda: pool.log(proc).count("not answering") >= 2, 45, what="two tries")
            os.killpg(proc.pid, signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            log = pool.log(proc)
    assert "worker ready" not in log and "Traceback" not in log and "CRITICAL" not in log, log
    assert all(LOG_LINE.match(line) for line in log.splitlines()), log
    assert "stopped before the broker answered" in log
