"""The probing core against the real ``openssl s_server`` on 127.0.0.1.

Hand-built hellos are only worth something if a real TLS stack answers them the way the
unit tests assume, so each test starts its own s_server with a specific policy and checks
what our reader makes of the answer. All traffic stays on loopback and every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cleartext.tls import (
    BROAD_SUITES,
    COMPACT_SUITES,
    TLS13_SUITES,
    Outcome,
    ServerFlight,
    ServerFlightReader,
    TLSVersion,
    WeakClass,
    client_hello,
    suites_in_class,
    weak_classes,
)

OPENSSL = shutil.which("openssl")
pytestmark = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command-line tool")

HOST = "127.0.0.1"
START_TIMEOUT = 15.0
PROBE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Pki:
    """A self-signed CA and a leaf it signed, as files for s_server and DER for comparison."""

    leaf_cert: Path
    leaf_key: Path
    ca_cert: Path
    leaf_der: bytes
    ca_der: bytes


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    # RSA, not EC: static-RSA and ECDHE_RSA suites (and TLS 1.0) need an RSA certificate.
    directory = tmp_path_factory.mktemp("pki")
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("cleartext test CA"))
        .issuer_name(_name("cleartext test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = Pki(
        leaf_cert=directory / "leaf.pem",
        leaf_key=directory / "leaf.key",
        ca_cert=directory / "ca.pem",
        leaf_der=leaf.public_bytes(serialization.Encoding.DER),
        ca_der=ca.public_bytes(serialization.Encoding.DER),
    )
    paths.leaf_cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.leaf_key.write_bytes(
        leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _drain(stream: object, lines: queue.Queue[str]) -> None:
    """Read s_server's output so its pipe never fills, and report lines to the waiter."""
    for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
        lines.put(raw.decode("utf-8", "replace"))
    lines.put("")


@contextmanager
def s_server(pki: Pki, *args: str, chain: bool = False) -> Iterator[int]:
    """Run ``openssl s_server`` with ``args`` on a free loopback port; yield the port."""
    assert OPENSSL is not None
    for _attempt in range(3):
        port = _free_port()
        cmd = [
            OPENSSL,
            "s_server",
            "-accept",
            f"{HOST}:{port}",
            "-cert",
            str(pki.leaf_cert),
            "-key",
            str(pki.leaf_key),
            *(["-cert_chain", str(pki.ca_cert)] if chain else []),
            *args,
        ]
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_drain, args=(proc.stdout, lines), daemon=True).start()
        output: list[str] = []
        ready = False
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if not line:
                break  # s_server exited
            output.append(line)
            if line.startswith("ACCEPT"):
                ready = True
                break
        if ready:
            try:
                yield port
            finally:
                _stop(proc)
            return
        _stop(proc)
        if not any("unable to bind" in line or "Address already in use" in line for line in output):
            pytest.fail(f"s_server {' '.join(args)} did not start:\n{''.join(output)}")
    pytest.fail("s_server could not bind a free port after 3 attempts")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdin is not None:
        proc.stdin.close()


def probe(
    port: int, version: TLSVersion, suites: Sequence[int], server_name: str | None = "localhost"
) -> ServerFlight:
    """What the real I/O layer does, with a blocking socket: write the hello, feed the reader."""
    reader = ServerFlightReader()
    deadline = time.monotonic() + PROBE_TIMEOUT
    with socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT) as sock:
        sock.sendall(client_hello(version, suites, server_name))
        while reader.result is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            except ConnectionResetError:
                break
            if not data:
                break
            reader.feed(data)
    return reader.result if reader.result is not None else reader.eof()


def _openssl_knows(cipher_spec: str) -> bool:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, "ciphers", cipher_spec], capture_output=True, timeout=30, check=False)
    return done.returncode == 0


# -- versions ---------------------------------------------------------------------------


def test_tls12_hello_gets_tls12_and_the_certificate_chain(pki: Pki) -> None:
    with s_server(pki, chain=True) as port:
        flight = probe(port, TLSVersion.TLS1_2, BROAD_SUITES)
    assert flight.outcome is Outcome.ACCEPTED, flight.detail
    assert flight.version is TLSVersion.TLS1_2
    assert flight.cipher in BROAD_SUITES
    assert flight.certificates == (pki.leaf_der, pki.ca_der)


@pytest.mark.parametrize("suites", [BROAD_SUITES, COMPACT_SUITES], ids=["broad", "compact"])
def test_tls12_single_certificate(pki: Pki, suites: tuple[int, ...]) -> None:
    with s_server(pki, "-tls1_2") as port:
        flight = probe(port, TLSVersion.TLS1_2, suites, server_name=None)
    assert flight.outcome is Outcome.ACCEPTED, flight.detail
    assert flight.cipher in suites
    assert flight.certificates == (pki.leaf_der,)


def test_tls13_hello_gets_tls13(pki: Pki) -> None:
    with s_server(pki) as port:
        flight = probe(port, TLSVersion.TLS1_3, TLS13_SUITES)
    assert flight.outcome is Outcome.ACCEPTED, flight.detail
    assert flight.version is TLSVersion.TLS1_3
    assert flight.cipher in TLS13_SUITES
    assert not flight.hello_retry
    assert flight.certificates == ()  # encrypted in TLS 1.3


