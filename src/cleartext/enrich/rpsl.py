"""RPSL database dumps (RIPE-style split files): the abuse mailbox responsible for an address or an AS.

The public dumps hold one object per paragraph (objects are separated by blank lines); each line is
``attribute: value``, a line starting with a space, a tab or ``+`` continues the previous value, and
lines starting with ``%`` or ``#`` are comments, as is anything after ``#`` in a value. The class of an
object is its first attribute. This reader keeps only what finding an abuse contact needs:

- ``inetnum:`` (``a.b.c.d - e.f.g.h``, or a CIDR prefix) and ``inet6num:`` (a prefix): the address
  ranges, with their ``abuse-c:``, ``org:``, ``mnt-irt:`` and (legacy) ``abuse-mailbox:`` references;
- ``aut-num:`` (``AS64496``): the same references, for the fall-back by origin AS;
- ``role:`` / ``person:`` objects: ``nic-hdl:`` → ``abuse-mailbox:``;
- ``organisation:`` objects: their ``abuse-c:`` (and legacy ``abuse-mailbox:``);
- ``irt:`` objects: their ``abuse-mailbox:``.

An object's contact is resolved, first match wins: its own ``abuse-c`` role's mailbox; else its
organisation's ``abuse-c`` role (or the organisation's own mailbox); else its ``mnt-irt`` IRT's mailbox;
else an ``abuse-mailbox`` written on the object itself. References are resolved after *all* files are
read, since the split files put inetnums, roles and organisations in different files.

Like the RIPE Database's abuse-contact finder, the **most specific range that has a contact** wins: a
small assignment without any abuse reference defers to the allocation around it, rather than hiding it.

Memory: the dump is streamed; what stays is one integer range per inet(6)num with a contact (in compact
arrays), and small dicts of handle → mailbox — never the objects themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import Match, RangeBuilder, RangeTable, parse_bound
from cleartext.enrich.textfile import open_text

_REFS = frozenset({"abuse-c", "org", "mnt-irt", "abuse-mailbox"})
TRACKED: dict[str, frozenset[str]] = {
    "inetnum": _REFS | {"inetnum"},
    "inet6num": _REFS | {"inet6num"},
    "aut-num": _REFS | {"aut-num"},
    "role": frozenset({"nic-hdl", "abuse-mailbox"}),
    "person": frozenset({"nic-hdl", "abuse-mailbox"}),
    "organisation": frozenset({"organisation", "abuse-c", "abuse-mailbox"}),
    "irt": frozenset({"irt", "abuse-mailbox"}),
}
_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ASN = re.compile(r"AS(\d{1,10})", re.IGNORECASE)

# (abuse-c handles, org ids, mnt-irt names, own mailboxes, index of the file the object came from)
Ref = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], int]


@dataclass(frozen=True, slots=True)
class Contact:
    """The abuse mailboxes resolved for an object, and the files that took part in resolving them."""

    mailboxes: tuple[str, ...]
    sources: tuple[str, ...]


class RpslReader:
    """Abuse contacts from RPSL dumps: :meth:`match` by address, :meth:`asn_contact` by origin AS."""

    def __init__(
        self, tables: dict[int, RangeTable[Contact]], asns: dict[int, Contact], names: tuple[str, ...]
    ) -> None:
        self.tables = tables
        self.asns = asns
        self.names = names

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> RpslReader:
        """Stream every file, then resolve references across them; raises EnrichError on bad input."""
        state = _State([p.name for p in paths])
        for index, path in enumerate(paths):
            state.load(path, index)
        return state.finish()

    def match(self, version: int, value: int) -> Match[Contact] | None:
        """The most specific inetnum/inet6num containing the address that has an abuse contact."""
        return self.tables[version].match(value)

    def asn_contact(self, asn: int) -> Contact | None:
        """The abuse contact of the aut-num object of ``asn``, if the dumps have one."""
        return self.asns.get(asn)

    def __len__(self) -> int:
        return sum(len(t) for t in self.tables.values()) + len(self.asns)


class _State:
    """What survives the streaming of the dumps: ranges and AS numbers with references, handle dicts."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.refs: dict[Ref, int] = {}
        self.ranges = {4: RangeBuilder[int](4), 6: RangeBuilder[int](6)}
        self.asns: dict[int, int] = {}
        self.roles: dict[str, tuple[tuple[str, ...], int]] = {}
        self.irts: dict[str, tuple[tuple[str, ...], int]] = {}
        self.orgs: dict[str, tuple[tuple[str, ...], tuple[str, ...], int]] = {}

    def load(self, path: Path, file_index: int) -> None:
        objects = 0
        cls: str | None = None
        wanted: frozenset[str] | None = None
        attrs: dict[str, list[str]] = {}
        last: list[str] | None = None
        start = 0
        with open_text(path) as handle:
            for number, line in enumerate(handle, 1):
                if line.isspace():
                    if cls is not None and wanted is not None:
                        self._object(path, start, cls, attrs, file_index)
                    cls, wanted, attrs, last = None, None, {}, None
                    continue
                first = line[0]
                if first == "%" or first == "#":
                    continue
                if first in " \t+":
                    if cls is None:
                        raise EnrichError(path, "continuation line outside an object", number)
                    if last is not None:
                        last[-1] = f"{last[-1]} {_value(line[1:])}".strip()
                    continue
                colon = line.find(":")
                if cls is None:
                    if colon < 1 or not _ATTRIBUTE.fullmatch(line, 0, colon):
                        raise EnrichError(path, "not an RPSL object (expected 'attribute: value')", number)
                    cls = line[:colon].lower()
                    wanted = TRACKED.get(cls)
                    start = number
                    objects += 1
                elif colon < 1:
                    raise EnrichError(
                        path, "not an RPSL attribute line (expected 'attribute: value')", number
                    )
                if wanted is not None:
                    key = line[:colon].lower()
                    if key in wanted:
                        last = attrs.setdefault(key, [])
                        last.append(_value(line[colon + 1 :]))
                        continue
                last = None
        if cls is not None and wanted is not None:
            self._object(path, start, cls, attrs, file_index)
        if not objects:
            raise EnrichError(path, "no RPSL objects: not an RPSL database dump")

    def _object(self, path: Path, line: int, cls: str, attrs: dict[str, list[str]], file_index: int) -> None:
        if cls in ("inetnum", "inet6num"):
            version, start, end = _inetnum(path, line, cls, attrs[cls][0])
            self.ranges[version].add(start, end, self._ref(attrs, file_index))
        elif cls == "aut-num":
            found = _ASN.fullmatch(attrs["aut-num"][0])
            if found is None or int(found[1]) >= 1 << 32:
                raise EnrichError(path, f"bad aut-num {attrs['aut-num'][0]!r}", line)
            self.asns[int(found[1])] = self._ref(attrs, file_index)
        elif cls in ("role", "person"):
            mailboxes = _mailboxes(attrs.get("abuse-mailbox", ()))
            for handle in attrs.get("nic-hdl", ()):
                if mailboxes and handle:
                    self.roles[handle.upper()] = (mailboxes, file_index)
        elif cls == "irt":
            mailboxes = _mailboxes(attrs.get("abuse-mailbox", ()))
            if mailboxes:
                self.irts[attrs["irt"][0].upper()] = (mailboxes, file_index)
        elif cls == "organisation":
            abuse_c = _handles(attrs.get("abuse-c", ()))
            mailboxes = _mailboxes(attrs.get("abuse-mailbox", ()))
            if abuse_c or mailboxes:
                self.orgs[attrs["organisation"][0].upper()] = (abuse_c, mailboxes, file_index)

    def _ref(self, attrs: dict[str, list[str]], file_index: int) -> int:
        """Intern the object's references: far fewer distinct combinations than ranges."""
        ref = (
            _handles(attrs["abuse-c"]) if "abuse-c" in attrs else (),
            _handles(attrs["org"]) if "org" in attrs else (),
            _handles(attrs["mnt-irt"]) if "mnt-irt" in attrs else (),
            _mailboxes(attrs["abuse-mailbox"]) if "abuse-mailbox" in attrs else (),
            file_index,
        )
        found = self.refs.get(ref)
        if found is None:
            found = self.refs[ref] = len(self.refs)
        return found

    def _resolve(self, ref: Ref) -> Contact | None:
        abuse_c, orgs, irts, own, file_index = ref
        files = [file_index]
        mailboxes = self._roles(abuse_c, files)
        for org in orgs if not mailboxes else ():
            if org in self.orgs:
                org_abuse_c, org_mailboxes, org_file = self.orgs[org]
                files.append(org_file)
                mailboxes = self._roles(org_abuse_c, files) or org_mailboxes
                if mailboxes:
                    break
                files.pop()
        for irt in irts if not mailboxes else ():
            if irt in self.irts:
                mailboxes, irt_file = self.irts[irt]
                files.append(irt_file)
                break
        mailboxes = mailboxes or own
        if not mailboxes:
            return None
        return Contact(mailboxes, tuple(dict.fromkeys(self.names[i] for i in files)))

    def _roles(self, handles: tuple[str, ...], files: list[int]) -> tuple[str, ...]:
        found: list[str] = []
        for handle in handles:
            if handle in self.roles:
                mailboxes, role_file = self.roles[handle]
                found.extend(mailboxes)
                files.append(role_file)
        return _unique(found)

    def finish(self) -> RpslReader:
        resolved = [self._resolve(ref) for ref in self.refs]
        tables: dict[int, RangeTable[Contact]] = {}
        for version, raw in self.ranges.items():
            builder = RangeBuilder[Contact](version)
            for start, end, ref_id in zip(raw.starts, raw.ends, raw.values, strict=True):
                contact = resolved[ref_id]
                if contact is not None:  # ranges without a contact defer to the range around them
                    builder.add(start, end, contact)
            tables[version] = builder.build()
        asns = {asn: c for asn, ref_id in self.asns.items() if (c := resolved[ref_id]) is not None}
        return RpslReader(tables, asns, tuple(self.names))


