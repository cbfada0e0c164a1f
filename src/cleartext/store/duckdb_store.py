"""The embedded store: one DuckDB file, written by one process at a time.

DuckDB is a column store: a batch goes in as one list per column (``unnest`` of list parameters), in one
``INSERT ... SELECT``, hundreds of times faster than ``executemany`` row by row.

The records table has no primary key here. DuckDB keeps a key's index (ART) in memory, ~80 bytes per
record, and a scan's store then grew without bound (a /8 on seven ports: ~9 GB). Instead the store keeps
(scan_id, address, port) unique itself: a write deletes the batch's endpoints already stored for the
scan before inserting, and the writers that vouch for new endpoints (a scan's sink; an import, which
ends with keep_last()) skip that search. Stores made before this keep their key, and work as they did.

DuckDB locks the file for the writing process; another process opening it gets a one-line StoreError
naming the holder, not a hang.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb

from cleartext.record import Record
from cleartext.store.base import Store, one_line
from cleartext.store.schema import COLUMNS, StoreError, arrow_schema

if TYPE_CHECKING:  # pyarrow only for reading (exports, streams): a scan that writes never imports it
    import pyarrow as pa

_NAMES = ", ".join(COLUMNS)
_UNNEST = ", ".join(f"unnest(${number}) AS {name}" for number, name in enumerate(COLUMNS, 1))
_MAGIC_OFFSET, _MAGIC = 8, b"DUCK"  # the main header: an 8-byte checksum, then the magic


def _out_of_memory(exc: StoreError) -> bool:
    # DuckDB says so in an INSERT ("Out of Memory Error: ..."); a COMMIT that must flush says only
    # "Failed to commit: failed to pin block of size ... (7.4 MiB/7.6 MiB used)" or "... could not
    # allocate block of size 256.0 KiB (45.6 MiB/45.7 MiB used)".
    text = str(exc).lower()
    return any(words in text for words in ("out of memory", "failed to pin block", "could not allocate"))


def _is_duckdb_file(file: Path) -> bool:
    try:
        with file.open("rb") as handle:
            head = handle.read(_MAGIC_OFFSET + len(_MAGIC))
    except OSError as exc:
        raise StoreError(f"cannot open store {file}: {exc.strerror or exc}") from None
    return head[_MAGIC_OFFSET:] == _MAGIC


BULK_WRITE_MEMORY_MB = 48  # DuckDB's buffer pool while a scan writes (prepare_bulk_writes)
BULK_WRITE_CHECKPOINT_MB = 48  # and its checkpoint threshold then: at most the cap, or it spills
INDEX_BYTES_PER_RECORD = 80  # an old store's primary-key index, per stored endpoint (memory_warning)
INDEX_WARNING_ENDPOINTS = 2_000_000  # from here on that index alone exceeds ~160 MB


class DuckDBStore(Store):
    """A store in one DuckDB file (or ``:memory:``)."""

    dialect = "duckdb"
    _types: ClassVar[dict[str, str]] = {
        "text": "VARCHAR",
        "json": "VARCHAR",
        "float": "DOUBLE",
        "records_key": "",  # no index in memory: write() keeps the key unique (module docstring)
    }

    def __init__(self, path: str, *, create: bool = True) -> None:
        super().__init__()
        self.url = path
        self.path = path
        self._depth = 0
        self._bulk_memory_mb: int | None = None  # DuckDB's memory cap while a scan writes (see write())
        if path != ":memory:":
            file = Path(path)
            if file.is_dir():
                raise StoreError(f"cannot open store {path}: it is a directory")
            if not create and not file.exists():
                raise StoreError(f"no store at {path} (import or scan into it first)")
            if file.exists() and not _is_duckdb_file(file):
                # Checked before connecting: DuckDB 2 would open a JSON or CSV file as a database of
                # views, and the error would come later and make less sense.
                raise StoreError(f"cannot open store {path}: not a DuckDB database file")
        try:
            self._conn = duckdb.connect(path)
            # The progress bar would write to our stdout during long queries; UTC keeps timestamps plain.
            self._conn.execute("SET enable_progress_bar = false")
            self._conn.execute("SET TimeZone = 'UTC'")
            # Checkpoint every 256 MB of WAL rather than 16: a scan writes batch after batch, and each
            # checkpoint recompresses; measured ~30% faster writes and a quarter smaller file.
            self._conn.execute("SET checkpoint_threshold = '256MB'")
        except duckdb.Error as exc:
            raise StoreError(f"cannot open store {path}: {one_line(exc)}") from None
        try:
            with self._errors():
                self._init_schema()
        except BaseException:
            self._conn.close()
            raise

    def write(
        self,
        scan_id: str,
        records: Sequence[Record],
        *,
        new: bool = False,
        lines: Sequence[str] | None = None,
    ) -> int:
        # Under the bulk-write cap, a batch of unusually large records may need more memory than the
        # cap allows: give DuckDB twice as much and write the batch again (the write is idempotent and
        # was rolled back), rather than end a long scan over it.
        for _ in range(6):
            try:
                return super().write(scan_id, records, new=new, lines=lines)
            except StoreError as exc:
                if self._bulk_memory_mb is None or not _out_of_memory(exc):
                    raise
                self._bulk_memory_mb *= 2
                with self._errors():
                    self._conn.execute(f"SET memory_limit = '{self._bulk_memory_mb}MB'")
        return super().write(scan_id, records, new=new, lines=lines)

    def keep_last(self, scan_id: str) -> None:
        # One pass over the scan's rows, in DuckDB (it spills to disk if it must); rowids grow with
        # every append, so the highest is the last written.
        with self._lock, self._transaction():
            self._execute(
                "DELETE FROM records WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() OVER "
                "(PARTITION BY address, port ORDER BY rowid DESC) AS n FROM records WHERE scan_id = ?) "
                "WHERE n > 1)",
                (scan_id,),
            )

    def memory_warning(self, endpoints: int) -> str | None:
        # Only a store made before records lost their primary key: its index (ART) must stay in memory
        # for inserts, ~80 bytes per record (bench/RESULTS.md), and no buffer cap bounds it.
        if endpoints < INDEX_WARNING_ENDPOINTS or not self._keyed():
            return None
        gigabytes = endpoints * INDEX_BYTES_PER_RECORD / 1e9
        return (
            f"this DuckDB store (made by an earlier cleartext) keeps an index of ~{INDEX_BYTES_PER_RECORD} "
            f"bytes per endpoint in memory, ~{gigabytes:.1f} GB for {endpoints:,} endpoints; scan into a "
            "new store file, a PostgreSQL store (--store postgresql://...) or --no-store with --out"
        )

    def _keyed(self) -> bool:
        rows = self._query(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'records' "
            "AND constraint_type = 'PRIMARY KEY'"
        )
        return bool(rows and rows[0][0])

    def prepare_bulk_writes(self) -> None:
        # By default DuckDB may cache up to 80 % of RAM, and a scan's inserts stay in its buffer pool
        # until a checkpoint: with the store on, a scan's peak RSS was ~150 MB above the same scan
        # without one. The cap is 48 MB with a checkpoint every 48 MB of WAL, so inserted data is written
        # out before it must spill. 300,000 scan-shaped records (bench/store_write.py): 64 MB/256 MB
        # peaked at 193 MB; 48/48 at 176 MB with the same CPU and file size; 32/32 at 160 MB but with
        # 12 % more CPU and a 43 % larger file; a 32 MB cap with 256 MB checkpoints spilled (255 MB).
        # A batch that needs more than the cap gets it (write() doubles it) rather than failing.
        # One thread: a scan's batches are small, and a second DuckDB thread took the scanner's core for
        # nothing (300,000 records: 16.0 s of CPU instead of 20.2 s, and 4 MB less peak RSS).
        self._bulk_memory_mb = BULK_WRITE_MEMORY_MB
        with self._errors():
            self._conn.execute(f"SET memory_limit = '{self._bulk_memory_mb}MB'")
            self._conn.execute(f"SET checkpoint_threshold = '{BULK_WRITE_CHECKPOINT_MB}MB'")
            self._conn.execute("SET threads = 1")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Driver errors (disk full, a lock, a corrupt page) become one-line StoreErrors."""
        try:
            yield
        except duckdb.Error as exc:
            raise StoreError(f"store {self.path}: {one_line(exc)}") from None

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._errors():
            self._conn.execute(sql, list(params))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return self._conn.execute(sql, list(params)).fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # DuckDB has no savepoints: an inner transaction simply joins the outer one.
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._execute("BEGIN TRANSACTION")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._depth = 0
            with contextlib.suppress(duckdb.Error):
                self._conn.execute("ROLLBACK")
            raise
        self._depth = 0
        try:
            self._execute("COMMIT")
        except BaseException:
            # A failed COMMIT (DuckDB out of memory, a full disk) leaves the transaction open and
            # aborted: roll it back, or every later statement on this connection fails too.
            with contextlib.suppress(duckdb.Error):
                self._conn.execute("ROLLBACK")
            raise

    def _write_columns(self, scan_id: str, cols: dict[str, list[Any]], *, new: bool) -> None:
        # Python lists go straight in as list parameters, zipped back into rows by unnest(): no Arrow
        # table, so a scan never imports pyarrow (~25 MB of its peak RSS), and the INSERT costs what the
        # Arrow path did (~11 us per record with a key, ~6 without).
        with self._errors():
            if not new:
                # Without an index this reads the scan's own rows (zone maps skip other scans): 2,000
                # endpoints against 2 M stored took 88 ms. Scans and imports vouch for new endpoints.
                self._conn.execute(
                    "DELETE FROM records USING (SELECT unnest($2) AS address, unnest($3) AS port) AS batch "
                    "WHERE records.scan_id = $1 AND records.address = batch.address "
                    "AND records.port = batch.port",
                    [scan_id, cols["address"], cols["port"]],
                )
            self._conn.execute(f"INSERT INTO records ({_NAMES}) SELECT {_UNNEST}", [cols[n] for n in COLUMNS])

    def _stream(self, sql: str, params: Sequence[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        # A cursor is a connection of its own: the stream survives writes on the main one. Without an
        # ORDER BY, DuckDB streams; with one it would materialise the whole result first.
        with self._lock, self._errors():
            cursor = self._conn.cursor()
            relation = cursor.sql(sql, params=list(params))
            if hasattr(relation, "to_arrow_reader"):  # DuckDB 2
                reader = relation.to_arrow_reader(batch_rows)
            else:  # DuckDB 1.x
                reader = relation.fetch_record_batch(batch_rows)
        return self._batches(cursor, reader)

    def _batches(
        self, cursor: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader
    ) -> Iterator[pa.RecordBatch]:
        schema = arrow_schema()
        import pyarrow as pa

        try:
            target = pa.schema([schema.field(name) for name in reader.schema.names])
            with self._errors():
                for batch in reader:
                    yield batch.cast(target)
        finally:
            cursor.close()

    def _lock_schema(self) -> None:
        """Nothing to do: DuckDB's file lock already admits a single writing process."""

    def close(self) -> None:
        with self._lock, contextlib.suppress(duckdb.Error):
            self._conn.close()
