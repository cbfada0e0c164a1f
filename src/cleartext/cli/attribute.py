"""`cleartext attribute`: who routes an address, where it is, and whom to tell — from files you hold.

Offline: every answer
comes from the data files named on the command line (see docs/attribution.md); nothing is fetched.
A bad address or an unusable file is a one-line error and exit status 2, before anything is printed.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from cleartext.cli._options import (
    ContactsOpt,
    DataDirOpt,
    IptoasnOpt,
    JsonOpt,
    MmdbOpt,
    RirOpt,
    RpslOpt,
    attribution_files,
    attributor,
    fail,
)

if TYPE_CHECKING:
    from rich.console import Console

    from cleartext.enrich import Attribution


def attribute(
    addresses: Annotated[list[str], typer.Argument(help="IPv4 or IPv6 addresses to attribute.")],
    mmdb: MmdbOpt = None,
    iptoasn: IptoasnOpt = None,
    rir: RirOpt = None,
    rpsl: RpslOpt = None,
    contacts: ContactsOpt = None,
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attribute addresses to their AS, countries, abuse contacts and CERT, offline from data files.

    Country (geo) is where the address is used (MMDB); registry country is where the holder is.

    Exit status: 0 done, 2 bad address or data file.
    """
    from rich.console import Console

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
    enricher = attributor(files)
    assert enricher is not None  # files were given
    with enricher:
        results = enricher.lookup_many(addresses)
    if as_json:
        for address, result in zip(addresses, results, strict=True):
            print(json.dumps({"address": address, **asdict(result)}, ensure_ascii=False))
    else:
        _table(Console(highlight=False), addresses, results)


def _table(console: Console, addresses: list[str], results: list[Attribution]) -> None:
    from rich.table import Table

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
