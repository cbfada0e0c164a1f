"""MaxMind-format (MMDB) databases: origin AS and geolocation country, via the ``maxminddb`` reader.

The same binary format is published by several vendors with slightly different records; the flavour is
detected from the database's metadata (``database_type``) and, when that names nothing known, from the
fields of its first records:

====================================== ============================================= ======================
flavour (``database_type`` contains)   fields read                                   gives
====================================== ============================================= ======================
GeoLite2-ASN, GeoIP2-ISP, DBIP-ASN-…   ``autonomous_system_number``,                 asn, as_name
                                       ``autonomous_system_organization``
GeoLite2-Country/City, DBIP-Country-…  ``country.iso_code``,                         country,
DBIP-City-…, GeoIP2-Enterprise         ``registered_country.iso_code``               registered_country
IPinfo Lite (``ipinfo``)               ``asn`` ("AS64496"), ``as_name``,             asn, as_name, country
                                       ``country_code``
====================================== ============================================= ======================

DB-IP's Lite databases use GeoLite2's field names, so they need no case of their own. The C extension
(``MODE_MMAP_EXT``) is used when it is installed, the pure-Python reader otherwise (``MODE_AUTO``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from cleartext.enrich.errors import EnrichError

SAMPLE_RECORDS = 64  # records inspected when the database type names no known flavour
_DATA_SECTION_SEPARATOR = 16  # bytes of zeros between the search tree and the data section


class MmdbHit(NamedTuple):
    """What one database says about an address. ``prefixlen`` is that of the record's network.

    A NamedTuple rather than a dataclass: one is built per lookup, and tuples are the cheapest.
    """

    asn: int | None
    as_name: str | None
    country: str | None  # geolocation country, upper-case ISO 3166-1 alpha-2
    registered_country: str | None  # country the block is registered to (MaxMind's registered_country)
    prefixlen: int


class MmdbReader:
    """One open MMDB database. Close it (or use ``with``) to release the memory map."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        try:
            self._reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
        except OSError as exc:
            raise EnrichError(path, f"cannot read: {exc.strerror or exc}") from None
        except (InvalidDatabaseError, ValueError, TypeError, UnicodeDecodeError):
            # The reader's own message repeats the path; what it means is that no valid metadata
            # section ends the file.
            raise EnrichError(path, "not a MaxMind DB (MMDB) file, or a truncated one") from None
        try:
            meta = self._reader.metadata()
            self.database_type = str(meta.database_type)
            self.ip_version = int(meta.ip_version)
            tree_size = int(meta.node_count) * int(meta.record_size) // 4
            if os.path.getsize(path) < tree_size + _DATA_SECTION_SEPARATOR:
                raise EnrichError(path, "truncated MMDB file: smaller than its search tree")
            self.flavour = _flavour(self.database_type) or self._sampled_flavour()
            self._probe()
        except EnrichError:
            self.close()
            raise
        except (InvalidDatabaseError, OSError, ValueError, TypeError, AttributeError) as exc:
            self.close()
            raise EnrichError(path, f"damaged MMDB file: {exc}") from None
        self.gives_asn = self.flavour in ("asn", "ipinfo", "fields")
        self.gives_country = self.flavour in ("country", "ipinfo", "fields")
        # GeoLite2-shaped databases are read by a specialised extractor: a lookup's budget is a few µs.
        self._extract = {"asn": _extract_asn, "country": _extract_country}.get(self.flavour, _extract)

    @property
    def extension(self) -> bool:
        """True when the C extension serves the lookups."""
        return type(self._reader).__module__ == "maxminddb.extension"

    def lookup(self, address: str, version: int) -> MmdbHit | None:
        """What the database holds for ``address`` (canonical text, of IP ``version``), or None."""
        if version == 6 and self.ip_version == 4:
            return None  # an IPv4-only database says nothing about IPv6 addresses
        try:
            record, prefixlen = self._reader.get_with_prefix_len(address)
        except (InvalidDatabaseError, ValueError) as exc:  # ValueError: undecodable strings
            raise EnrichError(self.path, f"damaged MMDB file: {exc}") from None
        if record.__class__ is not dict:
            return None
        return self._extract(record, prefixlen)

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> MmdbReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sampled_flavour(self) -> str:
        """Flavour from the first records' fields, for a database whose type names nothing known."""
        for count, (_network, record) in enumerate(self._reader):
            if isinstance(record, dict) and _extract(record, 0) != _NOTHING:
                return "fields"
            if count >= SAMPLE_RECORDS:
                break
        raise EnrichError(
            self.path,
            f"MMDB database type {self.database_type!r} has no AS or country fields this reader knows "
            "(GeoLite2-ASN/Country/City, DB-IP Lite, IPinfo Lite)",
        )

    def _probe(self) -> None:
        """Walk the tree once, so a database damaged past its metadata fails now, not mid-run."""
        self._reader.get_with_prefix_len("0.0.0.0" if self.ip_version == 4 else "::")


def _flavour(database_type: str) -> str | None:
    kind = database_type.lower()
    if "ipinfo" in kind:
        return "ipinfo"
    if "asn" in kind or "isp" in kind:
        return "asn"
    if "country" in kind or "city" in kind or "enterprise" in kind:
        return "country"
    return None


def _extract(record: dict[str, Any], prefixlen: int) -> MmdbHit:
    """Read whichever vendor's fields the record has; a field of the wrong type is left empty."""
    asn: int | None = None
    as_name: Any = record.get("autonomous_system_organization")
    number = record.get("autonomous_system_number")
    if isinstance(number, int) and not isinstance(number, bool):
        asn = number
    else:
        tagged = record.get("asn")  # IPinfo: "AS64496"
        if isinstance(tagged, str) and tagged[:2].upper() == "AS" and tagged[2:].isdigit():
            asn = int(tagged[2:])
            as_name = record.get("as_name")
    country = record.get("country")
    # MaxMind and DB-IP nest the code; IPinfo has a flat "country_code" ("country" is the name).
    code = country.get("iso_code") if isinstance(country, dict) else record.get("country_code")
    registered = record.get("registered_country")
    return MmdbHit(
        asn if asn is not None and 0 < asn < 1 << 32 else None,
        as_name if asn is not None and isinstance(as_name, str) and as_name else None,
        _iso(code),
        _iso(registered.get("iso_code") if isinstance(registered, dict) else None),
        prefixlen,
    )


def _extract_asn(record: dict[str, Any], prefixlen: int) -> MmdbHit:
    """GeoLite2-ASN, DB-IP ASN Lite, GeoIP2-ISP: the two autonomous_system fields only."""
    asn = record.get("autonomous_system_number")
    if asn.__class__ is not int or not 0 < asn < 1 << 32:
        return MmdbHit(None, None, None, None, prefixlen)
    name = record.get("autonomous_system_organization")
    return MmdbHit(asn, name if name.__class__ is str and name else None, None, None, prefixlen)


def _extract_country(record: dict[str, Any], prefixlen: int) -> MmdbHit:
    """GeoLite2-Country/City, DB-IP Country/City Lite: the two nested iso_code fields only."""
    country = record.get("country")
    registered = record.get("registered_country")
    return MmdbHit(
        None,
        None,
        _iso(country.get("iso_code")) if country.__class__ is dict else None,
        _iso(registered.get("iso_code")) if registered.__class__ is dict else None,
        prefixlen,
    )


def _iso(code: object) -> str | None:
    if isinstance(code, str) and len(code) == 2 and code.isalpha():
        return code.upper()
    return None


_NOTHING = MmdbHit(None, None, None, None, 0)
