"""Range tables: the flattened bisect search agrees with a brute-force scan, whatever the nesting."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleartext.enrich.ranges import (
    RangeBuilder,
    RangeTable,
    address_text,
    largest_prefix,
    parse_address,
    parse_bound,
    prefix_text,
)

V4_BASE = int.from_bytes(bytes([198, 51, 100, 0]), "big")
V6_BASE = 0x20010DB8 << 96


def found_value(table: RangeTable[int], point: int) -> int:
    """The value (input position) of the range the table finds; -1 when none."""
    index = table.find(point)
    return -1 if index < 0 else table.values[index]


def brute_most_specific(ranges: list[tuple[int, int]], point: int) -> int:
    """The reference: the smallest range containing the point, the first given on a tie; -1 if none."""
    best = -1
    for i, (start, end) in enumerate(ranges):
        if start <= point <= end and (best < 0 or end - start < ranges[best][1] - ranges[best][0]):
            best = i
    return best


def ranges_strategy(base: int, span: int) -> st.SearchStrategy[list[tuple[int, int]]]:
    bound = st.integers(min_value=0, max_value=span)
    pair = st.tuples(bound, bound).map(lambda p: (base + min(p), base + max(p)))
    return st.lists(pair, max_size=25)


@settings(max_examples=300, deadline=None)
@given(ranges=ranges_strategy(V4_BASE, 255))
def test_ipv4_lookup_agrees_with_brute_force(ranges: list[tuple[int, int]]) -> None:
    builder = RangeBuilder[int](4)
    for i, (start, end) in enumerate(ranges):
        builder.add(start, end, i)
    table = builder.build()
    for point in range(V4_BASE - 2, V4_BASE + 258):
        expected = brute_most_specific(ranges, point)
        assert found_value(table, point) == expected, (ranges, point)
        found = table.match(point)
        assert (found.value if found else -1) == expected


@settings(max_examples=200, deadline=None)
@given(ranges=ranges_strategy(V6_BASE, 2**80), points=st.lists(st.integers(0, 2**80), max_size=40))
def test_ipv6_lookup_agrees_with_brute_force(ranges: list[tuple[int, int]], points: list[int]) -> None:
    builder = RangeBuilder[int](6)
    for i, (start, end) in enumerate(ranges):
        builder.add(start, end, i)
    table = builder.build()
    probes = [V6_BASE + p for p in points] + [b for r in ranges for b in (r[0] - 1, r[0], r[1], r[1] + 1)]
    for point in probes:
        assert found_value(table, point) == brute_most_specific(ranges, point)


def test_ranges_at_the_ends_of_the_address_space() -> None:
    builder = RangeBuilder[str](6)
    builder.add(0, 2**128 - 1, "all")
    builder.add(2**128 - 16, 2**128 - 1, "top")
    builder.add(0, 0, "zero")
    table = builder.build()
    assert [table.values[table.find(p)] for p in (0, 1, 2**127, 2**128 - 17, 2**128 - 1)] == [
        "zero",
        "all",
        "all",
        "all",
        "top",
    ]


def test_disjoint_sorted_ranges_need_no_flattening() -> None:
    builder = RangeBuilder[int](4)
    for i in range(100):
        builder.add(i * 10, i * 10 + 4, i)
    table = builder.build()
    assert table.segments == len(table) == 100
    assert table.find(15) == -1 and table.find(14) == 1 and table.find(999) == -1


@settings(max_examples=500, deadline=None)
@given(
    bits=st.sampled_from([8, 32, 128]),
    data=st.data(),
)
def test_largest_prefix_is_the_largest_aligned_block_inside(bits: int, data: st.DataObject) -> None:
    a = data.draw(st.integers(0, 2**bits - 1))
    b = data.draw(st.integers(0, 2**bits - 1))
    start, end = min(a, b), max(a, b)
    value = data.draw(st.integers(start, end))
    length = largest_prefix(start, end, value, bits)
    host = bits - length
    low = value >> host << host
    assert start <= low and low + (1 << host) - 1 <= end
    if length > 0:  # one bit shorter would leave the range
        wider = value >> (host + 1) << (host + 1)
        assert wider < start or wider + (1 << (host + 1)) - 1 > end


def test_parse_address() -> None:
    assert parse_address("192.0.2.1") == (4, 0xC0000201)
    assert parse_address("::ffff:192.0.2.1") == (4, 0xC0000201)
    assert parse_address("2001:db8::1") == (6, V6_BASE + 1)
    assert parse_bound("::ffff:192.0.2.1") == (6, 0xFFFF_C000_0201)
    for bad in ("192.0.2.256", "192.0.2.01", "fe80::1%eth0", "2001:db8::/32", "mail.example", ""):
        with pytest.raises(ValueError, match="not an IP address"):
            parse_address(bad)


def test_prefix_text() -> None:
    assert prefix_text(4, 0xC0000281, 25) == "192.0.2.128/25"
    assert prefix_text(6, V6_BASE + 5, 32) == "2001:db8::/32"
    assert address_text(4, 0xC0000201) == "192.0.2.1"
