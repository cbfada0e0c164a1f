"""Property-based tests: whatever bytes a server sends, in whatever pieces, the clients never crash."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cleartext.protocols import IMAPClient, POP3Client, SMTPClient
from cleartext.protocols.base import AuthAnswer, Expect, LimitExceeded, MailClient, ProtocolViolation

CLIENTS = (SMTPClient, POP3Client, IMAPClient)

line = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [
            b"250-AUTH PLAIN",
            b"250 OK",
            b"+OK",
            b"-ERR",
            b".",
            b"* OK",
            b"* CAPABILITY IMAP4rev1",
            b"c1 OK",
            b"* X {3}",
            b"{5}",
            b"220 hi",
            b"..",
            b"\x00\xff",
            b"+ ",
            b"+",
            b"334 ",
            b"c1 NO [PRIVACYREQUIRED] no",
            b"c2 OK NOOP done",
            b"-ERR [AUTH] Plaintext authentication disallowed",
            b"538 5.7.11 Encryption required",
        ]
    ),
)
stream = st.lists(line, max_size=40).map(lambda ls: b"\r\n".join(ls) + b"\r\n")


def ask(client: MailClient, expect: Expect) -> None:
    """Send (to nowhere) the command after which ``expect`` is what the client waits for."""
    if expect is Expect.GREETING:
        client.expect_greeting()
    elif expect is Expect.CAPABILITIES:
        client.capability_command()
    elif expect is Expect.STARTTLS:
        client.starttls_injected_command()
    elif expect is Expect.QUIT:
        client.quit_command()
    elif expect is Expect.CANCEL:
        client.auth_command()
        client.auth_cancel_command()
    elif expect is Expect.USER and isinstance(client, POP3Client):
        client.user_command("probe")
    elif expect is Expect.LOGIN and isinstance(client, IMAPClient):
        client.login_command("made-up", "made-up")
    else:
        client.auth_command()


def drive(client: MailClient, data: bytes, cuts: list[int], expect: Expect) -> None:
    ask(client, expect)
    pieces, last = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        pieces.append(data[last:cut])
        last = cut
    pieces.append(data[last:])
    try:
        for piece in pieces:
            client.receive_data(piece)
            while True:
                reply = client.next_reply()
                if reply is None:
                    break
                assert isinstance(reply.code, str)
                for text in reply.lines:
                    assert "\r" not in text and "\x00" not in text
                if expect is Expect.GREETING:
                    client.parse_greeting(reply)
                elif expect is Expect.CAPABILITIES:
                    client.parse_capabilities(reply)
                    assert isinstance(client.is_injected_reply(reply), bool)
                elif expect is Expect.AUTH:
                    assert isinstance(client.read_auth(reply), AuthAnswer)
    except (LimitExceeded, ProtocolViolation):
        pass


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(CLIENTS),
    data=stream,
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=8),
    expect=st.sampled_from(list(Expect)),
)
def test_clients_never_crash(which: type[MailClient], data: bytes, cuts: list[int], expect: Expect) -> None:
    drive(which(), data, cuts, expect)


@settings(max_examples=200, deadline=None)
@given(
    which=st.sampled_from(CLIENTS),
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
)
def test_clients_never_crash_on_raw_bytes(which: type[MailClient], data: bytes, cuts: list[int]) -> None:
    drive(which(), data, cuts, Expect.CAPABILITIES)


@settings(max_examples=200, deadline=None)
@given(
    mechs=st.lists(st.sampled_from(["PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256", "XOAUTH2"]), max_size=5),
    starttls=st.booleans(),
    chunk=st.integers(min_value=1, max_value=50),
)
def test_smtp_ehlo_roundtrip(mechs: list[str], starttls: bool, chunk: int) -> None:
    lines = (
        ["mx.example"] + (["AUTH " + " ".join(mechs)] if mechs else []) + (["STARTTLS"] if starttls else [])
    )
    lines.append("8BITMIME")
    raw = "".join(
        f"250{'-' if i < len(lines) - 1 else ' '}{text}\r\n" for i, text in enumerate(lines)
    ).encode()
    c = SMTPClient()
    c.capability_command()
    reply = None
    for i in range(0, len(raw), chunk):
        c.receive_data(raw[i : i + chunk])
        reply = reply or c.next_reply()
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.starttls == starttls
    assert list(caps.auth_mechanisms) == list(dict.fromkeys(mechs))


@settings(max_examples=200, deadline=None)
@given(
    tokens=st.lists(
        st.sampled_from(["IMAP4rev1", "STARTTLS", "LOGINDISABLED", "AUTH=PLAIN", "IDLE"]), max_size=6
    ),
    chunk=st.integers(min_value=1, max_value=30),
)
def test_imap_capability_roundtrip(tokens: list[str], chunk: int) -> None:
    c = IMAPClient()
    tag = c.capability_command().split(b" ")[0].decode()
    raw = f"* CAPABILITY {' '.join(['IMAP4rev1', *tokens])}\r\n{tag} OK done\r\n".encode()
    reply = None
    for i in range(0, len(raw), chunk):
        c.receive_data(raw[i : i + chunk])
        reply = reply or c.next_reply()
    assert reply is not None
    caps = c.parse_capabilities(reply)
    assert caps.login_command == ("LOGINDISABLED" not in tokens)
    assert caps.starttls == ("STARTTLS" in tokens)
    assert caps.auth_mechanisms == (("PLAIN",) if "AUTH=PLAIN" in tokens else ())
