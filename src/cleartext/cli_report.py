"""`cleartext report`: statistics, an HTML page or Shadowserver-style CSV files from scan records.

Why a module of its own: the report stage registers its command on the shared `app` (see the command
modules block at the end of cleartext.cli) so that it grows without touching the scanner's CLI.

Two record sources: JSON Lines files (:func:`iter_records`, streamed into the report) and a scan in the
store (``--scan ID --store URL``). A stored scan's statistics are computed by the store in SQL
(cleartext.report.sqlstats, the path the web dashboard uses too); its Shadowserver files stream its
records like a file's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cleartext.cli import app, fail
from cleartext.cli_data import DataDirOpt, attribution_files
from cleartext.enrich.model import Attribution
from cleartext.record import Record, record_from_dict
from cleartext.report.stats import COUNTRY_SOURCES, DIMENSIONS, CountrySource, Stats, compute, trends
from cleartext.store.base import check_record

if TYPE_CHECKING:
    from cleartext.store import Store

FORMATS = ("table", "json", "html", "shadowserver")
SPLITS = ("asn", "cidr", "country")
_COUNTRY_OPTION = {"geo": "geo", "registry": "registry", "geolocation": "geo"}
_EMPTY = Attribution()


class ReportInputError(Exception):
    """A record source cannot be read; the message is one line naming the file (and line)."""


def iter_records(paths: Sequence[Path]) -> Iterator[Record]:
    """Records from JSON Lines files ('-' is stdin), one at a time: never the whole file in memory.

    Each record is checked as `cleartext import` checks it (an address that is an IP address, a port that
    is a TCP port, typed fields): a report must not write rows IntelMQ drops, nor leave a record out.
    Raises ReportInputError for an unreadable file or a line that is not a record.
    """
    for path in paths:
        try:
            handle = sys.stdin if str(path) == "-" else path.open(encoding="utf-8")
        except OSError as exc:
            raise ReportInputError(f"cannot read {path}: {exc.strerror or exc}") from None
        with handle:
            number = 0
            try:
                for number, line in enumerate(handle, 1):  # noqa: B007 (number is used after the loop)
                    if not line.strip():
                        continue
                    data = json.loads(line)
                    if isinstance(data, dict) and data.get("kind") == "domain":
                        continue  # a domain record (`check DOMAIN --json`): the report counts endpoints
                    record = record_from_dict(data)
                    check_record(record)
                    yield record
            except UnicodeDecodeError:
                raise ReportInputError(f"{path}:{number + 1}: not UTF-8 text") from None
            except ValueError as exc:  # json.JSONDecodeError is a ValueError
                raise ReportInputError(f"{path}:{number}: {exc}") from None
            except OSError as exc:
                raise ReportInputError(f"cannot read {path}: {exc.strerror or exc}") from None


def _open_scan(url: str | None, scan: str) -> tuple[Store, str]:
    """The store and the id of the scan ``--scan`` names ('latest': the newest); a usage error if none."""
    from cleartext.store import StoreError, default_store_url, open_store

    try:
        st = open_store(url or default_store_url(), create=False)
        scan = st.resolve_scan(scan)  # 'latest', or an id; unknown is a usage error before any output
    except StoreError as exc:
        fail(str(exc))
    return st, scan


def _store_records(st: Store, scan: str) -> Iterator[Record]:
    """A scan's records streamed from the store (the second record source, beside JSON Lines files)."""
    from cleartext.store import StoreError

    try:
        yield from st.records(scan)
    except StoreError as exc:
        raise ReportInputError(str(exc)) from None
    finally:
        st.close()


def _store_stats(
    st: Store, scan: str, lookup: Callable[[str], Attribution] | None, source: CountrySource, name: str
) -> Stats:
    """A stored scan's statistics, computed by the store in SQL (cleartext.report.sqlstats): the same
    numbers as streaming its records, in seconds for millions of them. ``lookup``: attribute each address
    (None: no data files, every country and AS unknown)."""
    from cleartext.report.sqlstats import attributed_scan, scan_rows, stats_from_store
    from cleartext.store import StoreError

    try:
        if lookup is None:
            return stats_from_store(st, scan_rows(scan), country_source=source, scan_id=name)
        with attributed_scan(st, scan, lookup) as rows:
            return stats_from_store(st, rows, country_source=source, scan_id=name)
    except StoreError as exc:
        fail(str(exc))
    finally:
        st.close()


