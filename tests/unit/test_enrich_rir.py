"""RIR delegation statistics: counts that are not powers of two, IPv6 prefixes, statuses, several RIRs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import parse_address
from cleartext.enrich.rir import RirReader
from tests.enrich_files import write_contacts, write_rir


def lookup(reader: RirReader, address: str) -> tuple[str, str | None, str, int] | None:
    version, value = parse_address(address)
    found = reader.match(version, value)
    if found is None:
        return None
    return found.value.registry, found.value.country, found.value.status, found.prefixlen(value)


@pytest.fixture
def reader(tmp_path: Path) -> RirReader:
    ripe = write_rir(
        tmp_path / "delegated-ripencc-extended-latest",
        "ripencc",
        [
            ("NL", "ipv4", "192.0.2.0", 96, "allocated"),  # 96 addresses: .0-.95, not a CIDR block
            ("ZZ", "ipv4", "192.0.2.96", 32, "available"),
            ("", "ipv4", "192.0.2.128", 128, "reserved"),
            ("DE", "ipv6", "2001:db8::", 32, "allocated"),
            ("NL", "asn", "64496", 16, "assigned"),
        ],
    )
    arin = write_rir(
        tmp_path / "delegated-arin-extended-latest.gz",
        "arin",
        [("US", "ipv4", "198.51.100.0", 256, "assigned")],
        gz=True,
    )
    apnic = write_rir(
        tmp_path / "delegated-apnic-latest",
        "apnic",
        [("JP", "ipv4", "203.0.113.0", 200, "allocated")],
        extended=False,
    )
    return RirReader.from_paths([ripe, arin, apnic])


def test_blocks_by_count_and_prefix(reader: RirReader) -> None:
    assert lookup(reader, "192.0.2.0") == ("ripencc", "NL", "allocated", 26)
    assert lookup(reader, "192.0.2.70") == ("ripencc", "NL", "allocated", 27)  # .64-.95 inside .0-.95
    assert lookup(reader, "2001:db8:abcd::1") == ("ripencc", "DE", "allocated", 32)
    assert lookup(reader, "2001:db9::1") is None


def test_available_and_reserved_name_the_registry_but_no_country(reader: RirReader) -> None:
    assert lookup(reader, "192.0.2.100") == ("ripencc", None, "available", 27)
    assert lookup(reader, "192.0.2.200") == ("ripencc", None, "reserved", 25)


def test_several_registries_gzip_and_non_extended(reader: RirReader) -> None:
    assert lookup(reader, "198.51.100.1") == ("arin", "US", "assigned", 24)
    assert lookup(reader, "203.0.113.199") == ("apnic", "JP", "allocated", 29)  # .192-.199
    assert lookup(reader, "203.0.113.200") is None
    assert reader.names == (
        "delegated-ripencc-extended-latest",
        "delegated-arin-extended-latest.gz",
        "delegated-apnic-latest",
    )


HEADER = "2|ripencc|20250101|3|19830705|20250101|+0000\n"


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("ripencc|NL|ipv4|192.0.2.0|256|20100101\n", 2, "not an RIR statistics record"),
        ("ripe|NL|ipv4|192.0.2.0|256|20100101|allocated\n", 2, "unknown registry 'ripe'"),
        ("ripencc|NL|ipv5|192.0.2.0|256|20100101|allocated\n", 2, "unknown record type 'ipv5'"),
        ("ripencc|NL|ipv4|192.0.2.0|256|20100101|legacy\n", 2, "unknown status 'legacy'"),
        ("ripencc|NLD|ipv4|192.0.2.0|256|20100101|allocated\n", 2, "bad country code 'NLD'"),
        ("ripencc|NL|ipv4|192.0.2.0|0|20100101|allocated\n", 2, "bad ipv4 block"),
        ("ripencc|NL|ipv4|255.255.255.0|512|20100101|allocated\n", 2, "bad ipv4 block"),
        ("ripencc|NL|ipv4|2001:db8::|256|20100101|allocated\n", 2, "bad ipv4 block"),
        ("ripencc|NL|ipv6|2001:db8::1|32|20100101|allocated\n", 2, "bad ipv6 block"),
        ("ripencc|NL|ipv6|2001:db8::|129|20100101|allocated\n", 2, "bad ipv6 block"),
        ("ripencc|NL|ipv4|192.0.2.x|256|20100101|allocated\n", 2, "bad ipv4 block"),
    ],
)
def test_bad_records(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "delegated-ripencc-extended-latest"
    path.write_text(HEADER + body)
    with pytest.raises(EnrichError, match=message) as caught:
        RirReader.from_paths([path])
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_wrong_files(tmp_path: Path) -> None:
    csv_file = write_contacts(tmp_path / "contacts.csv", [("asn", "64496", "abuse@one.example", "")])
    with pytest.raises(EnrichError, match=r"contacts\.csv:1: not an RIR statistics record"):
        RirReader.from_paths([csv_file])
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    with pytest.raises(EnrichError, match="no delegations"):
        RirReader.from_paths([empty])
    with pytest.raises(EnrichError, match="cannot read"):
        RirReader.from_paths([tmp_path])  # a directory