def test_tls13_hello_retry_request(pki: Pki) -> None:
    # The server insists on P-256 while we sent an x25519 share: it must ask us to retry.
    with s_server(pki, "-groups", "P-256") as port:
        flight = probe(port, TLSVersion.TLS1_3, TLS13_SUITES)
    assert flight.outcome is Outcome.ACCEPTED, flight.detail
    assert flight.hello_retry
    assert flight.version is TLSVersion.TLS1_3


def test_tls13_only_hello_to_tls12_server_gets_protocol_version_alert(pki: Pki) -> None:
    with s_server(pki, "-tls1_2") as port:
        flight = probe(port, TLSVersion.TLS1_3, TLS13_SUITES)
    assert flight.outcome is Outcome.ALERT, flight.detail
    assert flight.alert_name == "protocol_version"


def test_tls10_hello_to_default_server_gets_alert(pki: Pki) -> None:
    # OpenSSL 3 at its default security level has no TLS 1.0; it answers internal_error or
    # protocol_version depending on build, so only the alert itself is asserted.
    with s_server(pki, "-cipher", "DEFAULT") as port:
        flight = probe(port, TLSVersion.TLS1_0, BROAD_SUITES)
    assert flight.outcome is Outcome.ALERT, flight.detail
    assert flight.alert_level == 2


def test_tls10_accepted_at_security_level_0(pki: Pki) -> None:
    with s_server(pki, "-tls1", "-cipher", "ALL:@SECLEVEL=0") as port:
        flight = probe(port, TLSVersion.TLS1_0, BROAD_SUITES)
    assert flight.outcome is Outcome.ACCEPTED, flight.detail
    assert flight.version is TLSVersion.TLS1_0
    assert flight.cipher in BROAD_SUITES
    assert flight.certificates == (pki.leaf_der,)


def test_sslv3_hello_is_refused(pki: Pki) -> None:
    """OpenSSL 3 cannot speak SSLv3 at all: our SSLv3 hello must be understood and refused."""
    with s_server(pki, "-cipher", "ALL:@SECLEVEL=0") as port:
        flight = probe(port, TLSVersion.SSL3, BROAD_SUITES)
    assert flight.outcome is Outcome.ALERT, flight.detail


def test_plain_tcp_server_is_not_tls(pki: Pki) -> None:
    """A peer that answers a hello with plaintext, like a confused mail server, is not-tls."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((HOST, 0))
        listener.listen(1)
        listener.settimeout(PROBE_TIMEOUT)
        port = listener.getsockname()[1]

        def answer() -> None:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(PROBE_TIMEOUT)
                try:
                    conn.recv(4096)
                    conn.sendall(b"-ERR unknown command\r\n")
                except OSError:
                    pass

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        flight = probe(port, TLSVersion.TLS1_2, BROAD_SUITES)
        thread.join(timeout=PROBE_TIMEOUT)
    assert flight.outcome is Outcome.NOT_TLS
    assert "-ERR" in flight.detail


# -- weak classes -----------------------------------------------------------------------


@dataclass(frozen=True)
class ClassCase:
    cls: WeakClass
    cipher_spec: str


CLASS_CASES = [
    ClassCase(WeakClass.TRIPLE_DES, "DES-CBC3-SHA:@SECLEVEL=0"),
    ClassCase(WeakClass.ANON, "aNULL:@SECLEVEL=0"),
    ClassCase(WeakClass.NULL, "eNULL:@SECLEVEL=0"),
    ClassCase(WeakClass.STATIC_RSA, "kRSA:@SECLEVEL=0"),
]


@pytest.mark.parametrize("case", CLASS_CASES, ids=lambda c: c.cls.value)
def test_class_only_hello_picks_a_suite_of_the_class(pki: Pki, case: ClassCase) -> None:
    if not _openssl_knows(case.cipher_spec):
        pytest.skip(
            f"this OpenSSL build cannot serve {case.cls.value} suites (`openssl ciphers "
            f"'{case.cipher_spec}'` fails: the suites are compiled out of this build)"
        )
    offered = suites_in_class(case.cls)
    with s_server(pki, "-tls1_2", "-cipher", case.cipher_spec) as port:
        flight = probe(port, TLSVersion.TLS1_2, offered)
    assert flight.outcome is Outcome.ACCEPTED, flight.detail
    assert flight.version is TLSVersion.TLS1_2
    assert flight.cipher in offered
    assert case.cls in weak_classes(flight.cipher)


def test_weak_class_hello_refused_by_default_server(pki: Pki) -> None:
    with s_server(pki) as port:
        flight = probe(port, TLSVersion.TLS1_2, suites_in_class(WeakClass.ANON))
    assert flight.outcome is Outcome.ALERT, flight.detail
    assert flight.alert_name == "handshake_failure"


def test_byte_by_byte_reading_of_a_real_flight(pki: Pki) -> None:
    """Capture a real s_server flight, then feed it one byte at a time: same result."""
    with (
        s_server(pki, chain=True) as port,
        socket.create_connection((HOST, port), timeout=PROBE_TIMEOUT) as sock,
    ):
        sock.sendall(client_hello(TLSVersion.TLS1_2, BROAD_SUITES, "localhost"))
        captured = bytearray()
        whole = ServerFlightReader()
        deadline = time.monotonic() + PROBE_TIMEOUT
        while whole.result is None and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            if not data:
                break
            captured += data
            whole.feed(data)
    assert whole.result is not None
    assert whole.result.outcome is Outcome.ACCEPTED and whole.result.version is TLSVersion.TLS1_2
    slow = ServerFlightReader()
    for i in range(len(captured)):
        slow.feed(captured[i : i + 1])
    assert slow.result == whole.result
