"""Raw hellos: one connection each, a hand-built ClientHello, the server's first flight read and dropped.

The planner (cleartext.tls.matrix) decides which hello comes next; this sends it -- after the short
plaintext preamble on a STARTTLS port -- and hands back what came (None when the TLS layer could not be
reached this time). A hello answered with a plaintext greeting tells an implicit-TLS port that speaks
plaintext (:func:`speaks_plaintext`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cleartext.probe.transport import Stop
from cleartext.protocols import client_for
from cleartext.protocols.base import GreetingKind, LimitExceeded, ProtocolViolation
from cleartext.record import TLSMode
from cleartext.tls.hello import TLSVersion, client_hello
from cleartext.tls.matrix import MatrixPlanner
from cleartext.tls.serverhello import Outcome, ServerFlight, ServerFlightReader

if TYPE_CHECKING:
    from cleartext.probe.dialog import EndpointProbe


async def raw_hello(ep: EndpointProbe, version: TLSVersion, suites: tuple[int, ...]) -> ServerFlight | None:
    """One connection: reach the TLS layer, send a hand-built ClientHello, read the first flight.

    None means the probe said nothing about TLS (we could not reach the TLS layer this time).
    """
    try:
        conn = await ep.connect()
    except Stop:
        return None
    hello = client_hello(version, suites, ep.sni)
    flight = ServerFlightReader(max_bytes=min(65536, max(0, ep.budget.limit - ep.budget.used)))
    try:
        if ep.target.tls_mode is TLSMode.STARTTLS:
            client = client_for(ep.target.protocol, ehlo_name=ep.settings.ehlo_name)
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
        deadline = conn.deadline(ep.settings.read_timeout)
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
    except (Stop, OSError):
        return None
    finally:
        conn.abort()

async def matrix(ep: EndpointProbe) -> None:
    """Which versions and weak cipher classes the server accepts, within the connection budget: the
    planner (cleartext.tls.matrix) chooses each hello, this sends it and hands back the answer."""
    start = time.monotonic()
    negotiated = TLSVersion.from_label(ep.obs.tls.version) if ep.obs.tls else None
    planner = MatrixPlanner(
        negotiated, ep.negotiated_suite, budget=ep.settings.max_connections - ep.obs.connections
    )
    try:
        while (hello := planner.next_hello()) is not None:
            planner.observe(await raw_hello(ep, *hello))
    finally:
        # Also when the endpoint deadline cuts it short: what was learnt so far stands.
        ep.obs.matrix = planner.result()
        if not ep.chain and planner.certificates:
            ep.chain = list(planner.certificates)
        ep.not_tls = planner.not_tls
        ep.mark("matrix", start)


def speaks_plaintext(ep: EndpointProbe, flight: ServerFlight | None) -> bool:
    """A raw hello on an implicit-TLS port was answered with this protocol's greeting, in clear."""
    if flight is None or flight.outcome is not Outcome.NOT_TLS or not flight.head:
        return False
    client = client_for(ep.target.protocol)
    client.expect_greeting()
    try:
        client.receive_data(flight.head if b"\n" in flight.head else flight.head + b"\r\n")
        reply = client.next_reply()
    except (LimitExceeded, ProtocolViolation):
        return False
    return reply is not None and client.parse_greeting(reply).kind is not GreetingKind.NOT_MAIL

