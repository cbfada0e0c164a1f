"""The operator's own contacts CSV: whom to tell, when the operator knows better than the public data.

A CSV file with a header row naming at least ``kind``, ``key`` and ``contact`` (any order, any case;
``country`` optional; other columns, e.g. a note, are ignored). Blank lines and lines starting with
``#`` are skipped. Each row is one of:

============ ======================================= ==============================================
kind         key                                     contact
============ ======================================= ==============================================
``cidr``     a prefix, ``192.0.2.0/24`` or an address the owner's abuse mailbox
``asn``      ``64496`` or ``AS64496``                the abuse mailbox for everything that AS routes
``country``  ISO 3166-1 alpha-2 code, ``NL``          the national CERT's mailbox for that country
============ ======================================= ==============================================

On ``cidr`` and ``asn`` rows the optional ``country`` column names the country whose CERT should hear
about that owner, when it differs from the registry's; on ``country`` rows it must be empty or equal the
key. Several rows with the same ``cidr`` or ``asn`` key add mailboxes; a second row for the same
``country`` is an error, because a record has one CERT.

Precedence, for the owner's contact: the most specific ``cidr`` row, then the ``asn`` row of the
address's origin AS — and either replaces what the public RPSL data says (the operator's list is a
deliberate override). ``country`` rows only ever fill ``cert``.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import Match, RangeBuilder, RangeTable
from cleartext.enrich.textfile import open_text

KINDS = ("cidr", "asn", "country")
_ASN = re.compile(r"(?:AS)?(\d{1,10})", re.IGNORECASE)
_MAILBOX = re.compile(r"[^\s@,;<>]+@[^\s@,;<>]+\.[^\s@,;<>]+")


@dataclass(frozen=True, slots=True)
class OwnerContact:
    """The mailboxes of one ``cidr`` or ``asn`` key, and the CERT country the operator chose, if any."""

    mailboxes: tuple[str, ...]
    country: str | None
    source: str


@dataclass(frozen=True, slots=True)
class CertContact:
    mailbox: str
    source: str


class ContactsReader:
    """Owner and CERT contacts from one or more CSV files.

    Rows for the same ``cidr`` or ``asn`` key, in one file or several, add their mailboxes in the order
    given; the first row that names a ``country`` sets the CERT country for that key.
    """

    def __init__(
        self,
        tables: dict[int, RangeTable[OwnerContact]],
        asns: dict[int, OwnerContact],
        certs: dict[str, CertContact],
        names: tuple[str, ...],
    ) -> None:
        self.tables = tables
        self.asns = asns
        self.certs = certs
        self.names = names

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> ContactsReader:
        """Load every file; raises EnrichError naming the file and line of the first bad row."""
        rows = _Rows()
        for path in paths:
            rows.load(path)
        return rows.finish(tuple(p.name for p in paths))

    def match(self, version: int, value: int) -> Match[OwnerContact] | None:
        """The most specific ``cidr`` row containing the address."""
        return self.tables[version].match(value)

    def asn_contact(self, asn: int) -> OwnerContact | None:
        return self.asns.get(asn)

    def cert(self, country: str) -> CertContact | None:
        return self.certs.get(country)

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables.values()) + len(self.asns) + len(self.certs)


class _Rows:
    """Rows gathered over all files; repeated keys of one file merge into one contact."""

    def __init__(self) -> None:
        self.number = 0  # line being parsed, for error messages
        # key -> [mailboxes, chosen CERT country or None, file name of the first row]
        self.cidrs: dict[tuple[int, int, int], tuple[list[str], list[str | None], str]] = {}
        self.asns: dict[int, tuple[list[str], list[str | None], str]] = {}
        self.certs: dict[str, tuple[CertContact, int]] = {}

    def load(self, path: Path) -> None:
        try:
            self._load(path)
        except csv.Error as exc:  # e.g. a binary file's "field larger than field limit"
            raise EnrichError(path, f"not a CSV file: {exc}", self.number) from None

    def _load(self, path: Path) -> None:
        source = path.name
        with open_text(path, encoding="utf-8-sig") as handle:
            header: dict[str, int] | None = None
            for row in csv.reader(_numbered(handle, self)):
                number = self.number
                if header is None:
                    header = _header(path, number, row)
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                row = row + [""] * (len(header) - len(row))
                kind, key, contact = (row[header[c]].strip() for c in ("kind", "key", "contact"))
                country = row[header["country"]].strip().upper() if "country" in header else ""
                self._row(path, number, source, kind.lower(), key, contact, country)
            if header is None:
                raise EnrichError(path, "empty: expected a header row 'kind,key,contact,country'")

    def _row(
        self, path: Path, number: int, source: str, kind: str, key: str, contact: str, country: str
    ) -> None:
        if kind not in KINDS:
            raise EnrichError(path, f"unknown kind {kind!r} (expected cidr, asn or country)", number)
        if not _MAILBOX.fullmatch(contact):
            raise EnrichError(path, f"contact is not a mailbox: {contact!r}", number)
        if country and not (len(country) == 2 and country.isalpha()):
            raise EnrichError(path, f"bad country code {country!r}", number)
        if kind == "country":
            code = key.upper()
            if not (len(code) == 2 and code.isalpha()) or (country and country != code):
                raise EnrichError(path, f"bad country key {key!r} (expected an ISO code like NL)", number)
            if code in self.certs:
                earlier, line = self.certs[code]
                raise EnrichError(
                    path, f"second CERT contact for {code} (first in {earlier.source} line {line})", number
                )
            self.certs[code] = (CertContact(contact, source), number)
            return
        entry: tuple[list[str], list[str | None], str]
        if kind == "asn":
            found = _ASN.fullmatch(key)
            if found is None or int(found[1]) >= 1 << 32:
                raise EnrichError(path, f"bad asn key {key!r} (expected 64496 or AS64496)", number)
            entry = self.asns.setdefault(int(found[1]), ([], [None], source))
        else:
            try:
                network = ipaddress.ip_network(key)
            except ValueError:
                raise EnrichError(
                    path, f"bad cidr key {key!r} (expected e.g. 192.0.2.0/24)", number
                ) from None
            first = int(network.network_address)
            last = int(network.broadcast_address)
            entry = self.cidrs.setdefault((network.version, first, last), ([], [None], source))
        entry[0].append(contact)
        if country and entry[1][0] is None:
            entry[1][0] = country

    def finish(self, names: tuple[str, ...]) -> ContactsReader:
        builders = {4: RangeBuilder[OwnerContact](4), 6: RangeBuilder[OwnerContact](6)}
        for (version, start, end), (mailboxes, country, source) in self.cidrs.items():
            builders[version].add(start, end, OwnerContact(_unique(mailboxes), country[0], source))
        asns = {
            asn: OwnerContact(_unique(mailboxes), country[0], source)
            for asn, (mailboxes, country, source) in self.asns.items()
        }
        certs = {code: cert for code, (cert, _) in self.certs.items()}
        return ContactsReader({v: b.build() for v, b in builders.items()}, asns, certs, names)


def _numbered(lines: Iterator[str], rows: _Rows) -> Iterator[str]:
    """Skip comment lines, and keep the current line number for error messages."""
    for number, line in enumerate(lines, 1):
        rows.number = number
        if line.lstrip().startswith("#"):
            continue
        yield line


def _header(path: Path, number: int, row: list[str]) -> dict[str, int]:
    names = [cell.strip().lower() for cell in row]
    missing = [c for c in ("kind", "key", "contact") if c not in names]
    if missing:
        raise EnrichError(
            path,
            f"header lacks {', '.join(missing)}: expected 'kind,key,contact,country', "
            f"found {','.join(row)!r}",
            number,
        )
    return {name: names.index(name) for name in ("kind", "key", "contact", "country") if name in names}


def _unique(items: list[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return tuple(seen.values())
