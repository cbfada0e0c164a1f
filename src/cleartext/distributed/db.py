"""The distributed scan's bookkeeping in the central PostgreSQL store, beside the store's own tables.

Two tables, created on first use (``CREATE TABLE IF NOT EXISTS``, serialised by an advisory lock because
many workers start at once):

- ``distributed_scans``: one row per scan — its plan (what every shard message repeats, or stands in
  for when too large), the shard count, the endpoint count, and the shared exclusion list (the durable
  copy of what the broker serves to workers);
- ``shards``: one row per shard — ``queued``, ``running`` or ``done``; the attempt that owns it (a
  token), its checkpoint (watermark and positions done above it, and the counts by status of exactly
  those positions, saved only once their records are in the store), its heartbeat, its last error.

Everything goes through the store's public SQL seam (``Store.query``, ``execute``, ``transaction``,
``ensure_tables``), as the web and notification stages do. Connection loss is handled by
:class:`Central`, which reopens the store (a PostgresStore never reconnects by itself) and retries with
backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cleartext.distributed.common import ScanPlan
from cleartext.store import Store, StoreError, open_store

T = TypeVar("T")
log = logging.getLogger("cleartext.distributed")

DDL = (
    """
    CREATE TABLE IF NOT EXISTS distributed_scans (
        scan_id TEXT PRIMARY KEY,
        shards INTEGER NOT NULL,
        endpoints BIGINT NOT NULL,
        plan JSON NOT NULL,
        broker TEXT NOT NULL,
        exclusions TEXT,
        exclusions_version TEXT,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS shards (
        scan_id TEXT NOT NULL,
        shard INTEGER NOT NULL,
        size BIGINT NOT NULL,
        state TEXT NOT NULL,
        done BIGINT NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,
        token TEXT,
        started_at TIMESTAMPTZ,
        heartbeat_at TIMESTAMPTZ,
        finished_at TIMESTAMPTZ,
        checkpoint JSON,
        counts JSON,
        error TEXT,
        PRIMARY KEY (scan_id, shard)
    )
    """,
)

# A running shard whose heartbeat is older than this is "stalled": its worker is gone or cut off, and
# the broker will hand the shard to another worker.
STALE_AFTER_S = 30


class Central:
    """The central store for one thread of work, reopened after a lost connection.

    Every call is retried with exponential backoff (0.2 s doubling to 5 s) for at most ``patience``
    seconds; ``on_trouble`` is told when a call fails and when one succeeds again, so a shard can pause
    its scanning while the store is away instead of piling up records it cannot keep.
    """

    def __init__(
        self,
        url: str,
        *,
        patience: float,
        on_trouble: Callable[[bool], None] | None = None,
    ) -> None:
        self.url = url
        self.patience = patience
        self.on_trouble = on_trouble
        self._store: Store | None = None
        self._lock = threading.Lock()

    def _get(self) -> tuple[Store, bool]:
        with self._lock:
            if self._store is None:
                self._store = open_store(self.url)
                return self._store, True
            return self._store, False

    def _drop(self, store: Store) -> None:
        with self._lock:
            if self._store is store:
                self._store = None
        with contextlib.suppress(Exception):  # a broken connection may fail to close; it is gone anyway
            store.close()

    def call(self, what: str, fn: Callable[[Store], T], *, patience: float | None = None) -> T:
        """``fn(store)``, retried across connection losses; StoreError once patience runs out.

        An error on a connection opened for this very attempt, three times running, is not a
        connection problem but a real one (a missing scan, a constraint): it is raised at once.
        """
        deadline = time.monotonic() + (self.patience if patience is None else patience)
        delay = 0.2
        fresh_failures = 0
        troubled = False
        for _ in range(100_000):  # bounded by the deadline long before this
            store: Store | None = None
            fresh = False
            try:
                store, fresh = self._get()
                result = fn(store)
            except StoreError as exc:
                if store is not None:
                    self._drop(store)
                fresh_failures = fresh_failures + 1 if fresh else 0
                if exc.permanent or fresh_failures >= 3 or time.monotonic() + delay > deadline:
                    raise  # a refused login does not get better by waiting
                if not troubled and self.on_trouble is not None:
                    self.on_trouble(True)
                troubled = True
                log.warning("store: %s failed (%s); retrying in %.1f s", what, exc, delay)
                time.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 5.0)
                continue
            if troubled:
                log.warning("store: %s works again", what)
                if self.on_trouble is not None:
                    self.on_trouble(False)
            return result
        raise StoreError(f"store: {what} kept failing")  # pragma: no cover - the deadline comes first

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            with contextlib.suppress(Exception):
                store.close()


DISTRIBUTED_SCHEMA_VERSION = 1


def ensure_tables(store: Store) -> None:
    """Create our two tables if they are missing; safe when many workers start at once (the store
    serialises schema changes among processes)."""
    store.ensure_tables("distributed", DISTRIBUTED_SCHEMA_VERSION, ";".join(DDL))


def has_tables(store: Store) -> bool:
    """Whether this store has ever held a distributed scan (read-only: creates nothing)."""
    rows = store.query(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = current_schema() AND table_name IN ('distributed_scans', 'shards')",
    )
    return int(rows[0][0]) == 2


def create_scan(
    store: Store,
    scan_id: str,
    plan: ScanPlan,
    broker: str,
    exclusions: str | None,
    version: str | None,
) -> None:
    """Register the scan's plan and its shards, all queued, in one transaction."""
    n = plan.shards
    with store.transaction():
        store.execute(
            "INSERT INTO distributed_scans (scan_id, shards, endpoints, plan, broker, exclusions, "
            "exclusions_version) VALUES (?, ?, ?, CAST(? AS json), ?, ?, ?)",
            (scan_id, n, plan.endpoints, plan.to_json(), broker, exclusions, version),
        )
        # Shard I holds positions I, I+N, ... below the size: ceil((size - I) / N) of them.
        store.execute(
            "INSERT INTO shards (scan_id, shard, size, state) "
            "SELECT ?, g, GREATEST(0, (CAST(? AS BIGINT) - g + ?) / ?), 'queued' "
            "FROM generate_series(0, ? - 1) AS g",
            (scan_id, plan.endpoints, n - 1, n, n),
        )


def load_plan(store: Store, scan_id: str) -> ScanPlan | None:
    rows = store.query("SELECT CAST(plan AS TEXT) FROM distributed_scans WHERE scan_id = ?", (scan_id,))
    return ScanPlan.from_dict(json.loads(rows[0][0])) if rows else None


def load_exclusions(store: Store, scan_id: str) -> tuple[str | None, str | None]:
    """The scan's shared exclusion list and its version, as last published."""
    rows = store.query(
        "SELECT exclusions, exclusions_version FROM distributed_scans WHERE scan_id = ?", (scan_id,)
    )
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def save_exclusions(store: Store, scan_id: str, text: str, version: str) -> None:
    store.execute(
        "UPDATE distributed_scans SET exclusions = ?, exclusions_version = ? WHERE scan_id = ?",
        (text, version, scan_id),
    )


@dataclass(frozen=True)
class Claim:
    """What a worker learns when it takes a shard."""

    state: str  # "running": ours now; "done": nothing left to do
    attempts: int
    size: int
    checkpoint: dict[str, Any] | None
    counts: dict[str, int]


def claim(store: Store, scan_id: str, shard: int, token: str) -> Claim | None:
    """Take the shard for this attempt (the last taker owns it); None if the store has no such shard."""
    rows = store.query(
        "UPDATE shards SET state = 'running', attempts = attempts + 1, token = ?, "
        "started_at = coalesce(started_at, now()), heartbeat_at = now(), error = NULL "
        "WHERE scan_id = ? AND shard = ? AND state <> 'done' "
        "RETURNING attempts, size, CAST(checkpoint AS TEXT), CAST(counts AS TEXT)",
        (token, scan_id, shard),
    )
    if rows:
        attempts, size, checkpoint, counts = rows[0]
        return Claim(
            "running",
            int(attempts),
            int(size),
            json.loads(checkpoint) if checkpoint else None,
            json.loads(counts) if counts else {},
        )
    rows = store.query(
        "SELECT state, attempts, size FROM shards WHERE scan_id = ? AND shard = ?", (scan_id, shard)
    )
    if not rows:
        return None
    return Claim(str(rows[0][0]), int(rows[0][1]), int(rows[0][2]), None, {})


def save_checkpoint(
    store: Store,
    scan_id: str,
    shard: int,
    token: str,
    checkpoint: dict[str, Any],
    counts: dict[str, int],
    done: int,
) -> bool:
    """Save progress (also the heartbeat); False if another attempt has taken the shard since."""
    rows = store.query(
        "UPDATE shards SET checkpoint = CAST(? AS json), counts = CAST(? AS json), done = ?, "
        "heartbeat_at = now() WHERE scan_id = ? AND shard = ? AND token = ? AND state = 'running' "
        "RETURNING 1",
        (json.dumps(checkpoint), json.dumps(counts), done, scan_id, shard, token),
    )
    return bool(rows)


def mark_done(store: Store, scan_id: str, shard: int, token: str, counts: dict[str, int]) -> bool:
    """The shard is complete and every record of it is stored; False if another attempt owns it."""
    rows = store.query(
        "UPDATE shards SET state = 'done', done = size, counts = CAST(? AS json), checkpoint = NULL, "
        "finished_at = now(), heartbeat_at = now(), error = NULL "
        "WHERE scan_id = ? AND shard = ? AND token = ? AND state = 'running' RETURNING 1",
        (json.dumps(counts), scan_id, shard, token),
    )
    return bool(rows)


def hand_back(store: Store, scan_id: str, shard: int, token: str, error: str | None) -> None:
    """This attempt stops without finishing: the shard is queued again (its checkpoint stays)."""
    store.execute(
        "UPDATE shards SET state = 'queued', token = NULL, error = ? "
        "WHERE scan_id = ? AND shard = ? AND token = ? AND state = 'running'",
        (error, scan_id, shard, token),
    )


def shard_counts(store: Store, scan_id: str) -> dict[str, int]:
    """Endpoints by status over every shard's saved counts (``skipped`` included)."""
    rows = store.query(
        "SELECT c.key, sum(CAST(c.value AS BIGINT)) FROM shards s, json_each_text(s.counts) AS c "
        "WHERE s.scan_id = ? GROUP BY c.key",
        (scan_id,),
    )
    return {str(k): int(v) for k, v in rows}


def finish_if_complete(store: Store, scan_id: str) -> bool:
    """When every shard is done and the scan is not yet marked finished, mark it (counts by status).

    Two workers finishing the last two shards at once may both get here: finish_scan with the same
    counts twice is harmless. A worker killed right here leaves its message unacknowledged; whoever
    gets it next finds the shard done and comes here again.
    """
    rows = store.query(
        "SELECT (SELECT count(*) FROM shards WHERE scan_id = ? AND state <> 'done'), "
        "(SELECT finished_at IS NULL FROM scans WHERE scan_id = ?)",
        (scan_id, scan_id),
    )
    left, unfinished = rows[0]
    if int(left) or not unfinished:
        return False
    counts = shard_counts(store, scan_id)
    counts.pop("skipped", None)
    store.finish_scan(scan_id, counts)
    return True


def shards_to_requeue(store: Store, scan_id: str, everything: bool) -> list[int]:
    """Shards not done that no live worker holds (queued, or running with a stale heartbeat)."""
    if everything:
        rows = store.query(
            "SELECT shard FROM shards WHERE scan_id = ? AND state <> 'done' ORDER BY shard", (scan_id,)
        )
    else:
        rows = store.query(
            "SELECT shard FROM shards WHERE scan_id = ? AND (state = 'queued' OR (state = 'running' "
            "AND heartbeat_at < now() - make_interval(secs => ?))) ORDER BY shard",
            (scan_id, STALE_AFTER_S),
        )
    return [int(r[0]) for r in rows]
