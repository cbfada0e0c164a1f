"""The record contract: JSON round trip, schema version, 7-bit clean lines."""

from __future__ import annotations

import json

import pytest

from cleartext.record import (
    Certificate,
    Finding,
    Observation,
    PlainPhase,
    Protocol,
    Record,
    Severity,
    TLSMatrix,
    TLSMode,
    TLSPhase,
    record_from_dict,
)


def sample() -> Record:
    obs = Observation(
        address="192.0.2.7",
        port=143,
        protocol=Protocol.IMAP,
        tls_mode=TLSMode.STARTTLS,
        hostname="mail.example",
        greeting="* OK caf\u00e9 ready",
    )
    obs.plain = PlainPhase(
        capabilities=["* CAPABILITY IMAP4rev1"], login_command=True, starttls_accepted=True
    )
    obs.tls = TLSPhase(
        version="TLSv1.3", chain=[Certificate("a" * 64, "CN=x", "CN=y", "", "", "rsa", 2048, "sha256")]
    )
    obs.matrix = TLSMatrix(versions={"TLSv1.3": "accepted"})
    return Record(obs, [Finding("cleartext-login", Severity.HIGH, "t", {"offered": ["LOGIN command"]})])


def test_roundtrip() -> None:
    record = sample()
    line = record.to_json()
    assert line.isascii(), "every line is 7-bit clean whatever a server sent"
    again = record_from_dict(json.loads(line))
    assert again == record
    assert again.to_json() == line


def test_rejects_other_versions_and_garbage() -> None:
    data = json.loads(sample().to_json())
    data["version"] = 3
    with pytest.raises(ValueError, match="version 1/2"):
        record_from_dict(data)
    with pytest.raises(ValueError, match="malformed"):
        record_from_dict({"version": 2, "address": "x"})
    with pytest.raises(ValueError):
        record_from_dict([])  # type: ignore[arg-type]
