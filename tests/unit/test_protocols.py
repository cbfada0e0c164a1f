"""Unit tests for the sans-IO SMTP, POP3 and IMAP clients: framing, capabilities, limits."""

from __future__ import annotations

import pytest

from cleartext.protocols import IMAPClient, POP3Client, SMTPClient
from cleartext.protocols.base import GreetingKind, LimitExceeded, MailClient, ProtocolViolation, Reply


def feed_all(client: MailClient, data: bytes, chunk: int = 0) -> Reply | None:
    """Feed data (whole or in chunks) and return the first complete reply."""
    if chunk:
        for i in range(0, len(data), chunk):
            client.receive_data(data[i : i + chunk])
            reply = client.next_reply()
            if reply is not None:
                return reply
        return None
    client.receive_data(data)
    return client.next_reply()


# --- SMTP ------------------------------------------------------------------------------------------


def test_smtp_multiline_greeting_and_ehlo_with_auth_and_starttls() -> None:
    c = SMTPClient(ehlo_name="scanner.example")
    c.expect_greeting()
    greeting = feed_all(c, b"220-mx.example ESMTP Postfix\r\n220 more text\r\n")
    assert greeting is not None and greeting.code == "220" and len(greeting.lines) == 2
    assert c.parse_greeting(greeting).kind is GreetingKind.ACCEPT
    assert c.capability_command() == b"EHLO scanner.example\r\n"
    reply = feed_all(
        c,
        b"250-mx.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250-AUTH=CRAM-MD5\r\n"
        b"250-STARTTLS\r\n250 8BITMIME\r\n",
        chunk=3,
    )
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.supported and caps.starttls
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN", "CRAM-MD5")
    assert caps.login_command is None


def test_smtp_refusal_greetings_and_not_mail() -> None:
    for raw, kind in [
        (b"554 5.7.1 go away\r\n", GreetingKind.REFUSE),
        (b"421 too busy\r\n", GreetingKind.REFUSE),
        (b"SSH-2.0-OpenSSH_9.2\r\n", GreetingKind.NOT_MAIL),
        (b"HTTP/1.1 400 Bad Request\r\n", GreetingKind.NOT_MAIL),
        (b"* OK IMAP4rev1 ready\r\n", GreetingKind.NOT_MAIL),
    ]:
        c = SMTPClient()
        c.expect_greeting()
        reply = feed_all(c, raw)
        assert reply is not None
        assert c.parse_greeting(reply).kind is kind, raw


def test_smtp_starttls_reply_and_violation_after_greeting() -> None:
    c = SMTPClient()
    c.starttls_command()
    reply = feed_all(c, b"220 2.0.0 Ready to start TLS\r\n")
    assert reply is not None and c.starttls_accepted(reply)
    c.starttls_command()
    reply = feed_all(c, b"502 5.5.1 unknown command\r\n")
    assert reply is not None and not c.starttls_accepted(reply)
    c.capability_command()
    with pytest.raises(ProtocolViolation):
        feed_all(c, b"garbage line\r\n")


def test_smtp_ehlo_refused_is_unsupported() -> None:
    c = SMTPClient()
    c.capability_command()
    reply = feed_all(c, b"500 5.5.1 command unrecognized\r\n")
    assert reply is not None and not reply.ok
    assert not c.parse_capabilities(reply).supported
    assert c.fallback_capability_command().startswith(b"HELO ")


def test_endless_line_is_bounded() -> None:
    c = SMTPClient()
    c.expect_greeting()
    with pytest.raises(LimitExceeded):
        for _ in range(100):
            c.receive_data(b"2" * 1000)
            c.next_reply()


def test_endless_reply_is_bounded() -> None:
    c = SMTPClient()
    c.capability_command()
    with pytest.raises(LimitExceeded):
        for _ in range(1000):
            c.receive_data(b"250-X\r\n")
            c.next_reply()


# --- POP3 ------------------------------------------------------------------------------------------


