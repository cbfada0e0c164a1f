"""The scanner never sends a credential: a recording server that offers every way to log in checks it.

The server advertises AUTH PLAIN/LOGIN, IMAP LOGIN, POP3 USER and STARTTLS, completes real TLS
handshakes, and records every command line it receives, in clear and inside TLS, over all of the probe's
connections. The only commands allowed are the capability, STARTTLS and goodbye commands.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cleartext.probe import ProbeSettings, probe
from cleartext.record import Protocol, TLSMode
from cleartext.targets import Endpoint

ALLOWED = {
    Protocol.SMTP: {"EHLO", "HELO", "STARTTLS", "QUIT"},
    Protocol.POP3: {"CAPA", "STLS", "QUIT"},
    Protocol.IMAP: {"CAPABILITY", "STARTTLS", "LOGOUT"},
}
GREETING = {
    Protocol.SMTP: b"220 rec.lab.example ESMTP\r\n",
    Protocol.POP3: b"+OK rec ready <1.2@rec.lab.example>\r\n",
    Protocol.IMAP: b"* OK rec ready\r\n",
}


def make_cert(tmp: Path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rec.lab.example")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("rec.lab.example")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "rec.pem", tmp / "rec.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def reply_for(protocol: Protocol, line: str) -> tuple[bytes, bool]:
    """(reply, whether to start TLS after it) for one command line."""
    words = line.split()
    if protocol is Protocol.SMTP:
        verb = words[0].upper() if words else ""
        if verb in ("EHLO", "HELO"):
            return (
                b"250-rec.lab.example\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
                False,
            )
        if verb == "STARTTLS":
            return b"220 go ahead\r\n", True
        return b"221 bye\r\n" if verb == "QUIT" else b"502 no\r\n", False
    if protocol is Protocol.POP3:
        verb = words[0].upper() if words else ""
        if verb == "CAPA":
            return b"+OK\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\n.\r\n", False
        if verb == "STLS":
            return b"+OK begin TLS\r\n", True
        return b"+OK bye\r\n" if verb == "QUIT" else b"-ERR no\r\n", False
    tag = words[0] if words else "*"
    verb = words[1].upper() if len(words) > 1 else ""
    if verb == "CAPABILITY":
        return f"* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN AUTH=LOGIN\r\n{tag} OK done\r\n".encode(), False
    if verb == "STARTTLS":
        return f"{tag} OK begin TLS\r\n".encode(), True
    if verb == "LOGOUT":
        return f"* BYE\r\n{tag} OK bye\r\n".encode(), False
    return f"{tag} BAD no\r\n".encode(), False


async def record_probe(protocol: Protocol, cert: tuple[str, str], host: str) -> tuple[list[str], int]:
    received: list[str] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(GREETING[protocol])
            for _ in range(20):
                line = await asyncio.wait_for(reader.readline(), 5)
                if not line:
                    return
                text = line.decode("latin-1").strip()
                received.append(text)
                answer, upgrade = reply_for(protocol, text)
                writer.write(answer)
                await writer.drain()
                if upgrade:
                    await asyncio.wait_for(writer.start_tls(ctx), 5)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError, ValueError):
            pass
        finally:
            writer.transport.abort()

    server = await asyncio.start_server(session, host, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        endpoint = Endpoint(host, port, protocol, TLSMode.STARTTLS, None)
        obs = await probe(endpoint, ProbeSettings(read_timeout=3, endpoint_timeout=30))
    assert obs.status.value == "success", obs.status_detail
    return received, obs.connections


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("protocol", list(Protocol))
def test_only_capability_starttls_and_goodbye_are_ever_sent(
    protocol: Protocol, host: str, tmp_path: Path
) -> None:
    """Over IPv4 and IPv6 loopback alike."""
    received, connections = asyncio.run(record_probe(protocol, make_cert(tmp_path), host))
    verbs = {(line.split()[1] if protocol is Protocol.IMAP else line.split()[0]).upper() for line in received}
    assert verbs <= ALLOWED[protocol], received
    assert connections >= 2, "the TLS matrix ran too, and its connections are checked as well"
    for line in received:
        for secret in ("AUTH", "LOGIN ", "USER", "PASS", "APOP", "MAIL FROM", "RCPT"):
            assert not line.upper().startswith(secret) and f" {secret}" not in line.upper(), line
