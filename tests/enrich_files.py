"""Writers of real attribution data files, for the enrich tests and the benchmark.

Every file is written in the format its publisher uses (MMDB through ``mmdb_writer``, a maintained
implementation of the MaxMind DB writer spec; iptoasn TSV; RIR delegated-extended statistics; RPSL
split dumps; the contacts CSV), with documentation ranges only (192.0.2.0/24, 198.51.100.0/24,
203.0.113.0/24, 2001:db8::/32), private-use AS numbers 64496-64511 and ``.example`` mailboxes.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def write_text(path: Path, text: str, *, gz: bool = False) -> Path:
    """Write ``text`` as UTF-8, gzip-compressed when asked (as dumps are published)."""
    data = text.encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_mmdb(
    path: Path,
    networks: Mapping[str, dict[str, Any]],
    *,
    database_type: str = "GeoLite2-ASN",
    ip_version: int = 6,
) -> Path:
    """An MMDB file mapping each CIDR to its record; supernets are inserted before their subnets."""
    writer = MMDBWriter(
        ip_version=ip_version,
        ipv4_compatible=ip_version == 6,
        database_type=database_type,
        languages=["en"],
        description={"en": f"cleartext test {database_type}"},
    )
    ordered = sorted(networks.items(), key=lambda item: ipaddress.ip_network(item[0]).prefixlen)
    for cidr, record in ordered:
        writer.insert_network(IPSet([cidr]), record)
    writer.to_db_file(str(path))
    return path


def asn_record(asn: int, name: str) -> dict[str, Any]:
    """A GeoLite2-ASN / DB-IP ASN Lite record."""
    return {"autonomous_system_number": asn, "autonomous_system_organization": name}


def country_record(country: str | None, registered: str | None = None) -> dict[str, Any]:
    """A GeoLite2-Country / City / DB-IP Country Lite record (with the nested names MaxMind ships)."""
    record: dict[str, Any] = {"continent": {"code": "EU", "names": {"en": "Europe"}}}
    if country is not None:
        record["country"] = {"iso_code": country, "names": {"en": f"Country {country}"}}
    if registered is not None:
        record["registered_country"] = {"iso_code": registered, "names": {"en": f"Country {registered}"}}
    return record


def ipinfo_record(asn: int, name: str, country: str) -> dict[str, Any]:
    """An IPinfo Lite record."""
    return {
        "asn": f"AS{asn}",
        "as_name": name,
        "as_domain": "example.example",
        "country_code": country,
        "country": f"Country {country}",
        "continent_code": "EU",
        "continent": "Europe",
    }


def write_iptoasn(
    path: Path, rows: Iterable[tuple[str | int, str | int, int, str, str]], *, gz: bool = False
) -> Path:
    """iptoasn TSV: ``range_start range_end AS_number country_code AS_description``."""
    return write_text(
        path, "".join(f"{a}\t{b}\t{asn}\t{cc}\t{name}\n" for a, b, asn, cc, name in rows), gz=gz
    )


def write_rir(
    path: Path,
    registry: str,
    records: Sequence[tuple[str, str, str, int, str]],
    *,
    extended: bool = True,
    gz: bool = False,
) -> Path:
    """A delegated(-extended) statistics file: records are ``(cc, type, start, value, status)``."""
    counts = {kind: sum(1 for r in records if r[1] == kind) for kind in ("asn", "ipv4", "ipv6")}
    lines = [
        "# delegated statistics written by the cleartext tests",
        f"2|{registry}|20250101|{len(records)}|19830705|20250101|+0000",
        *(f"{registry}|*|{kind}|*|{count}|summary" for kind, count in counts.items()),
    ]
    for number, (cc, kind, start, value, status) in enumerate(records):
        held = status in ("allocated", "assigned")
        fields = [registry, cc, kind, start, str(value), "20100101" if held else "", status]
        if extended:
            fields.append(f"opaque-{number:04d}" if held else "")
        lines.append("|".join(fields))
    return write_text(path, "\n".join(lines) + "\n", gz=gz)


def rpsl_object(*attributes: tuple[str, str]) -> str:
    """One RPSL object: ``attribute:`` padded to the value column, as the RIPE dumps are."""
    return "".join(f"{(key + ':').ljust(16)}{value}\n" for key, value in attributes)


def write_rpsl(path: Path, objects: Iterable[str], *, gz: bool = False) -> Path:
    """An RPSL dump: a comment header, then the objects separated by blank lines."""
    header = "# RPSL dump written by the cleartext tests\n# Objects are dummified test data\n\n"
    return write_text(path, header + "\n".join(objects), gz=gz)


def write_contacts(
    path: Path,
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str] = ("kind", "key", "contact", "country"),
) -> Path:
    """The contacts CSV."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path
