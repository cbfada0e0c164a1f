"""iptoasn TSV reader: real files (plain, gzip, -u32), lookups, and one-line errors naming file and line."""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.iptoasn import IptoasnReader
from cleartext.enrich.ranges import parse_address
from tests.enrich_files import asn_record, write_iptoasn, write_mmdb

V4_ROWS = [
    ("192.0.2.0", "192.0.2.127", 64496, "NL", "EXAMPLE-ONE Example One B.V."),
    ("192.0.2.128", "192.0.2.255", 0, "None", "Not routed"),
    ("198.51.100.0", "198.51.100.99", 64497, "DE", "EXAMPLE-TWO"),
    ("203.0.113.0", "203.0.113.255", 64498, "Unknown", ""),
]
V6_ROWS = [("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 64499, "FR", "EXAMPLE-SIX")]


def lookup(reader: IptoasnReader, address: str) -> tuple[int, str | None, str | None, int] | None:
    version, value = parse_address(address)
    found = reader.match(version, value)
    if found is None:
        return None
    return found.value.asn, found.value.as_name, found.value.country, found.prefixlen(value)


@pytest.mark.parametrize("gz", [False, True])
def test_v4_and_v6_files(tmp_path: Path, gz: bool) -> None:
    suffix = ".tsv.gz" if gz else ".tsv"
    reader = IptoasnReader.from_paths(
        [
            write_iptoasn(tmp_path / f"ip2asn-v4{suffix}", V4_ROWS, gz=gz),
            write_iptoasn(tmp_path / f"ip2asn-v6{suffix}", V6_ROWS, gz=gz),
        ]
    )
    assert reader.names == (f"ip2asn-v4{suffix}", f"ip2asn-v6{suffix}")
    assert lookup(reader, "192.0.2.5") == (64496, "EXAMPLE-ONE Example One B.V.", "NL", 25)
    assert lookup(reader, "192.0.2.200") is None  # AS 0, "Not routed": no AS, not a guess
    assert lookup(reader, "198.51.100.99") == (64497, "EXAMPLE-TWO", "DE", 30)  # .96/30 is inside .0-.99
    assert lookup(reader, "198.51.100.100") is None
    assert lookup(reader, "203.0.113.1") == (64498, None, None, 24)  # "Unknown" country, empty name
    assert lookup(reader, "2001:db8:1::1") == (64499, "EXAMPLE-SIX", "FR", 32)
    assert lookup(reader, "2001:db9::1") is None
    assert found_source(reader, "192.0.2.5") == f"ip2asn-v4{suffix}"
    assert len(reader) == 4


def found_source(reader: IptoasnReader, address: str) -> str:
    match = reader.match(*parse_address(address))
    assert match is not None
    return match.value.source


def test_u32_variant(tmp_path: Path) -> None:
    rows = [
        (int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b)), asn, cc, n)
        for a, b, asn, cc, n in V4_ROWS
    ]
    reader = IptoasnReader.from_paths([write_iptoasn(tmp_path / "ip2asn-v4-u32.tsv", rows)])
    assert lookup(reader, "192.0.2.5") == (64496, "EXAMPLE-ONE Example One B.V.", "NL", 25)


def test_first_file_wins_on_identical_ranges(tmp_path: Path) -> None:
    first = write_iptoasn(tmp_path / "a.tsv", [("192.0.2.0", "192.0.2.255", 64500, "NL", "FIRST")])
    second = write_iptoasn(tmp_path / "b.tsv", [("192.0.2.0", "192.0.2.255", 64501, "NL", "SECOND")])
    assert lookup(IptoasnReader.from_paths([first, second]), "192.0.2.1") == (64500, "FIRST", "NL", 24)
    assert lookup(IptoasnReader.from_paths([second, first]), "192.0.2.1") == (64501, "SECOND", "NL", 24)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        ("192.0.2.0\t192.0.2.255\t64496\tNL\n", 1, "expected 5 tab-separated columns"),
        ("192.0.2.0,192.0.2.255,64496,NL,X\n", 1, "found 1"),
        ("\n192.0.2.0\t192.0.2.255\tAS64496\tNL\tX\n", 2, "AS_number is not an AS number"),
        ("192.0.2.0\t192.0.2.255\t64496\tNL\tX\n192.0.2.x\t192.0.2.255\t1\tNL\tX\n", 2, "bad range bounds"),
        ("192.0.2.9\t192.0.2.1\t64496\tNL\tX\n", 1, "range start after its end"),
        ("192.0.2.0\t2001:db8::\t64496\tNL\tX\n", 1, "mixes IPv4 and IPv6"),
        ("1\t4294967296\t64496\tNL\tX\n", 1, "bad range bounds"),
        ("", None, "no ranges"),
    ],
)
def test_bad_lines_are_one_line_errors(tmp_path: Path, content: str, line: int | None, message: str) -> None:
    path = tmp_path / "ip2asn-v4.tsv"
    path.write_text(content)
    with pytest.raises(EnrichError, match=message) as caught:
        IptoasnReader.from_paths([path])
    where = f"{path}:{line}: " if line else f"{path}: "
    assert str(caught.value).startswith(where) and "\n" not in str(caught.value)


def test_missing_file_and_binary_file(tmp_path: Path) -> None:
    with pytest.raises(EnrichError, match="cannot read"):
        IptoasnReader.from_paths([tmp_path / "absent.tsv"])
    mmdb = write_mmdb(tmp_path / "GeoLite2-ASN.mmdb", {"192.0.2.0/24": asn_record(64496, "X")})
    with pytest.raises(EnrichError, match=r"GeoLite2-ASN\.mmdb:1: expected 5 tab-separated columns"):
        IptoasnReader.from_paths([mmdb])


def test_corrupt_gzip(tmp_path: Path) -> None:
    good = write_iptoasn(tmp_path / "ip2asn.tsv.gz", V4_ROWS * 200, gz=True).read_bytes()
    broken = tmp_path / "broken.tsv.gz"
    broken.write_bytes(good[: len(good) // 2])
    with pytest.raises(EnrichError, match=r"broken\.tsv\.gz: cannot read"):
        IptoasnReader.from_paths([broken])


@st.composite
def disjoint_rows(draw: st.DrawFn) -> list[tuple[str, str, int, str, str]]:
    """Sorted, non-overlapping ranges inside 198.51.100.0/24, as iptoasn publishes them."""
    cuts = sorted(draw(st.sets(st.integers(0, 255), min_size=1, max_size=30)))
    rows = []
    for start, end in zip(cuts, [*cuts[1:], 256], strict=True):
        last = draw(st.integers(start, end - 1))
        asn = draw(st.sampled_from([0, 64496, 64497, 64511]))
        rows.append((f"198.51.100.{start}", f"198.51.100.{last}", asn, "NL", f"AS-{asn}"))
    return rows


@settings(max_examples=60, deadline=None)
@given(rows=disjoint_rows())
def test_file_lookups_agree_with_brute_force(rows: list[tuple[str, str, int, str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        reader = IptoasnReader.from_paths([write_iptoasn(Path(tmp) / "ip2asn.tsv", rows)])
    for last_octet in range(256):
        address = f"198.51.100.{last_octet}"
        point = int(ipaddress.IPv4Address(address))
        expected = next(
            (
                asn
                for a, b, asn, _, _ in rows
                if int(ipaddress.IPv4Address(a)) <= point <= int(ipaddress.IPv4Address(b))
            ),
            0,
        )
        found = lookup(reader, address)
        assert (found[0] if found else 0) == expected
