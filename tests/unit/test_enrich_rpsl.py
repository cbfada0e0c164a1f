"""RPSL dumps: abuse-c → role mailbox, most specific range with a contact, split files, gzip, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.ranges import parse_address
from cleartext.enrich.rpsl import RpslReader
from tests.enrich_files import rpsl_object, write_rpsl, write_text


def contact(reader: RpslReader, address: str) -> tuple[tuple[str, ...], int] | None:
    version, value = parse_address(address)
    found = reader.match(version, value)
    return None if found is None else (found.value.mailboxes, found.prefixlen(value))


@pytest.fixture
def reader(tmp_path: Path) -> RpslReader:
    """RIPE-style split files: inetnums, inet6nums, aut-nums, roles and organisations apart."""
    inetnum = write_rpsl(
        tmp_path / "ripe.db.inetnum.gz",
        [
            rpsl_object(
                ("inetnum", "192.0.2.0 - 192.0.2.255"),
                ("netname", "EXAMPLE-NET"),
                ("org", "ORG-EX1-TEST"),
                ("status", "ALLOCATED PA"),
            ),
            # More specific, with its own abuse-c: it wins inside its range.
            rpsl_object(
                ("inetnum", "192.0.2.128 - 192.0.2.191"),
                ("netname", "EXAMPLE-CUSTOMER"),
                ("abuse-c", "AR2-TEST # the customer's own team"),
                ("status", "ASSIGNED PA"),
            ),
            # More specific, without any contact: the allocation's contact still applies.
            rpsl_object(("inetnum", "192.0.2.64 - 192.0.2.127"), ("netname", "SILENT"), ("org", "ORG-NONE")),
            # An IRT only, and a continuation line for a value this reader does not keep.
            rpsl_object(
                ("inetnum", "198.51.100.0 - 198.51.100.255"),
                ("descr", "Example network"),
                ("+", "spanning two lines"),
                ("mnt-irt", "IRT-EXAMPLE"),
            ),
            # Legacy abuse-mailbox written on the object itself; CIDR form as LACNIC writes it.
            rpsl_object(("inetnum", "203.0.113.0/25"), ("abuse-mailbox", "legacy@four.example")),
            # References a role that is in no file: no contact, never a guess.
            rpsl_object(("inetnum", "203.0.113.128 - 203.0.113.255"), ("abuse-c", "NOBODY-TEST")),
        ],
        gz=True,
    )
    inet6num = write_rpsl(
        tmp_path / "ripe.db.inet6num",
        [rpsl_object(("inet6num", "2001:db8::/32"), ("abuse-c", "AR1-TEST"))],
    )
    autnum = write_rpsl(
        tmp_path / "ripe.db.aut-num",
        [
            rpsl_object(("aut-num", "AS64496"), ("as-name", "EXAMPLE-AS"), ("org", "ORG-EX1-TEST")),
            rpsl_object(("aut-num", "AS64497"), ("as-name", "SILENT-AS")),
        ],
    )
    roles = write_rpsl(
        tmp_path / "ripe.db.role.gz",
        [
            rpsl_object(
                ("role", "Example Abuse Team"),
                ("nic-hdl", "AR1-TEST"),
                ("abuse-mailbox", "abuse@one.example"),
            ),
            rpsl_object(
                ("role", "Customer Abuse"), ("nic-hdl", "ar2-test"), ("abuse-mailbox", "abuse@two.example")
            ),
        ],
        gz=True,
    )
    others = write_rpsl(
        tmp_path / "ripe.db.organisation",
        [
            rpsl_object(
                ("organisation", "ORG-EX1-TEST"), ("org-name", "Example One"), ("abuse-c", "AR1-TEST")
            ),
            rpsl_object(("organisation", "ORG-NONE"), ("org-name", "No Abuse Contact")),
            rpsl_object(
                ("irt", "IRT-EXAMPLE"), ("abuse-mailbox", "irt@three.example"), ("e-mail", "x@three.example")
            ),
            rpsl_object(("mntner", "EXAMPLE-MNT"), ("auth", "# filtered")),
        ],
    )
    return RpslReader.from_paths([inetnum, inet6num, autnum, roles, others])


def test_abuse_c_through_the_organisation(reader: RpslReader) -> None:
    assert contact(reader, "192.0.2.1") == (("abuse@one.example",), 24)


def test_most_specific_range_with_a_contact_wins(reader: RpslReader) -> None:
    assert contact(reader, "192.0.2.130") == (("abuse@two.example",), 26)
    assert contact(reader, "192.0.2.100") == (("abuse@one.example",), 24)  # SILENT defers to its parent
    assert contact(reader, "192.0.2.200") == (("abuse@one.example",), 24)


def test_irt_legacy_mailbox_and_unresolved(reader: RpslReader) -> None:
    assert contact(reader, "198.51.100.7") == (("irt@three.example",), 24)
    assert contact(reader, "203.0.113.5") == (("legacy@four.example",), 25)
    assert contact(reader, "203.0.113.200") is None


def test_inet6num_and_aut_num(reader: RpslReader) -> None:
    assert contact(reader, "2001:db8:1::1") == (("abuse@one.example",), 32)
    found = reader.asn_contact(64496)
    assert found is not None and found.mailboxes == ("abuse@one.example",)
    assert found.sources == ("ripe.db.aut-num", "ripe.db.organisation", "ripe.db.role.gz")
    assert reader.asn_contact(64497) is None
    assert reader.asn_contact(64498) is None


def test_sources_name_every_file_that_took_part(reader: RpslReader) -> None:
    found = reader.match(*parse_address("192.0.2.130"))
    assert found is not None and found.value.sources == ("ripe.db.inetnum.gz", "ripe.db.role.gz")


def test_one_file_comments_continuations_and_crlf(tmp_path: Path) -> None:
    text = (
        "% This is the RIPE Database query service.\r\n"
        "% The objects are in RPSL format.\r\n"
        "\r\n"
        "role:           Abuse\r\n"
        "nic-hdl:        AR9-TEST\r\n"
        "abuse-mailbox:  \r\n"
        "+               abuse@nine.example\r\n"
        "\r\n"
        "inetnum:        192.0.2.0 -\r\n"
        "\t192.0.2.255\r\n"
        "# a comment inside the object\r\n"
        "abuse-c:        AR9-TEST\r\n"
    )
    reader = RpslReader.from_paths([write_text(tmp_path / "dump.db", text)])
    assert contact(reader, "192.0.2.9") == (("abuse@nine.example",), 24)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("kind,key,contact,country\nasn,64496,abuse@one.example,\n", 1, "not an RPSL object"),
        ("inetnum: 192.0.2.0 - 192.0.2.255\nno colon here\n", 2, "not an RPSL attribute line"),
        ("   indented: continuation first\n", 1, "continuation line outside an object"),
        ("role: X\nnic-hdl: R1\n\ninetnum: 192.0.2.9 - 192.0.2.1\nabuse-c: R1\n", 4, "bad inetnum"),
        ("inetnum: 2001:db8:: - 2001:db8::ff\n", 1, "wrong address family"),
        ("inet6num: 2001:db8::1/32\n", 1, "bad inet6num"),
        ("\n\naut-num: 64496\n", 3, "bad aut-num"),
        ("% only comments\n", None, "no RPSL objects"),
    ],
)
def test_bad_dumps(tmp_path: Path, text: str, line: int | None, message: str) -> None:
    path = write_text(tmp_path / "bad.db", text)
    with pytest.raises(EnrichError, match=message) as caught:
        RpslReader.from_paths([path])
    assert str(caught.value).startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_binary_file_is_not_rpsl(tmp_path: Path) -> None:
    path = tmp_path / "GeoLite2-ASN.mmdb"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(EnrichError, match="not an RPSL"):
        RpslReader.from_paths([path])