def attributor(
    mmdb: Sequence[Path],
    iptoasn: Sequence[Path],
    rir: Sequence[Path],
    rpsl: Sequence[Path],
    contacts: Sequence[Path],
) -> Callable[[str], Attribution]:
    """An address -> Attribution lookup from the operator's data files; empty attributions when none is given.

    The enricher is imported only when files are given: a report without attribution should not pay for
    loading MMDB readers.
    """
    if not (mmdb or iptoasn or rir or rpsl or contacts):
        return lambda _address: _EMPTY
    from cleartext.enrich import Enricher, EnrichError

    try:
        enricher = Enricher.from_paths(mmdb=mmdb, iptoasn=iptoasn, rir=rir, rpsl=rpsl, contacts=contacts)
    except EnrichError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read attribution data: {exc.strerror or exc}")

    def lookup(address: str) -> Attribution:
        try:
            return enricher.lookup(address)  # cached by the enricher: an address has several ports
        except ValueError:  # not an address: a hand-edited record; report it unattributed
            return _EMPTY

    return lookup


def attributed(
    records: Iterable[Record], lookup: Callable[[str], Attribution]
) -> Iterator[tuple[Record, Attribution]]:
    for record in records:
        yield record, lookup(record.observation.address)


def _guarded(pairs: Iterable[tuple[Record, Attribution]]) -> Iterator[tuple[Record, Attribution]]:
    """Turn a source error met mid-stream into the CLI's one-line error."""
    try:
        yield from pairs
    except ReportInputError as exc:
        fail(str(exc))


def read_previous(paths: Sequence[Path]) -> list[Stats]:
    """Statistics of earlier scans (files written by ``report --format json``) for the trend lines."""
    history = []
    for path in paths:
        try:
            history.append(Stats.from_dict(json.loads(path.read_text(encoding="utf-8"))))
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}")
        except (ValueError, UnicodeDecodeError) as exc:
            fail(f"{path}: {exc}")
    return history


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")


def render_tables(console: Console, stats: Stats, top: int) -> None:
    """Terminal tables. Every key (AS names, software) is rich Text, never parsed as markup."""
    field = COUNTRY_SOURCES[stats.country_source]
    head = Table(title="cleartext report", show_header=False, title_justify="left")
    head.add_column("metric")
    head.add_column("value", justify="right")
    for label, value in (
        ("records", stats.records),
        ("open endpoints", stats.open),
        ("exposed (any finding)", stats.exposed),
        ("cleartext-login", stats.cleartext_login),
        ("no-tls", stats.no_tls),
    ):
        head.add_row(Text(label), Text(f"{value:,}"))
    console.print(head)
    status = Table(title="records by status", title_justify="left")
    status.add_column("status")
    status.add_column("records", justify="right")
    for key, count in sorted(stats.by_status.items(), key=lambda kv: (-kv[1], kv[0])):
        status.add_row(Text(key), Text(f"{count:,}"))
    console.print(status)
    for dimension in DIMENSIONS:
        b = stats.breakdown(dimension)
        title = f"by {dimension}" + (f" ({field})" if dimension == "country" else "")
        table = Table(title=title, title_justify="left")
        table.add_column(dimension)
        for name in ("open", "exposed", "cleartext-login", "no-tls"):
            table.add_column(name, justify="right")
        rows = b.ordered()
        for key, t in rows[:top]:
            label = (
                f"AS{key} {b.labels.get(key, '')}".strip() if dimension == "asn" and key != "unknown" else key
            )
            table.add_row(
                Text(label), *(Text(f"{v:,}") for v in (t.endpoints, t.exposed, t.cleartext_login, t.no_tls))
            )
        if len(rows) > top:
            table.caption = f"{len(rows) - top} more"
        console.print(table)


