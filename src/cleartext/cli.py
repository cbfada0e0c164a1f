"""The `cleartext` command line: parse and check what the user typed, then hand over to the pipeline.

Every argument is validated before the first packet leaves: a bad target, port or file is a one-line
error on stderr and exit status 2, with nothing scanned.
"""

from __future__ import annotations

import dataclasses
import contextlib
import ipaddress
import json
import os
import socket
import sys
from pathlib import Path
from typing import Annotated, BinaryIO, NoReturn

import typer
from rich.console import Console

from cleartext import __version__
from cleartext.politeness import LARGE_SCAN_RATE, internet_scale_rate
from cleartext.probe import ProbeSettings
from cleartext.record import Record
from cleartext.resolve import ResolveError, Resolver, parse_nameserver
from cleartext.scan import run_loop
from cleartext.targets import (
    DEFAULT_PORTS,
    TargetError,
    is_hostname,
    parse_ports,
    parse_resolve,
    parse_targets,
)

DEFAULT_PORTS_TEXT = ",".join(map(str, DEFAULT_PORTS))
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_NOTHING_ANSWERED = 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Find mail servers that let a password or mail cross the network in clear.",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def fail(message: str) -> NoReturn:
    """A usage error: one line on stderr, exit 2."""
    print(f"cleartext: error: {message}", file=sys.stderr)
    raise typer.Exit(EXIT_USAGE)


def default_ehlo_name() -> str:
    """Identify the scanner honestly: the machine's FQDN when it has one (RFC 5321 wants one)."""
    name = socket.getfqdn()
    return name if "." in name and is_hostname(name) else "cleartext.invalid"


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
NameserverOpt = Annotated[
    str | None, typer.Option("--nameserver", help="DNS server for hostnames and MX, IP[:PORT].")
]
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


def check_ca_files(paths: list[Path] | None) -> None:
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
    from cleartext.probe import LOGIN_PROBE_MODES

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
    try:
        overrides = parse_resolve(resolve or [])
        return Resolver(overrides=overrides, nameserver=parse_nameserver(nameserver) if nameserver else None)
    except (TargetError, ValueError) as exc:
        fail(str(exc))


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _warn(message: str) -> None:
    print(f"cleartext: warning: {message}", file=sys.stderr)


def store_url(given: str | None) -> str | None:
    """--store, else $CLEARTEXT_STORE, else ./cleartext.duckdb; "none" means no store."""
    from cleartext.store import DEFAULT_STORE, STORE_ENV

    url = given or os.environ.get(STORE_ENV) or DEFAULT_STORE
    return None if url.lower() == "none" else url


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (0 <= I < N) -> (I, N)."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        fail(f"invalid --shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(index), int(count)


