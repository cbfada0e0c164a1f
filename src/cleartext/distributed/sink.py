"""ShardSink: a shard's records into the central store, and its checkpoints once they are safe.

Why not the store's own StoreSink: it writes on the caller's thread when a batch fills, and here the
caller is the scan's event loop — a store that is away for a minute would freeze every probe in flight
(their timers would all fire at once when it came back, and turn into false timeouts). It also cannot
reconnect. This sink only appends to a queue on the engine's side; one writer thread owns every store
call of the shard (records, checkpoints, heartbeats) and retries across connection losses through
:class:`~cleartext.distributed.db.Central`.

Checkpoints follow the records: the engine hands over a snapshot (its tracker's watermark and the
positions done above it, and its counts) every second, tagged with how many records had been emitted at
that moment; the writer saves a snapshot only once that many records are stored, FIFO. A redelivered
shard that resumes from a saved checkpoint therefore never skips an endpoint whose record was lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cleartext.distributed import db
from cleartext.record import Record
from cleartext.store import StoreError

log = logging.getLogger("cleartext.distributed")

CHECKPOINT_INTERVAL_S = 2.0  # a saved checkpoint is also the shard's heartbeat in `cleartext status`


@dataclass
class Checkpoint:
    watermark: int
    above: list[int]
    counts: dict[str, int]
    done: int  # positions of the shard done, passed-over ones included
    emitted: int = 0  # records emitted when the snapshot was taken (set by the sink)
    extra: dict[str, Any] = field(default_factory=dict)

    def state(self) -> dict[str, Any]:
        return {"watermark": self.watermark, "above": self.above}


class ShardSink:
    """The engine's ``emit`` for one shard: queue, then batch writes on a writer thread."""

    def __init__(
        self,
        central: db.Central,
        scan_id: str,
        shard: int,
        token: str,
        *,
        batch_size: int = 2000,
        max_delay: float = 1.0,
    ) -> None:
        self.central = central
        self.scan_id = scan_id
        self.shard = shard
        self.token = token
        self.batch_size = batch_size
        self.max_delay = max_delay
        self.emitted = 0
        self.written = 0
        self.lost = False  # another attempt owns the shard now (we were presumed dead)
        self.error: BaseException | None = None  # the store stayed away past its patience
        self.troubled = False  # the last store call failed and is being retried
        self._queue: deque[Record] = deque()
        self._oldest = 0.0
        self._snapshots: deque[Checkpoint] = deque()
        self._last_saved = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cleartext-shard-{shard}", daemon=True)
        self._thread.start()

    # -- the engine's side (its event-loop thread): never blocks on the store ---------------------

    def __call__(self, record: Record) -> None:
        with self._lock:
            if not self._queue:
                self._oldest = time.monotonic()
            self._queue.append(record)
            self.emitted += 1
            full = len(self._queue) >= self.batch_size
        if full:
            self._wake.set()

    def snapshot(self, checkpoint: Checkpoint) -> None:
        with self._lock:
            checkpoint.emitted = self.emitted
            if self._snapshots and self._snapshots[-1].emitted == checkpoint.emitted:
                self._snapshots[-1] = checkpoint  # no new record since: the newer one says as much
            else:
                self._snapshots.append(checkpoint)
            while len(self._snapshots) > 32:  # writes lag: older snapshots would be superseded anyway
                self._snapshots.popleft()

    @property
    def backlog(self) -> int:
        return len(self._queue)

    def on_trouble(self, troubled: bool) -> None:
        self.troubled = troubled

    # -- the writer thread ------------------------------------------------------------------------

    def _run(self) -> None:
        for _ in range(10**9):  # until close(); each turn waits at most a quarter second
            self._wake.wait(0.25)
            self._wake.clear()
            closing = self._closing.is_set()
            try:
                self._drain(force=closing)
                self._save_checkpoint(force=False)
            except StoreError as exc:
                self.error = exc
                log.error("shard %d of %s: the store stayed away: %s", self.shard, self.scan_id, exc)
                return
            if closing and not self._queue:
                return

    def _drain(self, *, force: bool) -> None:
        with self._lock:
            due = force or len(self._queue) >= self.batch_size
            due = due or (bool(self._queue) and time.monotonic() - self._oldest >= self.max_delay)
        while due and self._queue:
            with self._lock:
                batch = [self._queue[i] for i in range(min(self.batch_size, len(self._queue)))]
            # Writes are idempotent per (scan, address, port): a batch retried after a lost connection
            # (that may in fact have been committed) replaces what it wrote, nothing doubles.
            self.central.call("write", lambda store, b=batch: store.write(self.scan_id, b))  # type: ignore[misc]
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                self.written += len(batch)
                self._oldest = time.monotonic()

    def _save_checkpoint(self, *, force: bool) -> None:
        """Save the newest snapshot whose records are all stored (older ones are superseded)."""
        now = time.monotonic()
        if not force and now - self._last_saved < CHECKPOINT_INTERVAL_S:
            return
        safe: Checkpoint | None = None
        with self._lock:
            while self._snapshots and self._snapshots[0].emitted <= self.written:
                safe = self._snapshots.popleft()
        if safe is None or self.lost:
            return
        cp = safe
        ours = self.central.call(
            "checkpoint",
            lambda store: db.save_checkpoint(
                store, self.scan_id, self.shard, self.token, cp.state(), cp.counts, cp.done
            ),
        )
        self._last_saved = now
        if not ours:
            self.lost = True
            log.warning(
                "shard %d of %s: another worker has taken it over; this attempt stops",
                self.shard,
                self.scan_id,
            )

    def close(self, timeout: float) -> None:
        """Write everything queued (retrying within the store's patience); raise if that failed."""
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout)
        if self.error is not None:
            raise self.error
        if self._thread.is_alive():
            raise StoreError(
                f"shard {self.shard} of {self.scan_id}: records still unwritten after {timeout:g} s"
            )

    def save_final(self, checkpoint: Checkpoint) -> bool:
        """After close(): save this checkpoint now (everything emitted is stored); False if not ours."""
        if self.lost:
            return False
        ours = self.central.call(
            "checkpoint",
            lambda store: db.save_checkpoint(
                store,
                self.scan_id,
                self.shard,
                self.token,
                checkpoint.state(),
                checkpoint.counts,
                checkpoint.done,
            ),
        )
        self.lost = not ours
        return ours
