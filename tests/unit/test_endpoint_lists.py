"""Endpoint lists: ip:port lines and real zmap, masscan and nmap output (tests/data/endpoint_lists, written
by those tools scanning a namespace of the test's own on 198.18.0.0/15), read into endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartext.endpoint_lists import EndpointListError, EndpointReader
from cleartext.record import Protocol, TLSMode
from cleartext.targets import parse_ports

DATA = Path(__file__).resolve().parent.parent / "data" / "endpoint_lists"


def read(name: str, **kw: object) -> tuple[EndpointReader, list[tuple[str, int]]]:
    path = DATA / name
    reader = EndpointReader(str(path), **kw)  # type: ignore[arg-type]
    with path.open(encoding="utf-8") as fh:
        return reader, [(e.address, e.port) for e in reader.endpoints(fh)]


@pytest.mark.parametrize(
    ("name", "fmt", "count"),
    [
        ("zmap-fields.csv", "zmap", 32),
        ("masscan.lst", "masscan-list", 2),
        ("masscan.json", "masscan-json", 4),
        ("masscan.gnmap", "nmap-grepable", 4),
        ("nmap.gnmap", "nmap-grepable", 4),
    ],
)
def test_real_tool_output_is_read_and_its_format_recognised(name: str, fmt: str, count: int) -> None:
    reader, endpoints = read(name)
    assert reader.fmt == fmt
    assert len(endpoints) == count and len(set(endpoints)) == count
    assert all(a.startswith("198.18.0.") and p == 25 for a, p in endpoints)


def test_closed_ports_are_not_endpoints() -> None:
    reader, endpoints = read("nmap.gnmap")
    assert reader.closed == 4 and {p for _, p in endpoints} == {25}


def test_zmap_default_output_takes_its_port_from_ports() -> None:
    ports = {s.port: s for s in parse_ports("25")}
    _, endpoints = read("zmap-default.txt", ports=ports)
    assert len(endpoints) == 5 and {p for _, p in endpoints} == {25}
    with pytest.raises(EndpointListError, match="exactly one --ports port"):
        read("zmap-default.txt")


def test_plain_lines_ipv6_services_and_comments() -> None:
    lines = ["# list", "", "192.0.2.1:25", "[2001:db8::1]:993", "192.0.2.2:2525", "192.0.2.1:25"]
    reader = EndpointReader("list", ports={s.port: s for s in parse_ports("2525=smtps")})
    endpoints = list(reader.endpoints(lines))
    assert [(e.address, e.port, e.protocol, e.tls_mode) for e in endpoints] == [
        ("192.0.2.1", 25, Protocol.SMTP, TLSMode.STARTTLS),
        ("2001:db8::1", 993, Protocol.IMAP, TLSMode.IMPLICIT),
        ("192.0.2.2", 2525, Protocol.SMTP, TLSMode.IMPLICIT),
    ]
    assert reader.duplicates == 1


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("192.0.2.1", "expected ADDRESS:PORT"),
        ("2001:db8::1:25", "IPv6 as [ADDRESS]:PORT"),
        ("192.0.2.1:99999", "out of range"),
        ("192.0.2.1:abc", "invalid literal"),
        ("not-an-ip:25", "is not an IP address"),
        ("192.0.2.1:8080", "--ports 8080=SERVICE"),
    ],
)
def test_a_bad_line_names_the_source_and_line(line: str, why: str) -> None:
    reader = EndpointReader("targets.txt", fmt="plain")
    with pytest.raises(EndpointListError) as err:
        list(reader.endpoints(["192.0.2.9:25", line]))
    assert str(err.value).startswith("targets.txt:2: ") and why in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_lines_can_be_skipped_and_counted() -> None:
    reader = EndpointReader("targets.txt", skip_bad=True)
    got = list(reader.endpoints(["192.0.2.1:25", "garbage", "192.0.2.2:110", "x" * 5000]))
    assert [e.address for e in got] == ["192.0.2.1", "192.0.2.2"] and reader.skipped == 2


def test_the_list_is_streamed_not_loaded() -> None:
    def lines() -> object:
        yield "192.0.2.1:25"
        raise AssertionError("read past the first endpoint before it was taken")

    reader = EndpointReader("pipe")
    first = next(iter(reader.endpoints(lines())))  # type: ignore[arg-type]
    assert first.address == "192.0.2.1"


def test_duplicate_memory_is_bounded() -> None:
    reader = EndpointReader("list", dedupe_limit=2)
    lines = ["192.0.2.1:25", "192.0.2.2:25", "192.0.2.3:25", "192.0.2.3:25", "192.0.2.1:25"]
    got = list(reader.endpoints(lines))
    assert len(got) == 4 and reader.duplicates == 1  # past the limit, a repeat may come through
