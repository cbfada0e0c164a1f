"""The operator's contacts CSV: cidr (most specific), asn, country → CERT; header variants; errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartext.enrich.contacts import ContactsReader
from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import parse_address
from tests.enrich_files import write_contacts, write_text


def owner(reader: ContactsReader, address: str) -> tuple[tuple[str, ...], str | None] | None:
    found = reader.match(*parse_address(address))
    return None if found is None else (found.value.mailboxes, found.value.country)


def test_rows_of_each_kind(tmp_path: Path) -> None:
    reader = ContactsReader.from_paths(
        [
            write_contacts(
                tmp_path / "contacts.csv",
                [
                    ("cidr", "192.0.2.0/24", "noc@one.example", ""),
                    ("cidr", "192.0.2.128/26", "noc@two.example", "be"),
                    ("cidr", "192.0.2.128/26", "security@two.example", ""),
                    ("cidr", "192.0.2.7", "host@one.example", ""),
                    ("cidr", "2001:db8::/48", "noc@six.example", ""),
                    ("asn", "64496", "abuse@one.example", ""),
                    ("asn", "as64497", "abuse@two.example", "DE"),
                    ("country", "nl", "cert@nl.example", ""),
                    ("country", "DE", "cert@de.example", "DE"),
                ],
            )
        ]
    )
    assert owner(reader, "192.0.2.1") == (("noc@one.example",), None)
    assert owner(reader, "192.0.2.7") == (("host@one.example",), None)
    assert owner(reader, "192.0.2.130") == (("noc@two.example", "security@two.example"), "BE")
    assert owner(reader, "2001:db8:0:1::1") == (("noc@six.example",), None)
    assert owner(reader, "2001:db8:1::1") is None
    assert owner(reader, "198.51.100.1") is None
    one, two = reader.asn_contact(64496), reader.asn_contact(64497)
    assert one is not None and one.mailboxes == ("abuse@one.example",) and one.country is None
    assert two is not None and two.mailboxes == ("abuse@two.example",) and two.country == "DE"
    assert reader.asn_contact(64498) is None
    nl = reader.cert("NL")
    assert nl is not None and nl.mailbox == "cert@nl.example" and nl.source == "contacts.csv"
    assert reader.cert("FR") is None


def test_header_in_any_order_extra_columns_comments_and_bom(tmp_path: Path) -> None:
    text = (
        "\ufeff# our own list\n"
        "Contact,Note,KIND,key\n"
        'abuse@one.example,"the first, with a comma",asn,AS64496\n'
        "\n"
        "# country rows need no country column\n"
        "cert@nl.example,,country,NL\n"
    )
    reader = ContactsReader.from_paths([write_text(tmp_path / "contacts.csv", text)])
    one = reader.asn_contact(64496)
    assert one is not None and one.mailboxes == ("abuse@one.example",)
    assert reader.cert("NL") is not None


def test_several_files_add_mailboxes_in_order(tmp_path: Path) -> None:
    first = write_contacts(tmp_path / "a.csv", [("asn", "64496", "first@one.example", "")])
    second = write_contacts(tmp_path / "b.csv", [("asn", "64496", "second@one.example", "NL")])
    found = ContactsReader.from_paths([first, second]).asn_contact(64496)
    assert found is not None
    assert found.mailboxes == ("first@one.example", "second@one.example") and found.source == "a.csv"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("network", "192.0.2.0/24", "noc@one.example", ""), "unknown kind 'network'"),
        (("cidr", "192.0.2.1/24", "noc@one.example", ""), "bad cidr key '192.0.2.1/24'"),
        (("cidr", "192.0.2.0/33", "noc@one.example", ""), "bad cidr key"),
        (("asn", "ASX", "noc@one.example", ""), "bad asn key 'ASX'"),
        (("asn", "4294967296", "noc@one.example", ""), "bad asn key"),
        (("asn", "64496", "not a mailbox", ""), "contact is not a mailbox"),
        (("asn", "64496", "", ""), "contact is not a mailbox"),
        (("asn", "64496", "noc@one.example", "Netherlands"), "bad country code"),
        (("country", "NLD", "cert@nl.example", ""), "bad country key 'NLD'"),
        (("country", "NL", "cert@nl.example", "DE"), "bad country key 'NL'"),
    ],
)
def test_bad_rows(tmp_path: Path, row: tuple[str, str, str, str], message: str) -> None:
    path = write_contacts(tmp_path / "contacts.csv", [("asn", "64511", "ok@one.example", ""), row])
    with pytest.raises(EnrichError, match=message) as caught:
        ContactsReader.from_paths([path])
    assert str(caught.value).startswith(f"{path}:3: ")


def test_second_cert_for_a_country(tmp_path: Path) -> None:
    first = write_contacts(tmp_path / "a.csv", [("country", "NL", "cert@nl.example", "")])
    second = write_contacts(tmp_path / "b.csv", [("country", "nl", "other@nl.example", "")])
    with pytest.raises(EnrichError, match=r"b\.csv:2: second CERT contact for NL \(first in a\.csv line 2\)"):
        ContactsReader.from_paths([first, second])


def test_wrong_files(tmp_path: Path) -> None:
    with pytest.raises(EnrichError, match=r":1: header lacks kind, key, contact"):
        ContactsReader.from_paths([write_text(tmp_path / "ip2asn.tsv", "192.0.2.0\t192.0.2.255\t1\tNL\tX\n")])
    with pytest.raises(EnrichError, match="empty: expected a header row"):
        ContactsReader.from_paths([write_text(tmp_path / "empty.csv", "# nothing\n")])
    binary = tmp_path / "GeoLite2-ASN.mmdb"
    binary.write_bytes(b"\x00\x01kind\x00" * 50)
    with pytest.raises(EnrichError, match="header lacks"):
        ContactsReader.from_paths([binary])


def test_not_csv_at_all(tmp_path: Path) -> None:
    path = write_text(tmp_path / "huge.csv", 'kind,key,contact\n"' + "x" * 200_000 + "\n")
    with pytest.raises(EnrichError, match=r"huge\.csv:2: not a CSV file"):
        ContactsReader.from_paths([path])
