"""Address ranges as sorted integer arrays: load once, answer "which range covers this address" by bisect.

Every range-shaped source (iptoasn, RIR statistics, RPSL inetnums, the user's CIDRs) is turned into a
:class:`RangeTable` per address family. Ranges may nest (an RPSL assignment inside an allocation) or
even overlap partially, so at build time they are flattened into disjoint segments, each pointing at the
*most specific* covering range — the smallest one, the first given on a tie. A lookup is then a single
``bisect`` over a compact array plus one comparison, whatever the nesting: that is what makes hundreds of
thousands of lookups per second possible in pure Python.

IPv4 bounds live in ``array('Q')`` (8 bytes each, and faster to bisect than a list of ints because of
locality); IPv6 bounds do not fit 64 bits and stay in lists of ints.
"""

from __future__ import annotations

import heapq
import socket
from array import array
from bisect import bisect_right
from collections.abc import MutableSequence, Sequence
from typing import Generic, NamedTuple, TypeVar

V = TypeVar("V")

BITS = {4: 32, 6: 128}
_V4_MAPPED = 0xFFFF  # ::ffff:0:0/96, upper 96 bits of an IPv4-mapped IPv6 address


def parse_address(text: str) -> tuple[int, int]:
    """``(version, integer)`` of an address to look up; IPv4-mapped IPv6 (``::ffff:a.b.c.d``) is IPv4.

    ``inet_pton`` is several times faster than :mod:`ipaddress` and just as strict (no octal, no
    leading zeros, no zone ids), which matters on the per-lookup path. Raises ValueError.
    """
    version, value = parse_bound(text)
    if version == 6 and value >> 32 == _V4_MAPPED:
        return 4, value & 0xFFFFFFFF
    return version, value


def parse_bound(text: str) -> tuple[int, int]:
    """``(version, integer)`` of an address as written in a data file, with no IPv4-mapped folding.

    Files may describe ``::ffff:0:0/96`` itself as an IPv6 range; folding its bounds into IPv4 would
    turn it into 0.0.0.0-255.255.255.255. Raises ValueError.
    """
    try:
        return 4, int.from_bytes(socket.inet_pton(socket.AF_INET, text), "big")
    except OSError:
        pass
    except TypeError:
        raise ValueError(f"not an IP address: {text!r}") from None
    try:
        return 6, int.from_bytes(socket.inet_pton(socket.AF_INET6, text), "big")
    except OSError:
        raise ValueError(f"not an IP address: {text!r}") from None


def address_text(version: int, value: int) -> str:
    """The canonical text of an address given as an integer."""
    if version == 4:
        return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def prefix_text(version: int, value: int, prefixlen: int) -> str:
    """``network/prefixlen`` of the prefix of that length containing ``value``."""
    host_bits = BITS[version] - prefixlen
    return f"{address_text(version, value >> host_bits << host_bits)}/{prefixlen}"


def largest_prefix(start: int, end: int, value: int, bits: int) -> int:
    """Length of the shortest prefix that contains ``value`` and lies wholly inside ``[start, end]``.

    Ranges from iptoasn, RIR statistics and RPSL inetnums need not be CIDR blocks; the record's
    ``network`` field is CIDR, and the largest aligned block around the address inside the range is
    the one prefix that is both true and as informative as the range allows.

    A block of ``2**h`` addresses around ``value`` contains ``x`` exactly when ``x ^ value < 2**h``;
    so the block stays inside the range while it contains neither ``start - 1`` nor ``end + 1``,
    which gives ``h`` in two ``bit_length`` calls instead of a loop over prefix lengths.
    """
    host_bits = bits
    if start:
        host_bits = ((start - 1) ^ value).bit_length() - 1
    if (end + 1) >> bits == 0:  # end is not the last address of the family
        below_end = ((end + 1) ^ value).bit_length() - 1
        if below_end < host_bits:
            host_bits = below_end
    return bits - host_bits


def _bounds(version: int) -> MutableSequence[int]:
    return array("Q") if version == 4 else []


class RangeBuilder(Generic[V]):
    """Collects ``(start, end, value)`` ranges of one address family, then :meth:`build` s the table."""

    def __init__(self, version: int) -> None:
        if version not in BITS:
            raise ValueError(f"IP version must be 4 or 6, not {version}")
        self.version = version
        self.starts = _bounds(version)
        self.ends = _bounds(version)
        self.values: list[V] = []

    def __len__(self) -> int:
        return len(self.values)

    def add(self, start: int, end: int, value: V) -> None:
        """Add an inclusive range; callers have validated ``0 <= start <= end < 2**bits``."""
        self.starts.append(start)
        self.ends.append(end)
        self.values.append(value)

    def build(self) -> RangeTable[V]:
        """Sort, and flatten overlaps so that each point maps to its most specific range."""
        starts, ends, values = self.starts, self.ends, self.values
        count = len(values)
        if any(starts[i] > starts[i + 1] for i in range(count - 1)):
            # By start, then larger range first, as one integer key (tuples would cost far more
            # memory on a multi-million-range dump); the sort is stable, so ties keep input order.
            shift = BITS[self.version] + 1
            order = sorted(range(count), key=lambda i: (starts[i] << shift) - ends[i])
            starts_sorted, ends_sorted = _bounds(self.version), _bounds(self.version)
            starts_sorted.extend(starts[i] for i in order)
            ends_sorted.extend(ends[i] for i in order)
            values = [values[i] for i in order]
            starts, ends = starts_sorted, ends_sorted
            # The tie rule is "first given wins"; keep the original positions to apply it.
            rank: Sequence[int] = order
        else:
            rank = range(count)
        if all(ends[i] < starts[i + 1] for i in range(count - 1)):
            return RangeTable(self.version, starts, ends, values, starts, ends, None)
        seg_starts, seg_ends, seg_item = _flatten(self.version, starts, ends, rank)
        return RangeTable(self.version, starts, ends, values, seg_starts, seg_ends, seg_item)


