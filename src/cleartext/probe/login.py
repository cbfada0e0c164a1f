"""The login probe: start a login in clear and stop before anything secret is sent.

Capability lists lie both ways (a login hidden but taken, one advertised but refused), so the verdict
rests on what the server does: SASL PLAIN with no initial response -- also when AUTH is not advertised --
whose continuation ("334", "+") means a client's password would be taken in clear, and "*" cancels it
(RFC 4954 §4, RFC 9051 §6.2.2, RFC 5034 §4); an unknown mechanism moves on to LOGIN, then to the first
challenge-response one advertised. POP3 then asks USER with a random, non-existent name (+OK: PASS would
follow; it never does). IMAP LOGIN has no credential-free form: only the opt-in ``made-up`` mode sends it,
with a random identity. Each exchange is recorded (``plain.login_probes``); assess judges them.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from cleartext.probe.transport import Connection, Stop
from cleartext.protocols.base import (
    PROBE_MECHANISM,
    AuthAnswer,
    AuthOutcome,
    AuthReason,
    Capabilities,
    Greeting,
    MailClient,
    Reply,
)
from cleartext.protocols.imap import IMAPClient
from cleartext.protocols.pop3 import POP3Client
from cleartext.record import LoginProbe, Protocol
from cleartext.text import sanitize

if TYPE_CHECKING:
    from cleartext.probe.dialog import EndpointProbe

REPLY_KEPT = 300  # what a server's reply to the login probe is kept as: enough for any real refusal


def probe_name() -> str:
    """A user name (or password) no mailbox has: random, so that no real account is ever named."""
    return "cleartext-probe-" + secrets.token_hex(4)


def may_probe(ep: EndpointProbe, caps: Capabilities, greeting: Greeting) -> bool:
    """A login probe makes sense once the server talks (SMTP: after EHLO; not after PREAUTH)."""
    if ep.target.protocol is Protocol.SMTP:
        return caps.supported  # AUTH needs EHLO; a HELO-only server has no AUTH (RFC 4954)
    return "PREAUTH" not in greeting.text.split(" ", 2)[1:2]


def note_failure(ep: EndpointProbe, stop: Stop) -> None:
    plain = ep.obs.plain
    assert plain is not None
    if plain.login_probes and plain.login_probes[-1].outcome == "accepted":
        # The exchange had started: the continuation was read, only the cancel went unanswered.
        plain.login_probes[-1].cancel_reply = f"({stop.status}: {stop.detail})"[:REPLY_KEPT]
        return
    command = ep.pending_probe or "the login probe"
    plain.login_probes.append(
        LoginProbe(command=command, reply=f"({stop.status}: {stop.detail})"[:REPLY_KEPT],
                   outcome=str(AuthOutcome.UNKNOWN), reason=str(AuthReason.UNEXPECTED))
    )


async def run(ep: EndpointProbe, conn: Connection, client: MailClient, caps: Capabilities) -> None:
    """Start a login in clear and stop before anything secret; record what the server answered.

    SASL PLAIN first (the mechanism clients send a password with), also when AUTH is not advertised:
    a server may hide a login it still takes. An unknown mechanism moves on to LOGIN, then to the
    first challenge-response mechanism advertised. POP3 then asks USER with a made-up name when no
    SASL exchange was accepted; IMAP sends LOGIN with a made-up identity only when opted in.
    """
    plain = ep.obs.plain
    assert plain is not None
    advertised = list(caps.auth_mechanisms)
    candidates = [PROBE_MECHANISM, "LOGIN"]
    candidates += [m for m in advertised if m not in candidates][:1]
    accepted = False
    for mechanism in candidates:
        answer = await _try_auth(ep, conn, client, mechanism)
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
        name = probe_name()
        ep.pending_probe = "USER"
        reply = await conn.command(client, client.user_command(name), "the reply to USER")
        _record(ep, "USER", reply, client.read_user(reply))
    elif isinstance(client, IMAPClient) and ep.settings.login_probe == "made-up":
        ep.pending_probe = "LOGIN (made-up identity)"
        command = client.login_command(probe_name(), probe_name())
        reply = await conn.command(client, command, "the reply to LOGIN")
        _record(ep, "LOGIN (made-up identity)", reply, client.read_login(reply))
    ep.pending_probe = None


async def _try_auth(ep: EndpointProbe, conn: Connection, client: MailClient, mechanism: str) -> AuthAnswer:
    verb = "AUTHENTICATE" if isinstance(client, IMAPClient) else "AUTH"
    label = f"{verb} {mechanism}"
    ep.pending_probe = label
    reply = await conn.command(client, client.auth_command(mechanism), f"the reply to {label}")
    answer = client.read_auth(reply)
    probe_entry = _record(ep, label, reply, answer)
    if answer.outcome is AuthOutcome.ACCEPTED:
        # The server waits for the credentials: cancel instead (RFC 4954 §4, RFC 9051 §6.2.2,
        # RFC 5034 §4). Only "*" ever follows a continuation.
        cancel = await conn.command(
            client, client.auth_cancel_command(), f"the reply to cancelling {label}"
        )
        probe_entry.cancel_reply = sanitize(cancel.text, REPLY_KEPT)
    ep.pending_probe = None
    return answer


def _record(ep: EndpointProbe, command: str, reply: Reply, answer: AuthAnswer) -> LoginProbe:
    assert ep.obs.plain is not None
    entry = LoginProbe(command=command, reply=sanitize(reply.text, REPLY_KEPT),
                       outcome=str(answer.outcome), reason=str(answer.reason))
    ep.obs.plain.login_probes.append(entry)
    return entry
