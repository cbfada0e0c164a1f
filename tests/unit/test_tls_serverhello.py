"""Server first-flight reader: hand-made flights, every chunking, and hostile bytes.

The encoders below build server flights from RFC 5246 / RFC 8446 structures so that the
reader can be checked on exact bytes, split at every possible place.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable, Sequence
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cleartext.tls.hello import TLSVersion
from cleartext.tls.serverhello import (
    HELLO_RETRY_REQUEST_RANDOM,
    MAX_CERTIFICATES,
    MAX_RECORD_LENGTH,
    Outcome,
    ServerFlight,
    ServerFlightReader,
    alert_name,
)

# -- encoders ---------------------------------------------------------------------------


def record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + body


def extension(ext_type: int, data: bytes) -> bytes:
    return struct.pack("!HH", ext_type, len(data)) + data


def server_hello(
    legacy_version: int,
    cipher: int,
    *,
    random: bytes = b"\x11" * 32,
    session_id: bytes = b"",
    extensions: Sequence[bytes] | None = None,
) -> bytes:
    body = struct.pack("!H", legacy_version) + random + bytes([len(session_id)]) + session_id
    body += struct.pack("!HB", cipher, 0)
    if extensions is not None:
        ext = b"".join(extensions)
        body += struct.pack("!H", len(ext)) + ext
    return handshake(2, body)


def tls13_server_hello(cipher: int = 0x1301, *, random: bytes = b"\x22" * 32) -> bytes:
    return server_hello(
        0x0303,
        cipher,
        random=random,
        session_id=b"\x33" * 32,
        extensions=[
            extension(43, b"\x03\x04"),
            extension(51, struct.pack("!HH", 0x001D, 32) + b"\x44" * 32),
        ],
    )


def certificate(certs: Iterable[bytes]) -> bytes:
    entries = b"".join(len(c).to_bytes(3, "big") + c for c in certs)
    return handshake(11, len(entries).to_bytes(3, "big") + entries)


SERVER_HELLO_DONE = handshake(14, b"")
SERVER_KEY_EXCHANGE = handshake(12, b"\x03\x00\x1d\x20" + b"\x55" * 32 + b"\x04\x01\x00\x02ab")


@cache
def make_cert(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def read_all(data: bytes, chunks: Sequence[int] | None = None, max_bytes: int = 65536) -> ServerFlight:
    """Feed ``data`` cut at ``chunks`` sizes (cycled), then eof if the reader still waits."""
    reader = ServerFlightReader(max_bytes)
    pos = 0
    i = 0
    while pos < len(data) and reader.result is None:
        size = chunks[i % len(chunks)] if chunks else len(data)
        reader.feed(data[pos : pos + size])
        pos += size
        i += 1
    return reader.result if reader.result is not None else reader.eof()


def byte_by_byte(data: bytes) -> ServerFlight:
    return read_all(data, [1])


def essentials(f: ServerFlight) -> tuple[object, ...]:
    return (
        f.outcome,
        f.version,
        f.cipher,
        f.alert_level,
        f.alert_description,
        f.hello_retry,
        f.certificates,
        f.sslv2,
    )


# -- fixed flights ----------------------------------------------------------------------


def test_tls12_server_hello_with_two_certificates() -> None:
    leaf, ca = make_cert("mail.example.com"), make_cert("Example CA")
    flight = record(22, server_hello(0x0303, 0xC02F, extensions=[extension(0xFF01, b"\x00")]))
    flight += record(22, certificate([leaf, ca]) + SERVER_KEY_EXCHANGE + SERVER_HELLO_DONE)
    for result in (read_all(flight), byte_by_byte(flight)):
        assert result.outcome is Outcome.ACCEPTED
        assert result.accepted
        assert result.version is TLSVersion.TLS1_2
        assert result.version_label == "TLSv1.2"
        assert result.cipher == 0xC02F
        assert result.cipher_name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        assert result.certificates == (leaf, ca)
        assert not result.hello_retry
        assert result.alert_description is None
        assert "ServerHello" in result.detail


def test_result_waits_for_server_hello_done() -> None:
    reader = ServerFlightReader()
    reader.feed(record(22, server_hello(0x0301, 0x002F)))
    assert reader.result is None
    reader.feed(record(22, certificate([make_cert("a")])))
    assert reader.result is None
    reader.feed(record(22, SERVER_HELLO_DONE))
    result = reader.result
    assert result is not None and result.version is TLSVersion.TLS1_0 and result.cipher == 0x002F
    assert len(result.certificates) == 1


def test_sslv3_server_hello_without_extensions_block() -> None:
    flight = record(
        22, server_hello(0x0300, 0x000A) + certificate([make_cert("x")]) + SERVER_HELLO_DONE, 0x0300
    )
    result = byte_by_byte(flight)
    assert result.outcome is Outcome.ACCEPTED
    assert result.version is TLSVersion.SSL3
    assert result.version_label == "SSLv3"


def test_one_message_across_many_records() -> None:
    hs = server_hello(0x0303, 0x009C) + certificate([make_cert("big")] * 3) + SERVER_HELLO_DONE
    flight = b"".join(record(22, hs[i : i + 7]) for i in range(0, len(hs), 7))
    result = read_all(flight, [3, 1, 50])
    assert result.outcome is Outcome.ACCEPTED
    assert result.cipher == 0x009C
    assert len(result.certificates) == 3


def test_anonymous_suite_flight_without_certificate() -> None:
    flight = record(22, server_hello(0x0303, 0x00A6) + SERVER_KEY_EXCHANGE + SERVER_HELLO_DONE)
    result = byte_by_byte(flight)
    assert result.outcome is Outcome.ACCEPTED
    assert result.cipher == 0x00A6
    assert result.certificates == ()


def test_tls13_server_hello_stops_immediately() -> None:
    reader = ServerFlightReader()
    reader.feed(record(22, tls13_server_hello(0x1302)))
    result = reader.result
    assert result is not None
    assert result.outcome is Outcome.ACCEPTED
    assert result.version is TLSVersion.TLS1_3
    assert result.cipher == 0x1302
    assert not result.hello_retry
    assert result.certificates == ()


def test_tls13_then_encrypted_records_are_ignored() -> None:
    flight = record(22, tls13_server_hello()) + record(20, b"\x01") + record(23, b"\xaa" * 100)
    assert byte_by_byte(flight).version is TLSVersion.TLS1_3


def test_hello_retry_request() -> None:
    hrr = server_hello(
        0x0303,
        0x1301,
        random=HELLO_RETRY_REQUEST_RANDOM,
        session_id=b"\x01" * 32,
        extensions=[extension(43, b"\x03\x04"), extension(51, b"\x00\x17")],
    )
    result = byte_by_byte(record(22, hrr))
    assert result.outcome is Outcome.ACCEPTED
    assert result.hello_retry
    assert result.version is TLSVersion.TLS1_3
    assert "HelloRetryRequest" in result.detail


@pytest.mark.parametrize(
    ("description", "name"),
    [
        (40, "handshake_failure"),
        (70, "protocol_version"),
        (71, "insufficient_security"),
        (80, "internal_error"),
    ],
)
def test_alert(description: int, name: str) -> None:
    result = byte_by_byte(record(21, bytes([2, description]), 0x0301))
    assert result.outcome is Outcome.ALERT
    assert result.alert_level == 2
    assert result.alert_description == description
    assert result.alert_name == name
    assert name in result.detail
    assert result.version is None and result.cipher is None


def test_alert_names() -> None:
    assert alert_name(40) == "handshake_failure"
    assert alert_name(70) == "protocol_version"
    assert alert_name(86) == "inappropriate_fallback"
    assert alert_name(112) == "unrecognized_name"
    assert alert_name(250) == "alert_250"
    assert alert_name(None) == "none"


def test_alert_after_server_hello_keeps_accepted() -> None:
    flight = record(22, server_hello(0x0303, 0xC030)) + record(21, b"\x02\x28")
    result = byte_by_byte(flight)
    assert result.outcome is Outcome.ACCEPTED
    assert result.cipher == 0xC030
    assert result.alert_description == 40


@pytest.mark.parametrize(
    "data",
    [
        b"-ERR unknown command\r\n",
        b"+OK POP3 ready\r\n",
        b"220 mail.example.com ESMTP\r\n",
        b"* OK IMAP4rev1\r\n",
        b"\x00\x00\x00\x00",
        b"HTTP/1.1 400 Bad Request\r\n",
        b"\x16\x02\x01\x00\x05hello",  # right content type, wrong version major
        b"\x17\x03\x03\x00\x05hello",  # application data first
        b"\x16\x03\x03\xff\xff" + b"x" * 10,  # record length beyond the TLS bound
        b"\x16\x03\x03\x00\x00",  # empty handshake record
    ],
)
def test_not_tls(data: bytes) -> None:
    for result in (read_all(data), byte_by_byte(data)):
        assert result.outcome is Outcome.NOT_TLS, result
        assert result.detail


def test_not_tls_detail_quotes_plaintext() -> None:
    result = read_all(b"-ERR bad\r\n")
    assert "-ERR bad" in result.detail


def test_sslv2_server_hello() -> None:
    # 2-byte header (length 0x2E), SERVER-HELLO(4), hit=0, cert type 1, version 0x0002, lengths.
    body = (
        bytes([4, 0, 1])
        + b"\x00\x02"
        + b"\x00\x10"
        + b"\x00\x03"
        + b"\x00\x10"
        + b"c" * 16
        + b"\x07\x00\xc0"
        + b"i" * 16
    )
    data = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    for result in (read_all(data), byte_by_byte(data)):
        assert result.outcome is Outcome.NOT_TLS
        assert result.sslv2
        assert result.version == 0x0002


def test_sslv2_error_is_not_tls_but_not_sslv2_hello() -> None:
    result = byte_by_byte(b"\x80\x03\x00\x00\x01")
    assert result.outcome is Outcome.NOT_TLS
    assert not result.sslv2


@pytest.mark.parametrize(
    "hello_body",
    [
        b"\x03\x03" + b"\x00" * 10,  # too short
        b"\x03\x03" + b"\x00" * 32 + b"\x21" + b"\x00" * 40,  # session id of 33 bytes
        b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\xc0\x2f\x00" + b"\x00\x05\x00",  # bad extension length
        b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\xc0\x2f\x00" + b"\x00\x04\x00\x2b\x00\x01",  # overrun
        b"\x03\x03" + b"\x00" * 32 + b"\x00" + b"\xc0\x2f\x00" + b"\x00\x05\x00\x2b\x00\x01\x03",  # sv len 1
    ],
)
def test_malformed_server_hello(hello_body: bytes) -> None:
    result = byte_by_byte(record(22, handshake(2, hello_body)))
    assert result.outcome is Outcome.NOT_TLS
    assert "malformed" in result.detail


def test_unexpected_handshake_before_server_hello() -> None:
    result = read_all(record(22, certificate([b"x"])))
    assert result.outcome is Outcome.NOT_TLS


def test_hello_request_before_server_hello_is_ignored() -> None:
    flight = record(22, handshake(0, b"")) + record(22, tls13_server_hello())
    assert byte_by_byte(flight).outcome is Outcome.ACCEPTED


def test_unknown_version_is_kept_as_int() -> None:
    result = read_all(record(22, server_hello(0x7F1C, 0x1301)) + record(22, SERVER_HELLO_DONE))
    assert result.version == 0x7F1C
    assert not isinstance(result.version, TLSVersion)
    assert result.version_label == "0x7F1C"


def test_downgraded_answer_to_tls13_offer_is_reported_as_seen() -> None:
    """A server answering a TLS1.3-only offer with TLS 1.2 is reported as TLS 1.2: the caller judges."""
    result = read_all(record(22, server_hello(0x0303, 0xC02F)) + record(22, SERVER_HELLO_DONE))
    assert result.version is TLSVersion.TLS1_2


def test_certificate_cap() -> None:
    certs = [make_cert(f"c{i}") for i in range(MAX_CERTIFICATES + 3)]
    flight = record(22, server_hello(0x0303, 0xC02F))
    hs = certificate(certs) + SERVER_HELLO_DONE
    flight += b"".join(record(22, hs[i : i + 2**14]) for i in range(0, len(hs), 2**14))
    result = read_all(flight)
    assert result.certificates == tuple(certs[:MAX_CERTIFICATES])


def test_malformed_certificate_after_hello_keeps_accepted() -> None:
    bad = handshake(11, b"\x00\x00\x09" + b"\x00\x00\x10abc")
    result = read_all(record(22, server_hello(0x0303, 0xC02F) + bad))
    assert result.outcome is Outcome.ACCEPTED
    assert "stopped reading" in result.detail
    assert result.certificates == ()


def test_ccs_after_tls12_server_hello_ends_flight() -> None:
    result = read_all(record(22, server_hello(0x0303, 0xC02F)) + record(20, b"\x01"))
    assert result.outcome is Outcome.ACCEPTED


# -- eof, bounds, stability --------------------------------------------------------------


def test_eof_without_bytes_is_closed() -> None:
    reader = ServerFlightReader()
    result = reader.eof()
    assert result.outcome is Outcome.CLOSED
    assert reader.eof() is result
    assert reader.result is result


@pytest.mark.parametrize("cut", [1, 3, 5, 8, 20])
def test_eof_mid_record_is_truncated(cut: int) -> None:
    data = record(22, server_hello(0x0303, 0xC02F))
    reader = ServerFlightReader()
    reader.feed(data[:cut])
    assert reader.result is None
    assert reader.eof().outcome is Outcome.TRUNCATED


def test_eof_after_server_hello_is_accepted() -> None:
    reader = ServerFlightReader()
    reader.feed(record(22, server_hello(0x0303, 0xC02F)) + record(22, certificate([make_cert("a")]))[:30])
    assert reader.result is None
    result = reader.eof()
    assert result.outcome is Outcome.ACCEPTED
    assert result.cipher == 0xC02F
    assert "ended early" in result.detail


def test_feed_after_result_is_ignored() -> None:
    reader = ServerFlightReader()
    reader.feed(record(21, b"\x02\x46"))
    first = reader.result
    assert first is not None
    reader.feed(b"more bytes")
    reader.feed(record(22, tls13_server_hello()))
    assert reader.result is first
    assert reader.eof() is first


def test_too_large_before_server_hello() -> None:
    # Valid handshake records of a message that keeps going past the budget.
    data = record(22, b"\x02" + (200_000).to_bytes(3, "big") + b"\x00" * 1000)
    result = read_all(data, max_bytes=512)
    assert result.outcome in (Outcome.TOO_LARGE, Outcome.NOT_TLS)
    stream = b"".join(record(22, handshake(0, b"")) for _ in range(200))  # endless HelloRequests
    reader = ServerFlightReader(max_bytes=300)
    reader.feed(stream)
    assert reader.result is not None and reader.result.outcome is Outcome.TOO_LARGE
    assert reader.bytes_seen == 300


def test_too_large_after_server_hello_keeps_accepted() -> None:
    certs = [make_cert(f"big{i}") for i in range(10)]
    flight = record(22, server_hello(0x0303, 0xC02F))
    hs = certificate(certs * 3) + SERVER_HELLO_DONE
    flight += b"".join(record(22, hs[i : i + 2**14]) for i in range(0, len(hs), 2**14))
    result = read_all(flight, [1000], max_bytes=2000)
    assert result.outcome is Outcome.ACCEPTED
    assert "too large" in result.detail


def test_oversize_record_length_bound() -> None:
    ok = ServerFlightReader()
    ok.feed(struct.pack("!BHH", 22, 0x0303, MAX_RECORD_LENGTH))
    assert ok.result is None
    bad = ServerFlightReader()
    bad.feed(struct.pack("!BHH", 22, 0x0303, MAX_RECORD_LENGTH + 1))
    assert bad.result is not None and bad.result.outcome is Outcome.NOT_TLS


def test_max_bytes_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ServerFlightReader(0)


# -- properties --------------------------------------------------------------------------


def chunk_sizes() -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=20)


@settings(max_examples=500, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=3000),
        # Bytes that start like TLS records, to get past the first checks more often.
        st.tuples(
            st.sampled_from([b"\x16\x03\x03", b"\x15\x03\x01", b"\x16\x03\x00"]), st.binary(max_size=3000)
        ).map(lambda t: t[0] + t[1]),
    ),
    chunks=chunk_sizes(),
    max_bytes=st.integers(min_value=1, max_value=4096),
)
def test_arbitrary_bytes_never_raise_and_stay_bounded(data: bytes, chunks: list[int], max_bytes: int) -> None:
    reader = ServerFlightReader(max_bytes)
    pos = 0
    i = 0
    first: ServerFlight | None = None
    while pos < len(data):
        size = chunks[i % len(chunks)]
        reader.feed(data[pos : pos + size])
        pos += size
        i += 1
        assert reader.bytes_seen <= max_bytes
        if first is not None:
            assert reader.result is first  # once set, never changes
        first = reader.result
    if len(data) > max_bytes:
        assert reader.result is not None
    result = reader.eof()
    assert isinstance(result, ServerFlight)
    assert isinstance(result.outcome, Outcome)
    assert reader.eof() is result
    assert len(result.certificates) <= MAX_CERTIFICATES
    # The outcome does not depend on how the bytes were chunked.
    assert essentials(read_all(data, max_bytes=max_bytes)) == essentials(result)


@st.composite
def server_flights(draw: st.DrawFn) -> tuple[bytes, int, int, tuple[bytes, ...], bool]:
    version = draw(st.sampled_from([0x0300, 0x0301, 0x0302, 0x0303, 0x0304]))
    cipher = draw(st.integers(min_value=0, max_value=0xFFFF))
    random = draw(st.binary(min_size=32, max_size=32))
    assume(random != HELLO_RETRY_REQUEST_RANDOM)
    session_id = draw(st.binary(max_size=32))
    record_size = draw(st.integers(min_value=1, max_value=2**14))
    certs: tuple[bytes, ...] = ()
    if version == 0x0304:
        hello = server_hello(
            0x0303, cipher, random=random, session_id=session_id, extensions=[extension(43, b"\x03\x04")]
        )
        hs = hello
        tls13 = True
    else:
        with_ext = draw(st.booleans())
        hello = server_hello(
            version,
            cipher,
            random=random,
            session_id=session_id,
            extensions=[extension(0xFF01, b"\x00")] if with_ext else None,
        )
        certs = tuple(draw(st.lists(st.binary(min_size=1, max_size=300), max_size=4)))
        hs = hello + (certificate(certs) if certs or draw(st.booleans()) else b"") + SERVER_HELLO_DONE
        tls13 = False
    data = b"".join(record(22, hs[i : i + record_size]) for i in range(0, len(hs), record_size))
    return data, version, cipher, certs, tls13


@settings(max_examples=300, deadline=None)
@given(flight=server_flights(), chunks=chunk_sizes())
def test_server_hello_round_trips(
    flight: tuple[bytes, int, int, tuple[bytes, ...], bool], chunks: list[int]
) -> None:
    data, version, cipher, certs, _tls13 = flight
    reader = ServerFlightReader()
    pos = 0
    i = 0
    while pos < len(data):
        size = chunks[i % len(chunks)]
        reader.feed(data[pos : pos + size])
        pos += size
        i += 1
        if pos < len(data):
            assert reader.result is None, "decided before the flight was complete"
    result = reader.result
    assert result is not None
    assert result.outcome is Outcome.ACCEPTED
    assert result.version == version
    assert isinstance(result.version, TLSVersion)
    assert result.cipher == cipher
    assert result.certificates == certs
    assert not result.hello_retry
    assert result == read_all(data)
