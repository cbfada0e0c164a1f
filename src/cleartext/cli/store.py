"""Store commands: `cleartext scans`, `diff`, `export` and `import`.

The store is named by ``--store URL`` (a DuckDB file path, ``duckdb:///path`` or ``postgresql://...``),
else by $CLEARTEXT_STORE, else ./cleartext.duckdb. Commands that only read refuse a DuckDB file that does
not exist, so a mistyped path is an error rather than an empty listing. An unknown scan id, a store
that cannot be opened or a bad input line is one line on stderr and exit status 2, like every usage
error of cleartext.

The store package (and with it DuckDB, pyarrow, psycopg) and rich are imported inside the commands only:
this module is imported by every `cleartext` invocation.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from cleartext.cli._options import JsonOpt, StoreOpt, fail, open_store
from cleartext.errors import CleartextError

if TYPE_CHECKING:
    from rich.console import Console

    from cleartext.store import Exposure, Store

IMPORT_BATCH = 5000


class ExportFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"
    JSONL = "jsonl"


def _console() -> Console:
    """The terminal's width on a terminal; unbounded into a pipe or file, so no cell is cut or wrapped."""
    from rich.console import Console

    console = Console(highlight=False, soft_wrap=False)
    return console if console.is_terminal else Console(highlight=False, soft_wrap=False, width=10_000)


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%SZ") if moment else "-"


def scans(
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the scans in the store: id, start, finish, endpoints and domains stored, counts by status."""
    from rich.table import Table
    from rich.text import Text

    with open_store(store, create=False) as st:
        infos = st.scans()
        url = st.url
    if as_json:
        for info in infos:
            print(json.dumps(info.to_dict(), sort_keys=True))
        return
    if not infos:
        print(f"cleartext: no scans in {url}", file=sys.stderr)
        return
    table = Table(box=None, pad_edge=False)
    for name, justify in (
        ("id", "left"),
        ("started", "left"),
        ("finished", "left"),
        ("endpoints", "right"),
        ("domains", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    table.add_column("counts")
    for info in infos:
        counts = ", ".join(f"{n} {status}" for status, n in info.counts.items())
        table.add_row(
            Text(info.scan_id),
            Text(_when(info.started_at)),
            Text(_when(info.finished_at) if info.finished_at else "unfinished"),
            Text(str(info.endpoints)),
            Text(str(info.domains)),
            Text(counts or "-"),
        )
    _console().print(table)


def diff(
    a: Annotated[str, typer.Argument(metavar="A", help="The earlier scan's id.")],
    b: Annotated[str, typer.Argument(metavar="B", help="The later scan's id ('latest': the newest).")],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare two scans per endpoint and finding: new in B, fixed since A, still open, unknown.

    A finding is fixed only if B reached the endpoint conclusively (success, refused, not-mail); when B
    timed out or has no record of it, the finding is listed as unknown instead (docs/store.md). The
    scans' domain records (check DOMAIN --json, imported) are compared the same way, per domain.
    """
    from rich.table import Table
    from rich.text import Text

    from cleartext.text import sanitize

    with open_store(store, create=False) as st:
        a, b = st.resolve_scan(a), st.resolve_scan(b)
        result = st.diff(a, b)
    if as_json:
        print(json.dumps(result.to_dict(), sort_keys=True))
        return
    console = _console()
    sections = (
        ("new", f"New in {b}"),
        ("fixed", f"Fixed since {a}"),
        ("still", "Still open"),
        ("unknown", f"Unknown: {b} did not reach the endpoint conclusively"),
    )
    for kind, title in sections:
        exposures: list[Exposure] = getattr(result, kind)
        if not exposures:
            continue
        console.print(Text(f"{title} ({len(exposures)})", style="bold"))
        table = Table(box=None, pad_edge=False)
        for name in ("endpoint", "protocol", "hostname", "finding", "severity", "status in B"):
            table.add_column(name, no_wrap=name != "hostname")
        for e in exposures:
            host = f"[{e.address}]" if ":" in e.address else e.address
            table.add_row(
                Text(f"{host}:{e.port}"),
                Text(e.protocol),
                Text(e.hostname or "-"),
                Text(e.code),
                Text(e.severity),
                Text(e.status or "absent"),
            )
        console.print(table)
        console.print()
    domain_titles = {
        "new": f"Domains: new in {b}",
        "fixed": f"Domains: fixed since {a}",
        "still": "Domains: still open",
        "unknown": f"Domains: unknown, {b} has no record of the domain",
    }
    for kind, title in domain_titles.items():
        found = result.domains[kind]
        if not found:
            continue
        console.print(Text(f"{title} ({len(found)})", style="bold"))
        table = Table(box=None, pad_edge=False)
        for name in ("domain", "finding", "severity"):
            table.add_column(name, no_wrap=True)
        for d in found:
            table.add_row(Text(sanitize(d.domain, 255)), Text(d.code), Text(d.severity))
        console.print(table)
        console.print()
    counts = ", ".join(f"{len(getattr(result, kind))} {kind}" for kind, _ in sections)
    console.print(Text(f"{a} → {b}: {counts}"))
    if any(result.domains.values()):
        counts = ", ".join(f"{len(found)} {kind}" for kind, found in result.domains.items())
        console.print(Text(f"domains: {counts}"))


def export(
    scan_id: Annotated[
        str,
        typer.Argument(metavar="SCAN", help="The scan's id (see `cleartext scans`; 'latest': the newest)."),
    ],
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="Output format.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (replaced if it exists).")],
    store: StoreOpt = None,
) -> None:
    """Write one scan's records to a file: parquet (typed columns + record), csv (typed columns), jsonl.

    jsonl also holds the scan's domain records (after its endpoint records); parquet and csv do not.
    """
    with open_store(store, create=False) as st:
        scan_id = st.resolve_scan(scan_id)
        rows = st.export(scan_id, fmt.value, out)
        domains = len(st.domains(scan_id)) if fmt is ExportFormat.JSONL else 0
    also = f" and {domains} domain records" if domains else ""
    print(f"cleartext: wrote {rows} records{also} of scan {scan_id} to {out}", file=sys.stderr)


