"""Every option more than one command takes, declared once, and what turns their values into objects.

A command module imports the option types it needs from here (``store: StoreOpt = None``) so that a flag
reads, defaults and is checked the same in every command. Builders (:func:`build_settings`,
:func:`build_resolver`, :func:`attribution_files`, :func:`country_source`…) check a value once and raise
:class:`~cleartext.errors.UsageError`, which the root command prints as one line with exit status 2.

Only typer and the standard library are imported at module level: this module is loaded by every
`cleartext` invocation, `cleartext version` and `--help` included.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from cleartext.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from cleartext.enrich import Attribution, Enricher
    from cleartext.probe import ProbeSettings
    from cleartext.resolve import Resolver
    from cleartext.store import Store

EXIT_FINDINGS = 1  # check: something to fix; data status: a file missing or stale; notify: a send failed
EXIT_NOTHING_ANSWERED = 3  # check: no mail port answered
DEFAULT_PORTS_TEXT = "25,465,587,110,995,143,993"  # cleartext.targets.DEFAULT_PORTS, without importing it
COUNTRY_SOURCES = {"geo": "geo", "geolocation": "geo", "registry": "registry"}


def fail(message: str) -> NoReturn:
    """A usage error: one line on stderr, exit 2 (printed by the root command)."""
    raise UsageError(message)


def note(message: str) -> None:
    print(message, file=sys.stderr)


def warn(message: str) -> None:
    print(f"cleartext: warning: {message}", file=sys.stderr)


# --- what to probe and how --------------------------------------------------------------------------

PortsOpt = Annotated[
    str,
    typer.Option(
        "--ports", "-p", help="Ports to probe; PORT=SERVICE for non-standard ones (e.g. 2525=smtp)."
    ),
]
AllowReservedOpt = Annotated[
    bool,
    typer.Option(
        "--allow-reserved", help="Allow loopback, private, documentation and other reserved ranges."
    ),
]
ResolveOpt = Annotated[
    list[str] | None,
    typer.Option("--resolve", metavar="HOST:ADDRESS", help="Pin a hostname to an address (repeatable)."),
]
NameserverOpt = Annotated[
    str | None, typer.Option("--nameserver", help="DNS server for hostnames and MX, IP[:PORT].")
]
CaFileOpt = Annotated[
    list[Path] | None,
    typer.Option("--ca-file", help="Extra trusted CA certificates, PEM (repeatable)."),
]
ConnectTimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait for a TCP connection.", min=0.05)]
ReadTimeoutOpt = Annotated[float, typer.Option(help="Seconds to wait for each reply or handshake.", min=0.05)]
EndpointTimeoutOpt = Annotated[float, typer.Option(help="Seconds for one endpoint, all steps.", min=0.1)]
MaxConnOpt = Annotated[
    int,
    typer.Option("--max-connections", help="Connections per endpoint (1 = no TLS matrix).", min=1, max=12),
]
EhloOpt = Annotated[
    str | None, typer.Option("--ehlo-name", help="Name sent in EHLO (default: this host's FQDN).")
]
SourceOpt = Annotated[str | None, typer.Option("--source-address", help="Local address to connect from.")]
LoginProbeOpt = Annotated[
    str,
    typer.Option(
        "--login-probe",
        metavar="MODE",
        help="cancel: start a login in clear and cancel it before any credential (default); made-up: "
        "also IMAP LOGIN with a random, non-existent identity where nothing else can tell (the server "
        "logs a failed login); off: judge from capability lists alone.",
    ),
]

# --- where results are kept, and output --------------------------------------------------------------

StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="URL",
        help="Results store: a DuckDB file, duckdb:///PATH or postgresql://... "
        "(default: $CLEARTEXT_STORE, else ./cleartext.duckdb).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (one object per line) instead.")]
ScanIdOpt = Annotated[
    str | None, typer.Option("--scan", help="A scan in the store, by id ('latest': the newest).")
]

# --- attribution data: files named, or the data directory of `cleartext data fetch` ------------------


def _files(flag: str, what: str) -> Any:  # typer.Option is typed Any
    return typer.Option(flag, help=f"{what} (repeatable; the first file given wins).", metavar="FILE")


MmdbOpt = Annotated[
    list[Path] | None, _files("--mmdb", "MMDB database: GeoLite2-ASN/Country/City, DB-IP Lite, IPinfo Lite")
]
IptoasnOpt = Annotated[list[Path] | None, _files("--iptoasn", "iptoasn TSV, IPv4 or IPv6, gzipped or not")]
RirOpt = Annotated[list[Path] | None, _files("--rir", "RIR delegated(-extended) statistics file")]
RpslOpt = Annotated[
    list[Path] | None, _files("--rpsl", "RPSL database dump (split files welcome), gzipped or not")
]
ContactsOpt = Annotated[
    list[Path] | None, _files("--contacts", "your contacts CSV: kind,key,contact,country")
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Attribution data fetched by `cleartext data fetch` (default: $CLEARTEXT_DATA_DIR, "
        "else ~/.local/share/cleartext, used when no data file is named).",
        metavar="DIR",
    ),
]
CountrySourceOpt = Annotated[
    str,
    typer.Option(
        "--country-source",
        help="Country of an address: geo (where it is used, from an MMDB) or registry (the RIR's "
        "delegation).",
    ),
]


def country_source(value: str) -> str:
    """--country-source, checked: ``geo`` or ``registry`` (``geolocation`` is read as geo)."""
    source = COUNTRY_SOURCES.get(value.strip().lower())
    if source is None:
        fail(f"unknown --country-source {value!r} (choose geo or registry)")
    return source


def attribution_files(
    data_dir: Path | None,
    *,
    mmdb: Sequence[Path] | None = None,
    iptoasn: Sequence[Path] | None = None,
    rir: Sequence[Path] | None = None,
    rpsl: Sequence[Path] | None = None,
    contacts: Sequence[Path] | None = None,
) -> dict[str, list[Path]]:
    """The files an attributing command loads: those named, then the data directory's.

    ``--data-dir`` always adds its files (and a directory without any is an error). Without it, the
    default directory is used only when no file is named, and only if `data fetch` has filled it, so a
    command given no attribution data behaves as before. Within a kind, named files come first: they win.
    """
    from cleartext.enrich.datadir import Manifest, age_days, default_data_dir, max_age_days

    given = {
        "mmdb": list(mmdb or []),
        "iptoasn": list(iptoasn or []),
        "rir": list(rir or []),
        "rpsl": list(rpsl or []),
        "contacts": list(contacts or []),
    }
    if data_dir is None and any(given.values()):
        return given
    directory = data_dir or default_data_dir()
    manifest = Manifest.load(directory)
    found = manifest.files()
    if not any(found.values()):
        if data_dir is not None:
            fail(f"no attribution data in {directory}: run `cleartext data fetch --data-dir {directory}`")
        return given
    stale = [
        e.source for e in manifest.entries.values() if (age_days(e.checked_at) or 0) > max_age_days(e.source)
    ]
    if stale:
        warn(
            f"attribution data in {directory} is out of date ({', '.join(stale)}): run `cleartext data fetch`"
        )
    return {kind: [*paths, *(p for p in found[kind] if p not in paths)] for kind, paths in given.items()}


def attributor(files: dict[str, list[Path]]) -> Enricher | None:
    """An open :class:`~cleartext.enrich.Enricher` over ``files``, or None when there are none.

    The enricher is imported only when files are given: a command without attribution should not pay for
    loading MMDB readers. An unreadable file is a one-line error.
    """
    if not any(files.values()):
        return None
    from cleartext.enrich import Enricher

    try:
        return Enricher.from_paths(
            mmdb=files["mmdb"],
            iptoasn=files["iptoasn"],
            rir=files["rir"],
            rpsl=files["rpsl"],
            contacts=files["contacts"],
        )
    except OSError as exc:
        fail(f"cannot read attribution data: {exc.strerror or exc}")


def lookup_of(enricher: Enricher | None) -> Callable[[str], Attribution]:
    """``address -> Attribution`` from an enricher (or empty attributions without one); an address a
    hand-edited record got wrong is left unattributed rather than stopping a report."""
    from cleartext.enrich.model import Attribution

    empty = Attribution()
    if enricher is None:
        return lambda _address: empty

    def lookup(address: str) -> Attribution:
        try:
            return enricher.lookup(address)  # cached by the enricher: an address has several ports
        except ValueError:
            return empty

    return lookup


# --- builders -------------------------------------------------------------------------------------------


def default_ehlo_name() -> str:
    """Identify the scanner honestly: the machine's FQDN when it has one (RFC 5321 wants one)."""
    from cleartext.targets import is_hostname

    name = socket.getfqdn()
    return name if "." in name and is_hostname(name) else "cleartext.invalid"