@app.command()
def scan(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="IP, CIDR, hostname or @FILE (one target per line); or --endpoints."),
    ] = None,
    endpoints: Annotated[
        str | None,
        typer.Option(
            "--endpoints",
            metavar="FILE",
            help="Probe exactly the endpoints of a list ('-': stdin), streamed: ADDRESS:PORT lines, or "
            "zmap, masscan (-oL, -oJ, -oG) or nmap -oG output of a discovery scan. See docs/operating.md.",
        ),
    ] = None,
    list_format: Annotated[
        str,
        typer.Option(
            "--list-format",
            help="Format of --endpoints: auto, plain, zmap, masscan-list, masscan-json, nmap-grepable.",
        ),
    ] = "auto",
    skip_bad_lines: Annotated[
        bool,
        typer.Option("--skip-bad-lines", help="With --endpoints: skip and count lines that are no endpoint."),
    ] = False,
    mx: Annotated[
        str | None,
        typer.Option(
            "--mx",
            metavar="FILE",
            help="Scan the MX hosts of the mail domains in FILE (one per line; @FILE works too), each MX "
            "endpoint once however many domains share it; default port 25. See docs/operating.md.",
        ),
    ] = None,
    domains_out: Annotated[
        Path | None,
        typer.Option(
            "--domains-out", help="With --mx: each domain's outcome, JSON Lines (default: beside --out)."
        ),
    ] = None,
    ports: PortsOpt = DEFAULT_PORTS_TEXT,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write JSON Lines to this file (default: stdout); see --append."),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the scan whose state is beside --out (after a kill).")
    ] = False,
    append: Annotated[
        bool,
        typer.Option("--append", help="Add this scan's records to an --out file that already holds records."),
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Results store: a DuckDB path or postgresql:// URL (default: $CLEARTEXT_STORE, "
            "else ./cleartext.duckdb).",
        ),
    ] = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="Write JSON Lines only, no store.")] = False,
    allow_reserved: AllowReservedOpt = False,
    resolve: ResolveOpt = None,
    nameserver: NameserverOpt = None,
    ca_file: CaFileOpt = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the scan order (default: random).", min=0)] = None,
    shard: Annotated[str, typer.Option(help="Scan shard I of N of the order (I/N, 0-based).")] = "0/1",
    concurrency: Annotated[
        int, typer.Option(help="Endpoints probed at once (0: sized to the file-descriptor limit).", min=0)
    ] = 0,
    rate: Annotated[
        float | None, typer.Option(help="At most this many new connections per second.", min=0.01)
    ] = None,
    per_host: Annotated[
        int, typer.Option(help="Connections open at once per address (0: no limit).", min=0)
    ] = 4,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="Processes that probe, one per core (0: one per usable CPU); this one keeps the output.",
        ),
    ] = 1,
    exclude: Annotated[
        Path | None, typer.Option(help="Opt-out file of addresses/CIDRs; re-read when it changes.")
    ] = None,
    internet_scale: Annotated[
        bool,
        typer.Option(
            "--internet-scale",
            help="Allow a scan of more than a /8 (16,777,216 addresses); it needs --exclude and runs at "
            "--rate 1000 unless --rate is given. See docs/operating.md.",
        ),
    ] = False,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="Progress on stderr (default: on a terminal)."),
    ] = None,
    progress_interval: Annotated[
        float, typer.Option(help="Seconds between progress log lines.", min=0.1)
    ] = 10.0,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    read_timeout: ReadTimeoutOpt = 10.0,
    endpoint_timeout: EndpointTimeoutOpt = 60.0,
    max_connections: MaxConnOpt = 6,
    discover: Annotated[
        bool,
        typer.Option(
            "--discover",
            help="Discovery only: one connection per endpoint for the greeting (TLS first on implicit-TLS "
            "ports); no capabilities, no STARTTLS, no TLS matrix, no verdict on login.",
        ),
    ] = False,
    ehlo_name: EhloOpt = None,
    source_address: SourceOpt = None,
    login_probe: LoginProbeOpt = "cancel",
    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            metavar="URL",
            help="Distribute the scan: queue its shards on this Redis (redis://HOST:PORT/DB) for "
            "`cleartext worker`s; needs a postgresql:// store. See docs/distributed.md.",
        ),
    ] = None,
    shards: Annotated[
        int | None, typer.Option("--shards", help="With --broker: shards to cut the scan into.", min=1)
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="With --broker: follow the scan to its end.")] = False,
) -> None:
    """Probe every mail port of every target; stream one JSON record per endpoint as it finishes."""
    from cleartext.scan import JobAborted, JobError, RunOptions, ScanSpec, run_job

    shard_index, shard_count = parse_shard(shard)
    targets = list(targets or [])
    if mx is not None:
        mx = mx.removeprefix("@")
        if targets or endpoints is not None:
            fail("give --mx, --endpoints or targets, one of them")
        if not Path(mx).is_file():
            fail(f"cannot read {mx}: no such file")
        if broker is not None:
            fail("--mx is for a scan on this machine")
        if ports == DEFAULT_PORTS_TEXT:
            ports = "25"  # MX hosts: mail between servers arrives on port 25
    if endpoints is not None:
        from cleartext.endpoint_lists import FORMATS

        if targets:
            fail("give targets or --endpoints, not both")
        if list_format not in FORMATS:
            fail(f"invalid --list-format {list_format!r}: expected one of {', '.join(FORMATS)}")
        if endpoints == "-" and resume:
            fail("--resume needs --endpoints FILE: a list read from stdin cannot be read again")
        if endpoints != "-" and not Path(endpoints).is_file():
            fail(f"cannot read {endpoints}: no such file")
        if broker is not None:
            fail("--endpoints is for a scan on this machine (or shard the list and run one scan per part)")
    elif not targets and mx is None:
        fail("nothing to scan: give targets (IP, CIDR, hostname, @FILE), --endpoints FILE or --mx FILE")
    if workers < 0:  # checked here, not by typer's min=, for the one-line error of every usage error
        fail(f"invalid --workers {workers}: expected 0 (one per usable CPU) or more")
    if workers != 1 and broker is not None:
        fail("--workers is for a scan on this machine; with --broker, run more `cleartext worker`s")
    try:
        port_specs = parse_ports(ports)
        specs = parse_targets(targets, allow_reserved=allow_reserved) if targets else []
        # The guard against scanning the Internet by mistake: before any name is resolved or socket opened.
        rate, internet_addresses = internet_scale_rate(
            specs, confirmed=internet_scale, exclude=str(exclude) if exclude else None, rate=rate
        )
    except TargetError as exc:
        fail(str(exc))
    if internet_addresses is not None:
        print(
            f"cleartext: Internet-scale scan of {internet_addresses:,} addresses at most {rate:,g} new "
            "connections per second" + ("" if rate != LARGE_SCAN_RATE else " (--rate to change)"),
            file=sys.stderr,
        )
    if exclude is not None:
        from cleartext.politeness import ExclusionList

        try:
            ExclusionList(str(exclude))  # read it now: a bad file is a usage error before any packet
        except TargetError as exc:
            fail(str(exc))
    settings = build_settings(
        ca_file=ca_file,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        endpoint_timeout=endpoint_timeout,
        max_connections=max_connections,
        ehlo_name=ehlo_name,
        source_address=source_address,
        login_probe=login_probe,
    )
    if discover:
        settings = dataclasses.replace(settings, discover=True, tls_matrix=False, max_connections=1)
    resolver = build_resolver(resolve, nameserver)
    if out is not None and out.parent and not out.parent.is_dir():
        fail(f"cannot write {out}: no such directory {out.parent}")
    if out is not None and not (resume or append) and out.is_file() and out.stat().st_size > 0:
        # Appending silently would mix two scans in one file (and `show` would list endpoints twice).
        fail(
            f"{out} already holds records: pass --append to add this scan's, --resume to continue the "
            "scan that wrote it, or choose another file"
        )
    listed = (
        ["--endpoints", endpoints, list_format] if endpoints is not None
        else ["--mx", mx] if mx is not None else []
    )
    spec = ScanSpec.of(
        targets or listed,  # what the resume fingerprint and the store keep
        specs,
        port_specs,
        ports,
        settings=settings,
        allow_reserved=allow_reserved,
        seed=seed,
        shard=shard_index,
        shards=shard_count,
        rate=rate,
        per_host=per_host,
        exclude=str(exclude) if exclude else None,
        endpoint_list=endpoints,
        list_format=list_format,
        skip_bad_lines=skip_bad_lines,
        mx_domains=mx,
    )
    run = RunOptions(
        out=out,
        resume=resume,
        concurrency=concurrency,
        progress=progress,
        progress_interval=progress_interval,
        store=None if no_store else store_url(store),
        workers=workers,
        domains_out=domains_out,
    )
    if broker is not None:  # distributed: queue the shards for workers (cleartext.distributed)
        from cleartext.distributed import submit

        try:
            code = submit(spec, run, resolver, broker=broker, shards=shards, wait=wait, warn=_warn)
        except ResolveError as exc:
            fail(str(exc))
        raise typer.Exit(code)
    try:
        result = run_loop(run_job(spec, run, resolver, _warn, _note))
    except (JobError, ResolveError) as exc:
        fail(str(exc))
    except JobAborted as exc:
        print(f"cleartext: error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): what was written stays written; stop quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        raise typer.Exit(0) from None
    counts = result.counts
    summary = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    stored = f"; scan {result.scan_id} in the store" if result.scan_id else ""
    print(f"cleartext: {sum(counts.values())} endpoints: {summary or 'none'}{stored}", file=sys.stderr)
    if result.skipped_lines:
        print(f"cleartext: skipped {result.skipped_lines} line(s) of {endpoints} that were no endpoint",
              file=sys.stderr)
    if result.interrupted:
        hint = "; --resume continues" if out else ""
        print(f"cleartext: interrupted{hint}", file=sys.stderr)
        raise typer.Exit(130)


@app.command()
def check(
    host: Annotated[
        str, typer.Argument(metavar="HOST_OR_DOMAIN", help="A mail host, or a domain (its MX hosts).")
    ],
    ports: PortsOpt = DEFAULT_PORTS_TEXT,
    allow_reserved: AllowReservedOpt = False,
    resolve: ResolveOpt = None,
    nameserver: NameserverOpt = None,
    ca_file: CaFileOpt = None,
    connect_timeout: ConnectTimeoutOpt = 5.0,
    read_timeout: ReadTimeoutOpt = 10.0,
    endpoint_timeout: EndpointTimeoutOpt = 60.0,
    max_connections: MaxConnOpt = 6,
    ehlo_name: EhloOpt = None,
    source_address: SourceOpt = None,
    login_probe: LoginProbeOpt = "cancel",
    as_json: Annotated[bool, typer.Option("--json", help="Print the records as JSON Lines instead.")] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            "--explain",
            help="Every finding of every port with its evidence and its whole advice, instead of the fixes "
            "once per software and finding.",
        ),
    ] = False,
    domain_view: Annotated[
        bool,
        typer.Option(
            "--domain/--no-domain",
            help="For a mail domain, also judge what it publishes: client autoconfiguration (SRV, "
            "autoconfig, Autodiscover), MTA-STS, TLS-RPT, DANE.",
        ),
    ] = True,
) -> None:
    """Check one mail host (or a domain's MX hosts): a verdict per port, a grade, and how to fix it.

    For a mail domain, the domain view comes with it: what the domain tells mail clients and sending
    servers, with the servers it names probed too. Exit status: 0 no findings, 1 findings, 2 usage
    error, 3 no mail port answered.
    """
    try:
        port_specs = parse_ports(ports)
        spec = parse_targets([host], allow_reserved=allow_reserved)[0]
    except TargetError as exc:
        fail(str(exc))
    if spec.network is not None and spec.network.num_addresses != 1:
        fail(f"check takes one host or domain, not a network: {host}")
    settings = build_settings(
        ca_file=ca_file,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        endpoint_timeout=endpoint_timeout,
        max_connections=max_connections,
        ehlo_name=ehlo_name,
        source_address=source_address,
        login_probe=login_probe,
    )
    resolver = build_resolver(resolve, nameserver)
    view = None
    if domain_view and spec.network is None and spec.hostname:
        from cleartext.domain.check import look_up_domain

        view = run_loop(
            look_up_domain(
                spec.hostname,
                resolver,
                ports=port_specs,
                ca_files=settings.ca_files,
                deadline=read_timeout,
                allow_reserved=allow_reserved,
            )
        )
    from cleartext.check import check_mail_hosts

    try:
        extra = view.extra if view else []
        hosts = run_loop(
            check_mail_hosts(
                spec, port_specs, resolver, settings, allow_reserved=allow_reserved, extra=extra, warn=_warn
            )
        )
    except (ResolveError, TargetError) as exc:
        fail(str(exc))
    records = [r for _, rs in hosts for r in rs]
    domain = view.assess(records) if view else None
    if as_json:
        for record in records:
            print(record.to_json())
        if domain is not None:
            print(domain.to_json())
    else:
        console = Console(highlight=False, soft_wrap=False)
        from cleartext.render import render_check

        render_check(console, host, hosts, full=full)
        if domain is not None:
            from cleartext.domain.render import render_domain

            render_domain(console, domain)
    if any(r.findings for r in records) or (domain is not None and domain.findings):
        raise typer.Exit(EXIT_FINDINGS)
    if not any(r.observation.status.value == "success" for r in records):
        raise typer.Exit(EXIT_NOTHING_ANSWERED)


