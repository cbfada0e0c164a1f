"""`cleartext scan`: targets, an endpoint list or mail domains in, one JSON record per endpoint out.

The command checks every option before the first packet (usage errors exit 2), builds the
:class:`~cleartext.scan.ScanSpec` and the :class:`~cleartext.scan.RunOptions` of this run, and hands
them to the job on this machine or, with ``--broker``, to the distributed coordinator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from cleartext.cli._options import (
    DEFAULT_PORTS_TEXT,
    AllowReservedOpt,
    CaFileOpt,
    ConnectTimeoutOpt,
    EhloOpt,
    EndpointTimeoutOpt,
    LoginProbeOpt,
    MaxConnOpt,
    NameserverOpt,
    PortsOpt,
    ReadTimeoutOpt,
    ResolveOpt,
    SourceOpt,
    StoreOpt,
    build_resolver,
    build_settings,
    fail,
    note,
    store_url,
    warn,
)


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
    store: StoreOpt = None,
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
    from cleartext.politeness import LARGE_SCAN_RATE, ExclusionList, internet_scale_rate
    from cleartext.scan import RunOptions, ScanSpec, run_job, run_loop
    from cleartext.targets import parse_ports, parse_targets

    targets = list(targets or [])
    mx, ports = _check_inputs(targets, endpoints, mx, list_format, ports, resume=resume, broker=broker)
    shard_index, shard_count = parse_shard(shard)
    if workers < 0:  # checked here, not by typer's min=, for the one-line error of every usage error
        fail(f"invalid --workers {workers}: expected 0 (one per usable CPU) or more")
    if workers != 1 and broker is not None:
        fail("--workers is for a scan on this machine; with --broker, run more `cleartext worker`s")
    port_specs = parse_ports(ports)
    specs = parse_targets(targets, allow_reserved=allow_reserved) if targets else []
    # The guard against scanning the Internet by mistake: before any name is resolved or socket opened.
    rate, internet_addresses = internet_scale_rate(
        specs, confirmed=internet_scale, exclude=str(exclude) if exclude else None, rate=rate
    )
    if internet_addresses is not None:
        note(
            f"cleartext: Internet-scale scan of {internet_addresses:,} addresses at most {rate:,g} new "
            "connections per second" + ("" if rate != LARGE_SCAN_RATE else " (--rate to change)")
        )
    if exclude is not None:
        ExclusionList(str(exclude))  # read it now: a bad file is a usage error before any packet
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
    _check_output(out, resume=resume, append=append)
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

        raise typer.Exit(submit(spec, run, resolver, broker=broker, shards=shards, wait=wait, warn=warn))
    try:
        result = run_loop(run_job(spec, run, resolver, warn, note))
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): what was written stays written; stop quietly.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps the interpreter's final flush quiet
        raise typer.Exit(0) from None
    counts = result.counts
    summary = ", ".join(f"{n} {status}" for status, n in counts.most_common())
    stored = f"; scan {result.scan_id} in the store" if result.scan_id else ""
    note(f"cleartext: {sum(counts.values())} endpoints: {summary or 'none'}{stored}")
    if result.skipped_lines:
        note(f"cleartext: skipped {result.skipped_lines} line(s) of {endpoints} that were no endpoint")
    if result.interrupted:
        note(f"cleartext: interrupted{'; --resume continues' if out else ''}")
        raise typer.Exit(130)


def _check_inputs(
    targets: list[str],
    endpoints: str | None,
    mx: str | None,
    list_format: str,
    ports: str,
    *,
    resume: bool,
    broker: str | None,
) -> tuple[str | None, str]:
    """One source of endpoints — targets, --endpoints or --mx — usable as given: (the --mx file, ports)."""
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
    return mx, ports


def _check_output(out: Path | None, *, resume: bool, append: bool) -> None:
    if out is None:
        return
    if out.parent and not out.parent.is_dir():
        fail(f"cannot write {out}: no such directory {out.parent}")
    if not (resume or append) and out.is_file() and out.stat().st_size > 0:
        # Appending silently would mix two scans in one file (and `show` would list endpoints twice).
        fail(
            f"{out} already holds records: pass --append to add this scan's, --resume to continue the "
            "scan that wrote it, or choose another file"
        )


def parse_shard(text: str) -> tuple[int, int]:
    """``I/N`` (0 <= I < N) -> (I, N)."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 0 <= int(index) < int(count):
        fail(f"invalid --shard {text!r}: expected I/N with 0 <= I < N, e.g. 0/4")
    return int(index), int(count)
