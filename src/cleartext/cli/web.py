"""`cleartext serve` (the dashboard and REST API) and `cleartext token create|list|revoke`.

FastAPI, uvicorn, Jinja2 and rich are imported inside the commands, so other commands do not pay for
them at start-up.

A DuckDB store is one file that one process holds open for writing: while `serve` runs on it, `token`
commands (and `import`) on the same file fail with a one-line "locked" error. Create tokens before
starting the server, or use a PostgreSQL store, where both run at once (see docs/web.md).
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Annotated

import typer

from cleartext.cli._options import (
    CaFileOpt,
    ContactsOpt,
    CountrySourceOpt,
    DataDirOpt,
    IptoasnOpt,
    JsonOpt,
    MmdbOpt,
    ResolveOpt,
    RirOpt,
    RpslOpt,
    StoreOpt,
    attribution_files,
    attributor,
    build_resolver,
    check_ca_files,
    country_source,
    default_ehlo_name,
    fail,
    open_store,
)


def token_create(
    owner: Annotated[
        list[str] | None,
        typer.Option(
            "--owner",
            help="What the token owns: AS64496, a CIDR (192.0.2.0/24) or a country code (FR); repeatable.",
        ),
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="A token that sees everything.")] = False,
    label: Annotated[
        str | None, typer.Option("--label", help="Who the token is for (shown in listings).")
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Create a token and print it once: the store keeps only its hash."""
    from cleartext.web.tokens import TokenStore, parse_owner

    owners = parse_owner(owner or [])
    if admin == (not owners.empty):
        fail("give either --admin or at least one --owner")
    with open_store(store, create=True) as st:
        token_id, token = TokenStore(st).create(admin=admin, owner=owners, label=label)
    what = "admin" if admin else "owner of " + ", ".join(owners.specs())
    print(f"cleartext: token {token_id} ({what}); it is shown only now:", file=sys.stderr)
    print(token)


def token_list(store: StoreOpt = None, as_json: JsonOpt = False) -> None:
    """List tokens: id, kind, owners, label, created, revoked (never the secret)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from cleartext.web.tokens import TokenStore

    with open_store(store, create=False) as st:
        infos = TokenStore(st).list()
    if as_json:
        for info in infos:
            print(json.dumps(info.to_dict(), sort_keys=True))
        return
    table = Table(title=f"tokens ({len(infos)})", title_justify="left")
    for column in ("id", "kind", "owners", "label", "created", "revoked"):
        table.add_column(column)
    for info in infos:
        d = info.to_dict()
        table.add_row(
            *(Text(str(v)) for v in (d["id"], d["kind"], " ".join(d["owners"]) or "-", d["label"] or "-")),
            Text(d["created_at"]),
            Text(d["revoked_at"] or "-"),
        )
    Console(highlight=False).print(table)


def token_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (from `token list`).")],
    store: StoreOpt = None,
) -> None:
    """Revoke a token: it stops working at the next request (sessions included)."""
    from cleartext.web.tokens import TokenStore

    with open_store(store, create=False) as st:
        info = TokenStore(st).revoke(token_id)
    print(f"cleartext: token {info.token_id} revoked at {info.revoked_at}", file=sys.stderr)


def serve(
    store: StoreOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    mmdb: MmdbOpt = None,
    iptoasn: IptoasnOpt = None,
    rir: RirOpt = None,
    rpsl: RpslOpt = None,
    contacts: ContactsOpt = None,
    data_dir: DataDirOpt = None,
    country: CountrySourceOpt = "geo",
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this PEM chain.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The private key of --tls-cert.")] = None,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Trust X-Forwarded-Proto/For from these proxy addresses (behind a TLS reverse proxy).",
        ),
    ] = None,
    self_checks: Annotated[
        int, typer.Option("--self-checks", help="Self-checks per token per window.", min=0)
    ] = 5,
    self_check_window: Annotated[
        float, typer.Option("--self-check-window", help="The rate-limit window, in seconds.", min=1)
    ] = 600.0,
    self_check_allow_reserved: Annotated[
        bool,
        typer.Option(
            "--self-check-allow-reserved",
            help="Let self-checks reach loopback, private and other reserved ranges (labs and tests only).",
        ),
    ] = False,
    ca_file: CaFileOpt = None,
    resolve: ResolveOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the dashboard and the read-only REST API over the store (see docs/web.md).

    The country of an address (--country-source) decides both country owners' scope and the charts;
    --ca-file is trusted by self-checks.
    """
    from cleartext.probe import ProbeSettings
    from cleartext.web.selfcheck import SelfCheckSettings

    source = country_source(country)
    if (tls_cert is None) != (tls_key is None):
        fail("--tls-cert and --tls-key go together")
    for path in [tls_cert, tls_key] if tls_cert and tls_key else []:
        if not path.is_file():
            fail(f"cannot read {path}: no such file")
    check_ca_files(ca_file)
    try:
        import uvicorn

        from cleartext.web.app import AppConfig, create_app
        from cleartext.web.data import data_fingerprint
    except ImportError as exc:  # pragma: no cover - they are dependencies
        fail(f"the web server needs {exc.name}: pip install cleartext")
    paths = attribution_files(data_dir, mmdb=mmdb, iptoasn=iptoasn, rir=rir, rpsl=rpsl, contacts=contacts)
    enricher = attributor(paths)
    fingerprint = data_fingerprint([p for kind in paths.values() for p in kind])
    st = open_store(store, create=False)
    try:
        settings = SelfCheckSettings(
            allow_reserved=self_check_allow_reserved,
            per_window=self_checks,
            window_s=self_check_window,
            resolver=build_resolver(resolve, None),
            probe=ProbeSettings(
                connect_timeout=5.0,
                read_timeout=10.0,
                endpoint_timeout=30.0,
                ca_files=tuple(str(p) for p in ca_file or []),
                ehlo_name=default_ehlo_name(),
            ),
        )
        config = AppConfig(country_source=source, selfcheck=settings)  # type: ignore[arg-type]
        web = create_app(st, enricher=enricher, fingerprint=fingerprint, config=config)
        server_config = uvicorn.Config(
            web,
            host=host,
            port=port,
            log_level=log_level,
            ssl_certfile=str(tls_cert) if tls_cert else None,
            ssl_keyfile=str(tls_key) if tls_key else None,
            proxy_headers=forwarded_allow_ips is not None,
            forwarded_allow_ips=forwarded_allow_ips,
            server_header=False,
        )
        try:
            server_config.load()  # the TLS certificate and key are read here
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            fail(f"cannot serve with --tls-cert {tls_cert} and --tls-key {tls_key}: {exc}")
        # Listen before saying so: a port in use is one line and exit 2, not "serving on" and a trace.
        listener = _listen(host, port)
        print(
            f"cleartext: serving {st.url} on {'https' if tls_cert else 'http'}://{host}:{port}/ "
            f"(attribution: {', '.join(enricher.sources) if enricher else 'none'})",
            file=sys.stderr,
        )
        uvicorn.Server(server_config).run(sockets=[listener])
    finally:
        st.close()
        if enricher is not None:
            enricher.close()


def _listen(host: str, port: int) -> socket.socket:
    """The web server's socket, bound to HOST:PORT, or a one-line usage error (in use, no such address)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: restarts need no wait
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    return sock
