"""`cleartext show` (a verdict table of scan records), `version` and `schema`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO

import typer

from cleartext.cli._options import fail

if TYPE_CHECKING:
    from cleartext.domain.model import DomainRecord
    from cleartext.record import Record


def show(
    files: Annotated[
        list[Path], typer.Argument(help="JSON Lines files written by `cleartext scan` ('-': stdin).")
    ],
    hide_closed: Annotated[
        bool, typer.Option("--hide-closed", help="Leave out endpoints that refused or never answered.")
    ] = False,
) -> None:
    """Print a verdict table of scan records, one row per endpoint."""
    import ipaddress

    from rich.console import Console

    from cleartext.domain.model import domain_record_from_dict
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
        from cleartext.record import NO_ANSWER

        records = [r for r in records if r.observation.status not in NO_ANSWER]
    records.sort(key=lambda r: (ipaddress.ip_address(r.observation.address).packed, r.observation.port))
    console = Console(highlight=False)
    render_table(console, records)
    if domains:
        from cleartext.domain.render import render_domain_table

        render_domain_table(console, domains)


def version() -> None:
    """Print the version."""
    from cleartext import __version__

    print(f"cleartext {__version__}")


def schema(
    domain: Annotated[
        bool, typer.Option("--domain", help="The domain records' schema (`check DOMAIN --json`) instead.")
    ] = False,
) -> None:
    """Print the JSON Schema of the records `scan` writes."""
    name = "domain.schema.json" if domain else "record.schema.json"
    path = Path(__file__).parent.parent / "schema" / name
    print(json.dumps(json.loads(path.read_text()), indent=2))
