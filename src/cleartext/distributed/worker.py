"""`cleartext worker`: Dramatiq worker processes that run shards until told to stop.

One process runs Dramatiq's own ``Worker`` with ``--threads`` threads; each thread runs one shard at a
time on an event loop of its own. With ``--processes N`` (N > 1) this process only supervises N such
processes (``cleartext worker ... --processes 1``): it passes SIGTERM/SIGINT on, and starts a process
again when one dies unexpectedly (at most a few times a minute), so one crash does not idle a machine.
The shards a dead process held go back to the queue by the broker's heartbeat check.

Each process takes at most ``--threads`` messages at a time (Dramatiq's default prefetch is twice as
many; a shard waiting in one worker's memory would be idle while another worker starves).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from typing import Any

from cleartext.distributed import db
from cleartext.distributed.common import ACTOR, QUEUE, make_broker, redact
from cleartext.distributed.shard import STOPPING, DaemonConfig, ShardRejected, run_shard
from cleartext.store import StoreError

log = logging.getLogger("cleartext.distributed")

STOP_TIMEOUT_S = 120  # a stopping worker's shards checkpoint and hand back within seconds
RESTARTS_PER_MINUTE = 5


def setup_logging() -> None:
    root = logging.getLogger()
    if any(isinstance(f, _BrokerTrouble) for h in root.handlers for f in h.filters):
        return  # set up already (the command's preflight, then serve)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Dramatiq says "Consumer encountered a connection error" every few seconds per consumer while
    # Redis is away: its errors pass, each kind at most once every 30 s; our own lines say what the
    # shards do about it.
    logging.getLogger("dramatiq").setLevel(logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.addFilter(_BrokerTrouble())
        handler.addFilter(_Quieter(30.0))


# Dramatiq's consumer thread logs a lost broker connection as CRITICAL, and a Redis timeout as an
# "unexpected error" with its traceback. A broker restarted for maintenance is expected, and the consumer
# reconnects by itself: one warning line says so.
_CONSUMER_TROUBLE = ("Consumer encountered a connection error", "Consumer encountered an unexpected error")


class _BrokerTrouble(logging.Filter):
    """Turns Dramatiq's records about a lost or silent broker into one warning line, without traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("dramatiq") or not str(record.msg).startswith(_CONSUMER_TROUBLE):
            return True
        args = record.args if isinstance(record.args, tuple) else ()
        error = record.exc_info[1] if record.exc_info else (args[0] if args else None)
        if record.exc_info and not _is_connection_trouble(error):
            return True  # a real bug: keep it loud, with its traceback
        record.msg = "broker connection lost (%s); reconnecting"
        record.args = (_one_line(error) if error is not None else "no detail",)
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        return True


def _is_connection_trouble(error: object) -> bool:
    import redis
    from dramatiq.errors import ConnectionError as BrokerConnectionError

    return isinstance(error, redis.ConnectionError | redis.TimeoutError | BrokerConnectionError | OSError)


def _one_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def preflight(store_url: str, patience: float) -> str | None:
    """Create the worker's tables in the store before anything starts; the reason (one line) if it cannot.

    Done by the command itself, before a supervisor starts its processes: a password the server refuses
    is said once, and the command exits instead of retrying (or respawning) forever.
    """
    setup_logging()
    central = db.Central(store_url, patience=patience)
    try:
        central.call("create tables", db.ensure_tables)
    except StoreError as exc:
        return f"cannot use the store: {exc}"
    finally:
        central.close()
    return None


def wait_for_broker(broker_url: str, stop: threading.Event) -> bool:
    """Wait until the broker answers a PING: one warning line per try while it refuses or stays silent.

    False when ``stop`` is set first (a SIGTERM while waiting).
    """
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=5, socket_timeout=5)
    delay = 1.0
    try:
        for attempt in range(1, 10**9):
            try:
                client.ping()
                if attempt > 1:
                    log.info("broker %s answers", redact(broker_url))
                return True
            except redis.RedisError as exc:
                log.warning(
                    "broker %s not answering (%s); trying again in %.0f s",
                    redact(broker_url),
                    _one_line(exc),
                    delay,
                )
            if stop.wait(delay):
                return False
            delay = min(delay * 2, 30.0)
    finally:
        client.close()
    return False  # pragma: no cover - the loop ends by returning


