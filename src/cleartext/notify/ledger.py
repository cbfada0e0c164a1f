"""The notification tables in the results store: recipients, subscriptions, opt-outs, and the ledger.

Why in the store: the ledger must survive the process (a run killed with SIGKILL is started again and
must neither repeat nor forget a message), and it must be where the scans are, so that "which owners
were told about scan X" is one query. Both backends (DuckDB, PostgreSQL) take the same SQL.

Store access. The :class:`~cleartext.store.Store` API offers scans and records, and ``transaction()``,
but no statement primitive for tables of its users. This module uses the narrowest part of its backend
contract it needs — ``_execute`` and ``_query`` (one statement, inside the current transaction) and
``_lock_schema`` (PostgreSQL's advisory lock around table creation) — always inside the public
``transaction()``, which also takes the store's lock. It never touches ``scans``/``records`` except to
read them, and keeps its schema version in ``meta`` under its own key, ``notify_schema_version``.

The ledger (``notify_ledger``) has one row per (scan, recipient): one message per recipient per scan,
whatever happens. Its states and the exactly-once argument are in docs/notify.md; in short:

``pending``           due: to be sent (also a message whose run died before end of data)
``sending``           claimed by the running process: MAIL, RCPT, DATA and the message body in progress
``end-of-data``       committed *before* the final ``.`` is written: the server may have accepted it
``sent``              the server answered 250 to the end of data
``assumed-sent``      found in ``end-of-data`` after a crash: counted as delivered, listed for review
``failed-temporary``  a 4xx (or a lost connection before end of data): retried after a backoff
``failed-permanent``  a 5xx, or too many temporary failures: never retried, reported
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cleartext.notify.subscriptions import Recipient, Subscription
from cleartext.store import Store, StoreError
from cleartext.store.base import utc

__all__ = [
    "DUE_STATES",
    "FINAL_STATES",
    "NOTIFY_SCHEMA_VERSION",
    "STATES",
    "LedgerRow",
    "NotifyStore",
]

NOTIFY_SCHEMA_VERSION = 1
_VERSION_KEY = "notify_schema_version"

STATES = (
    "pending",
    "sending",
    "end-of-data",
    "sent",
    "assumed-sent",
    "failed-temporary",
    "failed-permanent",
)
DUE_STATES = ("pending", "failed-temporary")  # failed-temporary only once next_attempt_at has passed
FINAL_STATES = ("sent", "assumed-sent", "failed-permanent")

# Plain SQL both DuckDB and PostgreSQL accept. Times are TIMESTAMPTZ (read back as text, see
# cleartext.store.base.utc); no literal "?" or "%" anywhere (the PostgreSQL backend rewrites "?").
DDL = """
CREATE TABLE IF NOT EXISTS notify_recipients (
    email TEXT PRIMARY KEY,
    lang TEXT NOT NULL,
    name TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_subscriptions (
    email TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (email, kind, value)
);
CREATE TABLE IF NOT EXISTS notify_optouts (
    email TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS notify_ledger (
    scan_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message_id TEXT NOT NULL,
    lang TEXT NOT NULL,
    source TEXT NOT NULL,
    endpoints INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    last_code INTEGER,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ,
    PRIMARY KEY (scan_id, recipient)
)
"""

_LEDGER_COLUMNS = (
    "scan_id, recipient, message_id, lang, source, endpoints, state, attempts, "
    "CAST(next_attempt_at AS TEXT), last_code, last_error, CAST(created_at AS TEXT), "
    "CAST(updated_at AS TEXT), CAST(sent_at AS TEXT)"
)
# A PostgreSQL advisory lock held for a whole `cleartext notify` run (session level: released when the
# connection ends, including when the process is killed). "clearnot" in ASCII.
_RUN_LOCK = 0x636C6561726E6F74


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One message: to whom, for which scan, and how far it got."""

    scan_id: str
    recipient: str
    message_id: str
    lang: str
    source: str  # "subscription" or "abuse-contact"
    endpoints: int
    state: str
    attempts: int
    next_attempt_at: dt.datetime | None
    last_code: int | None
    last_error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LedgerRow:
        (scan_id, recipient, message_id, lang, source, endpoints, state, attempts, next_at, code, error,
         created, updated, sent) = row  # fmt: skip
        created_at, updated_at = utc(created), utc(updated)
        assert created_at is not None and updated_at is not None
        return cls(
            scan_id=scan_id,
            recipient=recipient,
            message_id=message_id,
            lang=lang,
            source=source,
            endpoints=int(endpoints),
            state=state,
            attempts=int(attempts),
            next_attempt_at=utc(next_at),
            last_code=None if code is None else int(code),
            last_error=error,
            created_at=created_at,
            updated_at=updated_at,
            sent_at=utc(sent),
        )

    def to_dict(self) -> dict[str, Any]:
        def iso(moment: dt.datetime | None) -> str | None:
            return moment.isoformat().replace("+00:00", "Z") if moment else None

        return {
            "scan_id": self.scan_id,
            "recipient": self.recipient,
            "message_id": self.message_id,
            "lang": self.lang,
            "source": self.source,
            "endpoints": self.endpoints,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": iso(self.next_attempt_at),
            "last_code": self.last_code,
            "last_error": self.last_error,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "sent_at": iso(self.sent_at),
        }


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A ledger row to create (if absent) for this run's plan."""

    recipient: str
    message_id: str
    lang: str
    source: str
    endpoints: int


class NotifyStore:
    """Subscriptions and the ledger, kept in a results store's own database (tables made on first use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ensure_schema()

    # -- the narrow access to the store's backend (see the module docstring) ----------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.store._execute(sql, params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.store._query(sql, params)

    def _ensure_schema(self) -> None:
        with self.store.transaction():
            self.store._lock_schema()
            rows = self._query("SELECT value FROM meta WHERE key = ?", (_VERSION_KEY,))
            if rows:
                version = int(rows[0][0]) if str(rows[0][0]).isdigit() else None
                if version is None or version > NOTIFY_SCHEMA_VERSION:
                    raise StoreError(
                        f"{self.store.url} has notification tables of version {rows[0][0]}; this cleartext "
                        f"reads up to {NOTIFY_SCHEMA_VERSION} (upgrade cleartext)"
                    )
                return
            for statement in DDL.split(";"):
                if statement.strip():
                    self._execute(statement)
            self._execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)", (_VERSION_KEY, str(NOTIFY_SCHEMA_VERSION))
            )

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """One `cleartext notify` run per store at a time, so a ``sending`` row at start is a dead run's.

        DuckDB already admits one writing process per file. On PostgreSQL a session-level advisory
        lock does it; the server drops it when the connection ends, so a run killed with SIGKILL does
        not leave the store locked.
        """
        if not self.store.url.startswith(("postgresql://", "postgres://")):
            yield
            return
        with self.store.transaction():
            got = self._query("SELECT pg_try_advisory_lock(?)", (_RUN_LOCK,))[0][0]
        if not got:
            raise StoreError(f"another `cleartext notify` is running on {self.store.url}")
        try:
            yield
        finally:
            with contextlib.suppress(StoreError), self.store.transaction():
                self._query("SELECT pg_advisory_unlock(?)", (_RUN_LOCK,))

    # -- subscriptions -----------------------------------------------------------------------------

    def subscribe(
        self, recipient: Recipient, selectors: Sequence[tuple[str, str]], *, keep_lang: bool = False
    ) -> int:
        """Add subscriptions (already validated); returns how many were new.

        The recipient's language and name are set (or, with ``keep_lang``, kept when it exists). An
        explicit subscription is consent: it lifts an earlier opt-out of that address.
        """
        moment = now_utc()
        added = 0
        with self.store.transaction():
            existing = self._query(
                "SELECT lang, name FROM notify_recipients WHERE email = ?", (recipient.email,)
            )
            if not existing:
                self._execute(
                    "INSERT INTO notify_recipients (email, lang, name, created_at) VALUES (?, ?, ?, ?)",
                    (recipient.email, recipient.lang, recipient.name, moment),
                )
            else:
                lang = existing[0][0] if keep_lang else recipient.lang
                name = recipient.name if recipient.name is not None else existing[0][1]
                self._execute(
                    "UPDATE notify_recipients SET lang = ?, name = ? WHERE email = ?",
                    (lang, name, recipient.email),
                )
            for kind, value in selectors:
                if self._query(
                    "SELECT 1 FROM notify_subscriptions WHERE email = ? AND kind = ? AND value = ?",
                    (recipient.email, kind, value),
                ):
                    continue
                self._execute(
                    "INSERT INTO notify_subscriptions (email, kind, value, created_at) VALUES (?, ?, ?, ?)",
                    (recipient.email, kind, value, moment),
                )
                added += 1
            self._execute("DELETE FROM notify_optouts WHERE email = ?", (recipient.email,))
        return added

    def unsubscribe(self, email: str, selectors: Sequence[tuple[str, str]] | None = None) -> int:
        """Remove subscriptions; returns how many went.

        With no selectors the address is removed altogether *and* put on the opt-out list, so that it
        is not written to as an abuse contact either. With selectors, only those subscriptions go; a
        recipient left with none is removed (but not opted out: they asked for less, not for nothing).
        """
        with self.store.transaction():
            if selectors:
                removed = 0
                for kind, value in selectors:
                    hit = self._query(
                        "SELECT 1 FROM notify_subscriptions WHERE email = ? AND kind = ? AND value = ?",
                        (email, kind, value),
                    )
                    if hit:
                        self._execute(
                            "DELETE FROM notify_subscriptions WHERE email = ? AND kind = ? AND value = ?",
                            (email, kind, value),
                        )
                        removed += 1
                if not self._query("SELECT 1 FROM notify_subscriptions WHERE email = ?", (email,)):
                    self._execute("DELETE FROM notify_recipients WHERE email = ?", (email,))
                return removed
            removed = int(
                self._query("SELECT count(*) FROM notify_subscriptions WHERE email = ?", (email,))[0][0]
            )
            self._execute("DELETE FROM notify_subscriptions WHERE email = ?", (email,))
            self._execute("DELETE FROM notify_recipients WHERE email = ?", (email,))
            if not self._query("SELECT 1 FROM notify_optouts WHERE email = ?", (email,)):
                self._execute(
                    "INSERT INTO notify_optouts (email, created_at) VALUES (?, ?)", (email, now_utc())
                )
            return removed

    def recipients(self) -> dict[str, Recipient]:
        with self.store.transaction():
            rows = self._query("SELECT email, lang, name FROM notify_recipients ORDER BY email")
        return {email: Recipient(email, lang, name) for email, lang, name in rows}

    def subscriptions(self) -> list[Subscription]:
        with self.store.transaction():
            rows = self._query(
                "SELECT email, kind, value FROM notify_subscriptions ORDER BY email, kind, value"
            )
        return [Subscription(email, kind, value) for email, kind, value in rows]

    def optouts(self) -> set[str]:
        with self.store.transaction():
            return {row[0] for row in self._query("SELECT email FROM notify_optouts")}

    # -- the ledger --------------------------------------------------------------------------------

    def ledger(self, scan_id: str | None = None) -> list[LedgerRow]:
        """Ledger rows, of one scan or all, ordered by scan then recipient."""
        sql = f"SELECT {_LEDGER_COLUMNS} FROM notify_ledger"
        params: tuple[Any, ...] = ()
        if scan_id is not None:
            sql += " WHERE scan_id = ?"
            params = (scan_id,)
        with self.store.transaction():
            rows = self._query(sql + " ORDER BY scan_id, recipient", params)
        return [LedgerRow.from_row(row) for row in rows]

    def row(self, scan_id: str, recipient: str) -> LedgerRow | None:
        with self.store.transaction():
            rows = self._query(
                f"SELECT {_LEDGER_COLUMNS} FROM notify_ledger WHERE scan_id = ? AND recipient = ?",
                (scan_id, recipient),
            )
        return LedgerRow.from_row(rows[0]) if rows else None

    def reconcile(self) -> list[LedgerRow]:
        """Settle the rows a dead run left in flight; returns them as they were.

        Called at the start of a run, under the run lock, so no live process owns these rows:

        - ``sending``: the final ``.`` was never written (``end-of-data`` is committed before it), so
          no server can have accepted the message: back to ``pending``, due now.
        - ``end-of-data``: the dot may have been written and the server may have answered 250; we
          cannot ask it. Counted as delivered (``assumed-sent``) rather than sent twice.
        """
        moment = now_utc()
        with self.store.transaction():
            rows = [
                LedgerRow.from_row(r)
                for r in self._query(
                    f"SELECT {_LEDGER_COLUMNS} FROM notify_ledger WHERE state IN (?, ?)",
                    ("sending", "end-of-data"),
                )
            ]
            self._execute(
                "UPDATE notify_ledger SET state = ?, next_attempt_at = NULL, updated_at = ?, "
                "last_error = ? WHERE state = ?",
                ("pending", moment, "interrupted before the end of data: the server discarded it", "sending"),
            )
            self._execute(
                "UPDATE notify_ledger SET state = ?, updated_at = ?, sent_at = ?, last_error = ? "
                "WHERE state = ?",
                (
                    "assumed-sent",
                    moment,
                    moment,
                    "interrupted after the end of data was committed; no reply recorded",
                    "end-of-data",
                ),
            )
        return rows

    def add(self, scan_id: str, messages: Iterable[NewMessage]) -> int:
        """Create the ledger rows of this run's plan that do not exist yet (pending); returns how many."""
        moment = now_utc()
        added = 0
        with self.store.transaction():
            known = {
                row[0]
                for row in self._query("SELECT recipient FROM notify_ledger WHERE scan_id = ?", (scan_id,))
            }
            for m in messages:
                if m.recipient in known:
                    continue
                self._execute(
                    "INSERT INTO notify_ledger (scan_id, recipient, message_id, lang, source, endpoints, "
                    "state, attempts, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        scan_id,
                        m.recipient,
                        m.message_id,
                        m.lang,
                        m.source,
                        m.endpoints,
                        "pending",
                        0,
                        moment,
                        moment,
                    ),
                )
                known.add(m.recipient)
                added += 1
        return added

    def claim(self, scan_id: str, recipient: str, *, resend_uncertain: bool = False) -> LedgerRow | None:
        """Move a due row to ``sending`` and count the attempt; None if it is not due (any more).

        One conditional UPDATE ... RETURNING: the row is claimed by this statement or not at all.
        """
        moment = now_utc()
        states = ["pending", "failed-temporary", *(["assumed-sent"] if resend_uncertain else [])]
        marks = ", ".join("?" for _ in states)
        with self.store.transaction():
            rows = self._query(
                "UPDATE notify_ledger SET state = ?, attempts = attempts + 1, updated_at = ? "
                f"WHERE scan_id = ? AND recipient = ? AND state IN ({marks}) "
                "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
                f"RETURNING {_LEDGER_COLUMNS}",
                ("sending", moment, scan_id, recipient, *states, moment),
            )
        return LedgerRow.from_row(rows[0]) if rows else None

    def mark(
        self,
        scan_id: str,
        recipient: str,
        state: str,
        *,
        code: int | None = None,
        error: str | None = None,
        next_attempt_at: dt.datetime | None = None,
    ) -> None:
        """Record a state change of a claimed row (the caller holds the claim)."""
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        moment = now_utc()
        sent_at = moment if state == "sent" else None
        with self.store.transaction():
            self._execute(
                "UPDATE notify_ledger SET state = ?, last_code = ?, last_error = ?, next_attempt_at = ?, "
                "updated_at = ?, sent_at = COALESCE(?, sent_at) WHERE scan_id = ? AND recipient = ?",
                (state, code, error, next_attempt_at, moment, sent_at, scan_id, recipient),
            )
