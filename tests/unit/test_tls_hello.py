"""ClientHello builder: every output must decode as a well-formed ClientHello.

The decoder below is written from RFC 5246 §7.4.1.2 / RFC 8446 §4.1.2 independently of the
builder, so that the two cannot share a misunderstanding silently.
"""

from __future__ import annotations

import ast
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cleartext.tls
from cleartext.tls.ciphers import BROAD_SUITES, TLS13_SUITES, suites_in_class
from cleartext.tls.hello import TLSVersion, client_hello, sni_hostname, version_label


class DecodeError(Exception):
    pass


@dataclass
class DecodedHello:
    record_versions: list[int]
    record_lengths: list[int]
    handshake_length: int
    legacy_version: int
    random: bytes
    session_id: bytes
    suites: list[int]
    compression: bytes
    extensions: dict[int, bytes] | None  # None: no extensions block at all
    extension_order: list[int] = field(default_factory=list)


class Cursor:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"need {n} bytes at {self.pos}, have {len(self.data) - self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "big")

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")

    def vec8(self) -> bytes:
        return self.take(self.u8())

    def vec16(self) -> bytes:
        return self.take(self.u16())

    @property
    def done(self) -> bool:
        return self.pos == len(self.data)


def decode_client_hello(wire: bytes) -> DecodedHello:
    records = Cursor(wire)
    handshake = bytearray()
    versions: list[int] = []
    lengths: list[int] = []
    while not records.done:
        content_type = records.u8()
        if content_type != 22:
            raise DecodeError(f"content type {content_type}")
        versions.append(records.u16())
        fragment = records.vec16()
        if not 0 < len(fragment) <= 2**14:
            raise DecodeError(f"bad fragment length {len(fragment)}")
        lengths.append(len(fragment))
        handshake += fragment
    hs = Cursor(bytes(handshake))
    if hs.u8() != 1:
        raise DecodeError("not a ClientHello")
    length = hs.u24()
    body = Cursor(hs.take(length))
    if not hs.done:
        raise DecodeError("bytes after the ClientHello")
    legacy_version = body.u16()
    random = body.take(32)
    session_id = body.vec8()
    if len(session_id) > 32:
        raise DecodeError("session id too long")
    raw_suites = body.vec16()
    if not raw_suites or len(raw_suites) % 2:
        raise DecodeError("bad cipher suite vector")
    suites = [s for (s,) in struct.iter_unpack("!H", raw_suites)]
    compression = body.vec8()
    extensions: dict[int, bytes] | None = None
    order: list[int] = []
    if not body.done:
        extensions = {}
        ext_block = Cursor(body.vec16())
        if not body.done:
            raise DecodeError("bytes after the extensions")
        while not ext_block.done:
            ext_type = ext_block.u16()
            if ext_type in extensions:
                raise DecodeError(f"duplicate extension {ext_type}")
            extensions[ext_type] = ext_block.vec16()
            order.append(ext_type)
    return DecodedHello(
        versions,
        lengths,
        length + 4,
        legacy_version,
        random,
        session_id,
        suites,
        compression,
        extensions,
        order,
    )


def u16_list(data: bytes) -> list[int]:
    return [v for (v,) in struct.iter_unpack("!H", data)]


def decode_sni(data: bytes) -> bytes:
    c = Cursor(data)
    entries = Cursor(c.vec16())
    assert c.done
    assert entries.u8() == 0  # host_name
    name = entries.vec16()
    assert entries.done
    return name


def decode_u16_vec16(data: bytes) -> list[int]:
    c = Cursor(data)
    out = u16_list(c.vec16())
    assert c.done
    return out


# -- fixed cases ------------------------------------------------------------------------


def test_version_labels() -> None:
    assert [v.label for v in TLSVersion] == ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert [int(v) for v in TLSVersion] == [0x0300, 0x0301, 0x0302, 0x0303, 0x0304]
    assert version_label(TLSVersion.TLS1_2) == "TLSv1.2"
    assert version_label(0x0303) == "TLSv1.2"
    assert version_label(0x7F1C) == "0x7F1C"
    assert version_label(None) == "none"


def test_sslv3_hello_has_no_extensions() -> None:
    wire = client_hello(TLSVersion.SSL3, BROAD_SUITES, "mail.example.com", random=bytes(range(32)))
    hello = decode_client_hello(wire)
    assert hello.record_versions == [0x0300]
    assert hello.legacy_version == 0x0300
    assert hello.extensions is None
    assert hello.session_id == b""
    assert hello.random == bytes(range(32))
    assert hello.suites == list(BROAD_SUITES)
    assert hello.compression == b"\x00"


