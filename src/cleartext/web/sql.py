"""The one place the web layer talks SQL to the store, through the store's connection primitives.

Why here and not in cleartext.store: the store's public API (scans, records, diff, export) covers what a
scanner and the CLI need, but not the web's own tables (tokens, the attribution cache) nor the filtered,
paginated, joined queries of a dashboard. The store's backend primitives (``_execute``, ``_query``,
``_transaction``, ``_stream``, ``_lock``) are the narrowest way in that works the same on DuckDB and
PostgreSQL; they are used only through this wrapper, so if the store grows a public query API, this is
the file to change. Every statement uses ``?`` placeholders (PostgreSQL's backend rewrites them) and
never a literal ``?`` or ``%``, the store's own rule.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from cleartext.store import Store


class Sql:
    """Statements, queries, transactions and streams on a store's own connection (under its lock)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        # DuckDB and PostgreSQL differ in nothing this layer uses but this: the name is for messages.
        self.backend = "postgresql" if type(store).__name__.startswith("Postgres") else "duckdb"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.store._lock:
            self.store._execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.store._lock:
            return self.store._query(sql, params)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Atomic, and holding the store's lock throughout (nobody else's statement slips in)."""
        with self.store._lock, self.store._transaction():
            yield

    def stream(self, sql: str, params: Sequence[Any], batch_rows: int = 2000) -> Iterator[pa.RecordBatch]:
        """A query streamed as Arrow batches on a connection of its own.

        The store casts each column to the type of the records column *of the same name*, so a streamed
        query may only select columns named like the records table's (``scan_id``, ``record``, ...).
        """
        return self.store._stream(sql, params, batch_rows)

    def create_tables(self, ddl: str) -> None:
        """Run ``CREATE TABLE IF NOT EXISTS`` statements (separated by ``;``) in one transaction."""
        with self.transaction():
            for statement in ddl.split(";"):
                if statement.strip():
                    self.store._execute(statement)