@app.command()
def show(
    files: Annotated[
        list[Path], typer.Argument(help="JSON Lines files written by `cleartext scan` ('-': stdin).")
    ],
    hide_closed: Annotated[
        bool, typer.Option("--hide-closed", help="Leave out endpoints that refused or never answered.")
    ] = False,
) -> None:
    """Print a verdict table of scan records, one row per endpoint."""
    from cleartext.domain.model import DomainRecord, domain_record_from_dict
    from cleartext.record import record_from_dict
    from cleartext.render import render_table

    records: list[Record] = []
    domains: list[DomainRecord] = []
    for path in files:
        try:
            handle: BinaryIO = sys.stdin.buffer if str(path) == "-" else path.open("rb")
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or exc}")
        with handle:
            try:
                for number, raw in enumerate(handle, 1):
                    try:
                        line = raw.decode("utf-8")
                    except UnicodeDecodeError:
                        fail(f"{path}:{number}: not UTF-8 text (a file of JSON records from cleartext scan?)")
                    if not line.strip():
                        continue
                    try:
                        data = json.loads(line)
                        if isinstance(data, dict) and data.get("kind") == "domain":  # check DOMAIN --json
                            domains.append(domain_record_from_dict(data))
                        else:
                            records.append(record_from_dict(data))
                    except ValueError as exc:  # json.JSONDecodeError is a ValueError
                        fail(f"{path}:{number}: {exc}")
            except OSError as exc:  # a directory, an I/O error
                fail(f"cannot read {path}: {exc.strerror or exc}")
    if hide_closed:
        silent = {"refused", "connect-timeout", "unreachable", "blocklisted"}
        records = [r for r in records if r.observation.status.value not in silent]
    records.sort(key=lambda r: (ipaddress.ip_address(r.observation.address).packed, r.observation.port))
    console = Console(highlight=False)
    render_table(console, records)
    if domains:
        from cleartext.domain.render import render_domain_table

        render_domain_table(console, domains)


