"""RIR delegation statistics: which registry delegated an address block, and to a holder in which country.

The five RIRs publish ``delegated-<rir>-extended-latest`` (and the older non-extended
``delegated-<rir>-latest``) daily; several files, one per RIR, can be given together. Lines are
``|``-separated::

    2|ripencc|20240101|54321|19830705|20240101|+0100          version line
    ripencc|*|ipv4|*|123|summary                               summary lines
    registry|cc|type|start|value|date|status[|opaque-id[|...]] records

For ``ipv4`` the value is a *count of addresses*, which need not be a power of two (the block need not be
a CIDR prefix); for ``ipv6`` it is a prefix length. ``asn`` records are read past. The status is one of
allocated, assigned, available, reserved: only allocated and assigned blocks have a holder, so only they
give a ``registry_country``; available and reserved space still names the registry that manages it.
``ZZ`` or an empty cc means "no country".

This country is where the registry says the *holder* is — not where the address is used (that is the
geolocation ``country`` from MMDB databases); reports must say which one they show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import Match, RangeBuilder, RangeTable, parse_bound
from cleartext.enrich.textfile import open_text

REGISTRIES = frozenset({"afrinic", "apnic", "arin", "lacnic", "ripencc"})
STATUSES = frozenset({"allocated", "assigned", "available", "reserved"})
HELD = frozenset({"allocated", "assigned"})


@dataclass(frozen=True, slots=True)
class Delegation:
    """What one record says about its block; shared by blocks with the same registry, cc and status."""

    registry: str
    country: str | None  # upper-case ISO 3166-1 alpha-2 of the holder; None unless allocated/assigned
    status: str
    source: str  # file name, for provenance


class RirReader:
    """Delegated blocks from one or more RIR statistics files; :meth:`match` finds an address's block.

    Blocks of different RIRs do not overlap in practice; if files do overlap (an old and a new file of
    the same RIR), the smaller block wins, and on identical blocks the file given first.
    """

    def __init__(self, tables: dict[int, RangeTable[Delegation]], names: tuple[str, ...]) -> None:
        self.tables = tables
        self.names = names

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> RirReader:
        """Load every file; raises EnrichError naming the file and line of the first bad record."""
        builders = {4: RangeBuilder[Delegation](4), 6: RangeBuilder[Delegation](6)}
        shared: dict[tuple[str, str | None, str, str], Delegation] = {}
        for path in paths:
            _load(path, builders, shared)
        return cls({v: b.build() for v, b in builders.items()}, tuple(p.name for p in paths))

    def match(self, version: int, value: int) -> Match[Delegation] | None:
        """The delegated block containing the address, or None when no file covers it."""
        return self.tables[version].match(value)

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables.values())


def _load(
    path: Path,
    builders: dict[int, RangeBuilder[Delegation]],
    shared: dict[tuple[str, str | None, str, str], Delegation],
) -> None:
    source = path.name
    seen = 0
    with open_text(path) as handle:
        for number, line in enumerate(handle, 1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            parts = text.split("|")
            if parts[0][:1].isdigit() and len(parts) >= 6:
                seen += 1  # version line: version|registry|serial|records|startdate|enddate|UTCoffset
                continue
            if len(parts) >= 6 and parts[5] == "summary":
                seen += 1
                continue
            if len(parts) < 7:
                raise EnrichError(
                    path,
                    "not an RIR statistics record (registry|cc|type|start|value|date|status): "
                    f"{len(parts)} fields",
                    number,
                )
            seen += 1
            registry, cc, kind, start_text, value_text, _date, status = (p.strip() for p in parts[:7])
            registry = registry.lower()
            if registry not in REGISTRIES:
                raise EnrichError(path, f"unknown registry {registry!r}", number)
            if kind == "asn":
                continue
            if kind not in ("ipv4", "ipv6"):
                raise EnrichError(path, f"unknown record type {kind!r}", number)
            status = status.lower()
            if status not in STATUSES:
                raise EnrichError(path, f"unknown status {status!r}", number)
            country = cc.upper()
            if country and not (len(country) == 2 and country.isalpha()):
                raise EnrichError(path, f"bad country code {cc!r}", number)
            version, start, end = _block(path, number, kind, start_text, value_text)
            key = (
                registry,
                country if status in HELD and country not in ("", "ZZ") else None,
                status,
                source,
            )
            delegation = shared.get(key)
            if delegation is None:
                delegation = shared[key] = Delegation(*key)
            builders[version].add(start, end, delegation)
    if not seen:
        raise EnrichError(path, "no delegations: not an RIR delegated statistics file")


def _block(path: Path, number: int, kind: str, start_text: str, value_text: str) -> tuple[int, int, int]:
    """``(version, start, end)`` of a record: ipv4 value = address count, ipv6 value = prefix length."""
    try:
        version, start = parse_bound(start_text)
        value = int(value_text)
    except ValueError:
        raise EnrichError(path, f"bad {kind} block {start_text!r} value {value_text!r}", number) from None
    if kind == "ipv4":
        if version != 4 or value < 1 or start + value > 1 << 32:
            raise EnrichError(path, f"bad ipv4 block {start_text} count {value_text}", number)
        return 4, start, start + value - 1
    if version != 6 or not 0 <= value <= 128 or start & ((1 << (128 - value)) - 1):
        raise EnrichError(path, f"bad ipv6 block {start_text}/{value_text}", number)
    return 6, start, start + (1 << (128 - value)) - 1
