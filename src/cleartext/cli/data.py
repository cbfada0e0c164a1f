"""`cleartext data`: download and refresh the attribution data files, and see how fresh they are.

``data fetch`` fills a data directory (enrich/datadir.py) from the sources in enrich/sources.py;
``data status`` says what it holds; ``data sources`` lists what can be fetched. `attribute`, `report`,
`notify` and `serve` then use the directory's files through :func:`attribution_files`, without each
file being named (:func:`cleartext.cli._options.attribution_files`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from cleartext.cli._options import EXIT_FINDINGS, CaFileOpt, DataDirOpt, JsonOpt, check_ca_files, fail

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from cleartext.enrich.fetch import Outcome
    from cleartext.enrich.sources import Catalogue, Source

# Defaults of `data fetch` (cleartext.enrich.fetch's, which the tests check, without importing it here).
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_TIME = 3600.0

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", help="Sources TOML file (default: DIR/sources.toml when present).", metavar="FILE"
    ),
]


def fetch(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Sources or groups to fetch (see `cleartext data sources`). Default: the RIR statistics, "
            "iptoasn, the RPSL dumps, the MMDB sources you give a key for, and any other already held.",
            metavar="[SOURCE|GROUP]...",
        ),
    ] = None,
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    url: Annotated[
        list[str] | None,
        typer.Option("--url", help="Fetch a source from another URL (repeatable).", metavar="NAME=URL"),
    ] = None,
    mmdb_url: Annotated[
        list[str] | None,
        typer.Option(
            "--mmdb-url", help="Also fetch an MMDB (raw, .gz or .tar.gz) from this URL.", metavar="URL"
        ),
    ] = None,
    maxmind_account_id: Annotated[
        str | None,
        typer.Option(
            "--maxmind-account-id", envvar="MAXMIND_ACCOUNT_ID", help="MaxMind account ID (GeoLite2)."
        ),
    ] = None,
    maxmind_license_key: Annotated[
        str | None,
        typer.Option(
            "--maxmind-license-key",
            envvar="MAXMIND_LICENSE_KEY",
            help="MaxMind licence key (GeoLite2).",
            show_default=False,
        ),
    ] = None,
    ipinfo_token: Annotated[
        str | None, typer.Option("--ipinfo-token", envvar="IPINFO_TOKEN", help="IPinfo token (IPinfo Lite).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds without progress before giving up a file.", min=0.1)
    ] = DEFAULT_TIMEOUT,
    max_time: Annotated[
        float, typer.Option("--max-time", help="Seconds allowed for one file in all.", min=0.1)
    ] = DEFAULT_MAX_TIME,
    ca_file: CaFileOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
) -> None:
    """Download the attribution data files that changed, into the data directory.

    Conditional requests (ETag, Last-Modified) and published checksums (the RIRs' .md5, MaxMind's
    .sha256) keep refreshes cheap; a file is replaced only once it is whole, verified and readable, so a
    failed download never damages the file held. Exit status: 0 all fetched or unchanged, 1 some source
    failed (its old file kept), 2 usage error.
    """
    from cleartext.enrich.datadir import Manifest, default_data_dir, locked
    from cleartext.enrich.fetch import Credentials, Settings, fetch_source
    from cleartext.enrich.sources import add_mmdb_url

    directory = data_dir or default_data_dir()
    check_ca_files(ca_file)  # a mirror with a private CA
    credentials = Credentials(maxmind_account_id, maxmind_license_key, ipinfo_token)
    catalogue = _catalogue(directory, config, url or [])
    extra = [add_mmdb_url(u, catalogue) for u in mmdb_url or []]
    chosen = [*catalogue.select(names), *(e for e in extra if e.name not in names)] if names else None
    settings = Settings(
        timeout=timeout,
        max_time=max_time,
        credentials=credentials,
        ca_files=tuple(str(p) for p in ca_file or []),
    )
    outcomes: list[Outcome] = []
    try:
        with locked(directory):
            manifest = Manifest.load(directory)  # under the lock: no other fetch is changing it
            selected = chosen or [
                s
                for s in catalogue.sources
                if s in extra
                or s.name in manifest.entries
                or (s.default and (s.auth is None or credentials.has(s.auth)))
            ]
            with _listener(sys.stderr, quiet) as listener:
                for source in selected:
                    outcomes.append(fetch_source(source, manifest, settings, listener))
    except OSError as exc:  # the data directory itself: full disk, permissions
        fail(f"cannot write into {directory}: {exc.strerror or exc}")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed and len(failed) == len(outcomes) and all(o.network for o in failed):
        print(
            f"cleartext: error: cannot reach any source (offline?): {failed[0].source}: {failed[0].detail}; "
            f"files in {directory} kept",
            file=sys.stderr,
        )
    else:
        for outcome in failed:
            print(f"cleartext: error: {outcome.source}: {outcome.detail}", file=sys.stderr)
    if failed:
        raise typer.Exit(EXIT_FINDINGS)


def status(
    data_dir: DataDirOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the data directory holds, from where, and how old it is.

    Exit status: 0 every file present and fresh, 1 a file missing, changed by hand, stale, or no data.
    """
    from rich.console import Console

    from cleartext.enrich.datadir import Manifest, age_days, default_data_dir, max_age_days

    directory = data_dir or default_data_dir()
    catalogue = _catalogue(directory, config, [])
    manifest = Manifest.load(directory)
    rows: list[dict[str, Any]] = []
    for entry in manifest.entries.values():
        source = catalogue.get(entry.source)
        limit = source.max_age_days if source is not None else max_age_days(entry.source)
        checked = age_days(entry.checked_at)
        if not (directory / entry.file).is_file():
            state = "missing"
        elif not entry.matches_disk(directory):
            state = "changed"  # not the file the fetch wrote: edited or replaced by hand
        elif checked is None or checked > limit:
            state = "stale"
        else:
            state = "ok"
        rows.append({**asdict(entry), "state": state, "age_days": round(age_days(entry.fetched_at) or 0, 2)})
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        _status_table(Console(highlight=False), directory, rows)
    if not rows or any(row["state"] != "ok" for row in rows):
        raise typer.Exit(EXIT_FINDINGS)


