"""What every store backend shares: the schema, the record → typed-row mapping, scans, diff and export.

A backend (DuckDB, PostgreSQL) only supplies a handful of primitives — run a statement, run a query,
a transaction, write one columnar batch, stream a query as Arrow record batches — and the DDL type
names that differ. Everything a user can observe (scan ids, the diff's definition, the export formats)
is written once here, so both backends keep one contract and one test suite covers both.

SQL here uses ``?`` placeholders; the PostgreSQL backend rewrites them to psycopg's ``%s``. No SQL in
this module contains a literal ``?`` or ``%`` for that reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from cleartext.record import Record, accepted_tls_versions, record_from_dict, severity_rank
from cleartext.store.schema import (
    COLUMNS,
    CONCLUSIVE_STATUSES,
    DDL,
    DOMAIN_COLUMNS,
    DOMAINS_DDL,
    EXPORT_FORMATS,
    LATEST,
    STORE_SCHEMA_VERSION,
    DomainRow,
    StoreError,
)

if TYPE_CHECKING:  # pyarrow is imported lazily: `cleartext scan` should not pay for it at start-up.
    import pyarrow as pa


def one_line(exc: BaseException) -> str:
    """The first line of an exception's text: driver errors run to several lines, our errors never do."""
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def new_scan_id(now: dt.datetime | None = None) -> str:
    """A short id that sorts by the second a scan started: ``20261128T081500Z-3f9a`` (then 16 random bits).

    The random part keeps two scans started in the same second apart (a clash is retried by begin_scan),
    so ids of one second do not sort among themselves: ``latest`` orders by the stored start time.
    """
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def parse_time(text: str | None) -> dt.datetime | None:
    """ISO 8601 → aware UTC datetime; None for an empty or unparsable string (blocklisted records)."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def utc(moment: dt.datetime | str | None) -> dt.datetime | None:
    """Aware UTC from whatever the driver gave: a datetime in the session's zone, naive, or text.

    Timestamps are read as text (``CAST(... AS TEXT)``, "2026-11-28 08:15:00.123+00" in both databases
    with the session in UTC) because DuckDB 1.x needs pytz to hand out a TIMESTAMPTZ as a datetime.
    """
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def check_record(record: Record) -> None:
    """Raise ValueError unless the fields that become typed columns have their types.

    record_from_dict checks the enums but takes other fields as they come; a hand-edited or foreign
    line with a port of "25" or a list for a hostname must be refused by name, not fail inside Arrow
    or the database with a message about neither.
    """
    obs = record.observation
    if not isinstance(obs.address, str):
        raise ValueError("address must be a string")
    try:
        ipaddress.ip_address(obs.address)
    except ValueError:
        raise ValueError(f"address {obs.address!r} is not an IP address") from None
    if not isinstance(obs.port, int) or isinstance(obs.port, bool) or not 0 <= obs.port <= 65535:
        raise ValueError(f"port {obs.port!r} is not a TCP port")
    for name in ("hostname", "software"):
        if not isinstance(getattr(obs, name), str | None):
            raise ValueError(f"{name} must be a string or null")
    if not isinstance(obs.started_at, str):
        raise ValueError("started_at must be a string")
    total = obs.timings_ms.get("total") if isinstance(obs.timings_ms, dict) else None
    if not isinstance(obs.timings_ms, dict) or not isinstance(total, int | float | None):
        raise ValueError("timings_ms must be an object of numbers")
    if obs.tls is not None and not isinstance(obs.tls.version, str | None):
        raise ValueError("tls.version must be a string or null")
    for finding in record.findings:
        if not isinstance(finding.code, str):
            raise ValueError("a finding's code must be a string")


def check_domain_row(row: DomainRow) -> None:
    """Raise ValueError unless a domain row's typed columns have their types (an imported domain line
    may hold anything where a name or a list of codes belongs)."""
    if not isinstance(row.domain, str) or not row.domain:
        raise ValueError("domain must be a non-empty string")
    if not isinstance(row.checked_at, str):
        raise ValueError("checked_at must be a string")
    for name in ("finding_codes", "finding_severities", "mx_hosts"):
        values = getattr(row, name)
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise ValueError(f"{name} must be a list of strings")
    if not isinstance(row.mta_sts_mode, str | None):
        raise ValueError("mta_sts.mode must be a string or null")


def typed_columns(
    scan_id: str, records: Sequence[Record], lines: Sequence[str] | None = None
) -> dict[str, list[Any]]:
    """The batch as columns (one list per column of ``COLUMNS``), one row per endpoint.

    A batch may name an endpoint twice (a shard redelivered inside one batch): the last record wins,
    as a later write would, and the database never sees a key twice in one statement (PostgreSQL's
    ON CONFLICT refuses that). ``lines``, when given, are the records' ``to_json()`` already made.
    """
    latest: dict[tuple[str, int], int] = {}
    for i, record in enumerate(records):
        latest[(record.observation.address, record.observation.port)] = i
    cols: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for i in latest.values():
        record = records[i]
        obs = record.observation
        codes = [f.code for f in record.findings]
        worst = record.worst
        cols["scan_id"].append(scan_id)
        cols["address"].append(obs.address)
        cols["port"].append(obs.port)
        cols["protocol"].append(obs.protocol.value)
        cols["tls_mode"].append(obs.tls_mode.value)
        cols["hostname"].append(obs.hostname)
        cols["status"].append(obs.status.value)
        cols["software"].append(obs.software)
        cols["tls_version"].append(obs.tls.version if obs.tls is not None else None)
        cols["tls_versions"].append(accepted_tls_versions(obs))
        cols["worst_severity"].append(worst.value if worst is not None else None)
        cols["finding_codes"].append(codes)
        cols["finding_severities"].append([f.severity.value for f in record.findings])
        cols["cleartext_login"].append("cleartext-login" in codes)
        cols["started_at"].append(parse_time(obs.started_at))
        total = obs.timings_ms.get("total")
        cols["total_ms"].append(float(total) if total is not None else None)
        cols["record"].append(record.to_json() if lines is None else lines[i])
    return cols


@dataclass(frozen=True, slots=True)
class ScanInfo:
    """One scan as the store knows it."""

    scan_id: str
    started_at: dt.datetime  # aware, UTC
    finished_at: dt.datetime | None  # None while the scan runs (or if it died before finishing)
    params: dict[str, Any]  # what the scan was asked to do: targets, ports, settings
    counts: dict[str, int]  # endpoints by status, as given to finish_scan ({} until then)
    endpoints: int  # records stored for this scan
    domains: int = 0  # domain records stored for this scan (`check DOMAIN --json`, imported)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat().replace("+00:00", "Z")
        data["finished_at"] = (
            self.finished_at.isoformat().replace("+00:00", "Z") if self.finished_at else None
        )
        return data


@dataclass(frozen=True, slots=True)
class Exposure:
    """One finding on one endpoint, as the diff reports it."""

    address: str
    port: int
    protocol: str
    hostname: str | None
    code: str
    severity: str  # from scan B for new/still, from scan A for fixed/unknown
    status: str | None  # the endpoint's status in scan B; None when B has no record of it



DIFF_KINDS = ("new", "fixed", "still", "unknown")


@dataclass(frozen=True, slots=True)
class DomainExposure:
    """One finding on one domain, as the diff reports it."""

    domain: str
    code: str
    severity: str


@dataclass(frozen=True, slots=True)
class Diff:
    """What changed between scan A (before) and scan B (after), per (address, port, finding code).

    - ``new``: the finding is in B and was not in A (also when A did not have the endpoint at all).
    - ``still``: the finding is in both.
    - ``fixed``: the finding was in A, is not in B, and B reached a conclusive status on the endpoint
      (``success``, ``refused``, ``not-mail``: see CONCLUSIVE_STATUSES).
    - ``unknown``: the finding was in A, is not in B, but B has no record of the endpoint or only an
      inconclusive one (a timeout, a reset, a refusal by policy...): not counted as fixed.
    """

    a: str
    b: str
    new: list[Exposure] = field(default_factory=list)
    fixed: list[Exposure] = field(default_factory=list)
    still: list[Exposure] = field(default_factory=list)
    unknown: list[Exposure] = field(default_factory=list)
    # The same four lists for the scans' domain records (`check DOMAIN --json`, imported), per (domain,
    # finding code): fixed when B checked the domain again without the finding, unknown when B has no
    # record of the domain at all.
    domains: dict[str, list[DomainExposure]] = field(
        default_factory=lambda: {kind: [] for kind in DIFF_KINDS}
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            **{kind: [asdict(e) for e in getattr(self, kind)] for kind in DIFF_KINDS},
            "domains": {kind: [asdict(e) for e in self.domains[kind]] for kind in DIFF_KINDS},
        }


def _endpoint_order(e: Exposure) -> tuple[int, bytes, int, str]:
    try:
        packed = ipaddress.ip_address(e.address).packed
    except ValueError:
        packed = e.address.encode()
    return (len(packed), packed, e.port, e.code)


# One query gives the whole diff: every finding of B (is it also in A?) and every finding of A that B
# lacks (with B's status for the endpoint, if any). Parameters: a, b, b, in that order.
_DIFF_SQL = """
WITH fa AS (
    SELECT address, port, protocol, hostname,
           unnest(finding_codes) AS code, unnest(finding_severities) AS severity
    FROM records WHERE scan_id = ?
), fb AS (
    SELECT address, port, protocol, hostname,
           unnest(finding_codes) AS code, unnest(finding_severities) AS severity
    FROM records WHERE scan_id = ?
), eb AS (
    SELECT address, port, status FROM records WHERE scan_id = ?
)
SELECT 'b' AS side, fb.address, fb.port, fb.protocol, fb.hostname, fb.code, fb.severity, eb.status,
       fa.code IS NOT NULL AS in_other
