"""Smoke test of the lab itself (lab/labctl.py): the real servers say what the profiles promise.

Plain sockets and Python's ssl, no cleartext code: if these fail, the scanner's lab tests would fail
for the lab's sake, not the scanner's. Uses the session-wide ``lab`` fixture (tests/conftest.py), which
starts the lab unless it already runs; this module never stops it. Every socket has a timeout.
"""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import load_labctl

pytestmark = pytest.mark.lab

TIMEOUT = 5.0
MAIL = "mail.lab.example"


# --------------------------------------------------------------------------------------------------
# a tiny line-based client


class Dialog:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def line(self) -> str:
        for _ in range(1000):  # bounded: a line longer than ~512 KiB is a failure anyway
            if b"\r\n" in self.buf:
                raw, self.buf = self.buf.split(b"\r\n", 1)
                return raw.decode("utf-8", "replace")
            chunk = self.sock.recv(512)
            if not chunk:
                raise ConnectionError(f"closed; partial {self.buf[:80]!r}")
            self.buf += chunk
        raise AssertionError("line too long")

    def until(self, done: Callable[[str], bool], limit: int = 100) -> list[str]:
        lines = []
        for _ in range(limit):
            lines.append(self.line())
            if done(lines[-1]):
                return lines
        raise AssertionError(f"no end of reply in {limit} lines: {lines[-3:]}")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\r\n")

    def starttls(self, ctx: ssl.SSLContext, hostname: str | None = MAIL) -> None:
        assert not self.buf, "server sent data before the handshake"
        self.sock = ctx.wrap_socket(self.sock, server_hostname=hostname)


@contextmanager
def connect(address: str, port: int, tls: ssl.SSLContext | None = None,
            hostname: str | None = MAIL) -> Iterator[Dialog]:
    raw = socket.create_connection((address, port), timeout=TIMEOUT)
    raw.settimeout(TIMEOUT)
    sock = tls.wrap_socket(raw, server_hostname=hostname) if tls else raw
    try:
        yield Dialog(sock)
    finally:
        sock.close()


def smtp_reply(d: Dialog) -> list[str]:
    return d.until(lambda line: len(line) < 4 or line[3] != "-")


def ehlo(d: Dialog) -> list[str]:
    d.send("EHLO client.lab.example")
    reply = smtp_reply(d)
    assert reply[-1].startswith("250 "), reply
    return [line[4:] for line in reply[1:]]


def imap_caps(d: Dialog) -> set[str]:
    d.send("c CAPABILITY")
    lines = d.until(lambda line: line.startswith("c "))
    assert lines[-1].startswith("c OK"), lines
    caps = next(line for line in lines if line.startswith("* CAPABILITY "))
    return set(caps.split()[2:])


def pop3_capa(d: Dialog) -> list[str]:
    d.send("CAPA")
    lines = d.until(lambda line: line == "." or line.startswith("-ERR"))
    assert lines[0].startswith("+OK"), lines
    return lines[1:-1]