class _Quieter(logging.Filter):
    """Lets a Dramatiq record through unless the same line said the same thing within ``interval`` s."""

    def __init__(self, interval: float) -> None:
        super().__init__()
        self.interval = interval
        self.last: dict[tuple[str, int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("dramatiq"):
            return True
        key = (record.pathname, record.lineno, str(record.msg))
        now = time.monotonic()
        if now - self.last.get(key, -1e9) < self.interval:
            return False
        if len(self.last) > 1000:  # bounded memory whatever the messages
            self.last.clear()
        self.last[key] = now
        return True


def serve(broker_url: str, store_url: str, *, threads: int, concurrency: int, patience: float) -> int:
    """Run one worker process until SIGTERM/SIGINT; the exit status."""
    import dramatiq
    from dramatiq.middleware import Middleware

    setup_logging()

    class Lifecycle(Middleware):
        def before_worker_shutdown(self, broker: Any, worker: Any) -> None:
            STOPPING.set()

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    # The store was checked by the command (preflight); the broker is waited for here, where a SIGTERM
    # can end the wait. Dramatiq's consumers would otherwise start against a dead broker and log a
    # traceback per second, while this process claimed to be ready.
    if not wait_for_broker(broker_url, stop):
        log.info("worker stopped before the broker answered")
        return 0

    broker = make_broker(broker_url, worker=True, middleware=[Lifecycle()])
    config = DaemonConfig(
        store_url=store_url, broker_url=broker_url, concurrency=concurrency, patience=patience
    )

    def cleartext_shard(payload: dict[str, Any]) -> None:
        run_shard(payload, config)

    dramatiq.Actor(
        cleartext_shard,
        broker=broker,
        actor_name=ACTOR,
        queue_name=QUEUE,
        priority=0,
        options={"throws": (ShardRejected,)},
    )
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=threads)
    worker.queue_prefetch = threads
    worker.start()
    log.info(
        "worker ready: %d thread(s), %d endpoints in flight per shard, broker %s, store %s",
        threads,
        concurrency,
        redact(broker_url),
        redact(store_url),
    )
    for _ in range(10**9):  # until a signal
        if stop.wait(1.0):
            break
    log.info("worker stopping: running shards checkpoint and go back to the queue")
    STOPPING.set()
    worker.stop(timeout=STOP_TIMEOUT_S * 1000)
    broker.close()
    log.info("worker stopped")
    return 0


def supervise(child_argv: list[str], processes: int, env: dict[str, str]) -> int:
    """Run ``processes`` copies of ``child_argv`` (single-process workers) until SIGTERM/SIGINT."""
    setup_logging()
    stopping = threading.Event()
    children: list[subprocess.Popen[bytes]] = []

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(child_argv, stdin=subprocess.DEVNULL, env={**os.environ, **env})

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()
        for child in children:
            if child.poll() is None:
                with contextlib.suppress(OSError):
                    child.send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    children.extend(spawn() for _ in range(processes))
    restarts: deque[float] = deque()
    status = 0
    for _ in range(10**9):  # until every child has exited after a stop
        if stopping.wait(0.5):
            break
        for i, child in enumerate(children):
            code = child.poll()
            if code is None:
                continue
            now = time.monotonic()
            while restarts and now - restarts[0] > 60:
                restarts.popleft()
            if len(restarts) >= RESTARTS_PER_MINUTE:
                log.error("worker processes keep dying (last: exit %s); stopping", code)
                status = 1
                on_signal(signal.SIGTERM, None)
                break
            restarts.append(now)
            log.warning("worker process %d exited (status %s); starting another", child.pid, code)
            children[i] = spawn()
    deadline = time.monotonic() + STOP_TIMEOUT_S + 10
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
    return status


def child_command(threads: int, concurrency: int, patience: float) -> list[str]:
    """The command line of one single-process worker (the supervisor's children).

    The broker and store URLs reach the children through $CLEARTEXT_BROKER and $CLEARTEXT_STORE, not
    their command lines, where any user of the machine could read a password.
    """
    return [
        sys.executable,
        "-m",
        "cleartext",
        "worker",
        "--processes",
        "1",
        "--threads",
        str(threads),
        "--concurrency",
        str(concurrency),
        "--patience",
        str(patience),
    ]


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
