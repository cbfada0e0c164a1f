"""StoreSink: the scan engine's `emit` callable that lands records in a store, in batches.

The engine hands over one Record at a time, as each endpoint finishes; a store wants thousands at a
time (one columnar insert per batch). The sink buffers, and writes when the buffer is full
(`batch_size`) or its oldest record has waited `max_delay` seconds, whichever comes first. The delay is
kept even when no further record arrives (the last slow endpoints of a scan): a small flusher thread
checks it, so a scan that dies loses at most `max_delay` seconds of results.

Writes happen on the caller's thread when a batch fills (so a store error reaches the engine at the
record that hit it), or on the flusher thread when the delay runs out (an error there is raised by the
next call, or by close()). One lock orders both; the store itself is also locked.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from cleartext.record import Record
from cleartext.store.base import Store
from cleartext.store.schema import StoreError


class StoreSink:
    """Buffer records for one scan and write them to the store in batches; close() writes the rest."""

    # 2000, not more: a batch is held three times over while it is written (the records, their typed
    # columns and JSON, DuckDB's insert). 150,000 full-dialog records (2.5 KB of JSON each) peaked at
    # 298 MB with batches of 5000 and 204-207 MB with 2000, for 1-3 % more CPU (bench/RESULTS.md).
    def __init__(
        self, store: Store, scan_id: str, batch_size: int = 2000, max_delay: float = 2.0, *, new: bool = False
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        if max_delay < 0:
            raise ValueError("max_delay must not be negative")
        self.store = store
        store.prepare_bulk_writes()
        self.scan_id = scan_id
        self.batch_size = batch_size
        self.new = new  # the caller's word: no endpoint it sends is stored for this scan yet (Store.write)
        self.max_delay = max_delay
        self.written = 0  # endpoints written so far (a record repeated within a batch counts once)
        self._buffer: list[Record] = []
        self._lines: list[str] = []  # the buffered records' JSON, one to one
        self._oldest = 0.0  # time.monotonic() when the oldest buffered record arrived
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._flusher, name=f"cleartext-sink-{scan_id}", daemon=True)
        self._thread.start()

    def __call__(self, record: Record, line: str | None = None) -> None:
        """Buffer one record; ``line`` is its ``to_json()`` where the caller has made it already."""
        with self._lock:
            self._raise_pending()
            if self._closed.is_set():
                raise StoreError(f"the sink of scan {self.scan_id} is closed")
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(record)
            self._lines.append(line if line is not None else record.to_json())
            if len(self._buffer) >= self.batch_size or time.monotonic() - self._oldest >= self.max_delay:
                self._write()

    def flush(self) -> None:
        """Write whatever is buffered now."""
        with self._lock:
            self._raise_pending()
            self._write()

    def close(self) -> None:
        """Stop the flusher and write the rest. Safe to call twice; raises a pending write error."""
        self._closed.set()
        self._thread.join()
        self.flush()

    def _write(self) -> None:
        # On failure the buffer is kept: the error propagates, and a later flush() or close() may retry.
        if not self._buffer:
            return
        self.written += self.store.write(self.scan_id, self._buffer, new=self.new, lines=self._lines)
        self._buffer = []
        self._lines = []

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _flusher(self) -> None:
        # Wakes a few times per max_delay (bounded: 50 ms to 1 s) until close(); never outlives the sink.
        tick = min(max(self.max_delay / 4, 0.05), 1.0)
        while not self._closed.wait(tick):
            with self._lock:
                if self._error is not None:
                    return
                if self._buffer and time.monotonic() - self._oldest >= self.max_delay:
                    try:
                        self._write()
                    except BaseException as exc:  # handed to the engine's thread on its next call
                        self._error = exc
                        return

    def __enter__(self) -> StoreSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
