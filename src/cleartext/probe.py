"""Probe: the only module that touches sockets. One endpoint in, one Observation out.

Per endpoint we spend at most ``max_connections`` connections (default 6):

1. the *dialog*: greeting, capabilities in clear, the *login probe* (a login started and cancelled
   before anything secret is sent: does the server take a password in clear, whatever it advertises?),
   STARTTLS (asked even when not advertised, with one harmless command in the same segment: is it
   answered inside TLS, CVE-2011-0411?), one real TLS handshake with the local OpenSSL (which gives the
   certificate chain), capabilities again after TLS. A server that drops the connection rather than read
   a pipelined command, or that the login probe upset, gets the STARTTLS part again on a clean connection;
2. up to five *raw hellos*: hand-built ClientHello messages (cleartext.tls) that find which protocol
   versions and weak cipher classes the server accepts, without a key exchange. On STARTTLS ports each
   one replays the short plaintext preamble first;
3. on an implicit-TLS port that answered a hello with a plaintext greeting, a plaintext dialog: that port
   takes passwords in clear.

Every read has a per-step deadline, the whole endpoint has its own deadline, and all bytes received count
against a per-endpoint cap: a server that drips, floods or stalls ends in a status, never a hang. Errors
are statuses in the record; only bugs raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import errno
import secrets
import ssl
import time
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import lru_cache

from cleartext.politeness import Excluded, Gate
from cleartext.protocols import client_for
from cleartext.protocols.base import (
    PROBE_MECHANISM,
    AuthAnswer,
    AuthOutcome,
    AuthReason,
    Capabilities,
    Greeting,
    GreetingKind,
    LimitExceeded,
    MailClient,
    ProtocolViolation,
    Reply,
)
from cleartext.protocols.imap import IMAPClient
from cleartext.protocols.pop3 import POP3Client
from cleartext.record import (
    Certificate,
    LoginProbe,
    Observation,
    PlainPhase,
    Protocol,
    Status,
    TLSMode,
    TLSPhase,
)
from cleartext.software import identify
from cleartext.targets import Endpoint
from cleartext.text import join_lines, sanitize
from cleartext.tls import certs
from cleartext.tls.ciphers import suite_name
from cleartext.tls.hello import TLSVersion, client_hello
from cleartext.tls.matrix import MatrixPlanner
from cleartext.tls.serverhello import Outcome, ServerFlight, ServerFlightReader

READ_CHUNK = 16384
# What a server's reply to the login probe is kept as: enough for any real refusal text.
REPLY_KEPT = 300
LOGIN_PROBE_MODES = ("cancel", "made-up", "off")
# Software that closes the connection when anything follows STARTTLS in the same read, so no command can
# be injected into its TLS session: the check would only cost a second connection. Seen in the lab:
# Dovecot's imap-login and pop3-login answer "Begin TLS negotiation now." and close.
DROPS_PIPELINED_STARTTLS = frozenset({"dovecot"})


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # per step: one reply, one handshake
    endpoint_timeout: float = 60.0  # the whole endpoint, every connection included
    max_bytes: int = 256 * 1024  # everything received from one endpoint, over all its connections
    max_connections: int = 6
    ehlo_name: str = "cleartext.invalid"
    ca_files: tuple[str, ...] = ()
    tls_matrix: bool = True
    source_address: str | None = None
    discover: bool = False  # connect and greeting only (scan --discover)
    # "cancel": start a login in clear and cancel it before anything secret (the default); "made-up":
    # also send IMAP LOGIN with a random, non-existent identity where no credential-free exchange can
    # settle it (opt-in: the server logs a failed login); "off": judge from capability lists alone.
    login_probe: str = "cancel"
    injection_check: bool = True  # pipeline a command after STARTTLS (CVE-2011-0411 check)


class _Stop(Exception):
    """Ends the dialog with a status; caught in :func:`probe` and written into the record."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class _Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise _Stop(Status.PROTOCOL_ERROR, f"server sent more than {self.limit} bytes")


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@lru_cache(maxsize=1)
def _handshake_context() -> ssl.SSLContext:
    """A client context that completes a handshake with nearly anything, to see what the server does.

    Nothing is verified here (the chain is verified offline in cleartext.tls.certs); old versions and
    weak suites are allowed so that a legacy-only server still yields its certificate.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(ValueError, ssl.SSLError):
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    # OpenSSL 3 refuses servers without RFC 5746 secure renegotiation; we want to see them, not fail.
    ctx.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
    return ctx


@lru_cache(maxsize=1)
def _openssl_suite_ids() -> dict[str, int]:
    """OpenSSL cipher name -> IANA code, so records name suites the same way whichever path saw them."""
    return {c["name"]: c["id"] & 0xFFFF for c in _handshake_context().get_ciphers()}


_VERSION_LABELS = {
    "SSLv3": TLSVersion.SSL3,
    "TLSv1": TLSVersion.TLS1_0,
    "TLSv1.1": TLSVersion.TLS1_1,
    "TLSv1.2": TLSVersion.TLS1_2,
    "TLSv1.3": TLSVersion.TLS1_3,
}


class _Wire(asyncio.Protocol):
    """The receiving end of one connection: bytes land in a buffer, and one reader at a time awaits them.

    Why not asyncio's streams: a probe needs only "the bytes so far, or wait for more", and a flood
    must pause reading until the bytes are charged to the endpoint's budget. (Streams showed in the
    scan's profile, but replacing them changed the CPU per endpoint by less than the noise of an
    interleaved A/B: bench/RESULTS.md. This is kept as the simpler part, not as a speed-up.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = loop.create_future()
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= READ_CHUNK and not self.paused and self.transport is not None:
            # A flood is not read faster than we parse it: the byte budget is charged as we take data.
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        if not self.closed.done():
            self.closed.set_result(None)
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, deadline: float) -> bytes:
        """Everything that has arrived, waiting if nothing has; b"" at the end of the stream.

        TimeoutError once the loop's clock passes ``deadline``. One timer per wait, not an
        ``asyncio.timeout`` scope per step: those scopes cost ~5 % of a scan's CPU.
        """
        if not self.buffer and not self.eof:
            self.waiter = waiter = self.loop.create_future()
            timer = self.loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            finally:
                self.waiter = None
                timer.cancel()
                # A timed-out waiter holds its TimeoutError, whose traceback holds this frame: without
                # this, each timeout would be a reference cycle that only the cyclic collector frees.
                del waiter
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            return data
        if self.error is not None:
            # A copy: the stored error, once raised here, would hold this frame and so this _Wire, and
            # keep the connection alive in a cycle (gc.garbage showed one per reset connection).
            raise copy.copy(self.error)
        return b""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Connection:
    """One TCP connection with the endpoint's deadlines and byte budget applied to every read."""

    def __init__(
        self,
        wire: _Wire,
        settings: ProbeSettings,
        budget: _Budget,
        release: Callable[[], None] | None = None,
    ) -> None:
        assert wire.transport is not None
        self.wire = wire
        self.transport: asyncio.Transport = wire.transport
        self.settings = settings
        self.budget = budget
        self._release: Callable[[], None] | None = release  # the politeness gate's slot, given back once

    def _give_back(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def abort(self) -> None:
        """Drop the connection at once (raw hellos: no goodbye is owed to a half-finished handshake)."""
        self.transport.abort()
        self._give_back()

    def write(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)

    def deadline(self, timeout: float) -> float:
        return self.wire.loop.time() + timeout

    async def read_some(self, deadline: float) -> bytes:
        data = await self.wire.read(deadline)
        self.budget.take(len(data))
        return data

    async def reply(self, client: MailClient, step: str, timeout: float | None = None) -> Reply:
        timeout = self.settings.read_timeout if timeout is None else timeout
        deadline = self.deadline(timeout)  # for the whole reply, however many reads it takes
        try:
            while True:
                reply = client.next_reply()
                if reply is not None:
                    return reply
                data = await self.read_some(deadline)
                if not data:
                    raise _Stop(Status.CLOSED, f"server closed the connection while we awaited {step}")
                client.receive_data(data)
        except TimeoutError:
            raise _Stop(Status.READ_TIMEOUT, f"timed out after {timeout:g} s awaiting {step}") from None
        except (LimitExceeded, ProtocolViolation) as exc:
            raise _Stop(Status.PROTOCOL_ERROR, f"{step}: {exc}") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise _Stop(Status.CLOSED, f"connection reset while we awaited {step}: {exc}") from None
        except ssl.SSLError as exc:
            raise _Stop(Status.TLS_ERROR, f"TLS error while we awaited {step}: {exc.reason or exc}") from None
        except OSError as exc:
            raise _Stop(Status.CLOSED, f"connection lost while we awaited {step}: {exc}") from None

    async def command(self, client: MailClient, data: bytes, step: str) -> Reply:
        try:
            self.write(data)
        except (ConnectionResetError, BrokenPipeError, RuntimeError) as exc:
            raise _Stop(Status.CLOSED, f"connection lost before {step}: {exc}") from None
        return await self.reply(client, step)

    async def start_tls(self, server_hostname: str | None) -> None:
        # Bytes that arrived before the handshake are not part of the TLS session: counted, then dropped.
        self.budget.take(len(self.wire.buffer))
        self.wire.buffer.clear()
        if self.wire.eof:
            raise _Stop(Status.TLS_ERROR, "connection lost before the TLS handshake")
        loop = self.wire.loop
        try:
            transport = await loop.start_tls(
                self.transport,
                self.wire,
                _handshake_context(),
                server_hostname=server_hostname,
                ssl_handshake_timeout=self.settings.read_timeout,
            )
        except (ConnectionError, OSError, EOFError, RuntimeError, ssl.SSLError) as exc:
            # The loop's handshake waiter holds this exception and its traceback holds the waiter: a
            # reference cycle per failed handshake, keeping the connection's buffers until the cyclic
            # collector runs. Dropping the traceback breaks it.
            exc.__traceback__ = None
            raise self._handshake_failed(exc) from None
        if transport is None:  # pragma: no cover - the loop closed under us
            raise _Stop(Status.TLS_ERROR, "connection lost during the TLS handshake")
        self.transport = transport  # type: ignore[assignment]
        self.wire.transport = transport  # type: ignore[assignment]
        self.wire.paused = False

    def _handshake_failed(self, exc: BaseException) -> _Stop:
        timeout = self.settings.read_timeout
        if isinstance(exc, TimeoutError):
            return _Stop(Status.READ_TIMEOUT, f"TLS handshake not finished within {timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return _Stop(Status.TLS_ERROR, f"TLS handshake failed: {exc.reason or exc}")
        if isinstance(exc, ConnectionAbortedError) and "taking longer than" in str(exc):
            # asyncio reports its own ssl_handshake_timeout this way: silence, not a broken TLS stack.
            return _Stop(Status.READ_TIMEOUT, f"TLS handshake not finished within {timeout:g} s")
        if isinstance(exc, ConnectionResetError):
            # A TCP reset, not a TLS answer (a TLS stack that refuses a hello says so with an alert): the
            # server dropped the connection, as one that resets right after accepting does.
            return _Stop(Status.CLOSED, f"connection reset during the TLS handshake: {exc}")
        return _Stop(Status.TLS_ERROR, f"connection lost during the TLS handshake: {exc}")

    def ssl_object(self) -> ssl.SSLObject | None:
        return self.transport.get_extra_info("ssl_object")  # type: ignore[no-any-return]

    async def quit(self, client: MailClient) -> None:
        """Say goodbye politely, briefly; whatever happens, the connection closes."""
        try:
            self.write(client.quit_command())
            await self.reply(client, "the reply to QUIT", timeout=min(1.0, self.settings.read_timeout))
        except (_Stop, OSError, RuntimeError):
            pass

    async def close(self) -> None:
        transport = self.transport
        try:
            transport.close()
            async with asyncio.timeout(1.0):
                await self.wire.closed
        except (TimeoutError, OSError, ssl.SSLError, RuntimeError, asyncio.CancelledError) as exc:
            transport.abort()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._give_back()


def _noop() -> None:
    pass


_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


class _Endpoint:
    """The state of probing one endpoint: settings, budget, connection count and the observation."""

    def __init__(self, endpoint: Endpoint, settings: ProbeSettings, gate: Gate | None = None) -> None:
        self.ep = endpoint
        self.settings = settings
        self.gate = gate
        self.deadline: asyncio.Timeout | None = None  # the endpoint deadline, extended by politeness waits
        self.budget = _Budget(settings.max_bytes)
        self.obs = Observation(
            address=endpoint.address,
            port=endpoint.port,
            protocol=endpoint.protocol,
            tls_mode=endpoint.tls_mode,
            hostname=endpoint.hostname,
            started_at=_now_iso(),
        )
        self.chain: list[bytes] = []
        self.negotiated_suite: int | None = None  # IANA code of the suite the real handshake agreed on
        self.not_tls: ServerFlight | None = None  # a raw hello answered with something other than TLS
        self._pending_probe: str | None = None  # the login probe command awaiting its reply

    def _mark(self, name: str, since: float) -> None:
        self.obs.timings_ms[name] = round((time.monotonic() - since) * 1000, 2)

    async def connect(self) -> _Connection:
        """Open one TCP connection through the politeness gate; failures become a _Stop status."""
        address = self.ep.address
        gate = self.gate
        if gate is not None:
            try:
                admitted = gate.admit_now(address)
            except Excluded:
                raise _Stop(Status.BLOCKLISTED, "on the operator's exclusion list; not scanned") from None
        if gate is not None and not admitted:
            # Waiting for our own rate and per-host limits is not the server's slowness: the endpoint
            # deadline is suspended while we wait, and moved on by the time waited.
            deadline = self.deadline
            when = deadline.when() if deadline is not None else None
            if deadline is not None and when is not None:
                deadline.reschedule(None)
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await gate.before_connect(address)
            except Excluded:
                raise _Stop(Status.BLOCKLISTED, "on the operator's exclusion list; not scanned") from None
            finally:
                if deadline is not None and when is not None:
                    deadline.reschedule(when + (loop.time() - started))
        self.obs.connections += 1
        try:
            wire = await self._open()
        except BaseException:
            if gate is not None:
                gate.after_close(address)
            raise
        return _Connection(
            wire, self.settings, self.budget, (lambda: gate.after_close(address)) if gate else _noop
        )

    async def _open(self) -> _Wire:
        s = self.settings
        local = (s.source_address, 0) if s.source_address else None
        loop = asyncio.get_running_loop()
        wire = _Wire(loop)
        try:
            async with asyncio.timeout(s.connect_timeout):
                await loop.create_connection(lambda: wire, self.ep.address, self.ep.port, local_addr=local)
                return wire
        except TimeoutError:
            raise _Stop(Status.CONNECT_TIMEOUT, f"no answer within {s.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise _Stop(Status.REFUSED, "connection refused") from None
        except (ConnectionResetError, ConnectionAbortedError):
            # A RST to the SYN is ECONNREFUSED; a reset here came after the handshake: the server
            # accepted the connection and dropped it before a greeting -- "closed", not a local error.
            raise _Stop(Status.CLOSED, "the server reset the connection right after accepting it") from None
        except OSError as exc:
            if exc.errno in _UNREACHABLE:
                raise _Stop(Status.UNREACHABLE, exc.strerror or str(exc)) from None
            if exc.errno == errno.ETIMEDOUT:
                raise _Stop(Status.CONNECT_TIMEOUT, exc.strerror or str(exc)) from None
            raise _Stop(Status.ERROR, f"cannot connect: {exc.strerror or exc}") from None

    @property
    def sni(self) -> str | None:
        return self.ep.hostname

    # -- the dialog ---------------------------------------------------------------------------------

    async def greet(self, conn: _Connection, client: MailClient) -> Greeting:
        start = time.monotonic()
        client.expect_greeting()
        reply = await conn.reply(client, "the greeting")
        self._mark("greeting", start)
        greeting = client.parse_greeting(reply)
        if self.obs.greeting is None:
            self.obs.greeting = join_lines(reply.lines, 2048)  # lines already sanitised
            self.obs.software = identify(self.ep.protocol, reply.text)
        if greeting.kind is GreetingKind.NOT_MAIL:
            raise _Stop(Status.NOT_MAIL, f"not a {self.ep.protocol.value.upper()} greeting")
        if greeting.kind is GreetingKind.REFUSE:
            raise _Stop(Status.REFUSED_BY_POLICY, f"greeting refuses the session ({reply.code})")
        return greeting

    async def capabilities(
        self, conn: _Connection, client: MailClient, greeting: Greeting | None
    ) -> Capabilities:
        reply = await conn.command(client, client.capability_command(), "the capability list")
        caps = client.parse_capabilities(reply)
        if not caps.supported:
            if self.ep.protocol is Protocol.SMTP and reply.code == "421":
                raise _Stop(Status.REFUSED_BY_POLICY, "EHLO answered 421: the server closes the session")
            fallback = client.fallback_capability_command()
            if fallback is not None:
                helo = await conn.command(client, fallback, "the reply to HELO")
                if not helo.ok:
                    raise _Stop(Status.REFUSED_BY_POLICY, f"both EHLO and HELO refused ({helo.code})")
                caps = Capabilities(supported=False, lines=reply.lines + helo.lines)
            elif greeting is not None and greeting.capabilities:
                # IMAP: a server that will not answer CAPABILITY may still have listed them in its greeting.
                from cleartext.protocols.imap import capabilities_from_tokens

                caps = capabilities_from_tokens(greeting.capabilities, reply.lines)
        return caps

    async def dialog(self) -> None:
        """Connection 1: everything a client sees, and the one real handshake."""

        async def steps(conn: _Connection, client: MailClient) -> None:
            if self.ep.tls_mode is TLSMode.IMPLICIT:
                await self.handshake(conn)
                greeting = await self.greet(conn, client)
                await self.after_tls(conn, client, greeting)
            else:
                await self.plaintext(conn, client)

        await self._session(steps)

    async def discover(self) -> None:
        """Discovery: one connection for the greeting (after the handshake on implicit-TLS ports), then QUIT.

        What a census of mail servers needs: who answers, with what software and, on implicit-TLS
        ports, which TLS version and certificate. No capabilities, no STARTTLS: no verdict on login.
        """
        self.obs.depth = "discovery"

        async def steps(conn: _Connection, client: MailClient) -> None:
            if self.ep.tls_mode is TLSMode.IMPLICIT:
                await self.handshake(conn)
            await self.greet(conn, client)

        await self._session(steps)

    async def _session(self, steps: Callable[[_Connection, MailClient], Awaitable[None]]) -> None:
        """One connection for a mail session: connect, the steps, QUIT, close (also after a _Stop)."""
        start = time.monotonic()
        conn = await self.connect()
        self._mark("connect", start)
        client = client_for(self.ep.protocol, ehlo_name=self.settings.ehlo_name)
        try:
            await steps(conn, client)
            await conn.quit(client)
        finally:
            await conn.close()

    async def plaintext(self, conn: _Connection, client: MailClient) -> None:
        plain = self.obs.plain = PlainPhase()
        greeting = await self.greet(conn, client)
        start = time.monotonic()
        caps = await self.capabilities(conn, client, greeting)
        self._mark("capabilities", start)
        plain.capabilities = list(caps.lines)
        plain.capability_reply = caps.lines[-1] if caps.lines else None
        plain.auth_mechanisms = list(caps.auth_mechanisms)
        plain.login_command = caps.login_command
        plain.starttls_advertised = caps.starttls
        if self.obs.software is None:  # a customised banner: capabilities may still name the product
            self.obs.software = identify(self.ep.protocol, greeting.text, caps.lines)
        if not caps.supported and self.ep.protocol is Protocol.IMAP and greeting.capabilities is None:
            plain.login_command = None
        if self.settings.login_probe != "off" and self._may_probe_login(caps, greeting):
            start = time.monotonic()
            try:
                await self.login_probe(conn, client, caps)
            except _Stop as stop:
                # The server ended the session over a login attempt (or stalled on it): what it said
                # before stands, and STARTTLS is asked again on a clean connection.
                self._note_probe_failure(stop)
                self._mark("login_probe", start)
                await self.starttls_again(plain)
                return
            self._mark("login_probe", start)
        inject = self.settings.injection_check and self.obs.software not in DROPS_PIPELINED_STARTTLS
        start = time.monotonic()
        command = client.starttls_injected_command() if inject else client.starttls_command()
        reply = await conn.command(client, command, "the reply to STARTTLS")
        self._mark("starttls", start)
        plain.starttls_reply = reply.text
        plain.starttls_accepted = client.starttls_accepted(reply)
        if not plain.starttls_accepted:
            if any(p.command == "USER" and p.outcome == "accepted" for p in plain.login_probes):
                # RFC 1939 has USER answered by PASS or QUIT: a server may refuse STLS in between.
                await self.starttls_again(plain)
            return
        client.take_pending()  # anything sent before the handshake is not part of the TLS session
        if not inject:
            if self.settings.injection_check:
                plain.starttls_injection = "skipped"
            await self.handshake(conn)
            await self.after_tls(conn, client, None)
            return
        try:
            if conn.wire.eof:  # closed with (or right after) its STARTTLS reply: no handshake to try
                raise _Stop(Status.CLOSED, "closed after the reply to STARTTLS")
            await self.handshake(conn)
        except _Stop as stop:
            if stop.status not in (Status.TLS_ERROR, Status.CLOSED) or not self._budget_left():
                raise
            # Dropping the connection rather than read what follows STARTTLS is a sound answer to the
            # pipelined command (Dovecot, Exim do it); whether TLS itself works is asked again, cleanly.
            self.obs.tls = None
            await self.starttls_again(plain, after_injection=True)
            return
        await self.after_tls(conn, client, None, injected=True)

    def _budget_left(self) -> bool:
        return self.obs.connections < self.settings.max_connections

    def _may_probe_login(self, caps: Capabilities, greeting: Greeting) -> bool:
        """A login probe makes sense once the server talks (SMTP: after EHLO; not after PREAUTH)."""
        if self.ep.protocol is Protocol.SMTP:
            return caps.supported  # AUTH needs EHLO; a HELO-only server has no AUTH (RFC 4954)
        return "PREAUTH" not in greeting.text.split(" ", 2)[1:2]

    def _note_probe_failure(self, stop: _Stop) -> None:
        plain = self.obs.plain
        assert plain is not None
        if plain.login_probes and plain.login_probes[-1].outcome == "accepted":
            # The exchange had started: the continuation was read, only the cancel went unanswered.
            plain.login_probes[-1].cancel_reply = f"({stop.status}: {stop.detail})"[:REPLY_KEPT]
            return
        command = self._pending_probe or "the login probe"
        plain.login_probes.append(
            LoginProbe(command=command, reply=f"({stop.status}: {stop.detail})"[:REPLY_KEPT],
                       outcome=str(AuthOutcome.UNKNOWN), reason=str(AuthReason.UNEXPECTED))
        )

    async def login_probe(self, conn: _Connection, client: MailClient, caps: Capabilities) -> None:
        """Start a login in clear and stop before anything secret; record what the server answered.

        SASL PLAIN first (the mechanism clients send a password with), also when AUTH is not advertised:
        a server may hide a login it still takes. An unknown mechanism moves on to LOGIN, then to the
        first challenge-response mechanism advertised. POP3 then asks USER with a made-up name when no
        SASL exchange was accepted; IMAP sends LOGIN with a made-up identity only when opted in.
        """
        plain = self.obs.plain
        assert plain is not None
        advertised = list(caps.auth_mechanisms)
        candidates = [PROBE_MECHANISM, "LOGIN"]
        candidates += [m for m in advertised if m not in candidates][:1]
        accepted = False
        for mechanism in candidates:
            answer = await self._try_auth(conn, client, mechanism)
            if answer.outcome is AuthOutcome.ACCEPTED:
                accepted = True
                break
            if answer.reason is not AuthReason.MECHANISM:
                break  # a refusal for TLS, or no login at all: other mechanisms would say the same
            if mechanism == "LOGIN" and not [m for m in advertised if m not in ("PLAIN", "LOGIN")]:
                break
        if accepted:
            return
        if isinstance(client, POP3Client):
            name = _probe_name()
            self._pending_probe = "USER"
            reply = await conn.command(client, client.user_command(name), "the reply to USER")
            self._record_probe("USER", reply, client.read_user(reply))
        elif isinstance(client, IMAPClient) and self.settings.login_probe == "made-up":
            self._pending_probe = "LOGIN (made-up identity)"
            command = client.login_command(_probe_name(), _probe_name())
            reply = await conn.command(client, command, "the reply to LOGIN")
            self._record_probe("LOGIN (made-up identity)", reply, client.read_login(reply))
        self._pending_probe = None

    async def _try_auth(self, conn: _Connection, client: MailClient, mechanism: str) -> AuthAnswer:
        verb = "AUTHENTICATE" if isinstance(client, IMAPClient) else "AUTH"
        label = f"{verb} {mechanism}"
        self._pending_probe = label
        reply = await conn.command(client, client.auth_command(mechanism), f"the reply to {label}")
        answer = client.read_auth(reply)
        probe_entry = self._record_probe(label, reply, answer)
        if answer.outcome is AuthOutcome.ACCEPTED:
            # The server waits for the credentials: cancel instead (RFC 4954 §4, RFC 9051 §6.2.2,
            # RFC 5034 §4). Only "*" ever follows a continuation.
            cancel = await conn.command(
                client, client.auth_cancel_command(), f"the reply to cancelling {label}"
            )
            probe_entry.cancel_reply = sanitize(cancel.text, REPLY_KEPT)
        self._pending_probe = None
        return answer

    def _record_probe(self, command: str, reply: Reply, answer: AuthAnswer) -> LoginProbe:
        assert self.obs.plain is not None
        entry = LoginProbe(command=command, reply=sanitize(reply.text, REPLY_KEPT),
                           outcome=str(answer.outcome), reason=str(answer.reason))
        self.obs.plain.login_probes.append(entry)
        return entry

    async def starttls_again(self, plain: PlainPhase, *, after_injection: bool = False) -> None:
        """STARTTLS on a fresh connection, with nothing else asked: greeting, (EHLO), STARTTLS, handshake,
        capabilities after TLS. What the first connection learned in clear stays as it was."""
        if not self._budget_left():
            return
        conn = await self.connect()
        client = client_for(self.ep.protocol, ehlo_name=self.settings.ehlo_name)
        try:
            greeting = await self.greet(conn, client)
            if client.capabilities_before_starttls:
                await self.capabilities(conn, client, greeting)
            reply = await conn.command(client, client.starttls_command(), "the reply to STARTTLS")
            plain.starttls_reply = reply.text
            plain.starttls_accepted = client.starttls_accepted(reply)
            if plain.starttls_accepted:
                client.take_pending()
                await self.handshake(conn)
                if after_injection:
                    plain.starttls_injection = "closed"
                await self.after_tls(conn, client, None)
            await conn.quit(client)
        finally:
            await conn.close()

    async def handshake(self, conn: _Connection) -> None:
        tls = self.obs.tls = TLSPhase()
        start = time.monotonic()
        try:
            await conn.start_tls(self.sni)
        except _Stop as stop:
            tls.error = stop.detail
            raise
        finally:
            self._mark("tls_handshake", start)
        ssl_object = conn.ssl_object()
        if ssl_object is None:  # pragma: no cover - start_tls succeeded, so there is one
            return
        tls.version = ssl_object.version()
        cipher = ssl_object.cipher()
        if cipher:
            self.negotiated_suite = _openssl_suite_ids().get(cipher[0])
            tls.cipher = (
                suite_name(self.negotiated_suite) if self.negotiated_suite else sanitize(cipher[0], 100)
            )
        self.chain = _peer_chain(ssl_object)

    async def after_tls(
        self, conn: _Connection, client: MailClient, greeting: Greeting | None, *, injected: bool = False
    ) -> None:
        assert self.obs.tls is not None
        client.after_tls()
        start = time.monotonic()
        if injected:
            caps = await self._capabilities_after_injection(conn, client)
        else:
            caps = await self.capabilities(conn, client, greeting)
        self._mark("capabilities_tls", start)
        self.obs.tls.capabilities = list(caps.lines)
        self.obs.tls.auth_mechanisms = list(caps.auth_mechanisms)
        self.obs.tls.login_command = caps.login_command
        if self.obs.software is None:
            self.obs.software = identify(self.ep.protocol, self.obs.greeting, caps.lines)

    async def _capabilities_after_injection(self, conn: _Connection, client: MailClient) -> Capabilities:
        """The first command inside TLS, after a STARTTLS that carried a second command: a vulnerable server
        answers that command first, then ours."""
        plain = self.obs.plain
        assert plain is not None
        reply = await conn.command(client, client.capability_command(), "the capability list")
        if client.is_injected_reply(reply):
            plain.starttls_injection = "answered"
            plain.starttls_injection_reply = sanitize(reply.text, REPLY_KEPT)
            reply = await conn.reply(client, "the capability list")
        else:
            plain.starttls_injection = "ignored"
        caps = client.parse_capabilities(reply)
        if not caps.supported:  # as capabilities() does: HELO for SMTP, nothing more for the others
            fallback = client.fallback_capability_command()
            if fallback is not None:
                helo = await conn.command(client, fallback, "the reply to HELO")
                caps = Capabilities(supported=False, lines=reply.lines + helo.lines)
        return caps

    # -- an implicit-TLS port that speaks plaintext ---------------------------------------------------

    def speaks_plaintext(self, flight: ServerFlight | None) -> bool:
        """A raw hello on an implicit-TLS port was answered with this protocol's greeting, in clear."""
        if flight is None or flight.outcome is not Outcome.NOT_TLS or not flight.head:
            return False
        client = client_for(self.ep.protocol)
        client.expect_greeting()
        try:
            client.receive_data(flight.head if b"\n" in flight.head else flight.head + b"\r\n")
            reply = client.next_reply()
        except (LimitExceeded, ProtocolViolation):
            return False
        return reply is not None and client.parse_greeting(reply).kind is not GreetingKind.NOT_MAIL

    async def plaintext_on_implicit_port(self) -> None:
        """The dialog in clear on a port that should start with TLS: its logins cross in clear."""
        obs = self.obs
        obs.status, obs.status_detail = Status.SUCCESS, "speaks plaintext on an implicit-TLS port"
        try:
            await self._session(self._plaintext_only)
        except _Stop as stop:
            obs.status, obs.status_detail = stop.status, stop.detail

    async def _plaintext_only(self, conn: _Connection, client: MailClient) -> None:
        plain = self.obs.plain = PlainPhase()
        greeting = await self.greet(conn, client)
        caps = await self.capabilities(conn, client, greeting)
        plain.capabilities = list(caps.lines)
        plain.capability_reply = caps.lines[-1] if caps.lines else None
        plain.auth_mechanisms = list(caps.auth_mechanisms)
        plain.login_command = caps.login_command
        plain.starttls_advertised = caps.starttls
        if self.settings.login_probe != "off" and self._may_probe_login(caps, greeting):
            try:
                await self.login_probe(conn, client, caps)
            except _Stop as stop:
                self._note_probe_failure(stop)

    # -- the TLS matrix ------------------------------------------------------------------------------

    async def raw_hello(self, version: TLSVersion, suites: tuple[int, ...]) -> ServerFlight | None:
        """One connection: reach the TLS layer, send a hand-built ClientHello, read the first flight.

        None means the probe said nothing about TLS (we could not reach the TLS layer this time).
        """
        try:
            conn = await self.connect()
        except _Stop:
            return None
        hello = client_hello(version, suites, self.sni)
        flight = ServerFlightReader(max_bytes=min(65536, max(0, self.budget.limit - self.budget.used)))
        try:
            if self.ep.tls_mode is TLSMode.STARTTLS:
                client = client_for(self.ep.protocol, ehlo_name=self.settings.ehlo_name)
                client.expect_greeting()
                greeting = client.parse_greeting(await conn.reply(client, "the greeting"))
                if greeting.kind is not GreetingKind.ACCEPT:
                    return None
                if client.capabilities_before_starttls:
                    await conn.command(client, client.capability_command(), "the capability list")
                reply = await conn.command(client, client.starttls_command(), "the reply to STARTTLS")
                if not client.starttls_accepted(reply):
                    return None
                pending = client.take_pending()
                if pending:
                    flight.feed(pending)
            conn.write(hello)
            deadline = conn.deadline(self.settings.read_timeout)
            while flight.result is None:
                data = await conn.read_some(deadline)
                if not data:
                    return flight.eof()
                flight.feed(data)
            return flight.result
        except TimeoutError:
            return None
        except (ConnectionResetError, BrokenPipeError):
            return flight.eof()
        except (_Stop, OSError):
            return None
        finally:
            conn.abort()

    async def matrix(self) -> None:
        """Which versions and weak cipher classes the server accepts, within the connection budget: the
        planner (cleartext.tls.matrix) chooses each hello, this sends it and hands back the answer."""
        start = time.monotonic()
        negotiated = _VERSION_LABELS.get(self.obs.tls.version or "") if self.obs.tls else None
        planner = MatrixPlanner(
            negotiated, self.negotiated_suite, budget=self.settings.max_connections - self.obs.connections
        )
        try:
            while (hello := planner.next_hello()) is not None:
                planner.observe(await self.raw_hello(*hello))
        finally:
            # Also when the endpoint deadline cuts it short: what was learnt so far stands.
            self.obs.matrix = planner.result()
            if not self.chain and planner.certificates:
                self.chain = list(planner.certificates)
            self.not_tls = planner.not_tls
            self._mark("matrix", start)

    # -- certificates -------------------------------------------------------------------------------

    def judge_chain(self) -> None:
        if not self.chain:
            return
        if self.obs.tls is None:
            self.obs.tls = TLSPhase(error="no complete handshake; chain from a raw hello")
        tls = self.obs.tls
        tls.chain = [copy.copy(_describe(der)) for der in self.chain[:10]]
        verdict = _verify(tuple(self.chain[:10]), self.settings.ca_files)
        tls.trusted = verdict.trusted
        tls.verify_error = verdict.error
        if self.ep.hostname:
            tls.hostname_checked = self.ep.hostname
            tls.hostname_match = certs.hostname_matches(self.chain[0], self.ep.hostname)


@lru_cache(maxsize=4096)
def _describe(der: bytes) -> Certificate:
    """Certificate facts, parsed once per certificate: the ports of one host share their chain."""
    return certs.describe(der)


@lru_cache(maxsize=4096)
def _verify(chain: tuple[bytes, ...], ca_files: tuple[str, ...]) -> certs.TrustVerdict:
    """Chain verification, once per distinct chain (it was the probe's costliest step after the handshake)."""
    return certs.verify_chain(chain, certs.trust_roots(ca_files))


def _peer_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The chain the server sent, leaf first (Python 3.13 has a public API; 3.11/3.12 a private one)."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        inner = getattr(ssl_object, "_sslobj", None)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            out = []
            for cert in chain:
                der = cert if isinstance(cert, bytes) else cert.public_bytes(2)  # _ssl.ENCODING_DER
                out.append(der)
            if out:
                return out
        except (ssl.SSLError, ValueError, TypeError, AttributeError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _probe_name() -> str:
    """A user name (or password) no mailbox has: random, so that no real account is ever named."""
    return "cleartext-probe-" + secrets.token_hex(4)


def tls_reachable(obs: Observation) -> bool:
    """Is there a TLS layer worth probing with raw hellos?

    On an implicit-TLS port: when the handshake completed (whatever went wrong after it), or when it
    failed at the TLS layer. A port that stayed silent through the handshake gets no more connections.
    """
    if obs.tls_mode is TLSMode.IMPLICIT:
        return obs.tls is not None and (obs.tls.version is not None or obs.status is Status.TLS_ERROR)
    return obs.plain is not None and bool(obs.plain.starttls_accepted)


async def probe(endpoint: Endpoint, settings: ProbeSettings, gate: Gate | None = None) -> Observation:
    """Probe one endpoint; always returns an Observation (errors become its status)."""
    state = _Endpoint(endpoint, settings, gate)
    obs = state.obs
    start = time.monotonic()
    try:
        async with asyncio.timeout(settings.endpoint_timeout) as deadline:
            state.deadline = deadline
            try:
                await (state.discover() if settings.discover else state.dialog())
            except _Stop as stop:
                obs.status, obs.status_detail = stop.status, stop.detail
            if settings.tls_matrix and not settings.discover and tls_reachable(obs):
                await state.matrix()
                if (
                    endpoint.tls_mode is TLSMode.IMPLICIT
                    and obs.status is Status.TLS_ERROR
                    and state.speaks_plaintext(state.not_tls)
                    and state._budget_left()
                ):
                    await state.plaintext_on_implicit_port()
    except TimeoutError:
        if obs.status is Status.SUCCESS and obs.matrix is None:
            obs.status = Status.READ_TIMEOUT
            obs.status_detail = f"endpoint deadline of {settings.endpoint_timeout:g} s exceeded"
        elif obs.matrix is not None:
            obs.status_detail = (obs.status_detail or "") + " (TLS matrix cut short by the endpoint deadline)"
    state.judge_chain()
    obs.bytes_received = state.budget.used
    obs.timings_ms["total"] = round((time.monotonic() - start) * 1000, 2)
    return obs