@pytest.mark.parametrize("version", [TLSVersion.TLS1_0, TLSVersion.TLS1_1, TLSVersion.TLS1_2])
def test_tls12_and_older_hello(version: TLSVersion) -> None:
    suites = suites_in_class("3des")
    hello = decode_client_hello(client_hello(version, suites, "Mail.Example.com."))
    assert hello.record_versions == [0x0301]
    assert hello.legacy_version == version
    assert hello.session_id == b""
    assert hello.suites == list(suites)
    exts = hello.extensions
    assert exts is not None
    assert decode_sni(exts[0]) == b"mail.example.com"
    groups = decode_u16_vec16(exts[10])
    assert groups[:4] == [0x001D, 0x0017, 0x0018, 0x0019]
    assert 0x0100 in groups  # ffdhe2048
    assert exts[11] == b"\x01\x00"  # ec_point_formats: uncompressed
    sigalgs = decode_u16_vec16(exts[13])
    assert {0x0401, 0x0804, 0x0403, 0x0201, 0x0203} <= set(sigalgs)
    assert exts[0xFF01] == b"\x00"  # empty renegotiation_info
    assert 43 not in exts and 51 not in exts


def test_renegotiation_info_not_doubled_with_scsv() -> None:
    hello = decode_client_hello(client_hello(TLSVersion.TLS1_2, BROAD_SUITES))
    assert 0x00FF in hello.suites
    assert hello.extensions is not None and 0xFF01 not in hello.extensions


def test_tls13_hello() -> None:
    hello = decode_client_hello(client_hello(TLSVersion.TLS1_3, TLS13_SUITES, "mx.example.org"))
    assert hello.record_versions == [0x0301]
    assert hello.legacy_version == 0x0303
    assert len(hello.session_id) == 32
    assert hello.suites == list(TLS13_SUITES)
    exts = hello.extensions
    assert exts is not None
    assert decode_sni(exts[0]) == b"mx.example.org"
    assert exts[43] == b"\x02\x03\x04"  # supported_versions: only TLS 1.3
    shares = Cursor(exts[51])
    entries = Cursor(shares.vec16())
    assert shares.done
    assert entries.u16() == 0x001D
    assert len(entries.vec16()) == 32
    assert entries.done
    assert exts[45] == b"\x01\x01"  # psk_dhe_ke
    assert 0x001D in decode_u16_vec16(exts[10])
    assert 0x0804 in decode_u16_vec16(exts[13])


@pytest.mark.parametrize(
    ("given_name", "expected"),
    [
        ("mail.example.com", b"mail.example.com"),
        ("MAIL.Example.COM.", b"mail.example.com"),
        ("bücher.example", b"xn--bcher-kva.example"),
        ("localhost", b"localhost"),
        ("127.0.0.1", None),
        ("::1", None),
        ("[2001:db8::1]", None),
        ("fe80::1%eth0", None),
        ("", None),
        (None, None),
        ("a..b", None),
        ("-bad.example", None),
        ("bad-.example", None),
        ("sp ace.example", None),
        ("x" * 64 + ".example", None),
        (".".join(["a" * 60] * 5), None),
        ("1.2.3", None),
    ],
)
def test_sni_hostname(given_name: str | None, expected: bytes | None) -> None:
    assert sni_hostname(given_name) == expected
    hello = decode_client_hello(client_hello(TLSVersion.TLS1_2, [0xC02F], given_name))
    assert hello.extensions is not None
    if expected is None:
        assert 0 not in hello.extensions
    else:
        assert decode_sni(hello.extensions[0]) == expected


def test_given_random_makes_output_deterministic() -> None:
    r = bytes(32)
    for version in TLSVersion:
        assert client_hello(version, BROAD_SUITES, "a.example", random=r) == client_hello(
            version, BROAD_SUITES, "a.example", random=r
        )
    a = client_hello(TLSVersion.TLS1_3, TLS13_SUITES)
    b = client_hello(TLSVersion.TLS1_3, TLS13_SUITES)
    assert a != b
    ha, hb = decode_client_hello(a), decode_client_hello(b)
    assert ha.random != hb.random and ha.session_id != hb.session_id


@pytest.mark.parametrize(
    ("suites", "kwargs"),
    [
        ([], {}),
        ([0xC02F, 0x5600], {}),
        ([0x10000], {}),
        ([-1], {}),
        ([0xC02F], {"random": b"short"}),
    ],
)
def test_rejects_bad_input(suites: list[int], kwargs: dict[str, bytes]) -> None:
    with pytest.raises(ValueError):
        client_hello(TLSVersion.TLS1_2, suites, **kwargs)


