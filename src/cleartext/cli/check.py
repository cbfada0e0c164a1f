"""`cleartext check`: one mail host, or a mail domain's MX hosts and what the domain publishes, with a
verdict per port and the fixes once per software and finding."""

from __future__ import annotations

from typing import Annotated

import typer

from cleartext.cli._options import (
    DEFAULT_PORTS_TEXT,
    EXIT_FINDINGS,
    EXIT_NOTHING_ANSWERED,
    AllowReservedOpt,
    CaFileOpt,
    ConnectTimeoutOpt,
    EhloOpt,
    EndpointTimeoutOpt,
    JsonOpt,
    LoginProbeOpt,
    MaxConnOpt,
    NameserverOpt,
    PortsOpt,
    ReadTimeoutOpt,
    ResolveOpt,
    SourceOpt,
    build_resolver,
    build_settings,
    fail,
    warn,
)


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
    as_json: JsonOpt = False,
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
    from rich.console import Console

    from cleartext.check import check_mail_hosts
    from cleartext.render import render_check
    from cleartext.scan import run_loop
    from cleartext.targets import parse_ports, parse_targets

    port_specs = parse_ports(ports)
    spec = parse_targets([host], allow_reserved=allow_reserved)[0]
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
    extra = view.extra if view else []
    hosts = run_loop(
        check_mail_hosts(
            spec, port_specs, resolver, settings, allow_reserved=allow_reserved, extra=extra, warn=warn
        )
    )
    records = [r for _, rs in hosts for r in rs]
    domain = view.assess(records) if view else None
    if as_json:
        for record in records:
            print(record.to_json())
        if domain is not None:
            print(domain.to_json())
    else:
        console = Console(highlight=False, soft_wrap=False)
        render_check(console, host, hosts, full=full)
        if domain is not None:
            from cleartext.domain.render import render_domain

            render_domain(console, domain)
    if any(r.findings for r in records) or (domain is not None and domain.findings):
        raise typer.Exit(EXIT_FINDINGS)
    if not any(r.observation.status.value == "success" for r in records):
        raise typer.Exit(EXIT_NOTHING_ANSWERED)