def _value(text: str) -> str:
    """An attribute value without its end-of-line comment."""
    hash_at = text.find("#")
    return (text if hash_at < 0 else text[:hash_at]).strip()


def _handles(values: Iterable[str]) -> tuple[str, ...]:
    """Handles are case-insensitive in RPSL; several may share one line, comma- or space-separated."""
    return _unique(h.upper() for v in values for h in v.replace(",", " ").split())


def _mailboxes(values: Iterable[str]) -> tuple[str, ...]:
    """The values that look like a mailbox; anything else is not a contact and is not guessed at."""
    return _unique(v for v in values if "@" in v and " " not in v and not v.startswith("@"))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for item in items:
        seen.setdefault(item.lower(), item)
    return tuple(seen.values())


def _inetnum(path: Path, line: int, cls: str, text: str) -> tuple[int, int, int]:
    """``(version, start, end)`` of ``a.b.c.d - e.f.g.h`` (inetnum) or ``prefix/len`` (either class)."""
    try:
        if "/" in text:
            address, _, length = text.partition("/")
            version, start = parse_bound(address.strip())
            bits = 32 if version == 4 else 128
            prefixlen = int(length)
            if not 0 <= prefixlen <= bits or start & ((1 << (bits - prefixlen)) - 1):
                raise ValueError
            end = start + (1 << (bits - prefixlen)) - 1
        else:
            first, dash, last = text.partition("-")
            if not dash:
                raise ValueError
            version, start = parse_bound(first.strip())
            end_version, end = parse_bound(last.strip())
            if end_version != version or start > end:
                raise ValueError
    except ValueError:
        raise EnrichError(path, f"bad {cls} {text!r}", line) from None
    if (version == 6) != (cls == "inet6num"):
        raise EnrichError(path, f"bad {cls} {text!r}: wrong address family", line)
    return version, start, end