@app.command()
def version() -> None:
    """Print the version."""
    print(f"cleartext {__version__}")


@app.command()
def schema(
    domain: Annotated[
        bool, typer.Option("--domain", help="The domain records' schema (`check DOMAIN --json`) instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the records `scan` writes."""
    path = Path(__file__).parent / "schema" / ("domain.schema.json" if domain else "record.schema.json")
    print(json.dumps(json.loads(path.read_text()), indent=2))


# Command modules of the later pipeline stages register their commands on `app` when imported.
# One import per module, in this block.
# -- command modules --
import cleartext.cli_report  # noqa: E402,F401
from cleartext import cli_store  # noqa: E402,F401
from cleartext import cli_enrich  # noqa: E402,F401
from cleartext import cli_data  # noqa: E402,F401
from cleartext import cli_web  # noqa: E402,F401
from cleartext import cli_notify  # noqa: E402,F401
from cleartext.distributed import cli as _distributed_cli  # noqa: E402,F401
# -- end of command modules --


def main() -> None:
    """The `cleartext` command. Errors typer and click find themselves (a bad number, a missing argument,
    an unknown option) become one line and exit 2 like every other usage error, not a box of five."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        # By class name: typer 0.2x vendors click (typer._click), older typers use the click package.
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "ClickException" in kinds:
            # NoArgsIsHelpError (`cleartext` alone) has printed the help already; typer leaves it so too.
            if "NoArgsIsHelpError" not in kinds:
                print(f"cleartext: error: {_one_line(exc)}", file=sys.stderr)
            raise SystemExit(getattr(exc, "exit_code", EXIT_USAGE)) from None
        if "Abort" in kinds:
            print("cleartext: aborted", file=sys.stderr)
            raise SystemExit(1) from None
        raise
    raise SystemExit(code if isinstance(code, int) else 0)


def _one_line(exc: Exception) -> str:
    """A click error as one line: its message, lower-cased like ours, and where to read more."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return message