def sources(data_dir: DataDirOpt = None, config: ConfigOpt = None) -> None:
    """The sources `data fetch` knows, with the URLs in effect (yours from --config / sources.toml).

    One line per source: name, kind, when it is fetched, groups, file, URL, checksum URL.
    """
    from cleartext.enrich.datadir import default_data_dir
    from cleartext.enrich.sources import redact

    catalogue = _catalogue(data_dir or default_data_dir(), config, [])
    for s in catalogue.sources:
        default = "with-key" if s.auth else ("default" if s.default else "when-named")
        checksum = redact(s.checksum_url) if s.checksum_url else "-"
        groups = ",".join(s.groups) or "-"
        print("\t".join((s.name, s.kind, default, groups, s.file, redact(s.url), checksum)))


def _catalogue(directory: Path, config: Path | None, urls: list[str]) -> Catalogue:
    from cleartext.enrich.sources import CONFIG_FILE, Catalogue, apply_url_flags, load_config

    catalogue = Catalogue()
    path = config if config is not None else directory / CONFIG_FILE
    if config is not None or path.is_file():
        load_config(path, catalogue)
    apply_url_flags(urls, catalogue)
    return catalogue


def _status_table(console: Console, directory: Path, rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print(f"no attribution data in {directory}: run `cleartext data fetch`")
        return
    from rich.table import Table
    from rich.text import Text

    from cleartext.enrich.datadir import age_days

    table = Table(title=str(directory), title_justify="left")
    for column in ("source", "kind", "file", "size", "fetched", "checked", "state"):
        table.add_column(column, overflow="fold")
    for row in rows:
        checked = age_days(row["checked_at"])
        table.add_row(
            row["source"],
            row["kind"],
            Text(row["file"]),
            _size(row["size"]),
            f"{row['age_days']:.1f} d ago",
            f"{checked:.1f} d ago" if checked is not None else "?",
            row["state"],
        )
    console.print(table)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count:.1f} GiB"


class _Lines:
    """Off a terminal: one JSON object per source on stderr when it is done (nothing with --quiet)."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def started(self, source: Source, total: int | None) -> None:
        pass

    def advanced(self, source: Source, count: int) -> None:
        pass

    def finished(self, source: Source, outcome: Outcome) -> None:
        if not self.quiet:
            line = {"data": {k: v for k, v in asdict(outcome).items() if v not in ("", False)}}
            self.stream.write(json.dumps(line, separators=(",", ":")) + "\n")
            self.stream.flush()


class _Bar(_Lines):
    """On a terminal: a bar per file being downloaded, then one line per source."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        super().__init__(stream, quiet=False)
        self.console = Console(file=stream, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description:<16}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> _Bar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, source: Source, total: int | None) -> None:
        self.tasks[source.name] = self.progress.add_task(source.name, total=total)

    def advanced(self, source: Source, count: int) -> None:
        self.progress.advance(self.tasks[source.name], count)

    def finished(self, source: Source, outcome: Outcome) -> None:
        from rich.text import Text

        task = self.tasks.pop(source.name, None)
        if task is not None:
            self.progress.remove_task(task)
        style = {"updated": "green", "unchanged": "dim", "failed": "red"}[outcome.status]
        line = Text(f"{source.name:<16} ")
        line.append(outcome.status, style=style)
        if outcome.bytes:
            line.append(f"  {_size(outcome.bytes)} in {outcome.seconds:.1f} s")
        if outcome.detail and outcome.status != "failed":
            line.append(f"  ({outcome.detail})", style="dim")
        self.progress.console.print(line)


def _listener(stream: TextIO, quiet: bool) -> _Lines:
    if stream.isatty() and not quiet:
        return _Bar(stream)
    return _Lines(stream, quiet)
