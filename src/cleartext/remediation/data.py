"""The remediation data files, read once: what each file holds and the rules it must follow.

Why data: the advice is text for mail admins, and the people who fix it know Postfix or Exchange, not this
code. One TOML file per software (``dovecot.toml``, ...), ``generic.toml`` for every other server,
``domain.toml`` for the domain view, and ``common.toml`` for what they share; :mod:`.render` fills their
``{{name}}`` fields. A file holds:

* ``label``: the name the advice is given under ("Dovecot"); generic.toml also ``identified``, the first
  step when the product was recognised but has no file of its own.
* ``[text]``: named fragments, the same for every protocol. ``[protocols.imap]`` (``pop3``, ``smtp``):
  fragments whose words depend on the protocol. ``[references]``: documents, by name.
* one table per finding code, ``[cleartext-login]``: ``steps`` (a list), ``config`` (optional, a snippet)
  and ``refs`` (names from ``[references]`` or fragments that name one). ``[cleartext-login.smtp]``
  replaces any of those three for one protocol. ``[any]`` (gmail.toml) is the entry for every code
  that neither the file nor common.toml names.

common.toml also lists the files with their own advice (``software``, in the order docs/findings.md
shows them), the sentences with the commands for the host checked (``[site]``, see :mod:`.render`), and
the entries every software shares (the login probe's findings), labelled with the product's own name.

A fragment written as lines (the closing quotes on a line of their own) stands for those lines without
the last line break: put ``{{cert}}`` on a line of its own and the snippet reads as it will print.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cleartext.record import Protocol

ANY = "any"
"""The entry for every code a file does not name (a hosted service: one text whatever was found)."""

_FILE_KEYS = frozenset({"label", "identified", "software", "text", "protocols", "references", "site"})
_ENTRY_KEYS = frozenset({"steps", "config", "refs"})


@dataclass(frozen=True, slots=True)
class Entry:
    """The advice for one finding, unrendered: step templates, a snippet template, reference names."""

    steps: tuple[str, ...]
    config: str | None
    refs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Book:
    """One data file, parsed and checked for shape (names are checked when it renders)."""

    name: str
    label: str
    identified: str | None
    software: tuple[str, ...]
    text: Mapping[str, str]
    protocols: Mapping[Protocol, Mapping[str, str]]
    references: Mapping[str, str]
    site: Mapping[str, str]
    entries: Mapping[str, Mapping[Protocol | None, Mapping[str, Any]]]

    def entry(self, code: str, protocol: Protocol | None) -> Entry | None:
        """The entry for ``code`` on ``protocol``: the protocol's table over the code's."""
        tables = self.entries.get(code)
        if tables is None:
            return None
        fields = {**tables.get(None, {}), **(tables.get(protocol, {}) if protocol else {})}
        if "steps" not in fields:
            return None
        return Entry(tuple(fields["steps"]), fields.get("config"), tuple(fields.get("refs", ())))

    def fragment(self, name: str, protocol: Protocol | None) -> str | None:
        """A fragment or reference of this file: the protocol's own words first."""
        if protocol is not None and name in self.protocols.get(protocol, {}):
            return self.protocols[protocol][name]
        return self.text.get(name, self.references.get(name))


_PROTOCOLS = {p.value: p for p in Protocol}


def _table(raw: Mapping[str, Any], key: str, where: str) -> dict[str, Any]:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} is a table")
    return value


def _fragments(table: Mapping[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError(f"{where}.{key}: a fragment is a string (or a port number)")
        out[key] = str(value).removesuffix("\n")
    return out


def _entry(code: str, table: Mapping[str, Any], where: str) -> dict[Protocol | None, dict[str, Any]]:
    """An entry's fields, and each protocol's own (``[code.smtp]``), checked for shape."""
    tables: dict[Protocol | None, dict[str, Any]] = {None: {}}
    for key, value in table.items():
        if key in _ENTRY_KEYS:
            tables[None][key] = value
        elif key in _PROTOCOLS and isinstance(value, dict) and value.keys() <= _ENTRY_KEYS:
            tables[_PROTOCOLS[key]] = dict(value)
        else:
            raise ValueError(f"{where} [{code}]: unknown key {key!r}")
    for fields in tables.values():
        steps = fields.get("steps", [])
        if not isinstance(steps, list) or not all(isinstance(s, str) and s for s in steps):
            raise ValueError(f"{where} [{code}]: steps is a list of non-empty strings")
        if not isinstance(fields.get("config", ""), str):
            raise ValueError(f"{where} [{code}]: config is a string")
        if not all(isinstance(r, str) for r in fields.get("refs", [])):
            raise ValueError(f"{where} [{code}]: refs is a list of reference names")
    return tables


def parse(name: str, source: str) -> Book:
    """A data file from its text; ValueError names the file and the table when its shape is wrong."""
    where = f"{name}.toml"
    raw = tomllib.loads(source)
    stray = [key for key, value in raw.items() if key not in _FILE_KEYS and not isinstance(value, dict)]
    if stray:
        raise ValueError(f"{where}: unknown top-level keys {stray}")
    protocols = _table(raw, "protocols", where)
    if not protocols.keys() <= _PROTOCOLS.keys():
        raise ValueError(f"{where} [protocols]: only {sorted(_PROTOCOLS)}")
    label, identified, software = raw.get("label", ""), raw.get("identified"), raw.get("software", [])
    if not isinstance(label, str) or not isinstance(identified, str | None) or not isinstance(software, list):
        raise ValueError(f"{where}: label and identified are strings, software a list")
    return Book(
        name=name,
        label=label,
        identified=identified,
        software=tuple(software),
        text=_fragments(_table(raw, "text", where), f"{where} [text]"),
        protocols={
            _PROTOCOLS[key]: _fragments(_table(protocols, key, where), f"{where} [protocols.{key}]")
            for key in protocols
        },
        references=_fragments(_table(raw, "references", where), f"{where} [references]"),
        site=_fragments(_table(raw, "site", where), f"{where} [site]"),
        entries={key: _entry(key, value, where) for key, value in raw.items() if key not in _FILE_KEYS},
    )


def names() -> list[str]:
    """The data files shipped with the package, by name (``dovecot`` for dovecot.toml)."""
    files = resources.files(__package__).iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


@functools.cache
def book(name: str) -> Book:
    """The data file ``name``, parsed on first use and kept."""
    source = resources.files(__package__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse(name, source)