def check_ca_files(paths: Sequence[Path] | None) -> None:
    """Every --ca-file must hold at least one certificate: a key or garbage would distrust every chain."""
    from cleartext.tls.certs import read_ca_file

    for path in paths or []:
        if not path.is_file():
            fail(f"cannot read CA file {path}: no such file")
        try:
            read_ca_file(str(path))
        except ValueError as exc:
            fail(str(exc))


def build_settings(
    *,
    ca_file: list[Path] | None,
    connect_timeout: float,
    read_timeout: float,
    endpoint_timeout: float,
    max_connections: int,
    ehlo_name: str | None,
    source_address: str | None,
    login_probe: str = "cancel",
) -> ProbeSettings:
    import ipaddress

    from cleartext.probe import LOGIN_PROBE_MODES, ProbeSettings
    from cleartext.targets import is_hostname

    if login_probe not in LOGIN_PROBE_MODES:
        fail(f"invalid --login-probe {login_probe!r}: expected one of {', '.join(LOGIN_PROBE_MODES)}")
    check_ca_files(ca_file)
    if ehlo_name is not None and not is_hostname(ehlo_name):
        fail(f"invalid --ehlo-name {ehlo_name!r}: expected a domain name")
    if source_address is not None:
        try:
            ipaddress.ip_address(source_address)
        except ValueError:
            fail(f"invalid --source-address {source_address!r}: not an IP address")
    return ProbeSettings(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        endpoint_timeout=endpoint_timeout,
        max_connections=max_connections,
        tls_matrix=max_connections > 1,
        ehlo_name=ehlo_name or default_ehlo_name(),
        ca_files=tuple(str(p) for p in ca_file or []),
        source_address=source_address,
        login_probe=login_probe,
    )


def build_resolver(resolve: list[str] | None, nameserver: str | None) -> Resolver:
    from cleartext.resolve import Resolver, parse_nameserver
    from cleartext.targets import parse_resolve

    try:
        overrides = parse_resolve(resolve or [])
        return Resolver(overrides=overrides, nameserver=parse_nameserver(nameserver) if nameserver else None)
    except ValueError as exc:  # a TargetError is a ValueError too
        fail(str(exc))


def store_url(given: str | None) -> str | None:
    """--store, else $CLEARTEXT_STORE, else ./cleartext.duckdb; "none" means no store."""
    from cleartext.store import DEFAULT_STORE, STORE_ENV

    url = given or os.environ.get(STORE_ENV) or DEFAULT_STORE
    return None if url.lower() == "none" else url


def open_store(url: str | None, *, create: bool) -> Store:
    """The store named by --store (else $CLEARTEXT_STORE, else ./cleartext.duckdb). A command that only
    reads passes ``create=False``: a mistyped DuckDB path is then an error, not an empty store."""
    from cleartext.store import default_store_url
    from cleartext.store import open_store as open_

    return open_(url or default_store_url(), create=create)
