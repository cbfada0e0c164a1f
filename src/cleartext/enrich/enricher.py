"""The Enricher: one :class:`Attribution` per address, merged from every data file the operator gave.

Each field has one documented order of sources; the first source that *has* the address fills it, and a
source that lacks the address leaves the field to the next one — or empty. Nothing is inferred.

========================= ====================================================================
field                     sources, first that covers the address wins
========================= ====================================================================
``asn``, ``as_name``      MMDB ASN databases (in the order given), then iptoasn TSV
                          (``as_name`` always comes with the ``asn`` it names)
``country``               MMDB country/city databases: *geolocation*, where the address is used
``registry_country``      RIR delegation statistics, then an MMDB's ``registered_country``, then
                          iptoasn's country of the AS: *registration*, where the holder is
``registry``              RIR delegation statistics
``network``               the prefix of the route that gave ``asn``; without one, the most specific
                          prefix among the other sources that contributed
``abuse_contacts``        contacts CSV (most specific ``cidr`` row, then the ``asn`` row), then RPSL
                          (most specific inet(6)num with a contact, then the origin AS's aut-num)
``cert``                  contacts CSV ``country`` row for: the country named on the owner's CSV row,
                          else ``registry_country``, else ``country``
``sources``               the file names that filled at least one of the fields above
========================= ====================================================================

A lookup is a handful of bisects and at most one MMDB tree walk per database; results are kept in an
LRU cache, since scan records repeat each address once per port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from cleartext.enrich.contacts import ContactsReader
from cleartext.enrich.iptoasn import IptoasnReader
from cleartext.enrich.mmdb import MmdbReader
from cleartext.enrich.model import Attribution
from cleartext.enrich.ranges import address_text, parse_address, prefix_text
from cleartext.enrich.rir import RirReader
from cleartext.enrich.rpsl import RpslReader

DEFAULT_CACHE_SIZE = 1 << 16
R = TypeVar("R", IptoasnReader, RirReader, RpslReader, ContactsReader)


class Enricher:
    """Attribute addresses from already-loaded readers; see :meth:`from_paths` to load files."""

    def __init__(
        self,
        *,
        mmdb: Sequence[MmdbReader] = (),
        iptoasn: IptoasnReader | None = None,
        rir: RirReader | None = None,
        rpsl: RpslReader | None = None,
        contacts: ContactsReader | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.mmdb = tuple(mmdb)
        self.iptoasn = iptoasn
        self.rir = rir
        self.rpsl = rpsl
        self.contacts = contacts
        self._iptoasn = iptoasn.tables if iptoasn is not None else None
        self._rir = rir.tables if rir is not None else None
        self._lookup: Any = lru_cache(maxsize=cache_size)(self._attribute) if cache_size else self._attribute

    @classmethod
    def from_paths(
        cls,
        *,
        mmdb: Iterable[str | Path] = (),
        iptoasn: Iterable[str | Path] = (),
        rir: Iterable[str | Path] = (),
        rpsl: Iterable[str | Path] = (),
        contacts: Iterable[str | Path] = (),
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Enricher:
        """Open and load every file; the first unusable one raises EnrichError (one line, naming it).

        Within a kind, files are listed in precedence order: the first MMDB that has an address's AS
        wins, and so on.
        """
        opened: list[MmdbReader] = []
        try:
            for path in mmdb:
                opened.append(MmdbReader(Path(path)))
            return cls(
                mmdb=opened,
                iptoasn=_load(IptoasnReader, iptoasn),
                rir=_load(RirReader, rir),
                rpsl=_load(RpslReader, rpsl),
                contacts=_load(ContactsReader, contacts),
                cache_size=cache_size,
            )
        except BaseException:
            for db in opened:
                db.close()
            raise

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of every file loaded, in precedence order within each kind."""
        names: list[str] = [db.name for db in self.mmdb]
        for reader in (self.iptoasn, self.rir, self.rpsl, self.contacts):
            if reader is not None:
                names.extend(reader.names)
        return tuple(names)

    def lookup(self, address: str) -> Attribution:
        """The attribution of one address (IPv4 or IPv6 text). Raises ValueError for anything else."""
        result: Attribution = self._lookup(address)
        return result

    def lookup_many(self, addresses: Iterable[str]) -> list[Attribution]:
        """Attributions in the order given; a repeated address is looked up once."""
        done: dict[str, Attribution] = {}
        results: list[Attribution] = []
        lookup = self._lookup
        for address in addresses:
            found = done.get(address)
            if found is None:
                found = done[address] = lookup(address)
            results.append(found)
        return results

    def cache_clear(self) -> None:
        if hasattr(self._lookup, "cache_clear"):
            self._lookup.cache_clear()

    def close(self) -> None:
        for db in self.mmdb:
            db.close()

    def __enter__(self) -> Enricher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _attribute(self, address: str) -> Attribution:
        """One uncached lookup, written for speed: plain locals, table indexes instead of objects.

        Every source is a bisect or one MMDB tree walk; what is left is bookkeeping, which is why
        this method avoids per-lookup objects (matches, dicts) and builds the frozen Attribution
        through :func:`_attribution`.
        """
        version, value = parse_address(address)
        if version == 4 and ":" in address:
            address = address_text(4, value)  # IPv4-mapped: the databases index it as IPv4
        asn: int | None = None
        as_name = country = registered = registry = registry_country = network = None
        asn_source = country_source = registered_source = registry_source = cc_source = None
        registered_len = -1
        best_len = -1  # the most specific prefix among the contributing sources other than the AS's

        for db in self.mmdb:
            hit = db.lookup(address, version)
            if hit is None:
                continue
            if asn is None and hit.asn is not None:
                asn, as_name, asn_source = hit.asn, hit.as_name, db.name
                network = prefix_text(version, value, hit.prefixlen)
            if country is None and hit.country is not None:
                country, country_source = hit.country, db.name
                best_len = max(best_len, hit.prefixlen)
            if registered is None and hit.registered_country is not None:
                registered, registered_source, registered_len = hit.registered_country, db.name, hit.prefixlen

        as_country = as_country_source = None
        if self._iptoasn is not None:
            table = self._iptoasn[version]
            index = table.find(value)
            if index >= 0:
                route = table.values[index]
                if asn is None:
                    asn, as_name, asn_source = route.asn, route.as_name, route.source
                    network = prefix_text(version, value, table.prefixlen(index, value))
                as_country, as_country_source = route.country, route.source

        if self._rir is not None:
            table_rir = self._rir[version]
            index = table_rir.find(value)
            if index >= 0:
                block = table_rir.values[index]
                registry, registry_source = block.registry, block.source
                registry_country = block.country
                if registry_country is not None:
                    cc_source = block.source
                if network is None:
                    best_len = max(best_len, table_rir.prefixlen(index, value))
        if registry_country is None:
            if registered is not None:
                registry_country, cc_source = registered, registered_source
                best_len = max(best_len, registered_len)
            elif as_country is not None:
                registry_country, cc_source = as_country, as_country_source

        abuse: tuple[str, ...] = ()
        abuse_sources: tuple[str, ...] = ()
        cert_country: str | None = None
        contacts = self.contacts
        if contacts is not None:
            table_cidr = contacts.tables[version]
            index = table_cidr.find(value)
            owner = table_cidr.values[index] if index >= 0 else None
            if owner is None and asn is not None:
                owner = contacts.asns.get(asn)
            if owner is not None:
                abuse, abuse_sources, cert_country = owner.mailboxes, (owner.source,), owner.country
        if not abuse and self.rpsl is not None:
            table_rpsl = self.rpsl.tables[version]
            index = table_rpsl.find(value)
            if index >= 0:
                found = table_rpsl.values[index]
                abuse, abuse_sources = found.mailboxes, found.sources
                if network is None:
                    best_len = max(best_len, table_rpsl.prefixlen(index, value))
            elif asn is not None and (autnum := self.rpsl.asns.get(asn)) is not None:
                abuse, abuse_sources = autnum.mailboxes, autnum.sources

        cert = cert_source = None
        if contacts is not None and contacts.certs:
            chosen = cert_country or registry_country or country
            cert_row = contacts.certs.get(chosen) if chosen is not None else None
            if cert_row is not None:
                cert, cert_source = cert_row.mailbox, cert_row.source

        if network is None and best_len >= 0:
            network = prefix_text(version, value, best_len)
        # Provenance, in field order, without duplicates (a few comparisons beat a dict here).
        sources: list[str] = []
        for name in (asn_source, country_source, registry_source, cc_source, *abuse_sources, cert_source):
            if name is not None and name not in sources:
                sources.append(name)
        return _attribution(
            asn,
            as_name,
            country,
            registry_country,
            registry,
            network,
            abuse,
            cert,
            tuple(sources),
        )


