"""`cleartext attribute`: who routes an address, where it is, and whom to tell — from files you hold.

Registered on the main ``app`` by the import in cli.py's command-module block. Offline: every answer
comes from the data files named on the command line (see docs/attribution.md); nothing is fetched.
A bad address or an unusable file is a one-line error and exit status 2, before anything is printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from cleartext.cli import app, fail
from cleartext.cli_data import DataDirOpt, attribution_files

if TYPE_CHECKING:
    from cleartext.enrich import Attribution

FilesOpt = list[Path] | None


def _files(flag: str, what: str) -> Any:  # typer.Option is typed Any
    return typer.Option(flag, help=f"{what} (repeatable; the first file given wins).", metavar="FILE")


@app.command()
def attribute(
    addresses: Annotated[list[str], typer.Argument(help="IPv4 or IPv6 addresses to attribute.")],
    mmdb: Annotated[
        FilesOpt, _files("--mmdb", "MMDB database: GeoLite2-ASN/Country/City, DB-IP Lite, IPinfo Lite")
    ] = None,
    iptoasn: Annotated[FilesOpt, _files("--iptoasn", "iptoasn TSV, IPv4 or IPv6, gzipped or not")] = None,
    rir: Annotated[FilesOpt, _files("--rir", "RIR delegated(-extended) statistics file")] = None,
    rpsl: Annotated[
        FilesOpt, _files("--rpsl", "RPSL database dump (split files welcome), gzipped or not")
    ] = None,
    contacts: Annotated[FilesOpt, _files("--contacts", "your contacts CSV: kind,key,contact,country")] = None,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON Lines, one per address.")] = False,
) -> None:
    """Attribute addresses to their AS, countries, abuse contacts and CERT, offline from data files.

    Country (geo) is where the address is used (MMDB); registry country is where the holder is.

    Exit status: 0 done, 2 bad address or data file.
    """
    from cleartext.enrich import Enricher, EnrichError
    from cleartext.enrich.ranges import parse_address

    for address in addresses:
        try:
            parse_address(address)
        except ValueError:
            fail(f"invalid address {address!r}: expected an IPv4 or IPv6 address")
    files = attribution_files(data_dir, mmdb=mmdb, iptoasn=iptoasn, rir=rir, rpsl=rpsl, contacts=contacts)
    if not any(files.values()):
        fail(
            "no data file given: pass at least one of --mmdb, --iptoasn, --rir, --rpsl, --contacts, "
            "or fetch them with `cleartext data fetch`"
        )
    try:
        with Enricher.from_paths(
            mmdb=files["mmdb"],
            iptoasn=files["iptoasn"],
            rir=files["rir"],
            rpsl=files["rpsl"],
            contacts=files["contacts"],
        ) as enricher:
            results = enricher.lookup_many(addresses)
    except EnrichError as exc:
        fail(str(exc))
    if as_json:
        for address, result in zip(addresses, results, strict=True):
            print(json.dumps({"address": address, **asdict(result)}, ensure_ascii=False))
    else:
        _table(Console(highlight=False), addresses, results)


def _table(console: Console, addresses: list[str], results: list[Attribution]) -> None:
    table = Table()
    for column in (
        "address",
        "AS",
        "AS name",
        "country (geo)",
        "registry country",
        "registry",
        "network",
        "abuse contacts",
        "CERT",
        "sources",
    ):
        table.add_column(column, overflow="fold")
    for address, r in zip(addresses, results, strict=True):
        table.add_row(
            address,
            f"AS{r.asn}" if r.asn is not None else "-",
            r.as_name or "-",
            r.country or "-",
            r.registry_country or "-",
            r.registry or "-",
            r.network or "-",
            "\n".join(r.abuse_contacts) or "-",
            r.cert or "-",
            "\n".join(r.sources) or "-",
        )
    console.print(table)
