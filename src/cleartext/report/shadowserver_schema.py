"""Shadowserver's published report schema for the mail and POODLE report types, read from package data.

The data — each report type's CSV columns in their published order, its feed name, and the IntelMQ
conversion each column goes through — is Shadowserver's and IntelMQ's, copied by
scripts/gen-shadowserver-schema from their published schema files into ``cleartext/schema/
shadowserver-mail.json``. It ships with the package because users do not have those files;
tests/unit/test_report_shadowserver.py checks the committed file against what the script builds from
the snapshot, and this module against the file. To change it, regenerate it; never edit it by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

DATA = "shadowserver-mail.json"


def _load() -> dict[str, Any]:
    text = resources.files("cleartext").joinpath("schema", DATA).read_text(encoding="utf-8")
    types: dict[str, Any] = json.loads(text)["report_types"]
    return types


def _pairs(entries: list[list[str]]) -> tuple[tuple[str, str], ...]:
    return tuple((column, conversion) for column, conversion in entries)


_TYPES = _load()

# report type -> the CSV columns, in order
COLUMNS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: tuple(entry["columns"]) for name, entry in _TYPES.items()}
)
# report type -> the feed name Shadowserver and IntelMQ give it
FEED_NAMES: Mapping[str, str] = MappingProxyType({name: entry["feed_name"] for name, entry in _TYPES.items()})
# report type -> IntelMQ classification.identifier
IDENTIFIERS: Mapping[str, str] = MappingProxyType(
    {name: entry["identifier"] for name, entry in _TYPES.items()}
)
# report type -> columns IntelMQ requires, with the conversion it applies
REQUIRED: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {name: _pairs(entry["required"]) for name, entry in _TYPES.items()}
)
# report type -> optional columns IntelMQ converts (other than validate_to_none), with the conversion
CONVERSIONS: Mapping[str, tuple[tuple[str, str], ...]] = MappingProxyType(
    {name: _pairs(entry["conversions"]) for name, entry in _TYPES.items()}
)
