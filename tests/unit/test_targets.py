"""Unit tests for target and port parsing, and the reserved-range guard."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from cleartext.record import Protocol, TLSMode
from cleartext.targets import (
    TargetError,
    parse_ports,
    parse_resolve,
    parse_target,
    parse_targets,
    reserved_reason,
)


def test_default_and_named_ports() -> None:
    specs = parse_ports("25,465,587,110,995,143,993,2525=smtp,10993=imaps")
    by_port = {s.port: s for s in specs}
    assert by_port[465].tls_mode is TLSMode.IMPLICIT and by_port[465].protocol is Protocol.SMTP
    assert by_port[143].tls_mode is TLSMode.STARTTLS and by_port[143].protocol is Protocol.IMAP
    assert by_port[995].protocol is Protocol.POP3 and by_port[995].tls_mode is TLSMode.IMPLICIT
    assert by_port[2525].protocol is Protocol.SMTP
    assert by_port[10993].tls_mode is TLSMode.IMPLICIT


@pytest.mark.parametrize("bad", ["0", "65536", "abc", "25,x", "8080", "2525=http", "", ","])
def test_bad_ports(bad: str) -> None:
    with pytest.raises(TargetError):
        parse_ports(bad)


def test_public_targets_parse() -> None:
    assert parse_target("8.8.8.8").network == ipaddress.ip_network("8.8.8.8/32")
    assert parse_target("2a00:1450::1").network is not None
    spec = parse_target("Mail.Example.COM.")
    assert spec.hostname == "mail.example.com"
    assert parse_target("8.8.8.0/30").network is not None
    assert list(parse_target("8.8.8.0/30").addresses())[-1] == ipaddress.ip_address("8.8.8.3")


@pytest.mark.parametrize(
    "bad", ["300.1.1.1", "1.2.3.4/33", "bad host!", "-leading.example", "1.2.3", "::g", "a..b"]
)
def test_invalid_targets(bad: str) -> None:
    with pytest.raises(TargetError):
        parse_target(bad)


@pytest.mark.parametrize(
    "reserved",
    [
        "127.0.0.2",
        "10.1.2.3",
        "192.168.1.0/24",
        "192.0.2.1",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "2001:db8::1",
        "100.64.0.1",
        "0.0.0.0",
    ],
)
def test_reserved_refused_unless_allowed(reserved: str) -> None:
    with pytest.raises(TargetError, match="reserved"):
        parse_target(reserved)
    assert parse_target(reserved, allow_reserved=True).network is not None


def test_reserved_reason() -> None:
    assert reserved_reason(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert reserved_reason(ipaddress.ip_address("1.1.1.1")) is None
    assert reserved_reason(ipaddress.ip_network("10.0.0.0/16")) == "private"
    # A public network that merely contains reserved space is not refused as a whole.
    assert reserved_reason(ipaddress.ip_network("0.0.0.0/0")) is None


def test_target_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.txt"
    path.write_text("# comment\n8.8.8.8\n\nmail.example.com  # trailing\n")
    specs = parse_targets([f"@{path}"])
    assert [s.text for s in specs] == ["8.8.8.8", "mail.example.com"]
    path.write_text("8.8.8.8\nnot a target\n")
    with pytest.raises(TargetError, match=r"targets.txt:2"):
        parse_targets([f"@{path}"])
    with pytest.raises(TargetError, match="no such file"):
        parse_targets([f"@{tmp_path / 'missing'}"])


def test_resolve_overrides() -> None:
    assert parse_resolve(["mail.lab.example:127.0.0.3"]) == {"mail.lab.example": ["127.0.0.3"]}
    for bad in ["nohost", "host:notanip", ":1.2.3.4"]:
        with pytest.raises(TargetError):
            parse_resolve([bad])


@pytest.mark.parametrize(
    ("typed", "hostname"),
    [
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.Example.", "xn--bcher-kva.example"),  # UTS 46 maps case; the final dot is dropped
        ("faß.de", "xn--fa-hia.de"),  # IDNA 2008 keeps ß (IDNA 2003 made it "fass")
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("例え.テスト", "xn--r8jz45g.xn--zckzah"),
    ],
)
def test_internationalised_hostnames_become_a_labels(typed: str, hostname: str) -> None:
    spec = parse_target(typed)
    assert spec.hostname == hostname and spec.text == typed
    assert parse_resolve([f"{typed}:192.0.2.7"]) == {hostname: ["192.0.2.7"]}


@pytest.mark.parametrize(
    "bad", ["bücher..example", "-bücher.example", "bü cher.example", "ü" * 70 + ".example"]
)
def test_invalid_internationalised_hostnames_are_refused(bad: str) -> None:
    with pytest.raises(TargetError, match="invalid target"):
        parse_target(bad)