def test_huge_hello_is_split_across_records() -> None:
    suites = [c for c in range(0x0100, 0x0100 + 0x7FFF) if c != 0x5600]
    wire = client_hello(TLSVersion.TLS1_2, suites, "example.com")
    hello = decode_client_hello(wire)
    assert hello.suites == suites
    assert len(hello.record_lengths) == -(-hello.handshake_length // 2**14) > 1
    assert all(n == 2**14 for n in hello.record_lengths[:-1])


def test_broad_hello_fits_one_record() -> None:
    for version in TLSVersion:
        hello = decode_client_hello(client_hello(version, BROAD_SUITES, "example.com"))
        assert len(hello.record_lengths) == 1
        assert hello.handshake_length < 2048


SANS_IO_MODULES = ("__init__.py", "ciphers.py", "hello.py", "serverhello.py")


def test_probing_core_does_not_do_io() -> None:
    """The sans-IO contract: the probing core never imports asyncio, socket or ssl."""
    forbidden = {"asyncio", "socket", "ssl", "selectors", "subprocess"}
    package_dir = Path(cleartext.tls.__file__).parent
    for path in (package_dir / name for name in SANS_IO_MODULES):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


# -- properties --------------------------------------------------------------------------

suite_codes = st.integers(min_value=0, max_value=0xFFFF).filter(lambda c: c != 0x5600)
hostnames = st.one_of(
    st.none(),
    st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True),
    st.text(max_size=40),
    st.ip_addresses().map(str),
)


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(list(TLSVersion)),
    suites=st.lists(suite_codes, min_size=1, max_size=300),
    server_name=hostnames,
    random=st.one_of(st.none(), st.binary(min_size=32, max_size=32)),
)
def test_client_hello_always_decodes(
    version: TLSVersion, suites: list[int], server_name: str | None, random: bytes | None
) -> None:
    wire = client_hello(version, suites, server_name, random=random)
    hello = decode_client_hello(wire)
    assert hello.suites == suites
    assert hello.compression == b"\x00"
    if random is not None:
        assert hello.random == random
    assert len(hello.random) == 32
    if version is TLSVersion.SSL3:
        assert hello.record_versions == [0x0300]
        assert hello.extensions is None
        assert hello.legacy_version == 0x0300
    else:
        assert set(hello.record_versions) == {0x0301}
        assert hello.extensions is not None
        # RFC 7685 padding keeps hellos out of the 256..511 byte range.
        assert not 256 <= hello.handshake_length < 512
        sni = sni_hostname(server_name)
        if sni is None:
            assert 0 not in hello.extensions
        else:
            assert decode_sni(hello.extensions[0]) == sni
        if version is TLSVersion.TLS1_3:
            assert hello.legacy_version == 0x0303
            assert hello.extensions[43] == b"\x02\x03\x04"
            assert len(hello.session_id) == 32
        else:
            assert hello.legacy_version == version
            assert hello.session_id == b""
            assert 43 not in hello.extensions


@pytest.mark.parametrize("version", list(TLSVersion))
def test_hellos_from_the_template_are_fresh_and_otherwise_identical(version: TLSVersion) -> None:
    """Hellos without a given random are filled into a cached template: every random field must be new
    each time (client random; for TLS 1.3 the session id and the key share), and the rest the same bytes
    a hello built from scratch has."""
    suites = TLS13_SUITES if version is TLSVersion.TLS1_3 else BROAD_SUITES[:100]
    first, second = (client_hello(version, suites, "mx.example.org") for _ in range(2))
    one, two = decode_client_hello(first), decode_client_hello(second)
    assert one.random != two.random
    fields = [(11, 32)]
    if version is TLSVersion.TLS1_3:
        assert one.session_id != two.session_id and len(one.session_id) == 32
        share = one.extensions[0x0033] if one.extensions else b""  # key_share
        other = two.extensions[0x0033] if two.extensions else b""
        assert share[:6] == other[:6] and share[6:] != other[6:]
        fields += [(44, 32), (first.index(share[6:]), 32)]
    # With the random fields blanked, a hello from the template is the one built from a seed.
    seeded = client_hello(version, suites, "mx.example.org", random=bytes(range(32)))
    blank = bytearray(first)
    ref = bytearray(seeded)
    for offset, size in fields:
        blank[offset : offset + size] = ref[offset : offset + size] = bytes(size)
    assert blank == ref
