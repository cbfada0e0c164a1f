"""The shared store: a PostgreSQL database, written by many processes at once, via psycopg 3.

A batch goes in with ``COPY ... FROM STDIN`` into a temporary table, then one
``INSERT ... ON CONFLICT (scan_id, address, port) DO UPDATE`` moves it into `records`: COPY is the fast
path into PostgreSQL, and the upsert makes a redelivered batch replace rather than duplicate.
Streams (records, export) use a server-side cursor on a connection of their own, so a scan of millions
of endpoints never sits in memory and the main connection stays free for writes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict

from cleartext.store.base import Store, one_line
from cleartext.store.schema import COLUMNS, KEY_COLUMNS, RECORDS_KEY, StoreError, arrow_schema

if TYPE_CHECKING:  # pyarrow only for reading (exports, streams): a scan that writes never imports it
    import pyarrow as pa

_BATCH_TABLE = "_cleartext_batch"
_SCHEMA_LOCK = 0x636C656172746578  # "cleartex": serialises concurrent schema creation
CONNECT_TIMEOUT_S = 10


def redact(url: str) -> str:
    """The URL without its password, fit for an error message or a listing."""
    url = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)


# What the server says when it refuses who we are (SQLSTATE class 28, which libpq does not hand over
# for a failed connection): no retry will change its mind until the operator fixes the URL.
_REFUSED_LOGIN = re.compile(
    r"authentication failed|no password supplied|no pg_hba\.conf entry|role \".*\" does not exist"
)


class PostgresStore(Store):
    """A store in a PostgreSQL database named by a ``postgresql://`` URL."""

    dialect = "postgresql"
    _types: ClassVar[dict[str, str]] = {
        "text": "TEXT",
        "json": "json",
        "float": "DOUBLE PRECISION",
        "records_key": RECORDS_KEY,  # the B-tree lives on the server's disk, and ON CONFLICT needs it
    }

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = redact(url)
        self._dsn = url
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(f"bad PostgreSQL URL {self.url}: {one_line(exc)}") from None
        # Bounded: an unreachable server is an error after this many seconds, never a hang.
        self._connect_args: dict[str, Any] = {"application_name": "cleartext"}
        if "connect_timeout" not in params:
            self._connect_args["connect_timeout"] = CONNECT_TIMEOUT_S
        try:
            self._conn = psycopg.connect(url, autocommit=True, **self._connect_args)
            self._conn.execute("SET TimeZone = 'UTC'")
        except psycopg.Error as exc:
            message = one_line(exc)
            refused = _REFUSED_LOGIN.search(message) is not None
            raise StoreError(f"cannot open store {self.url}: {message}", permanent=refused) from None
        try:
            self._init_schema()
        except BaseException:
            self._conn.close()
            raise

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("?", "%s")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except psycopg.Error as exc:
            raise StoreError(f"store {self.url}: {one_line(exc)}") from None

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self._errors():
            self._conn.execute(self._sql(sql), list(params))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._errors():
            return self._conn.execute(self._sql(sql), list(params)).fetchall()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        # psycopg makes a nested transaction a savepoint; a failed commit is a StoreError too.
        with self._errors(), self._conn.transaction():
            yield

    def _write_columns(self, scan_id: str, cols: dict[str, list[Any]], *, new: bool) -> None:
        # `new` changes nothing here: ON CONFLICT costs one index probe per row either way.
        names = ", ".join(COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c not in KEY_COLUMNS)
        with self._errors():
            # A temporary table is private to this connection; created inside the transaction so a
            # rollback takes it along, and emptied first because an outer transaction (an import)
            # may still hold the previous batch.
            self._conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_BATCH_TABLE} (LIKE records)")
            self._conn.execute(f"TRUNCATE {_BATCH_TABLE}")
            with (
                self._conn.cursor() as cur,
                cur.copy(f"COPY {_BATCH_TABLE} ({names}) FROM STDIN") as copy,
            ):
                for row in zip(*(cols[c] for c in COLUMNS), strict=True):
                    copy.write_row(row)
            self._conn.execute(
                # In key order: two writers upserting overlapping batches then lock rows in the same
                # order, so they wait for each other instead of deadlocking.
                f"INSERT INTO records ({names}) SELECT {names} FROM {_BATCH_TABLE} "
                f"ORDER BY address, port ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {updates}"
            )

    def _stream(self, sql: str, params: Sequence[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        with self._errors():
            conn = psycopg.connect(self._dsn, **self._connect_args)
        return self._batches(conn, sql, params, batch_rows)

    def _batches(
        self, conn: psycopg.Connection[Any], sql: str, params: Sequence[Any], batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        schema = arrow_schema()
        try:
            with self._errors(), conn.cursor(name="cleartext_stream") as cur:
                cur.itersize = batch_rows
                cur.execute(self._sql(sql), list(params))
                assert cur.description is not None
                target = pa.schema([schema.field(d.name) for d in cur.description])
                while rows := cur.fetchmany(batch_rows):
                    columns = zip(*rows, strict=True)
                    yield pa.RecordBatch.from_arrays(
                        [
                            pa.array(list(values), type=f.type)
                            for values, f in zip(columns, target, strict=True)
                        ],
                        schema=target,
                    )
        finally:
            conn.close()

    def _lock_schema(self) -> None:
        self._execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def close(self) -> None:
        with self._lock:
            self._conn.close()