FROM fb
JOIN eb ON eb.address = fb.address AND eb.port = fb.port
LEFT JOIN fa ON fa.address = fb.address AND fa.port = fb.port AND fa.code = fb.code
UNION ALL
SELECT 'a' AS side, fa.address, fa.port, fa.protocol, fa.hostname, fa.code, fa.severity, eb.status,
       FALSE AS in_other
FROM fa
LEFT JOIN fb ON fb.address = fa.address AND fb.port = fa.port AND fb.code = fa.code
LEFT JOIN eb ON eb.address = fa.address AND eb.port = fa.port
WHERE fb.code IS NULL
"""

_SCANS_SQL = """
SELECT s.scan_id, CAST(s.started_at AS TEXT), CAST(s.finished_at AS TEXT),
       CAST(s.params AS TEXT), CAST(s.counts AS TEXT),
       (SELECT count(*) FROM records r WHERE r.scan_id = s.scan_id),
       (SELECT count(*) FROM domains d WHERE d.scan_id = s.scan_id)
FROM scans s
"""


class Store(ABC):
    """A results store: scans, and one record per (scan, address, port).

    Public methods are serialised by one lock, so a StoreSink's flusher thread and the scan's own
    thread can share a store. Stream methods (records, export) read through their own connection.
    """

    url: str  # as given, password removed: safe to print
    dialect: ClassVar[Literal["duckdb", "postgresql"]]  # the one way to ask which backend this is

    # Per-backend DDL type names, see DDL.
    _types: ClassVar[Mapping[str, str]]

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._known_scans: set[str] = set()

    # -- backend primitives -------------------------------------------------------------------------

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement (inside the current transaction, if any)."""

    @abstractmethod
    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query and return all its rows (for small results only)."""

    @abstractmethod
    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        """A transaction; nested ones join the outer one (or are savepoints)."""

    @abstractmethod
    def _write_columns(self, scan_id: str, cols: dict[str, list[Any]], *, new: bool) -> None:
        """Write one deduplicated columnar batch into `records`, inside the current transaction,
        replacing the scan's stored records of its endpoints (``new``: the caller says there are none)."""

    @abstractmethod
    def _stream(self, sql: str, params: Sequence[Any], batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream a query's result as Arrow batches of the given columns, without materialising it."""

    @abstractmethod
    def _lock_schema(self) -> None:
        """Serialise schema creation among processes opening the same store at once (where possible)."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection; a DuckDB file is checkpointed and unlocked."""

    def prepare_bulk_writes(self) -> None:
        """A long run of batched writes follows (a scan's sink): bound the memory it may take.

        Nothing to do by default (PostgreSQL's memory is the server's); DuckDB caps its buffer pool.
        """
        return None

    def memory_warning(self, endpoints: int) -> str | None:
        """Why writing this many more records would make the scanning process large, or None."""
        return None

    # -- schema ------------------------------------------------------------------------------------

    def _init_schema(self) -> None:
        """Create the tables in an empty database; refuse a database that is someone else's or newer."""
        with self._transaction():
            self._lock_schema()
            tables = {
                row[0]
                for row in self._query(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
                )
            }
            if "meta" not in tables:
                # Someone else's tables are left alone (a shared PostgreSQL database); ours without
                # their version row mean the store is not ours, or broken: touch nothing.
                if tables & {"scans", "records"}:
                    raise StoreError(
                        f"{self.url} is not a cleartext store (tables scans/records without meta)"
                    )
                for statement in DDL.format(**self._types).split(";"):
                    if statement.strip():
                        self._execute(statement)
                self._execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    ("schema_version", str(STORE_SCHEMA_VERSION)),
                )
                return
            rows = self._query("SELECT value FROM meta WHERE key = ?", ("schema_version",))
            version = int(rows[0][0]) if rows and str(rows[0][0]).isdigit() else None
            if version is None:
                raise StoreError(f"{self.url} is not a cleartext store (no schema version)")
            if version > STORE_SCHEMA_VERSION:
                raise StoreError(
                    f"{self.url} has store schema version {version}; this cleartext reads up to "
                    f"{STORE_SCHEMA_VERSION} (upgrade cleartext)"
                )
            if version == 2:
                # 3 only added the domains table: a version-2 store gains it, empty, and is otherwise
                # the same. Under the schema lock, so two processes opening it at once migrate once.
                for statement in DOMAINS_DDL.format(**self._types).split(";"):
                    if statement.strip():
                        self._execute(statement)
                self._execute(
                    "UPDATE meta SET value = ? WHERE key = ?", (str(STORE_SCHEMA_VERSION), "schema_version")
                )
                return
            if version < STORE_SCHEMA_VERSION:
                # Version 1 existed only in development builds (before the first release): no migration.
                raise StoreError(
                    f"{self.url} has store schema version {version}, from a development build; "
                    "export its scans with that build and import them here, or start a new store"
                )

    # -- the public SQL seam ------------------------------------------------------------------------
    #
    # For the stages that keep tables of their own in the store (web tokens and caches, the
    # notification ledger, distributed shards) or query records in their own way. Statements use ``?``
    # placeholders (PostgreSQL's backend rewrites them) and never a literal ``?`` or ``%``; each runs on
    # the store's connection under its lock, inside the current transaction if there is one.

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run one statement."""
        with self._lock:
            self._execute(sql, params)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query and return all its rows (small results only: :meth:`stream` for the rest)."""
        with self._lock:
            return self._query(sql, params)

    def stream(
        self, sql: str, params: Sequence[Any] = (), batch_rows: int = 2000
    ) -> Iterator[pa.RecordBatch]:
        """A query's result as Arrow batches, on a connection of its own, without materialising it.

        Each column is cast to the type of the records column *of the same name*, so a streamed query
        may only select columns named like the records table's (``scan_id``, ``record``, ...).
        """
        return self._stream(sql, params, batch_rows)

    def ensure_tables(self, component: str, version: int, ddl: str) -> None:
        """A component's own tables: made on first use (``ddl``: statements separated by ``;``) with its
        schema version recorded in ``meta`` under ``{component}_schema_version``; a store whose tables
        are newer than ``version`` is refused (StoreError), as the store's own schema is."""
        key = f"{component}_schema_version"
        with self.transaction():
            self._lock_schema()
            rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
            if rows:
                found = int(rows[0][0]) if str(rows[0][0]).isdigit() else None
                if found is None or found > version:
                    raise StoreError(
                        f"{self.url} has {component} tables of version {rows[0][0]}; this cleartext reads "
                        f"up to {version} (upgrade cleartext)"
                    )
                return
            for statement in ddl.split(";"):
                if statement.strip():
                    self._execute(statement)
            self._execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, str(version)))

    # -- scans -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Make everything inside atomic: all of it is stored, or (on an exception) none of it.

        `cleartext import` runs begin_scan, every write and finish_scan in one, so a bad line leaves no
        half-imported scan behind.
        """
        with self._lock:
            known = set(self._known_scans)
            try:
                with self._transaction():
                    yield
            except BaseException:
                self._known_scans = known  # scans begun inside were rolled back
                raise

    def begin_scan(self, params: Mapping[str, Any], *, started_at: dt.datetime | None = None) -> str:
        """Register a new scan and return its id. `params` must be JSON-able (paths and such become text)."""
        moment = utc(started_at) or dt.datetime.now(dt.UTC)
        text = json.dumps(dict(params), default=str, sort_keys=True)
        with self._lock:
            for _ in range(16):  # 16 random-suffix clashes in one second: something else is wrong
                scan_id = new_scan_id(moment)
                # ON CONFLICT, not a look-up first: two PostgreSQL writers may pick an id at once.
                with self._transaction():
                    inserted = self._query(
                        "INSERT INTO scans (scan_id, started_at, params) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING RETURNING scan_id",
                        (scan_id, moment, text),
                    )
                if inserted:
                    self._known_scans.add(scan_id)
                    return scan_id
        raise StoreError("could not find a free scan id")

    def finish_scan(
        self,
        scan_id: str,
        counts: Mapping[str, int] | None = None,
        *,
        finished_at: dt.datetime | None = None,
    ) -> None:
        """Mark a scan finished with its endpoint counts by status (None: count the stored records)."""
        moment = utc(finished_at) or dt.datetime.now(dt.UTC)
        with self._lock, self._transaction():
            self._require(scan_id)
            if counts is None:
                rows = self._query(
                    "SELECT status, count(*) FROM records WHERE scan_id = ? GROUP BY status", (scan_id,)
                )
                counts = {status: int(n) for status, n in rows}
            ordered = dict(
                sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
            )
            self._execute(
                "UPDATE scans SET finished_at = ?, counts = ? WHERE scan_id = ?",
                (moment, json.dumps(ordered), scan_id),
            )

    def scans(self) -> list[ScanInfo]:
        """Every scan, oldest first."""
        with self._lock:
            rows = self._query(_SCANS_SQL + " ORDER BY s.started_at, s.scan_id")
        return [self._scan_info(row) for row in rows]

    def scan(self, scan_id: str) -> ScanInfo:
        """One scan; StoreError if the store has no scan of that id."""
        with self._lock:
            rows = self._query(_SCANS_SQL + " WHERE s.scan_id = ?", (scan_id,))
        if not rows:
            raise StoreError(f"no scan {scan_id!r} in {self.url}")
        return self._scan_info(rows[0])

    def resolve_scan(self, scan_id: str) -> str:
        """A scan id as the operator typed it, checked: ``latest`` names the most recently started scan.

        Every command that takes a scan id goes through here, so ``latest`` works wherever an id does.
        StoreError when the store has no such scan (or, for ``latest``, no scan at all).
        """
        if scan_id == LATEST:
            with self._lock:
                rows = self._query(_SCANS_SQL + " ORDER BY s.started_at DESC, s.scan_id DESC LIMIT 1")
            if not rows:
                raise StoreError(f"no scans in {self.url} yet")
            return self._scan_info(rows[0]).scan_id
        return self.scan(scan_id).scan_id

    @staticmethod
    def _scan_info(row: tuple[Any, ...]) -> ScanInfo:
        scan_id, started, finished, params, counts, endpoints, domains = row
        started_at = utc(started)
        assert started_at is not None
        return ScanInfo(
            scan_id=scan_id,
            started_at=started_at,
            finished_at=utc(finished),
            params=json.loads(params) if params else {},
            counts=json.loads(counts) if counts else {},
            endpoints=int(endpoints),
            domains=int(domains),
        )

    def _require(self, scan_id: str) -> None:
        """StoreError unless the scan exists (cached: a sink checks on every batch)."""
        if scan_id in self._known_scans:
            return
        if not self._query("SELECT 1 FROM scans WHERE scan_id = ?", (scan_id,)):
            raise StoreError(f"no scan {scan_id!r} in {self.url}")
        self._known_scans.add(scan_id)

    # -- records -----------------------------------------------------------------------------------

    def write(
        self,
        scan_id: str,
        records: Sequence[Record],
        *,
        new: bool = False,
        lines: Sequence[str] | None = None,
    ) -> int:
        """Store a batch of records for a scan, in one columnar insert; returns the endpoints written.

        Idempotent per (scan_id, address, port): an endpoint written again replaces its earlier record,
        so a redelivered shard leaves every endpoint once. ``new=True`` is the caller's word that no
        endpoint of the batch is stored for this scan yet (a scan's sink: the engine emits each endpoint
        once), which spares a store without a key index the search for earlier records. ``lines``: each
        record's ``to_json()``, where the caller has made it already (a scan writes it to its output
        too; encoding once saves ~3 % of a scan's CPU).
        """
        if lines is not None and len(lines) != len(records):
            raise ValueError("lines must match records one to one")
        if not records:
            return 0
        for number, record in enumerate(records, 1):
            try:
                check_record(record)
            except ValueError as exc:
                raise StoreError(f"record {number} of the batch: {exc}") from None
        cols = typed_columns(scan_id, records, lines)
        with self._lock, self._transaction():
            self._require(scan_id)
            self._write_columns(scan_id, cols, new=new)
        return len(cols["scan_id"])

    def keep_last(self, scan_id: str) -> None:
        """After writes with ``new=True`` that may have named an endpoint twice (an imported file), keep
        only the last record of each endpoint. Nothing to do where a key index enforces it."""
        return None

    def records(self, scan_id: str, *, batch_rows: int = 2000) -> Iterator[Record]:
        """Every record of a scan, streamed (never all in memory), in storage order (not sorted)."""
        with self._lock:
            self._require(scan_id)
        return self._records(scan_id, batch_rows)

    def _records(self, scan_id: str, batch_rows: int) -> Iterator[Record]:
        sql = "SELECT CAST(record AS TEXT) AS record FROM records WHERE scan_id = ?"
        for batch in self._stream(sql, (scan_id,), batch_rows):
            for text in batch.column(0).to_pylist():
                yield record_from_dict(json.loads(text))

    def count(self, scan_id: str) -> int:
        """Endpoints stored for a scan."""
        with self._lock:
            self._require(scan_id)
            return int(self._query("SELECT count(*) FROM records WHERE scan_id = ?", (scan_id,))[0][0])

    # -- domains -----------------------------------------------------------------------------------

    def write_domains(self, scan_id: str, rows: Sequence[DomainRow]) -> int:
        """Store a scan's domain records; returns the domains written.

        Idempotent per (scan_id, domain), like :meth:`write`: a domain written again replaces its earlier
        row, and within one call the last row of a domain wins. A scan holds a handful of domains, so
        this is a statement per row (no columnar batch), written once here for both databases.
        """
        for number, row in enumerate(rows, 1):
            try:
                check_domain_row(row)
            except ValueError as exc:
                raise StoreError(f"domain record {number}: {exc}") from None
        latest = {row.domain: row for row in rows}
        names = ", ".join(DOMAIN_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in DOMAIN_COLUMNS if c not in ("scan_id", "domain"))
        sql = (
            f"INSERT INTO domains ({names}) VALUES ({', '.join('?' * len(DOMAIN_COLUMNS))}) "
            f"ON CONFLICT (scan_id, domain) DO UPDATE SET {updates}"
        )
        with self._lock, self._transaction():
            self._require(scan_id)
            for row in latest.values():
                self._execute(
                    sql,
                    (
                        scan_id,
                        row.domain,
                        parse_time(row.checked_at),
                        row.worst_severity,
                        row.finding_codes,
                        row.finding_severities,
                        row.mx_hosts,
                        row.mta_sts_mode,
                        row.tls_rpt,
                        row.dane,
                        row.record,
                    ),
                )
        return len(latest)

    def domains(self, scan_id: str) -> list[str]:
        """A scan's domain records as JSON text, by domain name ([] for a scan without any)."""
        with self._lock:
            self._require(scan_id)
            rows = self._query(
                "SELECT CAST(record AS TEXT) FROM domains WHERE scan_id = ? ORDER BY domain", (scan_id,)
            )
        return [str(text) for (text,) in rows]

    # -- diff --------------------------------------------------------------------------------------

    def diff(self, a: str, b: str) -> Diff:
        """Compare scan A (before) with scan B (after); see :class:`Diff` for what each list means."""
        with self._lock:
            self._require(a)
            self._require(b)
            rows = self._query(_DIFF_SQL, (a, b, b))
        best: dict[tuple[str, str, int, str], tuple[str, Exposure]] = {}
        for side, address, port, protocol, hostname, code, severity, status, in_other in rows:
            if side == "b":
                kind = "still" if in_other else "new"
            else:
                kind = "fixed" if status in CONCLUSIVE_STATUSES else "unknown"
            exposure = Exposure(address, int(port), protocol, hostname, code, severity, status)
            key = (kind, address, int(port), code)
            # The same code twice on one endpoint (never written by assess, but possible in imports):
            # keep the worse severity, report it once.
            if key not in best or severity_rank(severity) > severity_rank(best[key][1].severity):
                best[key] = (kind, exposure)
        result = Diff(a=a, b=b)
        for kind, exposure in best.values():
            getattr(result, kind).append(exposure)
        for kind in DIFF_KINDS:
            getattr(result, kind).sort(key=_endpoint_order)
        self._diff_domains(result)
        return result

    def _diff_domains(self, result: Diff) -> None:
        """Fill ``result.domains``: a scan holds a handful of domain records, compared here in Python."""
        with self._lock:
            rows = self._query(
                "SELECT scan_id, domain, finding_codes, finding_severities FROM domains "
                "WHERE scan_id IN (?, ?)",
                (result.a, result.b),
            )
        found: dict[str, dict[str, dict[str, str]]] = {result.a: {}, result.b: {}}
        for scan_id, domain, codes, severities in rows:
            findings = found[scan_id].setdefault(domain, {})
            for code, severity in zip(codes, severities, strict=False):
                if severity_rank(severity) > severity_rank(findings.get(code)):
                    findings[code] = severity  # a code twice (an import): the worse severity, once
        before, after = found[result.a], found[result.b]
        for domain, findings in after.items():
            for code, severity in findings.items():
                kind = "still" if code in before.get(domain, {}) else "new"
                result.domains[kind].append(DomainExposure(domain, code, severity))
        for domain, findings in before.items():
            for code, severity in findings.items():
                if domain not in after:
                    result.domains["unknown"].append(DomainExposure(domain, code, severity))
                elif code not in after[domain]:
                    result.domains["fixed"].append(DomainExposure(domain, code, severity))
        for exposures in result.domains.values():
            exposures.sort(key=lambda e: (e.domain, e.code))

    # -- export ------------------------------------------------------------------------------------

    def export(self, scan_id: str, fmt: str, path: str | Any) -> int:
        """Write a scan's records to `path` as parquet, csv or jsonl; returns the endpoint rows written.

        jsonl adds the scan's domain records after its endpoint records, as `check DOMAIN --json` writes
        them, so an export imports back whole; parquet and csv hold endpoint columns only (a domain has
        none of them). The file appears whole or not at all (written beside it, then renamed).
        """
        from cleartext.store.export import write_export

        if fmt not in EXPORT_FORMATS:
            raise StoreError(f"unknown export format {fmt!r}: expected one of {', '.join(EXPORT_FORMATS)}")
        with self._lock:
            self._require(scan_id)
        sql = f"SELECT {', '.join(_select_column(c) for c in COLUMNS)} FROM records WHERE scan_id = ?"
        extra = self.domains(scan_id) if fmt == "jsonl" else []
        return write_export(self._stream(sql, (scan_id,), 5000), fmt, path, extra_lines=extra)

    # -- context manager ---------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _select_column(name: str) -> str:
    return "CAST(record AS TEXT) AS record" if name == "record" else name
