"""The scanner never sends a credential: a recording server that offers every way to log in checks it.

The server advertises AUTH PLAIN/LOGIN, IMAP LOGIN, POP3 USER and STARTTLS, answers every login the
probe starts with a request for credentials (SMTP 334, "+", POP3 +OK to USER), completes real TLS
handshakes, and records every command line it receives, in clear and inside TLS, over all of the
probe's connections. Allowed: the capability, STARTTLS and goodbye commands, the command pipelined
after STARTTLS, a login *start* with no initial response, the "*" that cancels it (and only right
after the server asked for credentials), and USER with a made-up name. Never PASS, a SASL response,
or LOGIN -- except, opt-in only, LOGIN with a random made-up identity.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
from collections.abc import Callable
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
    Protocol.SMTP: {"EHLO", "HELO", "STARTTLS", "QUIT", "HELP", "AUTH", "*"},
    Protocol.POP3: {"CAPA", "STLS", "QUIT", "NOOP", "AUTH", "USER", "*"},
    Protocol.IMAP: {"CAPABILITY", "STARTTLS", "LOGOUT", "NOOP", "AUTHENTICATE", "*"},
}
CONTINUATION = {Protocol.SMTP: b"334 \r\n", Protocol.POP3: b"+ \r\n", Protocol.IMAP: b"+ \r\n"}
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


def reply_for(protocol: Protocol, line: str, last_tag: str = "*") -> tuple[bytes, bool]:
    """(reply, whether to start TLS after it) for one command line: every login start is asked for
    credentials, which the probe must never give."""
    words = line.split()
    if line == "*":  # the cancel
        return {Protocol.SMTP: b"501 5.7.0 Authentication aborted\r\n", Protocol.POP3: b"-ERR aborted\r\n",
                Protocol.IMAP: f"{last_tag} BAD aborted\r\n".encode()}[protocol], False
    if protocol is not Protocol.IMAP and words and words[0].upper() == "AUTH":
        return CONTINUATION[protocol], False
    if protocol is Protocol.POP3 and words and words[0].upper() == "USER":
        return b"+OK send PASS\r\n", False
    if protocol is Protocol.IMAP and len(words) > 1 and words[1].upper() == "AUTHENTICATE":
        return CONTINUATION[protocol], False
    if protocol is Protocol.IMAP and len(words) > 1 and words[1].upper() == "LOGIN":
        return f"{words[0]} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n".encode(), False
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


Replies = Callable[[Protocol, str, str], tuple[bytes, bool]]


async def record_probe(
    protocol: Protocol, cert: tuple[str, str], host: str, login_probe: str = "cancel",
    replies: Replies | None = None,
) -> tuple[list[list[str]], int]:
    """Every session's command lines, in order, and the number of connections the probe made."""
    sessions: list[list[str]] = []
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*cert)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received: list[str] = []
        sessions.append(received)
        last_tag = "*"
        try:
            writer.write(GREETING[protocol])
            for _ in range(20):
                line = await asyncio.wait_for(reader.readline(), 5)
                if not line:
                    return
                text = line.decode("latin-1").strip()
                received.append(text)
                answer, upgrade = (replies or reply_for)(protocol, text, last_tag)
                if protocol is Protocol.IMAP and text != "*":
                    last_tag = text.split()[0] if text.split() else "*"
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
        settings = ProbeSettings(read_timeout=3, endpoint_timeout=30, login_probe=login_probe)
        obs = await probe(endpoint, settings)
    assert obs.status.value == "success", obs.status_detail
    assert obs.plain is not None and obs.plain.login_probes, "the login probe ran"
    return sessions, obs.connections


def verb_of(protocol: Protocol, line: str) -> str:
    words = line.split()
    if line == "*":
        return "*"
    return (words[1] if protocol is Protocol.IMAP and len(words) > 1 else words[0] if words else "").upper()


def assert_no_secret(protocol: Protocol, sessions: list[list[str]], made_up_login: bool = False) -> None:
    allowed = ALLOWED[protocol] | ({"LOGIN"} if made_up_login else set())
    for received in sessions:
        for i, line in enumerate(received):
            verb = verb_of(protocol, line)
            assert verb in allowed, (line, received)
            words = line.split()
            if verb in ("AUTH", "AUTHENTICATE"):
                # a mechanism and nothing else: no initial response
                assert len(words) == (3 if protocol is Protocol.IMAP else 2), line
            if verb == "*":
                # only right after a login start that the server answered with a continuation
                assert i > 0 and verb_of(protocol, received[i - 1]) in ("AUTH", "AUTHENTICATE"), received
            if verb == "USER":
                assert len(words) == 2 and words[1].startswith("cleartext-probe-"), line
            if verb == "LOGIN":
                assert len(words) == 4 and all(w.startswith("cleartext-probe-") for w in words[2:]), line
                assert words[2] != words[3], "a made-up identity is random, user and password alike"
            for secret in ("PASS", "APOP", "MAIL FROM", "RCPT"):
                assert not line.upper().startswith(secret), line


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("protocol", list(Protocol))
def test_only_capability_starttls_and_goodbye_are_ever_sent(
    protocol: Protocol, host: str, tmp_path: Path
) -> None:
    """Over IPv4 and IPv6 loopback alike."""
    sessions, connections = asyncio.run(record_probe(protocol, make_cert(tmp_path), host))
    assert_no_secret(protocol, sessions)
    assert connections >= 2, "the TLS matrix ran too, and its connections are checked as well"
    every = [line for received in sessions for line in received]
    assert "*" in every, "the server asked for credentials and got only the cancel"
    if protocol is Protocol.POP3:
        assert not any(verb_of(protocol, line) == "USER" for line in every), "SASL was accepted: no USER"


def test_the_opt_in_made_up_login_sends_only_a_random_identity(tmp_path: Path) -> None:
    """IMAP whose AUTHENTICATE is refused: --login-probe made-up sends LOGIN with a random identity."""

    def refusing(protocol: Protocol, line: str, last_tag: str = "*") -> tuple[bytes, bool]:
        words = line.split()
        if len(words) > 1 and words[1].upper() == "AUTHENTICATE":
            return f"{words[0]} NO [PRIVACYREQUIRED] TLS first\r\n".encode(), False
        return reply_for(protocol, line, last_tag)

    cert = make_cert(tmp_path)
    sessions, _ = asyncio.run(record_probe(Protocol.IMAP, cert, "127.0.0.1", "made-up", refusing))
    default, _ = asyncio.run(record_probe(Protocol.IMAP, cert, "127.0.0.1", replies=refusing))
    assert_no_secret(Protocol.IMAP, sessions, made_up_login=True)
    logins = [line for received in sessions for line in received if verb_of(Protocol.IMAP, line) == "LOGIN"]
    assert len(logins) == 1
    assert_no_secret(Protocol.IMAP, default)  # and without the opt-in, no LOGIN at all
