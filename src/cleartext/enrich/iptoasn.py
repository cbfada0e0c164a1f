"""iptoasn.com-style TSV: which AS announces each address range, from a file the operator downloaded.

One line per range, five tab-separated columns::

    range_start  range_end  AS_number  country_code  AS_description

IPv4 and IPv6 files (``ip2asn-v4.tsv``, ``ip2asn-v6.tsv``, the combined file, gzip or not) and the
``-u32`` variant whose IPv4 bounds are plain integers are all accepted. AS 0 marks space that is "Not
routed": such ranges are skipped, so the address gets no ASN rather than a made-up one. The country
column is the country the *AS* is registered in (not a geolocation, not the address block's
delegation); the enricher uses it only as the last fallback for ``registry_country``.

The ranges are loaded into sorted integer arrays (:mod:`cleartext.enrich.ranges`) and looked up by
bisect; nothing else of the file is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import Match, RangeBuilder, RangeTable, parse_bound
from cleartext.enrich.textfile import open_text

COLUMNS = "range_start, range_end, AS_number, country_code, AS_description"
MAX_ASN = 2**32 - 1


@dataclass(frozen=True, slots=True)
class AsRoute:
    """What one iptoasn line says about its range. Shared by all ranges with the same AS and file."""

    asn: int
    as_name: str | None
    country: str | None  # the AS's registration country, upper-case ISO 3166-1 alpha-2
    source: str  # file name, for provenance


class IptoasnReader:
    """Routed ranges from one or more iptoasn TSV files; :meth:`match` finds the route of an address.

    When files overlap, the most specific range wins, and on identical ranges the file given first.
    """

    def __init__(self, tables: dict[int, RangeTable[AsRoute]], names: tuple[str, ...]) -> None:
        self.tables = tables
        self.names = names

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> IptoasnReader:
        """Load every file; raises EnrichError naming the file and line of the first bad line."""
        builders = {4: RangeBuilder[AsRoute](4), 6: RangeBuilder[AsRoute](6)}
        routes: dict[tuple[int, str | None, str | None, str], AsRoute] = {}
        for path in paths:
            _load(path, builders, routes)
        return cls({v: b.build() for v, b in builders.items()}, tuple(p.name for p in paths))

    def match(self, version: int, value: int) -> Match[AsRoute] | None:
        """The routed range containing the address, or None (not in any file, or not routed)."""
        return self.tables[version].match(value)

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables.values())


def _load(
    path: Path,
    builders: dict[int, RangeBuilder[AsRoute]],
    routes: dict[tuple[int, str | None, str | None, str], AsRoute],
) -> None:
    source = path.name
    lines = 0
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 5:
                raise EnrichError(
                    path, f"expected 5 tab-separated columns ({COLUMNS}), found {len(parts)}", number
                )
            lines += 1
            version, start, end = _range(path, number, parts[0], parts[1])
            try:
                asn = int(parts[2])
            except ValueError:
                asn = -1
            if not 0 <= asn <= MAX_ASN:
                raise EnrichError(path, f"AS_number is not an AS number: {parts[2]!r}", number)
            if asn == 0:
                continue  # "Not routed": no origin AS to report
            country = parts[3].strip().upper()
            key = (
                asn,
                parts[4].strip() or None,
                country if len(country) == 2 and country.isalpha() and country != "ZZ" else None,
                source,
            )
            route = routes.get(key)
            if route is None:
                route = routes[key] = AsRoute(*key)
            builders[version].add(start, end, route)
    if not lines:
        raise EnrichError(path, f"no ranges: not an iptoasn TSV file ({COLUMNS})")


def _range(path: Path, number: int, first: str, last: str) -> tuple[int, int, int]:
    """``(version, start, end)`` of a line's bounds: addresses, or integers in the -u32 variant."""
    try:
        if first.isdigit() and last.isdigit():
            version, start, end = 4, int(first), int(last)
            if end >= 1 << 32:
                raise ValueError
        else:
            version, start = parse_bound(first)
            end_version, end = parse_bound(last)
            if end_version != version:
                raise EnrichError(path, f"range mixes IPv4 and IPv6: {first} - {last}", number)
    except ValueError:
        raise EnrichError(path, f"bad range bounds {first!r} - {last!r}", number) from None
    if start > end:
        raise EnrichError(path, f"range start after its end: {first} - {last}", number)
    return version, start, end
