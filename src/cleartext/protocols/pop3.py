"""POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595) and SASL (RFC 5034), as a sans-IO client.

Replies are one status line (``+OK``/``-ERR``); CAPA's positive reply continues with lines up to a lone
``.`` (dot-stuffed); a SASL continuation is ``+`` and a space (RFC 5034). We send CAPA, ``AUTH PLAIN``
with no initial response and ``*`` to cancel it, ``USER`` with a made-up name (RFC 1939 lets a server
refuse USER; ``+OK`` means it would take PASS next), STLS (with NOOP in the same segment), CAPA after
TLS and QUIT — never PASS, APOP or a SASL response.
"""

from __future__ import annotations

from cleartext.protocols.base import (
    PROBE_MECHANISM,
    AuthAnswer,
    AuthOutcome,
    AuthReason,
    Capabilities,
    Expect,
    Greeting,
    GreetingKind,
    MailClient,
    ProtocolViolation,
    Reply,
    refusal_reason,
    split_mechanisms,
)
from cleartext.record import Protocol


def _status(line: str) -> str | None:
    head = line.split(" ", 1)[0].upper()
    if head in ("+OK", "-ERR"):
        return head
    return None


def _continuation(line: str) -> bool:
    """``+`` alone or ``+ <base64>``: the server waits for a SASL response (RFC 5034 §4)."""
    return line == "+" or line.startswith("+ ")


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

    def auth_command(self, mechanism: str = PROBE_MECHANISM) -> bytes:
        self._expect = Expect.AUTH
        return f"AUTH {mechanism}\r\n".encode("ascii")

    def user_command(self, name: str) -> bytes:
        """USER with a name no mailbox has; the probe never follows it with PASS."""
        if not name or any(c.isspace() or not c.isprintable() for c in name):
            raise ValueError("a probe user name is one printable word")
        self._expect = Expect.USER
        return f"USER {name}\r\n".encode("ascii")

    def read_auth(self, reply: Reply) -> AuthAnswer:
        if reply.code == "+":
            return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.CHALLENGE)
        if reply.code == "-ERR":
            return self._refusal(reply)
        return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.UNEXPECTED)

    def read_user(self, reply: Reply) -> AuthAnswer:
        """+OK to USER: the server would take PASS next, in clear."""
        if reply.code == "+OK":
            return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.CHALLENGE)
        if reply.code == "-ERR":
            return self._refusal(reply)
        return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.UNEXPECTED)

    @staticmethod
    def _refusal(reply: Reply) -> AuthAnswer:
        text = reply.text
        if "[SYS/TEMP]" in text.upper() or "[IN-USE]" in text.upper():  # RFC 3206: a passing failure
            return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.TEMPORARY)
        return AuthAnswer(AuthOutcome.REFUSED, refusal_reason(text))

    def is_injected_reply(self, reply: Reply) -> bool:
        # NOOP is not a command before login (RFC 1939): its -ERR comes before CAPA's +OK.
        return reply.code == "-ERR"

    def _frame(self, line: str) -> Reply | None:
        if self._multiline:
            if line == ".":
                self._multiline = False
                return Reply(ok=True, code="+OK", lines=tuple(self._lines))
            self._lines.append(line[1:] if line.startswith("..") else line)
            return None
        if self._expect is Expect.AUTH and _continuation(line):
            return Reply(ok=True, code="+", lines=(line,))
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