def verifying(ca_file: str, minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    ctx.minimum_version = minimum
    return ctx


def loose(version: ssl.TLSVersion | None = None, ciphers: str = "ALL:@SECLEVEL=0") -> ssl.SSLContext:
    """No verification; optionally exactly one protocol version; low security level for old servers."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if version is not None:
            ctx.minimum_version = version
            ctx.maximum_version = version
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers(ciphers)
    return ctx


def handshake(address: str, port: int, ctx: ssl.SSLContext) -> tuple[str, str, bytes]:
    """(protocol version, cipher name, leaf certificate DER) of an implicit-TLS handshake."""
    hostname = MAIL if ctx.check_hostname else None
    with socket.create_connection((address, port), timeout=TIMEOUT) as raw, \
            ctx.wrap_socket(raw, server_hostname=hostname) as tls:
        cipher = tls.cipher()
        assert cipher is not None
        return str(tls.version()), cipher[0], tls.getpeercert(binary_form=True) or b""


def refused(address: str, port: int, ctx: ssl.SSLContext) -> bool:
    try:
        handshake(address, port, ctx)
    except (ssl.SSLError, ConnectionError):
        return True
    return False


# --------------------------------------------------------------------------------------------------
# the manifest and the processes


def test_manifest_shape(lab: dict[str, Any]) -> None:
    assert Path(lab["ca_file"]).is_file()
    eps = lab["endpoints"]
    keys = {"address", "port", "protocol", "tls", "server", "profile", "hostname", "description"}
    assert all(set(e) >= keys for e in eps)
    assert {e["profile"] for e in eps} == {"plaintext", "starttls-optional", "tls-required", "legacy",
                                           "tls10-only", "hidden-login", "refused-login",
                                           "plaintext-on-tls-port"}
    assert {e["server"] for e in eps} == {"dovecot", "postfix", "openssl", "exim", "courier"}
    assert all(e["protocol"] in ("smtp", "pop3", "imap") for e in eps)
    assert all(e["tls"] in ("starttls", "implicit", "plaintext") for e in eps)
    assert all(e["port"] in (465, 993, 995) for e in eps if e["tls"] == "plaintext")
    assert all(e["address"].startswith("127.0.0.") and e["address"] != "127.0.0.1" for e in eps)
    assert len({(e["address"], e["port"]) for e in eps}) == len(eps)
    written = load_labctl().MANIFEST_FILE
    assert written.is_file()


def test_every_endpoint_greets(lab: dict[str, Any]) -> None:
    status = load_labctl().status()
    assert status and all(status.values()), [name for name, up in status.items() if not up]


def test_start_is_idempotent(lab: dict[str, Any]) -> None:
    manifest, started = load_labctl()._start()
    assert not started
    assert manifest == lab


def test_nothing_listens_on_127_0_0_1_or_everywhere(lab: dict[str, Any]) -> None:
    labctl = load_labctl()
    ports = {e["port"] for e in lab["endpoints"]}
    lab_binds = {(e["address"], e["port"]) for e in lab["endpoints"]}
    recorded = labctl._recorded_pids()
    assert set(recorded) == set(labctl.SERVER_NAMES)
    leaders = {pid: labctl._start_time(pid) for pid in recorded.values()}
    lab_pids = set(leaders) | set(labctl._descendants(leaders))
    ours = {pid: binds for pid, binds in labctl._port_holders(tuple(sorted(ports))).items()
            if pid in lab_pids}
    assert ours, "no lab server holds a mail port"
    for pid, binds in ours.items():
        for bind in binds:
            assert bind in lab_binds, f"lab server pid {pid} listens on {bind}"


def test_clients_connect_from_127_0_0_1(lab: dict[str, Any]) -> None:
    # Dovecot treats a client whose address equals the server's as secured: they must differ.
    with socket.create_connection(("127.0.0.4", 143), timeout=TIMEOUT) as s:
        assert s.getsockname()[0] == "127.0.0.1"
        assert s.getpeername()[0] == "127.0.0.4"


# --------------------------------------------------------------------------------------------------
# Dovecot


def test_plaintext_imap_offers_login_in_clear(lab: dict[str, Any]) -> None:
    with connect("127.0.0.2", 143) as d:
        assert d.line().startswith("* OK")
        caps = imap_caps(d)
        assert "AUTH=PLAIN" in caps
        assert "LOGINDISABLED" not in caps and "STARTTLS" not in caps
        d.send(f"l LOGIN {lab['login']['user']} {lab['login']['password']}")
        assert d.until(lambda line: line.startswith("l "))[-1].startswith("l OK")


def test_plaintext_pop3_offers_user_in_clear(lab: dict[str, Any]) -> None:
    with connect("127.0.0.2", 110) as d:
        assert d.line().startswith("+OK")
        capa = pop3_capa(d)
        assert "USER" in capa and "STLS" not in capa


def test_starttls_optional_imap_offers_both(lab: dict[str, Any]) -> None:
    with connect("127.0.0.3", 143) as d:
        d.line()
        caps = imap_caps(d)
        assert {"STARTTLS", "AUTH=PLAIN"} <= caps and "LOGINDISABLED" not in caps


def test_tls_required_imap_disables_login_before_starttls(lab: dict[str, Any]) -> None:
    with connect("127.0.0.4", 143) as d:
        assert d.line().startswith("* OK")
        caps = imap_caps(d)
        assert {"LOGINDISABLED", "STARTTLS"} <= caps
        assert not any(c.startswith("AUTH=") for c in caps)
        d.send("s STARTTLS")
        assert d.until(lambda line: line.startswith("s "))[-1].startswith("s OK")
        d.starttls(verifying(lab["ca_file"]))
        caps = imap_caps(d)
        assert "AUTH=PLAIN" in caps and "LOGINDISABLED" not in caps


def test_tls_required_pop3_hides_user_before_stls(lab: dict[str, Any]) -> None:
    with connect("127.0.0.4", 110) as d:
        d.line()
        capa = pop3_capa(d)
        assert "STLS" in capa and "USER" not in capa


@pytest.mark.parametrize("port", [993, 995])
def test_tls_required_implicit_tls_verifies_and_is_modern(lab: dict[str, Any], port: int) -> None:
    version, _, _ = handshake("127.0.0.4", port, verifying(lab["ca_file"]))
    assert version in ("TLSv1.2", "TLSv1.3")
    assert refused("127.0.0.4", port, loose(ssl.TLSVersion.TLSv1_1))
    assert refused("127.0.0.4", port, loose(ssl.TLSVersion.TLSv1_2, "aNULL:@SECLEVEL=0"))
    assert refused("127.0.0.4", port, loose(ssl.TLSVersion.TLSv1_2, "kRSA:@SECLEVEL=0"))


def test_legacy_imaps_accepts_tls10_with_expired_1024_bit_cert(lab: dict[str, Any]) -> None:
    version, _, der = handshake("127.0.0.5", 993, loose(ssl.TLSVersion.TLSv1))
    assert version == "TLSv1"
    cert = x509.load_der_x509_certificate(der)
    key = cert.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 1024
    assert cert.not_valid_after_utc < datetime.now(UTC)
    assert cert.issuer == cert.subject
    # OpenSSL names one reason only; at the default security level it is "EE certificate key too weak".
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake("127.0.0.5", 993, verifying(lab["ca_file"]))


def test_legacy_accepts_static_rsa_and_anonymous_suites(lab: dict[str, Any]) -> None:
    _, cipher, _ = handshake("127.0.0.5", 995, loose(ssl.TLSVersion.TLSv1_2, "kRSA:@SECLEVEL=0"))
    assert cipher.startswith(("AES", "CAMELLIA", "ARIA"))  # RSA key exchange: no ECDHE/DHE prefix
    _, cipher, _ = handshake("127.0.0.5", 995, loose(ssl.TLSVersion.TLSv1_2, "aNULL:@SECLEVEL=0"))
    assert cipher.startswith(("ADH", "AECDH"))


# --------------------------------------------------------------------------------------------------
# Postfix


def test_plaintext_smtp(lab: dict[str, Any]) -> None:
    with connect("127.0.0.2", 25) as d:
        assert d.line().startswith("220 ")
        ext = ehlo(d)
        assert not any(e.startswith(("AUTH", "STARTTLS")) for e in ext)
    with connect("127.0.0.2", 587) as d:
        d.line()
        ext = ehlo(d)
        assert "AUTH PLAIN LOGIN" in ext and "STARTTLS" not in ext


def test_starttls_optional_smtp_offers_auth_before_starttls(lab: dict[str, Any]) -> None:
    with connect("127.0.0.3", 25) as d:
        assert d.line().startswith("220 ")
        ext = ehlo(d)
        assert "STARTTLS" in ext and any(e.startswith("AUTH ") for e in ext)


def test_tls_required_submission_offers_auth_only_after_starttls(lab: dict[str, Any]) -> None:
    with connect("127.0.0.4", 587) as d:
        d.line()
        ext = ehlo(d)
        assert "STARTTLS" in ext and not any(e.startswith("AUTH") for e in ext)
        d.send("STARTTLS")
        assert smtp_reply(d)[-1].startswith("220 ")
        d.starttls(verifying(lab["ca_file"]))
        ext = ehlo(d)
        assert "AUTH PLAIN LOGIN" in ext


def test_tls_required_submissions_is_implicit_tls(lab: dict[str, Any]) -> None:
    with connect("127.0.0.4", 465, tls=verifying(lab["ca_file"])) as d:
        assert d.line().startswith("220 ")
        assert "AUTH PLAIN LOGIN" in ehlo(d)


def test_postfix_relays_nothing(lab: dict[str, Any]) -> None:
    with connect("127.0.0.2", 25) as d:
        d.line()
        ehlo(d)
        d.send("MAIL FROM:<a@client.lab.example>")
        assert smtp_reply(d)[-1].startswith("250")
        d.send("RCPT TO:<someone@example.com>")
        assert smtp_reply(d)[-1][0] == "5"


def test_legacy_smtp_starttls_accepts_tls10(lab: dict[str, Any]) -> None:
    with connect("127.0.0.5", 25) as d:
        d.line()
        assert "STARTTLS" in ehlo(d)
        d.send("STARTTLS")
        assert smtp_reply(d)[-1].startswith("220 ")
        d.starttls(loose(ssl.TLSVersion.TLSv1), hostname=None)
        assert isinstance(d.sock, ssl.SSLSocket) and d.sock.version() == "TLSv1"


# --------------------------------------------------------------------------------------------------
# openssl s_server (TLS layer only)


def test_tls10_only_993(lab: dict[str, Any]) -> None:
    assert handshake("127.0.0.6", 993, loose(ssl.TLSVersion.TLSv1))[0] == "TLSv1"
    assert handshake("127.0.0.6", 993, loose(ssl.TLSVersion.TLSv1_1))[0] == "TLSv1.1"
    assert refused("127.0.0.6", 993, loose(ssl.TLSVersion.TLSv1_2))
    assert refused("127.0.0.6", 993, loose(ssl.TLSVersion.TLSv1_3))


def test_weak_suites_995(lab: dict[str, Any]) -> None:
    _, cipher, _ = handshake("127.0.0.6", 995, loose(ssl.TLSVersion.TLSv1_2, "aNULL:@SECLEVEL=0"))
    assert cipher.startswith(("ADH", "AECDH"))
    _, cipher, _ = handshake("127.0.0.6", 995, loose(ssl.TLSVersion.TLSv1_2, "eNULL:@SECLEVEL=0"))
    assert "NULL" in cipher
    assert refused("127.0.0.6", 995, loose(ssl.TLSVersion.TLSv1_2, "kRSA:@SECLEVEL=0"))  # no static RSA
    assert refused("127.0.0.6", 995, loose(ssl.TLSVersion.TLSv1_1))
