#!/usr/bin/env python3
"""Hostile and odd mail servers for the lab: what no real Dovecot or Postfix can be coaxed into doing.

Each profile listens on its own port of one loopback address (default 127.0.0.7) and misbehaves in one
precise way: drips bytes, sends an endless line, never answers, closes mid-dialog, answers TLS with
garbage, is not a mail server at all, refuses by policy, answers raw ClientHellos with RC4/EXPORT suites
and SSLv3, or works only when STARTTLS is asked without being advertised. Stdlib only, so it runs before
any virtual environment exists.

    python3 lab/hostile.py --address 127.0.0.7 --cert CERT --key KEY

Loopback only; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

MAX_SESSION = 60.0  # seconds any one connection may live
DRIP_BYTES = 600  # a drip server sends at most this many bytes, one a second
MAX_COMMANDS = 20  # commands one session answers at most
# The lab account (labctl's LOGIN_USER / LOGIN_PASSWORD; --login overrides it).
LOGIN = {"user": "labuser", "password": "lab-password"}


@dataclass(frozen=True)
class Profile:
    port: int
    service: str  # the scanner's service name for this port (PORT=SERVICE)
    name: str
    description: str
    # Ground truth, as in labctl's manifest: what a login with the lab account does before TLS
    # (accepted | refused | none), whether the capabilities before TLS offer one, and the login inside TLS.
    plaintext_login: str = "none"
    advertised: bool = False
    tls_login: str = "none"


PROFILES = (
    Profile(2525, "smtp", "starttls-broken", "advertises STARTTLS, says 220 go ahead, then sends garbage"),
    Profile(2526, "smtp", "starttls-hidden", "STARTTLS works but is not advertised; AUTH only after TLS",
            "refused", False, "accepted"),
    Profile(2527, "smtp", "drip", "sends its greeting one byte a second"),
    Profile(2528, "smtp", "endless-line", "sends a greeting line that never ends"),
    Profile(2529, "smtp", "silent", "accepts the connection and never says a word"),
    Profile(2530, "smtp", "hangup", "greets, then closes the connection when asked EHLO"),
    Profile(2531, "imaps", "tls-garbage", "implicit-TLS port that answers the ClientHello with garbage"),
    Profile(2532, "smtp", "not-mail", "an SSH server banner"),
    Profile(2533, "smtp", "policy", "554 greeting: refuses service"),
    Profile(2534, "imaps", "rc4-export-sslv3", "answers raw hellos with RC4/EXPORT suites and SSLv3"),
    Profile(2535, "pop3", "pop3-no-capa", "RFC 1939 POP3: no CAPA, no STLS; USER/PASS in clear", "accepted"),
    Profile(2536, "smtp", "flood", "sends an endless stream of short continuation lines"),
    Profile(2537, "smtp", "evil-banner", "terminal escapes, markup and a NUL in its banner; AUTH in clear",
            "accepted", True),
    Profile(2538, "pop3", "pop3-hidden-login", "CAPA offers neither USER nor SASL before STLS, yet USER/PASS "
            "and AUTH PLAIN succeed in clear", "accepted", False, "accepted"),
    Profile(2539, "smtp", "starttls-injection", "answers, inside TLS, a command pipelined after STARTTLS in "
            "clear (CVE-2011-0411 class)"),
)


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await asyncio.wait_for(reader.readline(), timeout=20)
    except (TimeoutError, ValueError, ConnectionError):
        return b""


# --- plaintext misbehaviour ------------------------------------------------------------------------


async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
    banner = b"220 drip.lab.example ESMTP slowly " + b"." * DRIP_BYTES + b"\r\n"
    for byte in banner[:DRIP_BYTES]:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(1.0)


async def endless_line(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    writer.write(b"220 ")
    for _ in range(2000):  # 2000 * 1 KiB = 2 MiB at most
        writer.write(b"A" * 1024)
        await writer.drain()


async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
    for _ in range(100_000):
        writer.write(b"220-x\r\n")
        if _ % 100 == 0:
            await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
    await asyncio.sleep(MAX_SESSION)


async def hangup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
    writer.write(b"220 hangup.lab.example ESMTP\r\n")
    await writer.drain()
    await _read_line(reader)


async def not_mail(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()
    await _read_line(reader)


async def policy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext) -> None:
    writer.write(b"554 5.7.1 policy.lab.example no SMTP service here\r\n")
    await writer.drain()
    await _read_line(reader)


async def evil_banner(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    writer.write(
        b"220 evil.lab.example \x1b[2J\x1b[31m[bold red]pwned[/bold red] <script>x</script>\x00 ESMTP\r\n"
    )
    await writer.drain()
    await _smtp_commands(
        reader, writer, b"250-evil.lab.example \x1b]0;title\x07\r\n250 AUTH PLAIN\r\n", False, auth=True
    )


def _credentials_ok(user: bytes, password: bytes) -> bool:
    return user == LOGIN["user"].encode() and password == LOGIN["password"].encode()


def _plain_ok(response: bytes) -> bool:
    """A SASL PLAIN response (base64 of authzid NUL authcid NUL password) with the lab account."""
    try:
        parts = base64.b64decode(response.strip(), validate=True).split(b"\0")
    except ValueError:
        return False
    return len(parts) == 3 and _credentials_ok(parts[1], parts[2])


async def _pop3_commands(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, capa: bytes | None, login: bool,
    stls: bool = False, sasl: bool = True,
) -> bool:
    """A POP3 AUTHORIZATION state: CAPA answers ``capa`` (or -ERR when None); with ``login``, USER/PASS and
    (with ``sasl``) AUTH PLAIN take the lab account. True when the client asked STLS (and ``stls``), False
    when it left."""
    user = b""
    for _ in range(MAX_COMMANDS):
        line = await _read_line(reader)
        if not line:
            return False
        verb, _, arg = line.strip().partition(b" ")
        verb = verb.upper()
        if verb == b"QUIT":
            writer.write(b"+OK bye\r\n")
            await writer.drain()
            return False
        if verb == b"CAPA" and capa is not None:
            writer.write(b"+OK\r\n" + capa + b".\r\n")
        elif verb == b"STLS" and stls:
            writer.write(b"+OK Begin TLS negotiation\r\n")
            await writer.drain()
            return True
        elif verb == b"USER" and login and arg:
            user = arg
            writer.write(b"+OK\r\n")
        elif verb == b"PASS" and login and user:
            writer.write(b"+OK logged in\r\n" if _credentials_ok(user, arg) else b"-ERR [AUTH] invalid\r\n")
        elif verb == b"AUTH" and login and sasl and arg.upper().startswith(b"PLAIN"):
            initial = arg[5:].strip()
            if not initial:
                writer.write(b"+ \r\n")
                await writer.drain()
                initial = (await _read_line(reader)).strip()
            if initial == b"*":
                writer.write(b"-ERR authentication aborted\r\n")
            else:
                writer.write(b"+OK logged in\r\n" if _plain_ok(initial) else b"-ERR [AUTH] invalid\r\n")
        else:
            writer.write(b"-ERR unknown command\r\n")
        await writer.drain()
    return False


async def pop3_no_capa(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    writer.write(b"+OK POP3 old.lab.example server ready\r\n")
    await writer.drain()
    await _pop3_commands(reader, writer, None, login=True, sasl=False)  # RFC 1939: USER/PASS only


async def pop3_hidden_login(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    """What no Debian POP3 server does (Dovecot and Cyrus list USER exactly when they take it; Courier
    always lists it): a CAPA that offers no login before STLS, and a login that works all the same."""
    writer.write(b"+OK POP3 hidden.lab.example ready\r\n")
    await writer.drain()
    if not await _pop3_commands(reader, writer, b"TOP\r\nUIDL\r\nSTLS\r\n", login=True, stls=True):
        return
    _discard_buffered(reader)
    try:
        await asyncio.wait_for(writer.start_tls(ctx), timeout=10)
    except (ssl.SSLError, OSError, TimeoutError):
        return
    await _pop3_commands(reader, writer, b"TOP\r\nUIDL\r\nUSER\r\nSASL PLAIN\r\n", login=True)


# --- STARTTLS misbehaviour -------------------------------------------------------------------------


async def _smtp_commands(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ehlo: bytes, starttls: bool,
    auth: bool = False,
) -> bool:
    """Answer EHLO/HELO with ``ehlo`` until the client asks STARTTLS (True, if ``starttls``) or leaves. With
    ``auth``, AUTH PLAIN takes the lab account (334 for the response, 501 when it is ``*``)."""
    for _ in range(MAX_COMMANDS):
        line = await _read_line(reader)
        if not line:
            return False
        command = line.strip().upper()
        if command.startswith((b"EHLO", b"HELO")):
            writer.write(ehlo)
        elif command.startswith(b"AUTH PLAIN") and auth:
            initial = line.strip()[10:].strip()
            if not initial:
                writer.write(b"334 \r\n")
                await writer.drain()
                initial = (await _read_line(reader)).strip()
            if initial == b"*":
                writer.write(b"501 5.7.0 Authentication aborted\r\n")
            elif _plain_ok(initial):
                writer.write(b"235 2.7.0 Authentication successful\r\n")
            else:
                writer.write(b"535 5.7.8 Authentication failed\r\n")
        elif command == b"NOOP":
            writer.write(b"250 2.0.0 OK\r\n")
        elif command == b"STARTTLS" and starttls:
            writer.write(b"220 2.0.0 Ready to start TLS\r\n")
            await writer.drain()
            return True
        elif command == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            return False
        else:
            writer.write(b"502 5.5.2 not here\r\n")
        await writer.drain()
    return False


async def _smtp_until_starttls(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ehlo: bytes
) -> bool:
    """Greet and answer EHLO until the client asks STARTTLS (True) or leaves (False)."""
    writer.write(b"220 odd.lab.example ESMTP\r\n")
    await writer.drain()
    return await _smtp_commands(reader, writer, ehlo, True)


async def starttls_broken(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    ehlo = b"250-odd.lab.example\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    if await _smtp_until_starttls(reader, writer, ehlo):
        await _read_some(reader)
        writer.write(b"this is not a TLS record\r\n" * 4)
        await writer.drain()


async def starttls_hidden(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    ehlo = b"250-odd.lab.example\r\n250 8BITMIME\r\n"
    if not await _smtp_until_starttls(reader, writer, ehlo):
        return
    _discard_buffered(reader)  # not injectable: what came in clear after STARTTLS is dropped
    try:
        await asyncio.wait_for(writer.start_tls(ctx), timeout=10)
    except (ssl.SSLError, OSError, TimeoutError):
        return
    await _smtp_commands(reader, writer, b"250-odd.lab.example\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n", False,
                         auth=True)


def _discard_buffered(reader: asyncio.StreamReader) -> None:
    """Drop what the client sent in clear after STARTTLS, as fixed servers do (asyncio keeps it)."""
    buffered = getattr(reader, "_buffer", None)
    if isinstance(buffered, bytearray):
        buffered.clear()


async def starttls_injection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    """The STARTTLS command-injection flaw (CVE-2011-0411 in Postfix, and the same in many servers of
    2011): bytes the client sent in clear after STARTTLS stay in the server's input buffer and are read,
    after the handshake, as if they had come inside TLS. asyncio's start_tls keeps the StreamReader's
    buffer, which is exactly that flaw; a fixed server discards what it read past STARTTLS. No server in
    Debian 12 has it any more, so the lab fakes it here."""
    ehlo = b"250-inject.lab.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
    if not await _smtp_until_starttls(reader, writer, ehlo):
        return
    try:
        await asyncio.wait_for(writer.start_tls(ctx), timeout=10)
    except (ssl.SSLError, OSError, TimeoutError):
        return
    await _smtp_commands(reader, writer, ehlo.replace(b"250-STARTTLS\r\n", b""), False)


# --- TLS misbehaviour -------------------------------------------------------------------------------


async def _read_some(reader: asyncio.StreamReader, size: int = 16384) -> bytes:
    try:
        return await asyncio.wait_for(reader.read(size), timeout=10)
    except (TimeoutError, ConnectionError):
        return b""


async def tls_garbage(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    await _read_some(reader)
    writer.write(os.urandom(16) + b"\x00garbage, not TLS\r\n")
    await writer.drain()
    await _read_some(reader)


RC4_OR_EXPORT = (0x0005, 0x0004, 0x0003, 0x0006, 0x0008, 0xC011, 0xC007, 0x0018, 0x0017)


def _offered_suites(hello: bytes) -> tuple[int, list[int]]:
    """(client legacy_version, offered suites) from a ClientHello record, or (0, [])."""
    try:
        if hello[0] != 0x16 or hello[5] != 0x01:
            return 0, []
        body = hello[9:]
        version = struct.unpack(">H", body[0:2])[0]
        sid_len = body[34]
        pos = 35 + sid_len
        (suites_len,) = struct.unpack(">H", body[pos : pos + 2])
        raw = body[pos + 2 : pos + 2 + suites_len]
        return version, [struct.unpack(">H", raw[i : i + 2])[0] for i in range(0, len(raw) - 1, 2)]
    except (IndexError, struct.error):
        return 0, []


def _server_hello(version: int, suite: int) -> bytes:
    body = struct.pack(">H", version) + os.urandom(32) + b"\x00" + struct.pack(">H", suite) + b"\x00"
    handshake = b"\x02" + struct.pack(">I", len(body))[1:] + body
    done = b"\x0e\x00\x00\x00"  # ServerHelloDone, so a reader need not wait for more
    return b"\x16" + struct.pack(">HH", version, len(handshake) + len(done)) + handshake + done


async def rc4_export_sslv3(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
) -> None:
    """A 1990s TLS stack: picks RC4 or EXPORT when offered, at whatever version is asked (SSLv3 too)."""
    hello = await _read_some(reader)
    version, suites = _offered_suites(hello)
    chosen = next((s for s in RC4_OR_EXPORT if s in suites), None)
    if version and chosen is not None and 0x0300 <= version <= 0x0303:
        writer.write(_server_hello(version, chosen))
    else:
        # handshake_failure alert, at the record version the client used
        writer.write(b"\x15" + struct.pack(">HH", min(max(version, 0x0300), 0x0303), 2) + b"\x02\x28")
    await writer.drain()
    await _read_some(reader)


HANDLERS: dict[
    str, Callable[[asyncio.StreamReader, asyncio.StreamWriter, ssl.SSLContext], Awaitable[None]]
] = {
    "starttls-broken": starttls_broken,
    "starttls-hidden": starttls_hidden,
    "drip": drip,
    "endless-line": endless_line,
    "silent": silent,
    "hangup": hangup,
    "tls-garbage": tls_garbage,
    "not-mail": not_mail,
    "policy": policy,
    "rc4-export-sslv3": rc4_export_sslv3,
    "pop3-no-capa": pop3_no_capa,
    "flood": flood,
    "evil-banner": evil_banner,
    "pop3-hidden-login": pop3_hidden_login,
    "starttls-injection": starttls_injection,
}


def _serve(profile: Profile, ctx: ssl.SSLContext):  # type: ignore[no-untyped-def]
    handler = HANDLERS[profile.name]

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(handler(reader, writer, ctx), timeout=MAX_SESSION)
        except (TimeoutError, ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()

    return session


async def main_async(address: str, cert: str, key: str) -> None:
    if not address.startswith("127."):
        raise SystemExit("hostile.py: refusing to listen outside 127.0.0.0/8")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    servers = [
        await asyncio.start_server(_serve(p, ctx), address, p.port, reuse_address=True) for p in PROFILES
    ]
    try:
        await asyncio.gather(*(s.serve_forever() for s in servers))
    finally:
        for s in servers:
            s.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.7")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--login", nargs=2, metavar=("USER", "PASSWORD"), help="the lab account")
    args = parser.parse_args()
    if args.login:
        LOGIN.update(user=args.login[0], password=args.login[1])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args.address, args.cert, args.key))


if __name__ == "__main__":
    main()
