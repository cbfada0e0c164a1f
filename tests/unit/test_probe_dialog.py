"""The dialog's branches without a network: the probe against scripted servers (cleartext.probe.scripted).

The lab's real servers cover what real software does (tests/integration); these cover every turn the
dialog can take -- a login hidden or refused, a connection dropped over the login probe or over a command
pipelined behind STARTTLS, an injection answered inside TLS, USER then STLS refused, plaintext on an
implicit-TLS port -- exactly, and fast.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from cleartext.assess import assess
from cleartext.politeness import Gate
from cleartext.probe import ProbeSettings, probe
from cleartext.probe.scripted import CLOSE, START_TLS, Script, ScriptedNetwork
from cleartext.record import Observation, Protocol, Status, TLSMode
from cleartext.targets import Endpoint

DIALOG_ONLY = ProbeSettings(read_timeout=2, endpoint_timeout=10, tls_matrix=False)

EHLO_NO_AUTH = b"250-mx.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
EHLO_TLS = b"250-mx.example\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n"


def run(
    make: Callable[[], Script],
    protocol: Protocol = Protocol.SMTP,
    mode: TLSMode = TLSMode.STARTTLS,
    settings: ProbeSettings = DIALOG_ONLY,
    gate: Gate | None = None,
) -> tuple[Observation, ScriptedNetwork]:
    network = ScriptedNetwork(make)
    endpoint = Endpoint("192.0.2.1", {Protocol.SMTP: 587, Protocol.IMAP: 143, Protocol.POP3: 110}[protocol]
                        if mode is TLSMode.STARTTLS else 993, protocol, mode, None)
    # A bound of our own: the endpoint deadline does not run while a connection waits for the gate.
    return asyncio.run(asyncio.wait_for(probe(endpoint, settings, gate, network), 20)), network


class SMTP(Script):
    """Postfix-like: AUTH hidden before TLS but taken; pipelined input discarded."""

    def __init__(self, **kw: object) -> None:
        super().__init__(greeting=b"220 mx.example ESMTP\r\n", **kw)  # type: ignore[arg-type]

    def respond(self, line: bytes, tls: bool) -> bytes:
        verb = line.split()[0].upper() if line.split() else b""
        if verb == b"EHLO":
            return EHLO_TLS if tls else EHLO_NO_AUTH
        if verb == b"AUTH":
            return b"334 \r\n"
        if line == b"*":
            return b"501 5.7.0 Authentication aborted\r\n"
        if verb == b"STARTTLS":
            return b"220 2.0.0 Ready to start TLS\r\n" + START_TLS
        if verb == b"HELP":
            return b"214 2.0.0 help yourself\r\n"
        if verb == b"QUIT":
            return b"221 bye\r\n"
        return b"502 5.5.2 no\r\n"


def test_a_hidden_smtp_login_is_found_and_cancelled() -> None:
    obs, network = run(SMTP)
    assert obs.status is Status.SUCCESS and obs.connections == 1
    plain = obs.plain
    assert plain is not None and plain.auth_mechanisms == []
    probes = [(p.command, p.outcome, p.reason) for p in plain.login_probes]
    assert probes == [("AUTH PLAIN", "accepted", "challenge")]
    assert plain.login_probes[0].cancel_reply == "501 5.7.0 Authentication aborted"
    assert network.sent[0][:4] == [b"EHLO cleartext.invalid", b"AUTH PLAIN", b"*", b"STARTTLS"]
    assert plain.starttls_injection == "ignored"
    record = assess(obs)
    assert record.login is not None
    assert record.login.basis == "probed-accepted" and record.login.advertised is False
    assert "cleartext-login" in {f.code for f in record.findings}


def test_an_answered_injection_is_reported_and_the_real_capabilities_are_kept() -> None:
    obs, _ = run(lambda: SMTP(pipelined="answer"))
    assert obs.plain is not None and obs.plain.starttls_injection == "answered"
    assert obs.plain.starttls_injection_reply == "214 2.0.0 help yourself"
    assert obs.tls is not None and obs.tls.auth_mechanisms == ["PLAIN", "LOGIN"]  # EHLO's, not HELP's
    assert "starttls-injection" in {f.code for f in assess(obs).findings}


def test_a_server_that_closes_on_pipelined_input_is_asked_again_cleanly() -> None:
    obs, network = run(lambda: SMTP(pipelined="close"))
    assert obs.status is Status.SUCCESS and obs.connections == 2
    assert obs.plain is not None and obs.plain.starttls_injection == "closed"
    assert obs.tls is not None and obs.tls.version == "TLSv1.3"
    assert b"HELP" not in network.sent[1], "the second STARTTLS carries nothing behind it"
    assert b"AUTH PLAIN" not in network.sent[1], "and no second login probe"


def test_a_server_that_drops_the_login_probe_is_asked_starttls_again() -> None:
    class Touchy(SMTP):
        def respond(self, line: bytes, tls: bool) -> bytes:
            return CLOSE if line.startswith(b"AUTH") else super().respond(line, tls)

    obs, _ = run(Touchy)
    assert obs.status is Status.SUCCESS and obs.connections == 2
    plain = obs.plain
    assert plain is not None and plain.starttls_accepted and obs.tls is not None and obs.tls.version
    assert [(p.command, p.outcome) for p in plain.login_probes] == [("AUTH PLAIN", "unknown")]
    assert "closed" in plain.login_probes[0].reply


def test_an_unknown_mechanism_moves_on_to_login() -> None:
    class LoginOnly(SMTP):
        def respond(self, line: bytes, tls: bool) -> bytes:
            if line == b"AUTH PLAIN":
                return b"504 5.5.4 Unrecognized authentication type\r\n"
            return super().respond(line, tls)

    obs, _ = run(LoginOnly)
    assert obs.plain is not None
    assert [(p.command, p.outcome) for p in obs.plain.login_probes] == [
        ("AUTH PLAIN", "refused"), ("AUTH LOGIN", "accepted")
    ]


class POP3(Script):
    """Takes USER in clear; refuses STLS after it (RFC 1939 wants PASS or QUIT next)."""

    def __init__(self, **kw: object) -> None:
        super().__init__(greeting=b"+OK ready\r\n", **kw)  # type: ignore[arg-type]
        self.user_given = False

    def respond(self, line: bytes, tls: bool) -> bytes:
        verb = line.split()[0].upper() if line.split() else b""
        if verb == b"CAPA":
            return b"+OK\r\nSTLS\r\n.\r\n" if not tls else b"+OK\r\nUSER\r\n.\r\n"
        if verb == b"AUTH":
            return b"-ERR unknown command\r\n"
        if verb == b"USER":
            self.user_given = True
            return b"+OK\r\n"
        if verb == b"STLS":
            return b"-ERR not now\r\n" if self.user_given else b"+OK go\r\n" + START_TLS
        if verb == b"QUIT":
            return b"+OK bye\r\n"
        return b"-ERR unknown command\r\n"


def test_user_taken_then_stls_refused_asks_stls_again_without_user() -> None:
    obs, network = run(POP3, Protocol.POP3)
    plain = obs.plain
    assert plain is not None and obs.connections == 2
    probes = [(p.command, p.outcome) for p in plain.login_probes]
    assert probes == [("AUTH PLAIN", "refused"), ("USER", "accepted")]
    user_lines = [line for line in network.sent[0] if line.startswith(b"USER ")]
    assert len(user_lines) == 1 and user_lines[0].startswith(b"USER cleartext-probe-")
    assert not any(line.startswith(b"PASS") for sent in network.sent for line in sent)
    assert plain.starttls_accepted and obs.tls is not None and obs.tls.version == "TLSv1.3"
    login = assess(obs).login
    assert login is not None and login.exposed and login.accepted == ["USER"] and login.advertised is False


class IMAPRefusing(Script):
    def __init__(self) -> None:
        super().__init__(greeting=b"* OK ready\r\n")

    def respond(self, line: bytes, tls: bool) -> bytes:
        tag, _, rest = line.partition(b" ")
        verb = rest.split()[0].upper() if rest.split() else b""
        if verb == b"CAPABILITY":
            caps = b"IMAP4rev1 AUTH=PLAIN" if tls else b"IMAP4rev1 STARTTLS LOGINDISABLED"
            return b"* CAPABILITY " + caps + b"\r\n" + tag + b" OK done\r\n"
        if verb == b"AUTHENTICATE":
            return tag + b" NO [PRIVACYREQUIRED] Plaintext authentication disallowed\r\n"
        if verb == b"STARTTLS":
            return tag + b" OK Begin TLS\r\n" + START_TLS
        if verb == b"LOGOUT":
            return b"* BYE\r\n" + tag + b" OK bye\r\n"
        return tag + b" BAD no\r\n"


def test_imap_refused_with_logindisabled_is_probed_refused() -> None:
    obs, _ = run(IMAPRefusing, Protocol.IMAP)
    assert obs.plain is not None and obs.plain.starttls_injection == "ignored"
    record = assess(obs)
    assert record.login is not None
    assert record.login.exposed is False and record.login.basis == "probed-refused"
    assert not record.findings


def test_the_made_up_login_is_opt_in() -> None:
    _, network = run(IMAPRefusing, Protocol.IMAP, settings=ProbeSettings(
        read_timeout=2, endpoint_timeout=10, tls_matrix=False, login_probe="made-up"))
    logins = [line for line in network.sent[0] if b" LOGIN " in line]
    assert len(logins) == 1 and logins[0].split()[2].startswith(b"cleartext-probe-")
    _, network = run(IMAPRefusing, Protocol.IMAP)
    assert not any(b" LOGIN " in line for line in network.sent[0])
    off, network = run(IMAPRefusing, Protocol.IMAP, settings=ProbeSettings(
        read_timeout=2, endpoint_timeout=10, tls_matrix=False, login_probe="off"))
    assert off.plain is not None and off.plain.login_probes == []
    assert not any(b"AUTHENTICATE" in line for line in network.sent[0])


def test_an_implicit_tls_port_that_speaks_plaintext_gets_a_plaintext_dialog() -> None:
    class Misconfigured(IMAPRefusing):
        def __init__(self) -> None:
            super().__init__()
            self.implicit, self.greets_in_clear = True, True
            self.hello_reply = b""  # it answers a ClientHello with nothing more than its greeting

        def respond(self, line: bytes, tls: bool) -> bytes:
            if b"AUTHENTICATE" in line:
                return b"+ \r\n"
            if line == b"*":
                return b"c2 BAD aborted\r\n"
            return super().respond(line, tls)

    settings = ProbeSettings(read_timeout=2, endpoint_timeout=10)
    obs, network = run(Misconfigured, Protocol.IMAP, TLSMode.IMPLICIT, settings)
    assert obs.status is Status.SUCCESS and obs.connections == 3  # handshake, one raw hello, the dialog
    assert network.sent[1] == [b"<ClientHello>"]
    record = assess(obs)
    codes = {f.code for f in record.findings}
    assert {"no-tls", "cleartext-login"} <= codes and "starttls-failed" not in codes


def test_starttls_is_asked_again_only_once_the_first_connection_is_closed() -> None:
    """With one connection per host at a time (--per-host 1), each retry waits for the first connection's
    slot: were the first still open, the probe would wait for itself forever."""

    class Touchy(SMTP):
        def respond(self, line: bytes, tls: bool) -> bytes:
            return CLOSE if line.startswith(b"AUTH") else super().respond(line, tls)

    for make, protocol in ((Touchy, Protocol.SMTP), (lambda: SMTP(pipelined="close"), Protocol.SMTP),
                           (POP3, Protocol.POP3)):
        obs, network = run(make, protocol, gate=Gate(per_host=1))
        assert obs.status is Status.SUCCESS and obs.connections == 2, make
        assert obs.tls is not None and obs.tls.version == "TLSv1.3"
        assert len(network.sent) == 2
    assert network.sent[0][-1] == b"QUIT", "a connection that still works is closed with a goodbye"
