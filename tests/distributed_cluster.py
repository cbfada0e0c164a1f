"""A distributed scan's moving parts for the tests, all on 127.0.0.1: Redis, PostgreSQL, worker processes.

- :class:`RedisServer`: Debian's ``redis-server`` on a free port, in a directory of its own, no automatic
  persistence (``--save ''``); ``stop(save=True)`` writes a snapshot first (``SHUTDOWN SAVE``) so that a
  restart finds the queue as it was — a broker briefly down, not one that lost its data.
- :class:`RestartablePostgres`: the project's own throwaway cluster (tests/pg.py) that can also be stopped
  and started again on the same port, with its data.
- :class:`Workers`: ``cleartext worker`` processes, each in a session of its own so that a test can
  SIGKILL one with everything it started, like a machine that dies.

Every wait here is bounded in time; every process is stopped at the end, even when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.conftest import ROOT
from tests.pg import STEP_TIMEOUT_S, PostgresServer, free_port

REDIS_SERVER = "/usr/bin/redis-server"


def wait_until(predicate: Callable[[], Any], timeout: float, step: float = 0.05, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what or predicate}")
        time.sleep(step)


class RedisServer:
    def __init__(self) -> None:
        if not Path(REDIS_SERVER).is_file():
            raise RuntimeError(
                f"{REDIS_SERVER} not found: run `make system-deps` (Debian package redis-server)"
            )
        self.dir = Path(tempfile.mkdtemp(prefix="cleartext-redis-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        # No retries of its own: a SHUTDOWN's closed connection is expected, not a reason to reconnect.
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            socket_timeout=5,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
        )

    def start(self) -> None:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--dbfilename",
                "dump.rdb",
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

        def answers() -> bool:
            try:
                return bool(self.client().ping())
            except redis.RedisError:
                return False

        wait_until(answers, 20, what="redis-server to answer")

    def stop(self, *, save: bool = False) -> None:
        """Stop the server; with ``save``, write its data first so that start() brings it back."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(redis.RedisError):
                self.client().shutdown(save=save, nosave=not save)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class RestartablePostgres(PostgresServer):
    """tests/pg.py's cluster, plus stop_server()/start_server() on the same port with the same data."""

    def _options(self) -> str:
        return (
            f"-k {self.sockets} -p {self.port} -h 127.0.0.1 -c fsync=off -c full_page_writes=off "
            "-c synchronous_commit=off -c max_connections=40 -c shared_buffers=32MB"
        )

    def stop_server(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")

    def start_server(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self._options(), "-w",
            "-t", str(STEP_TIMEOUT_S), "start",
        )  # fmt: skip


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@contextlib.contextmanager
def restartable_postgres() -> Iterator[RestartablePostgres]:
    server = RestartablePostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


def cli_env(store: str | None = None) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "160"}
    env.pop("CLEARTEXT_BROKER", None)
    if store is not None:
        env["CLEARTEXT_STORE"] = store
    return env


class Workers:
    """`cleartext worker` processes; each one's log is kept in a file for the test's assertions."""

    def __init__(self, broker: str, store: str, directory: Path) -> None:
        self.broker = broker
        self.store = store
        self.dir = directory
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def spawn(self, *args: str, broker: str | None = None) -> subprocess.Popen[bytes]:
        """One worker process, not waited for (it may never become ready)."""
        log_path = self.dir / f"worker-{len(self.procs)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cleartext",
                    "worker",
                    "--broker",
                    broker or self.broker,
                    "--store",
                    self.store,
                    "--processes",
                    "1",
                    *args,
                ],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=cli_env(),
                start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log_path)
        return proc

    def start(self, count: int = 1, *args: str) -> list[subprocess.Popen[bytes]]:
        started = [self.spawn(*args) for _ in range(count)]
        for proc, log_path in zip(started, self.logs[-count:], strict=True):

            def ready(p: subprocess.Popen[bytes] = proc, lp: Path = log_path) -> bool:
                return "worker ready" in lp.read_text(errors="replace") or p.poll() is not None

            wait_until(ready, 30, what="a worker to start")
            assert proc.poll() is None, log_path.read_text(errors="replace")
        return started

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[self.procs.index(proc)].read_text(errors="replace")

    def all_logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')}" for p in self.logs)

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its whole session: nothing of it gets to say goodbye."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill(proc)


@contextlib.contextmanager
def workers(broker: str, store: str) -> Iterator[Workers]:
    directory = Path(tempfile.mkdtemp(prefix="cleartext-workers-"))
    pool = Workers(broker, store, directory)
    try:
        yield pool
    finally:
        pool.stop_all()
        shutil.rmtree(directory, ignore_errors=True)


def shard_rows(url: str, scan_id: str) -> list[dict[str, Any]]:
    """The scan's rows of the `shards` table, straight from PostgreSQL."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(
            "SELECT shard, state, size, done, attempts, token, error FROM shards "
            "WHERE scan_id = %s ORDER BY shard",
            (scan_id,),
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def stored_endpoints(url: str, scan_id: str) -> list[tuple[str, int, str]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT address, port, status FROM records WHERE scan_id = %s", (scan_id,)
        ).fetchall()
    return [(str(a), int(p), str(s)) for a, p, s in rows]


def scan_row(url: str, scan_id: str) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        cur = conn.execute(
            "SELECT finished_at, CAST(counts AS TEXT), CAST(params AS TEXT) FROM scans WHERE scan_id = %s",
            (scan_id,),
        )
        row = cur.fetchone()
    assert row is not None
    import json

    return {
        "finished_at": row[0],
        "counts": json.loads(row[1]) if row[1] else None,
        "params": json.loads(row[2]),
    }


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
