"""A scripted network for the probe's tests: the dialog runs against a server's replayed bytes, no socket.

:class:`ScriptedNetwork` stands in for :class:`cleartext.probe.transport.Network` (as httpcore's mock
backend does for its connections): each connection the probe opens gets a fresh :class:`Script`, whose
``respond()`` answers each command line the probe sends. STARTTLS is modelled with what matters to the
probe -- whether the handshake succeeds, and what becomes of commands pipelined behind STARTTLS (answered
inside TLS, discarded, or the connection closed) -- and no cryptography: the "TLS" session is the same
byte stream, with an object that reports a version, a cipher and an optional certificate. Every line the
probe sent, per connection, is kept in :attr:`ScriptedNetwork.sent`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from cleartext.probe.transport import Network, Wire

CLOSE = b"\x00close\x00"
"""What :meth:`Script.respond` returns to have the server close the connection."""
START_TLS = b"\x00tls\x00"
"""Appended to a reply after which the server starts TLS (its STARTTLS answer)."""


@dataclass
class Script:
    """One connection's server. Override :meth:`respond` (or pass ``replies``) for the dialog."""

    greeting: bytes = b""
    replies: dict[bytes, bytes] = field(default_factory=dict)  # first word of a command -> reply
    implicit: bool = False  # the greeting comes after the handshake
    greets_in_clear: bool = False  # on an implicit port: greet at once, in clear (a misconfigured port)
    handshake: Literal["ok", "fail", "reset"] = "ok"
    pipelined: Literal["discard", "answer", "close"] = "discard"  # commands behind STARTTLS
    version: str = "TLSv1.3"
    cipher: str = "TLS_AES_128_GCM_SHA256"
    certificate: bytes | None = None  # DER, or None
    hello_reply: bytes = b"\x15\x03\x03\x00\x02\x02\x28"  # a raw ClientHello gets a handshake_failure alert

    def respond(self, line: bytes, tls: bool) -> bytes:
        words = line.split()
        verb = words[0].upper() if words else b""
        if verb and verb not in self.replies and len(words) > 1 and self.greeting.startswith(b"* "):
            verb = words[1].upper()  # IMAP: the command follows the tag
        reply = self.replies.get(verb, b"")
        if self.greeting.startswith(b"* ") and words:  # IMAP: complete with the command's tag
            reply = reply.replace(b"{tag}", words[0])
        return reply


class _SSLObject:
    def __init__(self, script: Script) -> None:
        self.script = script

    def version(self) -> str:
        return self.script.version

    def cipher(self) -> tuple[str, str, int]:
        return self.script.cipher, self.script.version, 128

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self.script.certificate


class _Transport(asyncio.Transport):
    def __init__(self, network: ScriptedNetwork, wire: Wire, script: Script, log: list[bytes]) -> None:
        super().__init__()
        self.network, self.wire, self.script, self.log = network, wire, script, log
        self.tls = False
        self.closed = False
        self.pending = b""
        self.pipelined: list[bytes] = []  # lines that came behind the STARTTLS being answered

    # -- delivery
    def _deliver(self, data: bytes) -> None:
        if not self.closed and data:
            self.wire.loop.call_soon(self.wire.data_received, data)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self.wire.loop.call_soon(self.wire.connection_lost, None)

    # -- asyncio.Transport
    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        if self.closed:
            return
        if not self.tls and data[:1] == b"\x16" and not self.pending:  # a raw ClientHello
            self.log.append(b"<ClientHello>")
            self._deliver(self.script.hello_reply)
            return
        self.pending += data
        while b"\n" in self.pending:
            line, _, self.pending = self.pending.partition(b"\n")
            line = line.rstrip(b"\r")
            self.log.append(line)
            reply = self.script.respond(line, self.tls)
            if reply == CLOSE:
                self._close()
                return
            if reply.endswith(START_TLS):
                self._deliver(reply[: -len(START_TLS)])
                # What is still in the buffer came in the same segment: it was pipelined.
                lines = [x.rstrip(b"\r") for x in self.pending.split(b"\n") if x.strip()]
                self.pending = b""
                self.log.extend(lines)
                if lines and self.script.pipelined == "close":
                    self._close()
                self.pipelined = lines
                return
            self._deliver(reply)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self._close()

    def abort(self) -> None:
        self._close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "ssl_object" and self.tls:
            return _SSLObject(self.script)
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class ScriptedNetwork(Network):
    """A network of one scripted server: ``make_script()`` gives each new connection its server."""

    def __init__(self, make_script: Callable[[], Script]) -> None:
        self.make_script = make_script
        self.sent: list[list[bytes]] = []  # per connection, every line (or "<ClientHello>") the probe sent

    async def open(self, wire: Wire, address: str, port: int, local_addr: tuple[str, int] | None) -> None:
        script = self.make_script()
        log: list[bytes] = []
        self.sent.append(log)
        transport = _Transport(self, wire, script, log)
        wire.connection_made(transport)
        if not script.implicit or script.greets_in_clear:
            transport._deliver(script.greeting)

    async def start_tls(
        self, wire: Wire, ctx: ssl.SSLContext, server_hostname: str | None, timeout: float
    ) -> asyncio.Transport | None:
        transport = wire.transport
        assert isinstance(transport, _Transport)
        await asyncio.sleep(0)  # let what was sent before the handshake arrive first
        if transport.closed:
            raise ConnectionResetError("closed before the handshake")
        script = transport.script
        if script.handshake == "reset":
            transport._close()
            raise ConnectionResetError("reset during the handshake")
        if script.handshake == "fail" or script.greets_in_clear:
            transport._close()
            raise ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
        transport.tls = True
        if script.implicit:
            transport._deliver(script.greeting)
        if script.pipelined == "answer":
            for line in transport.pipelined:
                transport._deliver(script.respond(line, True))
        transport.pipelined = []
        return transport
