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