# A frozen slotted dataclass's __init__ sets each field through object.__setattr__, about 2 µs for
# Attribution — a third of an uncached lookup. Writing the slots through their descriptors builds the
# same object (equal, same hash, same repr) in a quarter of the time. Used only while the field list is
# the one this module fills; otherwise the ordinary constructor.
_FIELDS = (
    "asn",
    "as_name",
    "country",
    "registry_country",
    "registry",
    "network",
    "abuse_contacts",
    "cert",
    "sources",
)


def _attribution_fast(
    asn: int | None,
    as_name: str | None,
    country: str | None,
    registry_country: str | None,
    registry: str | None,
    network: str | None,
    abuse_contacts: tuple[str, ...],
    cert: str | None,
    sources: tuple[str, ...],
) -> Attribution:
    obj = _new(Attribution)
    (
        set_asn,
        set_as_name,
        set_country,
        set_registry_country,
        set_registry,
        set_network,
        set_abuse_contacts,
        set_cert,
        set_sources,
    ) = _SETTERS
    set_asn(obj, asn)
    set_as_name(obj, as_name)
    set_country(obj, country)
    set_registry_country(obj, registry_country)
    set_registry(obj, registry)
    set_network(obj, network)
    set_abuse_contacts(obj, abuse_contacts)
    set_cert(obj, cert)
    set_sources(obj, sources)
    return obj


if tuple(f.name for f in fields(Attribution)) == _FIELDS and hasattr(Attribution, "__slots__"):
    _new = object.__new__
    _SETTERS = tuple(getattr(Attribution, name).__set__ for name in _FIELDS)
    _attribution: Callable[..., Attribution] = _attribution_fast
else:  # pragma: no cover - the model changed; stay correct, if slower
    _attribution = Attribution


def _load(reader: type[R], paths: Iterable[str | Path]) -> R | None:
    """All files of one kind in one reader (one table), or None when none were given."""
    files = [Path(p) for p in paths]
    return reader.from_paths(files) if files else None
