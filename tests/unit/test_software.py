"""Software identification: real greetings are recognised, generic ones are not, hostile input never hurts."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cleartext.record import Protocol
from cleartext.software import (
    MAX_GREETING,
    Software,
    display_name,
    identify,
    identify_version,
    serves,
)

S, I, P = Protocol.SMTP, Protocol.IMAP, Protocol.POP3  # noqa: E741

GREETINGS: list[tuple[Protocol, str, Software, str | None]] = [
    (
        I,
        "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS AUTH=PLAIN] "
        "Dovecot (Debian) ready.",
        Software.DOVECOT,
        None,
    ),
    (P, "+OK Dovecot ready.", Software.DOVECOT, None),
    (P, "+OK Dovecot (Ubuntu) ready. <1b2c.3@mail.example.com>", Software.DOVECOT, None),
    (S, "220 mail.example.com Dovecot ready.", Software.DOVECOT, None),  # the submission service
    (S, "220 mail.example.com ESMTP Postfix (Debian/GNU)", Software.POSTFIX, None),
    (S, "220 mx.example.org ESMTP Postfix (3.1.4)", Software.POSTFIX, "3.1.4"),
    (S, "220 host ESMTP Exim 4.96 Mon, 01 Jan 2024 10:00:00 +0000", Software.EXIM, "4.96"),
    (S, "220 host.example.net ESMTP Exim 4.84_2 Thu, 30 Nov 2017 03:52:16 -0700", Software.EXIM, "4.84_2"),
    (S, "220 foo.bar, ESMTP EXIM 4.83", Software.EXIM, "4.83"),
    (
        I,
        "* OK [CAPABILITY IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
        "SORT QUOTA IDLE ACL ACL2=UNION STARTTLS] Courier-IMAP ready. Copyright 1998-2018 Double "
        "Precision, Inc.  See COPYING for distribution information.",
        Software.COURIER,
        None,
    ),
    (P, "+OK Hello there.", Software.COURIER, None),
    (
        S,
        "220 mx.example.com Microsoft ESMTP MAIL Service ready at Mon, 1 Jan 2024 10:00:00 +0000",
        Software.EXCHANGE,
        None,
    ),
    (I, "* OK The Microsoft Exchange IMAP4 service is ready.", Software.EXCHANGE, None),
    (
        I,
        "* OK The Microsoft Exchange IMAP4 service is ready. [TQBOADIAUABSADAAMQBDAEEAMAAxADEAMwAuAG4A]",
        Software.EXCHANGE,
        None,
    ),
    (P, "+OK The Microsoft Exchange POP3 service is ready.", Software.EXCHANGE, None),
    (
        I,
        "* OK Microsoft Exchange Server 2003 IMAP4rev1 server version 6.5.7638.1 (host) ready.",
        Software.EXCHANGE,
        "6.5.7638.1",
    ),
    (
        S,
        "220 host Microsoft ESMTP MAIL Service, Version: 10.0.17763.1 ready at  Sun, 19 May 2019",
        Software.IIS_SMTP,
        "10.0.17763.1",
    ),
    (I, "* OK host Cyrus IMAP v3.4.1 server ready", Software.CYRUS, "3.4.1"),
    (
        I,
        "* OK [CAPABILITY IMAP4rev1 LITERAL+] imap.example.org Cyrus IMAP 3.0.8-Debian-3.0.8-6+deb10u4 "
        "server ready",
        Software.CYRUS,
        "3.0.8-Debian-3.0.8-6+deb10u4",
    ),
    (
        P,
        "+OK foo Cyrus POP3 v2.3.14 server ready <13087751828270990591.1301068892@foo>",
        Software.CYRUS,
        "2.3.14",
    ),
    (S, "220 host ESMTP Sendmail 8.15.2/8.15.2; Mon, 1 Jan 2024 10:00:00 +0100", Software.SENDMAIL, "8.15.2"),
    (S, "220 host ESMTP OpenSMTPD", Software.OPENSMTPD, None),
    (S, "220 host ESMTP Haraka/2.8.28 ready", Software.HARAKA, "2.8.28"),
    (S, "220 host ESMTP MDaemon 21.0.2; Mon, 01 Jan 2024", Software.MDAEMON, "21.0.2"),
    (S, "220 mx.google.com ESMTP a1si123456wrx.1 - gsmtp", Software.GMAIL, None),
    (I, "* OK Gimap ready for requests from 192.0.2.1 a1mb12345", Software.GMAIL, None),
    (P, "+OK Gpop ready for requests from 192.0.2.1 a1mb12345", Software.GMAIL, None),
    (I, "* OK mail.example.com Zimbra IMAP4rev1 server ready", Software.ZIMBRA, None),
    (P, "+OK example.com Zimbra 7.0.0_GA_3079 POP3 server ready", Software.ZIMBRA, "7.0.0_GA_3079"),
    (
        I,
        "* OK localhost IMAP4rev1 2007f.404 at Thu, 1 Jan 2009 10:00:00 +0000 (UTC)",
        Software.UW_IMAP,
        "2007f.404",
    ),
    (P, "+OK POP3 [158.122.12.70] v2003.83mdk server ready", Software.UW_IMAP, "2003.83mdk"),
    (P, "+OK Qpopper (version 4.1.0) at host starting.  <1234.5678@host>", Software.QPOPPER, "4.1.0"),
    (I, "* OK IMAPrev1", Software.HMAILSERVER, None),
    (S, "220 foo.bar Kerio Connect 9.2.5 patch 3 ESMTP ready", Software.KERIO, "9.2.5"),
    (S, "220 foo.bar ESMTP CommuniGate Pro 6.2c3", Software.COMMUNIGATE, "6.2c3"),
    (S, "220 foo.bar ESMTP MailEnable Service, Version: 9.53", Software.MAILENABLE, "9.53"),
    (S, "220 foo.bar ESMTP Merak 8.0.3; Thu, 30 Nov 2017", Software.ICEWARP, "8.0.3"),
    (S, "220 host.example ESMTP qmail-toaster ready", Software.QMAIL, None),
]


@pytest.mark.parametrize(("protocol", "greeting", "software", "version"), GREETINGS)
def test_real_greetings(protocol: Protocol, greeting: str, software: Software, version: str | None) -> None:
    assert identify(protocol, greeting) is software
    assert identify_version(protocol, greeting) == version
    assert serves(software, protocol)


@pytest.mark.parametrize(
    ("protocol", "greeting"),
    [
        (P, "+OK <1896.697170952@dbc.mtview.ca.us>"),  # RFC 1939 APOP example: any server
        (P, "+OK POP3 server ready"),
        (S, "220 mail.example.com ESMTP"),
        (S, "220 mail.example.com ESMTP Service ready"),
        (I, "* OK IMAP4rev1 server ready"),
        (I, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready"),
        (S, "220 postfix ESMTP"),  # a host named postfix, nothing else: the host name is dropped
        (S, ""),
        (I, "* OK"),
    ],
)
def test_generic_greetings_identify_nothing(protocol: Protocol, greeting: str) -> None:
    assert identify(protocol, greeting) is None
    assert identify_version(protocol, greeting) is None


@pytest.mark.parametrize(
    ("protocol", "greeting", "expected"),
    [
        (S, "220 postfix.example.com ESMTP Exim 4.96", Software.EXIM),
        (S, "220 exim.example.org ESMTP Postfix", Software.POSTFIX),
        (S, "220 exchange.contoso.com ESMTP Postfix (Ubuntu)", Software.POSTFIX),
        (I, "* OK dovecot.example.com Cyrus IMAP4 v2.3.7 server ready", Software.CYRUS),
        (I, "* OK [CAPABILITY IMAP4rev1] courier-imap.example.net IMAP4rev1 server ready", None),
        (S, "220 sendmail.example.com ESMTP", None),
    ],
)
def test_product_words_inside_host_names_do_not_count(
    protocol: Protocol, greeting: str, expected: Software | None
) -> None:
    assert identify(protocol, greeting) is expected


@pytest.mark.parametrize(
    ("protocol", "greeting"),
    [
        (I, "* OK ESMTP Postfix"),  # Postfix never answers IMAP
        (P, "+OK host ESMTP Exim 4.96"),
        (S, "220 host Cyrus IMAP v3.4.1 server ready"),  # Cyrus does not do SMTP
        (S, "220 host Qpopper (version 4.1.0) at host starting."),
        (I, "* OK Gpop ready for requests"),
    ],
)
def test_software_only_for_protocols_it_serves(protocol: Protocol, greeting: str) -> None:
    assert identify(protocol, greeting) is None


@pytest.mark.parametrize(
    ("protocol", "greeting", "capabilities", "expected"),
    [
        (
            P,
            "+OK Hello there. <1234.5@x>",
            ["+OK Here's what I can do:", "STLS", "TOP", "USER", "IMPLEMENTATION Courier Mail Server"],
            Software.COURIER,
        ),
        (
            S,
            "220 mail.example.com ESMTP",
            ["250-mail.example.com", "250-X-ANONYMOUSTLS", "250 XEXCH50"],
            Software.EXCHANGE,
        ),
        (
            S,
            "220 mail.example.com ESMTP",
            ["250-mail.example.com Hello x [192.0.2.1], pleased to meet you"],
            Software.SENDMAIL,
        ),
        (
            S,
            "220 mail.example.com ESMTP",
            ["250-mail.example.com", "250-XVERP=Courier", "250 8BITMIME"],
            Software.COURIER,
        ),
        (
            S,
            "220 mail.example.com ESMTP",
            ["250-mail.example.com", "250-XVERP", "250 8BITMIME"],
            None,
        ),  # Postfix's XVERP
        (
            I,
            "* OK ready",
            ["* CAPABILITY IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1"],
            Software.GMAIL,
        ),
        (P, "+OK ready", ["IMPLEMENTATION Cyrus POP3 v2.4.17-Invoca-RPM-2.4.17-15.el7"], Software.CYRUS),
        (P, None, ["IMPLEMENTATION Qpopper-version-4.1.0"], Software.QPOPPER),
    ],
)
def test_capabilities_identify_when_the_greeting_does_not(
    protocol: Protocol, greeting: str | None, capabilities: list[str], expected: Software | None
) -> None:
    assert identify(protocol, greeting, capabilities) is expected


def test_greeting_wins_over_capabilities() -> None:
    caps = ["250-host", "250-X-ANONYMOUSTLS"]
    assert identify(S, "220 host.example ESMTP Postfix", caps) is Software.POSTFIX


def test_imap_capabilities_in_the_greeting_code_are_used() -> None:
    assert identify(I, "* OK [CAPABILITY IMAP4rev1 X-GM-EXT-1 AUTH=XOAUTH2] ready") is Software.GMAIL


def test_multiline_and_sanitised_greetings() -> None:
    # The record keeps the greeting sanitised (control characters as \xNN) with lines joined by "\n".
    assert identify(S, "220-mail.example.com ESMTP Exim 4.97\n220 Welcome\\x0d") is Software.EXIM
    assert identify(S, "220-mail.example.com\n220 ESMTP Postfix") is Software.POSTFIX
    assert identify(S, b"220 mail.example.com ESMTP Postfix (Debian/GNU)\r\n") is Software.POSTFIX
    assert identify(P, "+OK Dovecot\x00 ready.") is Software.DOVECOT


def test_only_the_first_kilobyte_counts() -> None:
    padding = "x" * (MAX_GREETING + 10)
    assert identify(S, f"220 host ESMTP {padding} Postfix") is None
    assert identify(S, "220 host ESMTP Postfix " + padding) is Software.POSTFIX


@pytest.mark.parametrize("size", [10**6, 10**7])
def test_huge_input_is_fast(size: int) -> None:
    greeting = "220 " + "Postfix " * (size // 8)
    caps = ["250-" + "A" * size] * 100
    start = time.perf_counter()
    identify(S, greeting, caps)
    identify_version(I, "* OK " + "[" * size, caps)
    identify(P, "+OK " + "9" * size)
    identify(I, "* OK " + "IMAP4rev1 2007a." + "1" * size)
    assert time.perf_counter() - start < 1.0


def test_backtracking_bait_is_fast() -> None:
    # Long runs that almost match the bounded patterns, many times over.
    bait = (
        "Microsoft Exchange " + "x " * 400,
        "Hello " + "a" * 250 + ", pleased to meet yo",
        "POP3 " + "[" * 300 + " 2003.83" + "a" * 300,
        "Cyrus IMAP v" + "1." * 400,
    )
    start = time.perf_counter()
    for text in bait:
        for protocol in Protocol:
            identify(protocol, text, [text] * 64)
    assert time.perf_counter() - start < 1.0


@given(st.text(max_size=3000), st.lists(st.text(max_size=300), max_size=80), st.sampled_from(list(Protocol)))
@settings(max_examples=300, deadline=None)
def test_arbitrary_text_never_raises(greeting: str, caps: list[str], protocol: Protocol) -> None:
    found = identify(protocol, greeting, caps)
    assert found is None or (isinstance(found, Software) and serves(found, protocol))
    version = identify_version(protocol, greeting, caps)
    assert version is None or (0 < len(version) <= 60 and version.isprintable())


@given(st.binary(max_size=3000), st.sampled_from(list(Protocol)))
@settings(max_examples=200, deadline=None)
def test_arbitrary_bytes_never_raise(data: bytes, protocol: Protocol) -> None:
    found = identify(protocol, data)
    assert found is None or serves(found, protocol)


def test_control_characters_and_odd_unicode() -> None:
    nasty = "220 \x1b[31mhost\x1b[0m ESMTP \u202ePostfix\u202c \x00\x07\x7f\ud800"
    # The bidi override sticks to the word, so it is not the word "Postfix": better None than a guess.
    assert identify(S, nasty) in (None, Software.POSTFIX)
    assert identify(S, "220 host ESMTP\tPostfix\x0b") is Software.POSTFIX
    assert identify(I, None) is None
    assert identify(I, None, None) is None
    assert identify(S, "\r\n" * 1000) is None


def test_display_names_and_serves() -> None:
    assert display_name(Software.EXCHANGE) == "Microsoft Exchange"
    assert display_name("dovecot") == "Dovecot"
    assert display_name(None) == "unknown"
    assert display_name("SomethingElse") == "SomethingElse"
    assert all(display_name(sw) for sw in Software)
    assert serves(Software.DOVECOT, S)  # submission service
    assert not serves(Software.POSTFIX, I)
    assert not serves("no-such-product", S)
    assert all(any(serves(sw, p) for p in Protocol) for sw in Software)