def _flatten(
    version: int, starts: Sequence[int], ends: Sequence[int], rank: Sequence[int]
) -> tuple[MutableSequence[int], MutableSequence[int], array[int]]:
    """Disjoint segments of sorted, overlapping ranges, each labelled with its most specific range.

    A sweep from left to right keeps the ranges covering the current point in a heap ordered by
    (size, input position): the top is the winner. The winner can only change where a range starts or
    where the winner itself ends, so each step emits one segment up to the nearer of the two.
    """
    seg_starts, seg_ends = _bounds(version), _bounds(version)
    seg_item: array[int] = array("I")
    heap: list[tuple[int, int, int]] = []
    count = len(starts)
    i = 0
    point = 0
    while i < count or heap:
        if not heap:
            point = max(point, starts[i])
        while i < count and starts[i] <= point:
            heapq.heappush(heap, (ends[i] - starts[i], rank[i], i))
            i += 1
        while heap and ends[heap[0][2]] < point:
            heapq.heappop(heap)
        if not heap:
            continue
        top = heap[0][2]
        seg_end = ends[top] if i >= count else min(ends[top], starts[i] - 1)
        if seg_item and seg_item[-1] == top and seg_ends[-1] + 1 == point:
            seg_ends[-1] = seg_end  # the same winner again after a larger range started: one segment
        else:
            seg_starts.append(point)
            seg_ends.append(seg_end)
            seg_item.append(top)
        point = seg_end + 1
    return seg_starts, seg_ends, seg_item


class RangeTable(Generic[V]):
    """Ranges of one address family, answering :meth:`find` in one bisect.

    ``starts``/``ends``/``values`` are the ranges as given (sorted); the segment arrays are the disjoint
    flattening used for search, identical to the ranges themselves when none overlap.
    """

    __slots__ = ("_seg_ends", "_seg_item", "_seg_starts", "ends", "starts", "values", "version")

    def __init__(
        self,
        version: int,
        starts: Sequence[int],
        ends: Sequence[int],
        values: list[V],
        seg_starts: Sequence[int],
        seg_ends: Sequence[int],
        seg_item: Sequence[int] | None,
    ) -> None:
        self.version = version
        self.starts = starts
        self.ends = ends
        self.values = values
        self._seg_starts = seg_starts
        self._seg_ends = seg_ends
        self._seg_item = seg_item

    def __len__(self) -> int:
        return len(self.values)

    @property
    def segments(self) -> int:
        """How many disjoint segments the search runs over (≥ ranges when ranges nest)."""
        return len(self._seg_starts)

    def find(self, value: int) -> int:
        """Index of the most specific range containing ``value``, or -1 when none does."""
        i = bisect_right(self._seg_starts, value) - 1
        if i < 0 or value > self._seg_ends[i]:
            return -1
        return i if self._seg_item is None else self._seg_item[i]

    def match(self, value: int) -> Match[V] | None:
        """The most specific range containing ``value`` with its value, or None."""
        i = bisect_right(self._seg_starts, value) - 1
        if i < 0 or value > self._seg_ends[i]:
            return None
        index = i if self._seg_item is None else self._seg_item[i]
        return Match(self.values[index], self, index)

    def prefixlen(self, index: int, value: int) -> int:
        """Length of the largest prefix around ``value`` inside range ``index``."""
        return largest_prefix(self.starts[index], self.ends[index], value, BITS[self.version])


class Match(NamedTuple, Generic[V]):
    """A range found for an address: its value, and enough to name its prefix only when asked.

    The prefix is computed only when asked (:meth:`prefixlen`), for the sources whose network the
    enricher may report.
    """

    value: V
    table: RangeTable[V]
    position: int  # of the range in the table's arrays

    def prefixlen(self, value: int) -> int:
        """Length of the largest prefix around address ``value`` inside the range."""
        return self.table.prefixlen(self.position, value)


def empty_table(version: int) -> RangeTable[V]:
    """A table with no ranges, for a family a source has no data for."""
    return RangeBuilder[V](version).build()
