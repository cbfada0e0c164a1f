"""The dialog: everything a mail client sees on one endpoint, and the one real TLS handshake.

Connection 1 reads the greeting and the capabilities in clear, runs the login probe (cleartext.probe.login),
asks STARTTLS with one command pipelined behind it (is it answered inside TLS? CVE-2011-0411), completes a
TLS handshake with the local OpenSSL (the certificate chain) and asks the capabilities again inside TLS.
A server that drops the connection rather than read the pipelined command, or that the login probe upset,
is asked STARTTLS again on a fresh connection. On an implicit-TLS port the handshake comes first; one that
answers a hello with a plaintext greeting gets a plaintext dialog (:meth:`plaintext_on_implicit_port`).
:class:`EndpointProbe` also holds the state every step shares: settings, budgets, the observation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cleartext.politeness import Excluded, Gate
from cleartext.probe import login
from cleartext.probe.chain import peer_chain
from cleartext.probe.login import REPLY_KEPT
from cleartext.probe.settings import ProbeSettings
from cleartext.probe.transport import (
    TCP,
    UNREACHABLE,
    Budget,
    Connection,
    Expiry,
    Network,
    Stop,
    Wire,
    noop,
    openssl_suite_ids,
)
from cleartext.protocols import client_for
from cleartext.protocols.base import Capabilities, Greeting, GreetingKind, MailClient
from cleartext.record import Observation, PlainPhase, Protocol, Status, TLSMode, TLSPhase
from cleartext.software import identify
from cleartext.targets import Endpoint
from cleartext.text import join_lines, sanitize
from cleartext.tls.ciphers import suite_name
from cleartext.tls.serverhello import ServerFlight

# Software that closes the connection when anything follows STARTTLS in the same read, so no command can
# be injected into its TLS session: the check would only cost a second connection. Seen in the lab:
# Dovecot's imap-login and pop3-login answer "Begin TLS negotiation now." and close.
DROPS_PIPELINED_STARTTLS = frozenset({"dovecot"})


def now_iso() -> str:
    # isoformat, not strftime("%Y-%m-%dT%H:%M:%S.%fZ"): the same text in half the time, once per endpoint.
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")[:26] + "Z"


@dataclass(frozen=True, slots=True)
class Retry:
    """Connection 1 asks for STARTTLS on a fresh connection, opened only once it is itself closed.

    Why after: a connection held open while the next one waits for the politeness gate's per-host slot
    deadlocks as soon as every slot of the host is held that way (``--per-host 1``: every such endpoint;
    the default 4: a host whose STARTTLS is broken on four ports), and the endpoint deadline does not
    run while a connection waits for the gate.
    """

    after_injection: bool = False  # connection 1 was dropped over the command pipelined behind STARTTLS
    polite: bool = False  # connection 1 still works: say QUIT before closing it


class EndpointProbe:
    """The state of probing one endpoint: settings, budget, connection count and the observation."""

    def __init__(
        self,
        endpoint: Endpoint,
        settings: ProbeSettings,
        gate: Gate | None = None,
        network: Network | None = None,
    ) -> None:
        self.target = endpoint
        self.network = network or TCP
        self.settings = settings
        self.gate = gate
        self.deadline: asyncio.Timeout | None = None  # the endpoint deadline, extended by politeness waits
        self.budget = Budget(settings.max_bytes)
        self.obs = Observation(
            address=endpoint.address,
            port=endpoint.port,
            protocol=endpoint.protocol,
            tls_mode=endpoint.tls_mode,
            hostname=endpoint.hostname,
            started_at=now_iso(),
        )
        self.chain: list[bytes] = []
        self.negotiated_suite: int | None = None  # IANA code of the suite the real handshake agreed on
        self.not_tls: ServerFlight | None = None  # a raw hello answered with something other than TLS
        self.pending_probe: str | None = None  # the login probe command awaiting its reply
        self.retry: Retry | None = None  # STARTTLS to ask again once connection 1 is closed

    def mark(self, name: str, since: float) -> None:
        self.obs.timings_ms[name] = round((time.monotonic() - since) * 1000, 2)

    async def connect(self) -> Connection:
        """Open one TCP connection through the politeness gate; failures become a Stop status."""
        address = self.target.address
        gate = self.gate
        if gate is not None:
            try:
                admitted = gate.admit_now(address)
            except Excluded:
                raise Stop(Status.BLOCKLISTED, "on the operator's exclusion list; not scanned") from None
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
                raise Stop(Status.BLOCKLISTED, "on the operator's exclusion list; not scanned") from None
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
        return Connection(
            wire,
            self.settings,
            self.budget,
            (lambda: gate.after_close(address)) if gate else noop,
            self.network,
        )

    async def _open(self) -> Wire:
        s = self.settings
        local = (s.source_address, 0) if s.source_address else None
        wire = Wire(asyncio.get_running_loop())
        try:
            with Expiry(wire.loop, s.connect_timeout):
                await self.network.open(wire, self.target.address, self.target.port, local)
            return wire
        except TimeoutError:
            raise Stop(Status.CONNECT_TIMEOUT, f"no answer within {s.connect_timeout:g} s") from None
        except ConnectionRefusedError:
            raise Stop(Status.REFUSED, "connection refused") from None
        except (ConnectionResetError, ConnectionAbortedError):
            # A RST to the SYN is ECONNREFUSED; a reset here came after the handshake: the server
            # accepted the connection and dropped it before a greeting -- "closed", not a local error.
            raise Stop(Status.CLOSED, "the server reset the connection right after accepting it") from None
        except OSError as exc:
            if exc.errno in UNREACHABLE:
                raise Stop(Status.UNREACHABLE, exc.strerror or str(exc)) from None
            if exc.errno == errno.ETIMEDOUT:
                raise Stop(Status.CONNECT_TIMEOUT, exc.strerror or str(exc)) from None
            raise Stop(Status.ERROR, f"cannot connect: {exc.strerror or exc}") from None

    @property
    def sni(self) -> str | None:
        return self.target.hostname

    # -- the dialog ---------------------------------------------------------------------------------

    async def greet(self, conn: Connection, client: MailClient) -> Greeting:
        start = time.monotonic()
        client.expect_greeting()
        reply = await conn.reply(client, "the greeting")
        self.mark("greeting", start)
        greeting = client.parse_greeting(reply)
        if self.obs.greeting is None:
            self.obs.greeting = join_lines(reply.lines, 2048)  # lines already sanitised
            self.obs.software = identify(self.target.protocol, reply.text)
        if greeting.kind is GreetingKind.NOT_MAIL:
            raise Stop(Status.NOT_MAIL, f"not a {self.target.protocol.value.upper()} greeting")
        if greeting.kind is GreetingKind.REFUSE:
            raise Stop(Status.REFUSED_BY_POLICY, f"greeting refuses the session ({reply.code})")
        return greeting

    async def capabilities(
        self, conn: Connection, client: MailClient, greeting: Greeting | None
    ) -> Capabilities:
        reply = await conn.command(client, client.capability_command(), "the capability list")
        caps = client.parse_capabilities(reply)
        if not caps.supported:
            if self.target.protocol is Protocol.SMTP and reply.code == "421":
                raise Stop(Status.REFUSED_BY_POLICY, "EHLO answered 421: the server closes the session")
            fallback = client.fallback_capability_command()
            if fallback is not None:
                helo = await conn.command(client, fallback, "the reply to HELO")
                if not helo.ok:
                    raise Stop(Status.REFUSED_BY_POLICY, f"both EHLO and HELO refused ({helo.code})")
                caps = Capabilities(supported=False, lines=reply.lines + helo.lines)
            elif greeting is not None and greeting.capabilities:
                # IMAP: a server that will not answer CAPABILITY may still have listed them in its greeting.
                from cleartext.protocols.imap import capabilities_from_tokens

                caps = capabilities_from_tokens(greeting.capabilities, reply.lines)
        return caps

    async def dialog(self) -> None:
        """Connection 1: everything a client sees, and the one real handshake."""

        async def steps(conn: Connection, client: MailClient) -> None:
            if self.target.tls_mode is TLSMode.IMPLICIT:
                await self.handshake(conn)
                greeting = await self.greet(conn, client)
                await self.after_tls(conn, client, greeting)
            else:
                await self.plaintext(conn, client)

        await self._session(steps)
        if self.retry is not None:
            assert self.obs.plain is not None
            await self.starttls_again(self.obs.plain, after_injection=self.retry.after_injection)

    async def discover(self) -> None:
        """Discovery: one connection for the greeting (after the handshake on implicit-TLS ports), then QUIT.

        What a census of mail servers needs: who answers, with what software and, on implicit-TLS
        ports, which TLS version and certificate. No capabilities, no STARTTLS: no verdict on login.
        """
        self.obs.depth = "discovery"

        async def steps(conn: Connection, client: MailClient) -> None:
            if self.target.tls_mode is TLSMode.IMPLICIT:
                await self.handshake(conn)
            await self.greet(conn, client)

        await self._session(steps)

    async def _session(self, steps: Callable[[Connection, MailClient], Awaitable[None]]) -> None:
        """One connection for a mail session: connect, the steps, QUIT, close (also after a Stop)."""
        start = time.monotonic()
        conn = await self.connect()
        self.mark("connect", start)
        client = client_for(self.target.protocol, ehlo_name=self.settings.ehlo_name)
        try:
            await steps(conn, client)
            if self.retry is None or self.retry.polite:
                await conn.quit(client)
        finally:
            await conn.close()

    async def plaintext(self, conn: Connection, client: MailClient) -> None:
        plain = self.obs.plain = PlainPhase()
        greeting = await self.greet(conn, client)
        start = time.monotonic()
        caps = await self.capabilities(conn, client, greeting)
        self.mark("capabilities", start)
        plain.capabilities = list(caps.lines)
        plain.capability_reply = caps.lines[-1] if caps.lines else None
        plain.auth_mechanisms = list(caps.auth_mechanisms)
        plain.login_command = caps.login_command
        plain.starttls_advertised = caps.starttls
        if self.obs.software is None:  # a customised banner: capabilities may still name the product
            self.obs.software = identify(self.target.protocol, greeting.text, caps.lines)
        if not caps.supported and self.target.protocol is Protocol.IMAP and greeting.capabilities is None:
            plain.login_command = None
        if self.settings.login_probe != "off" and login.may_probe(self, caps, greeting):
            start = time.monotonic()
            try:
                await login.run(self, conn, client, caps)
            except Stop as stop:
                # The server ended the session over a login attempt (or stalled on it): what it said
                # before stands, and STARTTLS is asked again on a clean connection.
                login.note_failure(self, stop)
                self.mark("login_probe", start)
                self.retry = Retry()
                return
            self.mark("login_probe", start)
        inject = self.settings.injection_check and self.obs.software not in DROPS_PIPELINED_STARTTLS
        start = time.monotonic()
        command = client.starttls_injected_command() if inject else client.starttls_command()
        reply = await conn.command(client, command, "the reply to STARTTLS")
        self.mark("starttls", start)
        plain.starttls_reply = reply.text
        plain.starttls_accepted = client.starttls_accepted(reply)
        if not plain.starttls_accepted:
            if any(p.command == "USER" and p.outcome == "accepted" for p in plain.login_probes):
                # RFC 1939 has USER answered by PASS or QUIT: a server may refuse STLS in between.
                self.retry = Retry(polite=True)
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
                raise Stop(Status.CLOSED, "closed after the reply to STARTTLS")
            await self.handshake(conn)
        except Stop as stop:
            if stop.status not in (Status.TLS_ERROR, Status.CLOSED) or not self.budget_left():
                raise
            # Dropping the connection rather than read what follows STARTTLS is a sound answer to the
            # pipelined command (Dovecot, Exim do it); whether TLS itself works is asked again, cleanly.
            self.obs.tls = None
            self.retry = Retry(after_injection=True)
            return
        await self.after_tls(conn, client, None, injected=True)

    def budget_left(self) -> bool:
        return self.obs.connections < self.settings.max_connections

    async def starttls_again(self, plain: PlainPhase, *, after_injection: bool = False) -> None:
        """STARTTLS on a fresh connection, with nothing else asked: greeting, (EHLO), STARTTLS, handshake,
        capabilities after TLS. What the first connection learned in clear stays as it was."""
        if not self.budget_left():
            return
        conn = await self.connect()
        client = client_for(self.target.protocol, ehlo_name=self.settings.ehlo_name)
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

    async def handshake(self, conn: Connection) -> None:
        tls = self.obs.tls = TLSPhase()
        start = time.monotonic()
        try:
            await conn.start_tls(self.sni)
        except Stop as stop:
            tls.error = stop.detail
            raise
        finally:
            self.mark("tls_handshake", start)
        ssl_object = conn.ssl_object()
        if ssl_object is None:  # pragma: no cover - start_tls succeeded, so there is one
            return
        tls.version = ssl_object.version()
        cipher = ssl_object.cipher()
        if cipher:
            self.negotiated_suite = openssl_suite_ids().get(cipher[0])
            tls.cipher = (
                suite_name(self.negotiated_suite) if self.negotiated_suite else sanitize(cipher[0], 100)
            )
        self.chain = peer_chain(ssl_object)

    async def after_tls(
        self, conn: Connection, client: MailClient, greeting: Greeting | None, *, injected: bool = False
    ) -> None:
        assert self.obs.tls is not None
        client.after_tls()
        start = time.monotonic()
        if injected:
            caps = await self._capabilities_after_injection(conn, client)
        else:
            caps = await self.capabilities(conn, client, greeting)
        self.mark("capabilities_tls", start)
        self.obs.tls.capabilities = list(caps.lines)
        self.obs.tls.auth_mechanisms = list(caps.auth_mechanisms)
        self.obs.tls.login_command = caps.login_command
        if self.obs.software is None:
            self.obs.software = identify(self.target.protocol, self.obs.greeting, caps.lines)

    async def _capabilities_after_injection(self, conn: Connection, client: MailClient) -> Capabilities:
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

    async def plaintext_on_implicit_port(self) -> None:
        """The dialog in clear on a port that should start with TLS: its logins cross in clear."""
        obs = self.obs
        obs.status, obs.status_detail = Status.SUCCESS, "speaks plaintext on an implicit-TLS port"
        try:
            await self._session(self._plaintext_only)
        except Stop as stop:
            obs.status, obs.status_detail = stop.status, stop.detail

    async def _plaintext_only(self, conn: Connection, client: MailClient) -> None:
        plain = self.obs.plain = PlainPhase()
        greeting = await self.greet(conn, client)
        caps = await self.capabilities(conn, client, greeting)
        plain.capabilities = list(caps.lines)
        plain.capability_reply = caps.lines[-1] if caps.lines else None
        plain.auth_mechanisms = list(caps.auth_mechanisms)
        plain.login_command = caps.login_command
        plain.starttls_advertised = caps.starttls
        if self.settings.login_probe != "off" and login.may_probe(self, caps, greeting):
            try:
                await login.run(self, conn, client, caps)
            except Stop as stop:
                login.note_failure(self, stop)

