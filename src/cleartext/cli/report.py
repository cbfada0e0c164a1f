"""`cleartext report`: statistics, an HTML page or Shadowserver-style CSV files from scan records.

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

from cleartext.cli._options import (
    ContactsOpt,
    CountrySourceOpt,
    DataDirOpt,
    IptoasnOpt,
    MmdbOpt,
    RirOpt,
    RpslOpt,
    ScanIdOpt,
    StoreOpt,
    attribution_files,
    attributor,
    country_source,
    fail,
    lookup_of,
)
from cleartext.errors import CleartextError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from cleartext.enrich.model import Attribution
    from cleartext.record import Record
    from cleartext.report.stats import CountrySource, DomainStats, Stats
    from cleartext.store import DomainRow, Store

FORMATS = ("table", "json", "html", "shadowserver")

SPLITS = ("asn", "cidr", "country")


class ReportInputError(CleartextError):
    """A record source cannot be read; the message is one line naming the file (and line)."""


def iter_records(
    paths: Sequence[Path], on_domain: Callable[[DomainRow], None] | None = None
) -> Iterator[Record]:
    """Records from JSON Lines files ('-' is stdin), one at a time: never the whole file in memory.

    Each record is checked as `cleartext import` checks it (an address that is an IP address, a port that
    is a TCP port, typed fields): a report must not write rows IntelMQ drops, nor leave a record out.
    Domain records (`check DOMAIN --json`) are checked the same way and handed to ``on_domain`` as the
    store's row of them (skipped without one: Shadowserver's files have no domain type).
    Raises ReportInputError for an unreadable file or a line that is not a record.
    """
    from cleartext.domain.model import domain_record_from_dict, store_row
    from cleartext.record import record_from_dict
    from cleartext.store.base import check_domain_row, check_record

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
                        if on_domain is not None:
                            row = store_row(domain_record_from_dict(data))
                            check_domain_row(row)
                            on_domain(row)
                        continue
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
    from cleartext.cli._options import open_store
    from cleartext.store import StoreError

    st = open_store(url, create=False)
    try:
        scan = st.resolve_scan(scan)  # 'latest', or an id; unknown is a usage error before any output
    except StoreError:
        st.close()
        raise
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
    from cleartext.report.sqlstats import (
        attributed_scan,
        domain_stats_from_store,
        scan_rows,
        stats_from_store,
    )

    try:
        if lookup is None:
            stats = stats_from_store(st, scan_rows(scan), country_source=source, scan_id=name)
        else:
            with attributed_scan(st, scan, lookup) as rows:
                stats = stats_from_store(st, rows, country_source=source, scan_id=name)
        stats.domains = domain_stats_from_store(st, scan)
        return stats
    finally:
        st.close()


def attributed(
    records: Iterable[Record], lookup: Callable[[str], Attribution]
) -> Iterator[tuple[Record, Attribution]]:
    for record in records:
        yield record, lookup(record.observation.address)


def read_previous(paths: Sequence[Path]) -> list[Stats]:
    """Statistics of earlier scans (files written by ``report --format json``) for the trend lines."""
    from cleartext.report.stats import Stats

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
    from rich.table import Table
    from rich.text import Text

    from cleartext.report.stats import COUNTRY_SOURCES, DIMENSIONS

    field = COUNTRY_SOURCES[stats.country_source]
    console.print(
        _metrics(
            "cleartext report",
            ("records", stats.records),
            ("open endpoints", stats.open),
            ("exposed (any finding)", stats.exposed),
            ("cleartext-login", stats.cleartext_login),
            ("no-tls", stats.no_tls),
        )
    )
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
    if stats.domains is not None:
        render_domain_tables(console, stats.domains, top)


def _metrics(title: str, *rows: tuple[str, int]) -> Table:
    """A two-column table of headline numbers, as the report's and the domains' heads print them."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(Text(label), Text(f"{value:,}"))
    return table


def render_domain_tables(console: Console, domains: DomainStats, top: int) -> None:
    """The domain view's numbers. Domain names may come from an imported file: rich Text, sanitised."""
    from rich.table import Table
    from rich.text import Text

    from cleartext.report.stats import DOMAIN_COUNT_TITLES
    from cleartext.text import sanitize

    console.print(
        _metrics(
            "domains",
            ("domains checked", domains.checked),
            ("with findings", domains.with_findings),
            ("findings", domains.findings),
            ("TLS-RPT published", domains.tls_rpt),
        )
    )
    for name, counts in domains.counts().items():
        title = DOMAIN_COUNT_TITLES[name]
        table = Table(title=f"domains by {title}", title_justify="left")
        table.add_column(title)
        table.add_column("domains", justify="right")
        for key, count in list(counts.items())[:top]:
            table.add_row(Text(sanitize(key, 80)), Text(f"{count:,}"))
        console.print(table)
    if domains.worst:
        table = Table(title="domains with findings", title_justify="left")
        for name in ("domain", "worst", "findings"):
            table.add_column(name)
        for w in domains.worst[:top]:
            codes = " ".join(sanitize(code, 60) for code in w.codes)
            table.add_row(Text(sanitize(w.domain, 120)), Text(sanitize(w.worst, 20)), Text(codes))
        console.print(table)


def report(
    sources: Annotated[
        list[Path] | None,
        typer.Option("--from", help="JSON Lines file written by `cleartext scan` ('-': stdin); repeatable."),
    ] = None,
    scan: ScanIdOpt = None,
    store: StoreOpt = None,
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
    country: CountrySourceOpt = "geo",
    mmdb: MmdbOpt = None,
    iptoasn: IptoasnOpt = None,
    rir: RirOpt = None,
    rpsl: RpslOpt = None,
    contacts: ContactsOpt = None,
    data_dir: DataDirOpt = None,
    previous: Annotated[
        list[Path] | None,
        typer.Option("--previous", help="Statistics of an earlier scan (from --format json), for trends."),
    ] = None,
    scan_id: Annotated[str | None, typer.Option("--scan-id", help="Name of this scan in reports.")] = None,
    top: Annotated[int, typer.Option("--top", help="Rows per table (table format).", min=1)] = 15,
) -> None:
    """Sum up scan records: statistics (table, json), an HTML page, or Shadowserver-style CSV files."""
    from cleartext.report.stats import DomainStats, compute, trends

    if output_format not in FORMATS:
        fail(f"unknown format {output_format!r} (choose {', '.join(FORMATS)})")
    if split_by not in SPLITS:
        fail(f"unknown --split-by {split_by!r} (choose {', '.join(SPLITS)})")
    source = country_source(country)
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
    lookup = lookup_of(attributor(files))
    stored: Store | None = None
    domain_stats = DomainStats()  # a file's domain records, counted as they are read
    if scan:
        stored, scan = _open_scan(store, scan)
        records = _store_records(stored, scan)
        name = scan_id or scan
    else:
        records = iter_records(sources, on_domain=domain_stats.add)
        name = scan_id or ",".join(p.stem if str(p) != "-" else "stdin" for p in sources)
    pairs = attributed(records, lookup)

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
        if domain_stats.checked:
            stats.domains = domain_stats.trim()
    if output_format == "json":
        _write(stats.to_json() + "\n", out)
    elif output_format == "html":
        from cleartext.report.html import render_html

        series = trends([*history, stats]) if history else None
        _write(render_html(stats, series), out)
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

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
