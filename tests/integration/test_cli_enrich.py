"""`cleartext attribute` as a user runs it: real data files in, a table or JSON Lines out, exit 2 if bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.enrich_files import (
    asn_record,
    country_record,
    rpsl_object,
    write_contacts,
    write_iptoasn,
    write_mmdb,
    write_rir,
    write_rpsl,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("attribution")
    return {
        "asn": write_mmdb(tmp / "GeoLite2-ASN.mmdb", {"192.0.2.0/24": asn_record(64496, "Example One")}),
        "country": write_mmdb(
            tmp / "GeoLite2-Country.mmdb",
            {"192.0.2.0/24": country_record("BE", "NL"), "2001:db8::/32": country_record("DE", "DE")},
            database_type="GeoLite2-Country",
        ),
        "iptoasn": write_iptoasn(
            tmp / "ip2asn-v6.tsv.gz",
            [("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 64499, "DE", "EXAMPLE-SIX")],
            gz=True,
        ),
        "rir": write_rir(
            tmp / "delegated-ripencc-extended-latest",
            "ripencc",
            [("NL", "ipv4", "192.0.2.0", 256, "allocated")],
        ),
        "rpsl": write_rpsl(
            tmp / "ripe.db.gz",
            [
                rpsl_object(("inet6num", "2001:db8::/32"), ("abuse-c", "AR1-TEST")),
                rpsl_object(
                    ("role", "Abuse"), ("nic-hdl", "AR1-TEST"), ("abuse-mailbox", "abuse@six.example")
                ),
            ],
            gz=True,
        ),
        "contacts": write_contacts(
            tmp / "contacts.csv",
            [("asn", "AS64496", "abuse@one.example", ""), ("country", "NL", "cert@nl.example", "")],
        ),
    }


def all_files(data: dict[str, Path]) -> list[str]:
    return [
        *("--mmdb", str(data["asn"]), "--mmdb", str(data["country"])),
        *("--iptoasn", str(data["iptoasn"]), "--rir", str(data["rir"])),
        *("--rpsl", str(data["rpsl"]), "--contacts", str(data["contacts"])),
    ]


def test_json_lines(data: dict[str, Path]) -> None:
    result = run_cli("attribute", "192.0.2.25", "2001:db8::25", "203.0.113.1", *all_files(data), "--json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0] == {
        "address": "192.0.2.25",
        "asn": 64496,
        "as_name": "Example One",
        "country": "BE",
        "registry_country": "NL",
        "registry": "ripencc",
        "network": "192.0.2.0/24",
        "abuse_contacts": ["abuse@one.example"],
        "cert": "cert@nl.example",
        "sources": [
            "GeoLite2-ASN.mmdb",
            "GeoLite2-Country.mmdb",
            "delegated-ripencc-extended-latest",
            "contacts.csv",
        ],
    }
    assert (lines[1]["asn"], lines[1]["as_name"], lines[1]["registry_country"]) == (
        64499,
        "EXAMPLE-SIX",
        "DE",
    )
    assert lines[1]["abuse_contacts"] == ["abuse@six.example"]
    assert lines[2] == {
        "address": "203.0.113.1",
        "asn": None,
        "as_name": None,
        "country": None,
        "registry_country": None,
        "registry": None,
        "network": None,
        "abuse_contacts": [],
        "cert": None,
        "sources": [],
    }


def test_table(data: dict[str, Path]) -> None:
    result = run_cli("attribute", "192.0.2.25", "203.0.113.1", *all_files(data))
    assert result.returncode == 0, result.stderr
    assert "AS64496" in result.stdout and "Example One" in result.stdout
    assert "registry country" in result.stdout and "cert@nl.example" in result.stdout
    assert "203.0.113.1" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["attribute", "192.0.2.1"], "no data file given"),
        (["attribute", "mail.example", "--mmdb", "{asn}"], "invalid address 'mail.example'"),
        (["attribute", "192.0.2.1", "--mmdb", "{contacts}"], "contacts.csv: not a MaxMind DB"),
        (["attribute", "192.0.2.1", "--iptoasn", "{asn}"], "GeoLite2-ASN.mmdb:1: expected 5 tab-separated"),
        (["attribute", "192.0.2.1", "--rir", "{contacts}"], "contacts.csv:1: not an RIR statistics record"),
        (["attribute", "192.0.2.1", "--rpsl", "{contacts}"], "contacts.csv:1: not an RPSL object"),
        (["attribute", "192.0.2.1", "--contacts", "{rir}"], "header lacks"),
        (["attribute", "192.0.2.1", "--mmdb", "/nonexistent/GeoLite2-ASN.mmdb"], "cannot read"),
    ],
)
def test_bad_input_is_one_line_exit_2(data: dict[str, Path], args: list[str], message: str) -> None:
    result = run_cli(*(a.format(**{k: str(v) for k, v in data.items()}) for a in args))
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cleartext: error:"), result.stderr
    assert message in lines[0]
    assert result.stdout == ""