def test_pop3_capa_multiline_with_user_sasl_stls() -> None:
    c = POP3Client()
    c.expect_greeting()
    g = feed_all(c, b"+OK Dovecot ready.\r\n")
    assert g is not None and c.parse_greeting(g).kind is GreetingKind.ACCEPT
    assert c.capability_command() == b"CAPA\r\n"
    reply = feed_all(
        c, b"+OK\r\nCAPA\r\nTOP\r\nUSER\r\nSASL PLAIN LOGIN\r\nSTLS\r\n..dotted\r\n.\r\n", chunk=1
    )
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.starttls and caps.login_command is True
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN")
    assert ".dotted" in reply.lines


def test_pop3_capa_unsupported_and_apop_greeting() -> None:
    c = POP3Client()
    c.expect_greeting()
    g = feed_all(c, b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>\r\n")
    assert g is not None and c.parse_greeting(g).apop
    c.capability_command()
    reply = feed_all(c, b"-ERR unknown command\r\n")
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert not caps.supported and caps.login_command is None


def test_pop3_tls_required_capabilities() -> None:
    c = POP3Client()
    c.capability_command()
    reply = feed_all(c, b"+OK\r\nCAPA\r\nSTLS\r\nSASL\r\n.\r\n")
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.starttls and caps.login_command is False and caps.auth_mechanisms == ()


def test_pop3_refusal_and_not_mail() -> None:
    c = POP3Client()
    c.expect_greeting()
    g = feed_all(c, b"-ERR too many connections\r\n")
    assert g is not None and c.parse_greeting(g).kind is GreetingKind.REFUSE
    c = POP3Client()
    c.expect_greeting()
    g = feed_all(c, b"220 smtp here\r\n")
    assert g is not None and c.parse_greeting(g).kind is GreetingKind.NOT_MAIL


# --- IMAP ------------------------------------------------------------------------------------------


def test_imap_greeting_capability_code() -> None:
    c = IMAPClient()
    c.expect_greeting()
    g = feed_all(c, b"* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN LOGINDISABLED] Dovecot ready.\r\n")
    assert g is not None
    greeting = c.parse_greeting(g)
    assert greeting.kind is GreetingKind.ACCEPT
    assert greeting.capabilities is not None and "LOGINDISABLED" in greeting.capabilities


def test_imap_capability_reply_login_allowed() -> None:
    c = IMAPClient()
    cmd = c.capability_command()
    tag = cmd.split(b" ")[0]
    reply = feed_all(
        c,
        b"* CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN AUTH=LOGIN\r\n" + tag + b" OK done\r\n",
        chunk=5,
    )
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.login_command is True and caps.starttls
    assert caps.auth_mechanisms == ("PLAIN", "LOGIN")


def test_imap_logindisabled_and_tagged_capability_code() -> None:
    c = IMAPClient()
    tag = c.capability_command().split(b" ")[0]
    reply = feed_all(c, tag + b" OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] done\r\n")
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.login_command is False and caps.starttls and caps.auth_mechanisms == ()


def test_imap_literal_is_consumed_exactly() -> None:
    c = IMAPClient()
    tag = c.capability_command().split(b" ")[0]
    reply = feed_all(
        c, b"* ID {5}\r\na\r\nbc extra\r\n* CAPABILITY IMAP4rev1\r\n" + tag + b" OK\r\n", chunk=2
    )
    assert reply is not None
    assert reply.lines[0].startswith("* ID {5}")
    assert c.parse_capabilities(reply).supported


def test_imap_huge_literal_refused() -> None:
    c = IMAPClient()
    c.capability_command()
    with pytest.raises(LimitExceeded):
        feed_all(c, b"* X {99999999}\r\n")


def test_imap_bye_and_not_mail_and_bad_tag() -> None:
    c = IMAPClient()
    c.expect_greeting()
    g = feed_all(c, b"* BYE server shutting down\r\n")
    assert g is not None and c.parse_greeting(g).kind is GreetingKind.REFUSE
    c = IMAPClient()
    c.expect_greeting()
    g = feed_all(c, b"+OK pop3\r\n")
    assert g is not None and c.parse_greeting(g).kind is GreetingKind.NOT_MAIL
    c = IMAPClient()
    c.starttls_command()
    with pytest.raises(ProtocolViolation):
        feed_all(c, b"zz9 OK wrong tag\r\n")


def test_control_characters_are_escaped_in_replies() -> None:
    c = SMTPClient()
    c.expect_greeting()
    reply = feed_all(c, b"220 evil \x1b[31mred\x1b[0m \x00 banner\r\n")
    assert reply is not None
    assert "\x1b" not in reply.text and "\x00" not in reply.text
    assert "\\x1b" in reply.text


# --- the login probe: start, read, cancel -----------------------------------------------------------

from cleartext.protocols.base import AuthOutcome, AuthReason  # noqa: E402


def auth_reply(client: MailClient, raw: bytes) -> Reply:
    client.auth_command()
    reply = feed_all(client, raw)
    assert reply is not None
    return reply


@pytest.mark.parametrize(
    ("raw", "outcome", "reason"),
    [
        (b"334 \r\n", AuthOutcome.ACCEPTED, AuthReason.CHALLENGE),
        (b"503 5.5.1 Error: authentication not enabled\r\n", AuthOutcome.REFUSED, AuthReason.NOT_OFFERED),
        (b"503 AUTH command used when not advertised\r\n", AuthOutcome.REFUSED, AuthReason.NOT_OFFERED),
        (b"530 5.7.0 Must issue a STARTTLS command first\r\n", AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED),
        (b"538 5.7.11 Encryption required\r\n", AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED),
        (b"504 5.5.4 Encryption required for requested authentication mechanism\r\n",
         AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED),
        (b"504 5.5.4 Unrecognized authentication type\r\n", AuthOutcome.REFUSED, AuthReason.MECHANISM),
        (b"502 5.5.2 Error: command not recognized\r\n", AuthOutcome.REFUSED, AuthReason.NOT_OFFERED),
        (b"454 4.7.0 Temporary authentication failure\r\n", AuthOutcome.UNKNOWN, AuthReason.TEMPORARY),
        (b"235 2.7.0 Authentication successful\r\n", AuthOutcome.UNKNOWN, AuthReason.UNEXPECTED),
    ],
)
def test_smtp_auth_answers(raw: bytes, outcome: AuthOutcome, reason: AuthReason) -> None:
    c = SMTPClient()
    assert c.auth_command() == b"AUTH PLAIN\r\n"
    answer = c.read_auth(feed_all(c, raw))  # type: ignore[arg-type]
    assert (answer.outcome, answer.reason) == (outcome, reason)


def test_smtp_cancel_and_injection() -> None:
    c = SMTPClient()
    assert auth_reply(c, b"334 \r\n").code == "334"
    assert c.auth_cancel_command() == b"*\r\n"
    cancel = feed_all(c, b"501 5.7.0 Authentication aborted\r\n")
    assert cancel is not None and cancel.code == "501"
    assert c.starttls_injected_command() == b"STARTTLS\r\nHELP\r\n"
    c.after_tls()
    c.capability_command()
    help_reply = feed_all(c, b"214 2.0.0 see https://example\r\n")
    assert help_reply is not None and c.is_injected_reply(help_reply)
    ehlo = feed_all(c, b"250-mx\r\n250 STARTTLS\r\n")
    assert ehlo is not None and not c.is_injected_reply(ehlo)


@pytest.mark.parametrize(
    ("raw", "outcome", "reason"),
    [
        (b"+ \r\n", AuthOutcome.ACCEPTED, AuthReason.CHALLENGE),
        (b"+\r\n", AuthOutcome.ACCEPTED, AuthReason.CHALLENGE),
        (b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n",
         AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED),
        (b"-ERR Unsupported authentication mechanism.\r\n", AuthOutcome.REFUSED, AuthReason.MECHANISM),
        (b"-ERR [SYS/TEMP] try later\r\n", AuthOutcome.UNKNOWN, AuthReason.TEMPORARY),
        (b"-ERR no\r\n", AuthOutcome.REFUSED, AuthReason.DENIED),
    ],
)
def test_pop3_auth_answers(raw: bytes, outcome: AuthOutcome, reason: AuthReason) -> None:
    c = POP3Client()
    answer = c.read_auth(auth_reply(c, raw))
    assert (answer.outcome, answer.reason) == (outcome, reason)


def test_pop3_user_probe_never_sends_pass() -> None:
    c = POP3Client()
    assert c.user_command("ct-probe-1f2e") == b"USER ct-probe-1f2e\r\n"
    ok = feed_all(c, b"+OK\r\n")
    assert ok is not None and c.read_user(ok).outcome is AuthOutcome.ACCEPTED
    c.user_command("x")
    refused = feed_all(c, b"-ERR TLS required\r\n")
    assert refused is not None and c.read_user(refused).reason is AuthReason.TLS_REQUIRED
    for bad in ("", "two words", "new\r\nPASS secret"):
        with pytest.raises(ValueError):
            c.user_command(bad)


def test_pop3_injected_noop_answered_before_capa() -> None:
    c = POP3Client()
    assert c.starttls_injected_command() == b"STLS\r\nNOOP\r\n"
    c.after_tls()
    c.capability_command()
    first = feed_all(c, b"-ERR Unknown command\r\n")
    assert first is not None and c.is_injected_reply(first)
    capa = feed_all(c, b"+OK\r\nUSER\r\n.\r\n")
    assert capa is not None and not c.is_injected_reply(capa)


@pytest.mark.parametrize(
    ("raw", "outcome", "reason"),
    [
        (b"+ \r\n", AuthOutcome.ACCEPTED, AuthReason.CHALLENGE),
        (b"c1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed\r\n",
         AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED),
        (b"c1 BAD Unsupported authentication mechanism.\r\n", AuthOutcome.REFUSED, AuthReason.MECHANISM),
        (b"c1 NO [CANNOT] no such mechanism\r\n", AuthOutcome.REFUSED, AuthReason.MECHANISM),
        (b"c1 NO [UNAVAILABLE] later\r\n", AuthOutcome.UNKNOWN, AuthReason.TEMPORARY),
        (b"c1 OK welcome\r\n", AuthOutcome.UNKNOWN, AuthReason.UNEXPECTED),
    ],
)
def test_imap_authenticate_answers(raw: bytes, outcome: AuthOutcome, reason: AuthReason) -> None:
    c = IMAPClient()
    assert c.auth_command() == b"c1 AUTHENTICATE PLAIN\r\n"
    answer = c.read_auth(feed_all(c, raw))  # type: ignore[arg-type]
    assert (answer.outcome, answer.reason) == (outcome, reason)


def test_imap_cancel_reads_the_tagged_completion() -> None:
    c = IMAPClient()
    assert auth_reply(c, b"+ \r\n").code == "+"
    assert c.auth_cancel_command() == b"*\r\n"
    done = feed_all(c, b"c1 BAD Authentication aborted by client.\r\n")
    assert done is not None and done.code == "BAD"


def test_imap_injected_noop_is_told_by_its_tag() -> None:
    c = IMAPClient()
    assert c.starttls_injected_command() == b"c1 STARTTLS\r\nc2 NOOP\r\n"
    ok = feed_all(c, b"c1 OK Begin TLS negotiation now.\r\n")
    assert ok is not None and ok.ok and not ok.injected
    c.after_tls()
    assert c.capability_command() == b"c3 CAPABILITY\r\n"
    injected = feed_all(c, b"c2 OK NOOP completed.\r\n")
    assert injected is not None and c.is_injected_reply(injected)
    caps = feed_all(c, b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nc3 OK done\r\n")
    assert caps is not None and not c.is_injected_reply(caps)


@pytest.mark.parametrize(
    ("raw", "outcome"),
    [
        (b"c1 NO [PRIVACYREQUIRED] no\r\n", AuthOutcome.REFUSED),
        (b"c1 BAD [CLIENTBUG] LOGIN is disabled\r\n", AuthOutcome.REFUSED),
        (b"c1 NO LOGIN disabled before STARTTLS\r\n", AuthOutcome.REFUSED),
        (b"c1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", AuthOutcome.ACCEPTED),
        (b"c1 NO Login failed\r\n", AuthOutcome.ACCEPTED),
        (b"c1 NO [UNAVAILABLE] later\r\n", AuthOutcome.UNKNOWN),
    ],
)
def test_imap_made_up_login_answers(raw: bytes, outcome: AuthOutcome) -> None:
    c = IMAPClient()
    assert c.login_command("ct-a1b2", "c3d4e5") == b"c1 LOGIN ct-a1b2 c3d4e5\r\n"
    reply = feed_all(c, raw)
    assert reply is not None and c.read_login(reply).outcome is outcome
    with pytest.raises(ValueError):
        c.login_command("x y", "z")
