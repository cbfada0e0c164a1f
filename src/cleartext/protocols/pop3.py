"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595) and SASL (RFC 5034), as a sans-IO client.

Replies are one status line (``+OK``/``-ERR``); CAPA's positive reply continues with lines up to a lone
``.`` (dot-stuffed). We send CAPA, STLS, CAPA after TLS and QUIT — never USER, PASS, APOP or AUTH.
"""

from __future__ import annotations

from cleartext.protocols.base import (
    Capabilities,
    Expect,
    Greeting,
    GreetingKind,
    MailClient,
    ProtocolViolation,
    Reply,
    split_mechanisms,
)
from cleartext.record import Protocol


def _status(line: str) -> str | None:
    head = line.split(" ", 1)[0].upper()
    if head in ("+OK", "-ERR"):
        return head
    return None


class POP3Client(MailClient):
    protocol = Protocol.POP3

    def __init__(self, **limits: int) -> None:
        super().__init__(**limits)
        self._multiline = False

    def capability_command(self) -> bytes:
        self._expect = Expect.CAPABILITIES
        return b"CAPA\r\n"

    def starttls_command(self) -> bytes:
        self._expect = Expect.STARTTLS
        return b"STLS\r\n"

    def quit_command(self) -> bytes:
        self._expect = Expect.QUIT
        return b"QUIT\r\n"

    def _frame(self, line: str) -> Reply | None:
        if self._multiline:
            if line == ".":
                self._multiline = False
                return Reply(ok=True, code="+OK", lines=tuple(self._lines))
            self._lines.append(line[1:] if line.startswith("..") else line)
            return None
        status = _status(line)
        if status is None:
            if self._expect is Expect.GREETING:
                return Reply(ok=False, code="", lines=(line,))
            raise ProtocolViolation(f"not a POP3 status line: {line[:80]!r}")
        if status == "+OK" and self._expect is Expect.CAPABILITIES:
            self._multiline = True
            self._lines = [line]
            return None
        return Reply(ok=status == "+OK", code=status, lines=(line,))

    def parse_greeting(self, reply: Reply) -> Greeting:
        if reply.code == "+OK":
            text = reply.text
            # An APOP timestamp is a msg-id in angle brackets: <1896.697170952@dbc.mtview.ca.us>
            start = text.find("<")
            apop = start >= 0 and "@" in text[start:] and ">" in text[start:]
            return Greeting(GreetingKind.ACCEPT, text, apop=apop)
        if reply.code == "-ERR":
            return Greeting(GreetingKind.REFUSE, reply.text)
        return Greeting(GreetingKind.NOT_MAIL, reply.text)

    def parse_capabilities(self, reply: Reply) -> Capabilities:
        if not reply.ok:
            return Capabilities(supported=False, lines=reply.lines)
        starttls = user = False
        mechanisms: list[str] = []
        for line in reply.lines[1:]:
            words = line.split()
            if not words:
                continue
            keyword = words[0].upper()
            if keyword == "STLS":
                starttls = True
            elif keyword == "USER":
                user = True
            elif keyword == "SASL":
                mechanisms += words[1:]
        return Capabilities(
            supported=True,
            lines=reply.lines,
            starttls=starttls,
            auth_mechanisms=tuple(split_mechanisms(mechanisms)),
            login_command=user,
        )
