"""The fix for each finding of a record, for the software found: what the endpoint and self-check pages
show and what the API returns beside the record."""

from __future__ import annotations

from typing import Any

from cleartext.record import Record
from cleartext.remediation import Remedy, remedy


def remedies_of(record: Record) -> list[Remedy | None]:
    """The fix for each finding, for the software found (None for a code we have no advice for)."""
    out: list[Remedy | None] = []
    for finding in record.findings:
        try:
            out.append(remedy(finding.code, record.observation.software, record.observation.protocol))
        except ValueError:
            out.append(None)
    return out


def remedy_dict(code: str, value: Remedy | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "code": code,
        "software": value.software,
        "steps": list(value.steps),
        "config": value.config,
        "references": list(value.references),
    }


def remediation_json(record: Record) -> list[dict[str, Any] | None]:
    """The API's ``remediation``: one entry per finding of ``record``, in the same order."""
    return [remedy_dict(f.code, r) for f, r in zip(record.findings, remedies_of(record), strict=True)]
