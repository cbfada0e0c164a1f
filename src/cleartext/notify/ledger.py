"""The notification tables in the results store: recipients, subscriptions, opt-outs, and the ledger.

Why in the store: the ledger must survive the process (a run killed with SIGKILL is started again and
must neither repeat nor forget a message), and it must be where the scans are, so that "which owners
were told about scan X" is one query. Both backends (DuckDB, PostgreSQL) take the same SQL.

Store access: the store's public SQL seam -- ``execute`` and ``query`` (one statement, inside the
current transaction), ``transaction()`` and ``ensure_tables`` (tables made on first use, their schema
version in ``meta`` under ``notify_schema_version``) -- as the web and distributed stages use it. It
never touches ``scans``/``records`` except to read them.

The ledger (``notify_ledger``) has one row per (scan, recipient): one message per recipient per scan,
whatever happens. Its states (the exactly-once argument is in docs/notify.md):

``pending``           due: to be sent (also a message whose run died before its end of data)
``sending``           claimed by the running process: MAIL, RCPT, DATA and the body in progress
``sent``              the server answered 250 to the end of data
``assumed-sent``      the end of data was written but no reply was recorded (the run died, or the
                      connection dropped): counted as delivered rather than sent twice; listed
``failed-temporary``  a 4xx (or a connection lost before the end of data): retried after a backoff
``failed-permanent``  a 5xx, or too many temporary failures: never retried, reported

Beside the ledger, a :class:`Journal` file records "the end of data of this message is about to be
written" with one ``write(2)`` just before the final dot. A database commit cannot sit there: it ends
with an fsync (about 10 ms per commit measured with DuckDB), and a process killed after the commit but
before the dot would count a message the server never got. The journal entry costs microseconds and,
being in the kernel's page cache, survives the death of the process (not of the machine).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cleartext.notify.subscriptions import Recipient, Subscription
from cleartext.store import Store, StoreError
from cleartext.store.base import utc

__all__ = [
    "DUE_STATES",
    "FINAL_STATES",
    "NOTIFY_SCHEMA_VERSION",
    "STATES",
    "Journal",
    "LedgerRow",
    "NotifyStore",
    "journal_path",
]

NOTIFY_SCHEMA_VERSION = 1

STATES = (
    "pending",
    "sending",
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


class Journal:
    """Append-only marks "end of data about to be written for (scan, recipient, attempt)".

    One line per mark, written with a single ``os.write`` on an ``O_APPEND`` descriptor and never
    fsynced: the point is to be cheap enough to sit between deciding and writing the dot. It survives
    the death of the process (the kernel holds the page), not a crash of the machine; after a power
    loss a message whose dot went out may be sent again — a duplicate, never a loss.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def mark(self, scan_id: str, recipient: str, attempt: int) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        line = f"{scan_id}\t{recipient}\t{attempt}\n".encode()
        if os.write(self._fd, line) != len(line):  # a short write to a regular file: the disk is full
            raise OSError(f"short write to {self.path}")

    def entries(self) -> set[tuple[str, str, int]]:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return set()
        out: set[tuple[str, str, int]] = set()
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[2].isdigit():  # a torn last line (killed mid-write) is skipped
                out.add((parts[0], parts[1], int(parts[2])))
        return out

    def clear(self) -> None:
        """Empty the journal: every entry in it is settled in the ledger."""
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def journal_path(store: Store) -> Path:
    """Where a store's journal lives: beside a DuckDB file; for PostgreSQL, in the user's state directory.

    For PostgreSQL the file is local to the machine (named after the database URL, password removed):
    a run restarted on another machine does not see it, and treats the dead run's ``sending`` rows as
    never sent (a duplicate is then possible, a loss is not).
    """
    path = getattr(store, "path", None)
    if isinstance(path, str) and path != ":memory:":
        return Path(path + ".notify-journal")
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "cleartext"
    digest = hashlib.sha256(store.url.encode()).hexdigest()[:16]
    return base / f"notify-journal-{digest}"


class NotifyStore:
    """Subscriptions and the ledger, kept in a results store's own database (tables made on first use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ensure_schema()

    # -- the store's public SQL seam, under its lock ------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.store.execute(sql, params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.store.query(sql, params)

    def _ensure_schema(self) -> None:
        # Its version lives in meta under "notify_schema_version", as it always has.
        self.store.ensure_tables("notify", NOTIFY_SCHEMA_VERSION, DDL)

    @contextlib.contextmanager
    def run_lock(self) -> Iterator[None]:
        """One `cleartext notify` run per store at a time, so a ``sending`` row at start is a dead run's.

        DuckDB already admits one writing process per file. On PostgreSQL a session-level advisory
        lock does it; the server drops it when the connection ends, so a run killed with SIGKILL does
        not leave the store locked.
        """
        if self.store.dialect != "postgresql":
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

    def reconcile(self, journal: Journal) -> list[tuple[LedgerRow, str]]:
        """Settle the rows a dead run left in ``sending``; returns each as it was, with its new state.

        Called at the start of a run, under the run lock, so no live process owns these rows. A row
        whose attempt is in the journal may have had its final dot written — the server may hold the
        message, and we cannot ask it: ``assumed-sent``. Any other ``sending`` row never got as far as
        the dot, so no server accepted it (RFC 5321 4.1.1.4: no end of data, no message): ``pending``.
        The journal is emptied once the ledger says the same.
        """
        marked = journal.entries()
        moment = now_utc()
        with self.store.transaction():
            rows = [
                LedgerRow.from_row(r)
                for r in self._query(
                    f"SELECT {_LEDGER_COLUMNS} FROM notify_ledger WHERE state = ?", ("sending",)
                )
            ]
            settled: list[tuple[LedgerRow, str]] = []
            for row in rows:
                if (row.scan_id, row.recipient, row.attempts) in marked:
                    state, error = (
                        "assumed-sent",
                        "the run died after writing the end of data; no reply recorded",
                    )
                    sent_at: dt.datetime | None = moment
                else:
                    state, error = "pending", "the run died before the end of data: the server discarded it"
                    sent_at = None
                self._execute(
                    "UPDATE notify_ledger SET state = ?, last_error = ?, next_attempt_at = NULL, "
                    "updated_at = ?, sent_at = ? WHERE scan_id = ? AND recipient = ? AND state = ?",
                    (state, error, moment, sent_at, row.scan_id, row.recipient, "sending"),
                )
                settled.append((row, state))
        journal.clear()
        return settled

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

    def note(self, scan_id: str, recipients: Iterable[str], error: str) -> None:
        """Say on due rows why this run sent them nothing (a relay refused before any message), so that
        `cleartext notifications` shows it. The state, the attempts and the retry time stay as they were:
        nothing was attempted."""
        moment = now_utc()
        with self.store.transaction():
            for recipient in recipients:
                self._execute(
                    "UPDATE notify_ledger SET last_error = ?, updated_at = ? WHERE scan_id = ? "
                    "AND recipient = ? AND state IN (?, ?)",
                    (error, moment, scan_id, recipient, "pending", "failed-temporary"),
                )

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