@app.command()
def report(
    sources: Annotated[
        list[Path] | None,
        typer.Option("--from", help="JSON Lines file written by `cleartext scan` ('-': stdin); repeatable."),
    ] = None,
    scan: Annotated[
        str | None, typer.Option("--scan", help="A scan in the store, by id ('latest': the newest).")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", help="Results store with --scan (default: $CLEARTEXT_STORE, else ./cleartext.duckdb)."
        ),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="table, json, html or shadowserver.")
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write (json, html); directory for shadowserver CSV files."),
    ] = None,
    split_by: Annotated[
        str, typer.Option("--split-by", help="Shadowserver files per owner: asn, cidr or country.")
    ] = "asn",
    country_source: Annotated[
        str,
        typer.Option("--country-source", help="Country from geolocation (geo) or RIR delegation (registry)."),
    ] = "geo",
    mmdb: Annotated[list[Path] | None, typer.Option("--mmdb", help="MMDB database (ASN, country).")] = None,
    iptoasn: Annotated[list[Path] | None, typer.Option("--iptoasn", help="iptoasn TSV ranges.")] = None,
    rir: Annotated[
        list[Path] | None, typer.Option("--rir", help="RIR delegated-extended statistics.")
    ] = None,
    rpsl: Annotated[list[Path] | None, typer.Option("--rpsl", help="RPSL dump (abuse contacts).")] = None,
    contacts: Annotated[list[Path] | None, typer.Option("--contacts", help="Contacts CSV.")] = None,
    data_dir: DataDirOpt = None,
    previous: Annotated[
        list[Path] | None,
        typer.Option("--previous", help="Statistics of an earlier scan (from --format json), for trends."),
    ] = None,
    scan_id: Annotated[str | None, typer.Option("--scan-id", help="Name of this scan in reports.")] = None,
    top: Annotated[int, typer.Option("--top", help="Rows per table (table format).", min=1)] = 15,
) -> None:
    """Sum up scan records: statistics (table, json), an HTML page, or Shadowserver-style CSV files."""
    if output_format not in FORMATS:
        fail(f"unknown format {output_format!r} (choose {', '.join(FORMATS)})")
    if split_by not in SPLITS:
        fail(f"unknown --split-by {split_by!r} (choose {', '.join(SPLITS)})")
    source = _COUNTRY_OPTION.get(country_source)
    if source is None:
        fail(f"unknown --country-source {country_source!r} (choose geo or registry)")
    if output_format == "shadowserver" and out is None:
        fail("--format shadowserver needs --out DIRECTORY")
    if bool(sources) == bool(scan):
        fail("give the records with --from FILE or --scan ID (one of the two)")
    sources = sources or []
    for path in sources:
        if str(path) != "-" and (not path.exists() or path.is_dir()):
            fail(f"cannot read {path}: {'a directory' if path.is_dir() else 'no such file'}")
    history = read_previous(previous or [])
    files = attribution_files(data_dir, mmdb=mmdb, iptoasn=iptoasn, rir=rir, rpsl=rpsl, contacts=contacts)
    lookup = attributor(**files)
    stored: Store | None = None
    if scan:
        stored, scan = _open_scan(store, scan)
        records = _store_records(stored, scan)
        name = scan_id or scan
    else:
        records = iter_records(sources)
        name = scan_id or ",".join(p.stem if str(p) != "-" else "stdin" for p in sources)
    pairs = _guarded(attributed(records, lookup))

    if output_format == "shadowserver":
        from cleartext.report.shadowserver import write_reports

        assert out is not None
        if out.exists() and not out.is_dir():
            fail(f"--out {out} is not a directory")
        try:
            written = write_reports(pairs, out, split_by, country_source=source)  # type: ignore[arg-type]
        except OSError as exc:
            fail(f"cannot write into {out}: {exc.strerror or exc}")
        for path, rows in sorted(written.items()):
            print(f"{path}\t{rows}")
        return

    if stored is not None and scan:
        # A stored scan's statistics come from SQL; the streaming path is for JSON Lines.
        attributing = any(files.values())
        stats = _store_stats(stored, scan, lookup if attributing else None, source, name)  # type: ignore[arg-type]
    else:
        stats = compute(pairs, source, scan_id=name)  # type: ignore[arg-type]
    if output_format == "json":
        _write(stats.to_json() + "\n", out)
    elif output_format == "html":
        from cleartext.report.html import render_html

        series = trends([*history, stats]) if history else None
        _write(render_html(stats, series), out)
    else:
        console = Console(highlight=False, file=sys.stdout)
        render_tables(console, stats, top)
        if history:
            series = trends([*history, stats])
            table = Table(title="trend", title_justify="left")
            table.add_column("scan")
            for metric in ("open", "exposed", "cleartext_login", "no_tls"):
                table.add_column(metric, justify="right")
            for i, (sid, when) in enumerate(series.scans):
                cells = [
                    Text(f"{series.series[m][i].value:,}")
                    for m in ("open", "exposed", "cleartext_login", "no_tls")
                ]
                table.add_row(Text(f"{sid or ''} {(when or '')[:10]}".strip()), *cells)
            console.print(table)