class _BadLine(CleartextError):
    """A line of the imported file that is not a record: aborts (and rolls back) the whole import."""


def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="JSON Lines written by `cleartext scan --out` or `check DOMAIN --json` ('-': stdin).",
        ),
    ],
    store: StoreOpt = None,
) -> None:
    """Load a file of records as a new scan, all or nothing; prints the new scan's id.

    Endpoint records and domain records (``"kind": "domain"``) may be mixed. A line that is neither is an
    error naming FILE:LINE (exit 2), and nothing is stored.
    """
    try:
        handle: BinaryIO = sys.stdin.buffer if str(file) == "-" else file.open("rb")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    with handle, open_store(store, create=True) as st:
        try:
            with st.transaction():
                scan_id, count, domains = _import(st, handle, file)
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror or exc}")
    print(scan_id)
    also = f" and {domains} domain records" if domains else ""
    print(f"cleartext: imported {count} records{also} from {file} as scan {scan_id}", file=sys.stderr)


def _import(st: Store, handle: BinaryIO, file: Path) -> tuple[str, int, int]:
    """Begin a scan, write the file's records in batches and its domain records, finish it; raise
    _BadLine at the first bad line. Returns the scan id and the endpoint and domain lines read."""
    from cleartext.domain.model import domain_record_from_dict, store_row
    from cleartext.record import Record, record_from_dict
    from cleartext.store import DomainRow
    from cleartext.store.base import check_domain_row, check_record

    source = "-" if str(file) == "-" else str(file.resolve())
    scan_id = st.begin_scan({"source": "import", "file": source})
    batch: list[Record] = []
    domains: list[DomainRow] = []  # a handful per file (one per checked domain): kept until the end
    count = 0
    for number, raw in enumerate(handle, 1):
        try:
            line = raw.decode("utf-8")
            if not line.strip():
                continue
            data = json.loads(line)
            if isinstance(data, dict) and data.get("kind") == "domain":
                row = store_row(domain_record_from_dict(data))
                check_domain_row(row)
                domains.append(row)
                continue
            record = record_from_dict(data)
            check_record(record)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise _BadLine(f"{file}:{number}: {exc}") from None
        batch.append(record)
        count += 1
        if len(batch) >= IMPORT_BATCH:
            st.write(scan_id, batch, new=True)
            batch = []
    if count == 0 and not domains:
        raise _BadLine(f"{file}: no records")
    st.write(scan_id, batch, new=True)
    st.keep_last(scan_id)  # a file may name an endpoint twice (two runs concatenated): the last wins
    written = st.write_domains(scan_id, domains)  # and a domain twice: the last wins too
    st.finish_scan(scan_id)  # counts by status, from what was stored
    return scan_id, count, written
