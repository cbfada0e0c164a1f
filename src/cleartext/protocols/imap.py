"""IMAP (RFC 3501 / RFC 9051) with STARTTLS and LOGINDISABLED, as a sans-IO client.

The greeting is one untagged line (``* OK``, ``* PREAUTH`` or ``* BYE``), possibly carrying
``[CAPABILITY ...]``. A command's reply is any number of untagged ``*`` lines ending with the tagged
status line. Literals (``{n}`` at the end of a line) are consumed byte-exact and bounded. We send
CAPABILITY, ``AUTHENTICATE PLAIN`` with no initial response and, after a ``+`` continuation, ``*`` to
cancel it (RFC 9051 §6.2.2), STARTTLS (with a tagged NOOP in the same segment), CAPABILITY after TLS and
LOGOUT. LOGIN is sent only by the opt-in made-up-identity probe (``login_command``), never a real one.
"""

from __future__ import annotations

import re

from cleartext.protocols._buffer import LimitExceeded
from cleartext.protocols.base import (
    MAX_LINE,
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
from cleartext.text import sanitize

MAX_LITERAL = 65536
_LITERAL = re.compile(r"\{(\d{1,9})\+?\}$")
_CAPABILITY_CODE = re.compile(r"\[CAPABILITY ([^\]]{0,8000})\]", re.IGNORECASE)
_RESP_CODE = re.compile(r"^\S+ \S+ \[([A-Z-]{1,40})", re.IGNORECASE)


def capability_tokens(text: str) -> list[str]:
    """Capability atoms, upper case, from a CAPABILITY response's text."""
    return [word.upper() for word in text.split() if word]


class IMAPClient(MailClient):
    protocol = Protocol.IMAP

    def __init__(self, **limits: int) -> None:
        super().__init__(**limits)
        self._counter = 0
        self._tag = ""
        self._partial = ""  # a line interrupted by a literal
        self._literal = 0  # bytes of literal still to consume
        self._injected_tag = ""  # the tag of the NOOP sent with STARTTLS

    def _next_tag(self) -> str:
        self._counter += 1
        self._tag = f"c{self._counter}"
        return self._tag

    def capability_command(self) -> bytes:
        self._expect = Expect.CAPABILITIES
        return f"{self._next_tag()} CAPABILITY\r\n".encode("ascii")

    def starttls_command(self) -> bytes:
        self._expect = Expect.STARTTLS
        return f"{self._next_tag()} STARTTLS\r\n".encode("ascii")

    def starttls_injected_command(self) -> bytes:
        command = self.starttls_command()
        tag = self._tag
        self._injected_tag = self._next_tag()
        self._tag = tag  # STARTTLS's reply is still the one expected
        return command + f"{self._injected_tag} NOOP\r\n".encode("ascii")

    def quit_command(self) -> bytes:
        self._expect = Expect.QUIT
        return f"{self._next_tag()} LOGOUT\r\n".encode("ascii")

    def auth_command(self, mechanism: str = PROBE_MECHANISM) -> bytes:
        self._expect = Expect.AUTH
        return f"{self._next_tag()} AUTHENTICATE {mechanism}\r\n".encode("ascii")

    def login_command(self, user: str, password: str) -> bytes:
        """LOGIN with a made-up identity: only for the opt-in probe (``--login-probe made-up``)."""
        for word in (user, password):
            if not word or not all(c.isalnum() or c in "-_." for c in word):
                raise ValueError("a made-up identity is plain alphanumeric words")
        self._expect = Expect.LOGIN
        return f"{self._next_tag()} LOGIN {user} {password}\r\n".encode("ascii")

    def read_auth(self, reply: Reply) -> AuthAnswer:
        if reply.code == "+":
            return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.CHALLENGE)
        if reply.code in ("NO", "BAD"):
            code = _response_code(reply.last)
            if code == "UNAVAILABLE":  # RFC 5530: a passing failure
                return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.TEMPORARY)
            if code == "PRIVACYREQUIRED":
                return AuthAnswer(AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED)
            if code == "CANNOT":
                return AuthAnswer(AuthOutcome.REFUSED, AuthReason.MECHANISM)
            return AuthAnswer(AuthOutcome.REFUSED, refusal_reason(reply.last))
        return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.UNEXPECTED)

    def read_login(self, reply: Reply) -> AuthAnswer:
        """The opt-in LOGIN with a made-up identity: refused before checking it (TLS first, LOGIN disabled)
        means no password is taken in clear; checked and found wrong means any password would be."""
        code = _response_code(reply.last)
        if reply.code == "OK":
            return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.UNEXPECTED)
        if code == "UNAVAILABLE":
            return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.TEMPORARY)
        if code == "PRIVACYREQUIRED" or reply.code == "BAD":
            return AuthAnswer(AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED)
        if code in ("AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED"):
            return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.CHECKED)
        reason = refusal_reason(reply.last)
        if reason is AuthReason.TLS_REQUIRED or "disabled" in reply.last.lower():
            return AuthAnswer(AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED)
        # A plain "NO Authentication failed" (RFC 3501 servers without response codes): it was checked.
        return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.CHECKED)

    def _next_line(self) -> str | None:
        """A whole response line: a line ending in ``{n}`` continues after n literal bytes."""
        while True:
            if self._literal:
                chunk = self._buffer.take_bytes(self._literal)
                if chunk is None:
                    return None
                self._partial += sanitize(chunk, MAX_LINE)
                self._literal = 0
            raw = self._buffer.take_line()
            if raw is None:
                return None
            line = self._partial + sanitize(raw, MAX_LINE)
            if len(line) > MAX_LITERAL:
                raise LimitExceeded("IMAP response with literals too long")
            match = _LITERAL.search(line)
            if not match:
                self._partial = ""
                return line
            size = int(match.group(1))
            if size > MAX_LITERAL:
                raise LimitExceeded(f"IMAP literal of {size} bytes")
            self._partial = line + "\n"
            self._literal = size

    def _frame(self, line: str) -> Reply | None:
        if self._expect is Expect.AUTH and (line == "+" or line.startswith("+ ")):
            return Reply(ok=True, code="+", lines=(line,))
        if self._expect is Expect.GREETING:
            words = line.split(" ", 2)
            if len(words) >= 2 and words[0] == "*" and words[1].upper() in ("OK", "PREAUTH", "BYE"):
                status = words[1].upper()
                return Reply(ok=status != "BYE", code=status, lines=(line,))
            return Reply(ok=False, code="", lines=(line,))
        if line.startswith("* ") or line == "*":
            self._lines.append(line)
            return None
        words = line.split(" ", 2)
        if self._injected_tag and len(words) >= 2 and words[0].lower() == self._injected_tag.lower():
            # The NOOP sent with STARTTLS answered: inside TLS, the injection worked (CVE-2011-0411).
            self._injected_tag = ""
            return Reply(ok=False, code=words[1].upper()[:20], lines=(line,), injected=True)
        if len(words) >= 2 and words[0].lower() == self._tag.lower():
            status = words[1].upper()
            if status not in ("OK", "NO", "BAD"):
                raise ProtocolViolation(f"unknown IMAP status {status[:20]!r}")
            self._lines.append(line)
            return Reply(ok=status == "OK", code=status, lines=tuple(self._lines))
        if line.startswith("+"):
            raise ProtocolViolation("unexpected continuation request")
        raise ProtocolViolation(f"not an IMAP response line: {line[:80]!r}")

    def parse_greeting(self, reply: Reply) -> Greeting:
        if reply.code in ("OK", "PREAUTH"):
            match = _CAPABILITY_CODE.search(reply.text)
            caps = tuple(capability_tokens(match.group(1))) if match else None
            return Greeting(GreetingKind.ACCEPT, reply.text, capabilities=caps)
        if reply.code == "BYE":
            return Greeting(GreetingKind.REFUSE, reply.text)
        return Greeting(GreetingKind.NOT_MAIL, reply.text)

    def parse_capabilities(self, reply: Reply) -> Capabilities:
        tokens: list[str] = []
        for line in reply.lines:
            words = line.split(" ", 2)
            if len(words) >= 2 and words[0] == "*" and words[1].upper() == "CAPABILITY":
                tokens += capability_tokens(words[2] if len(words) > 2 else "")
        if reply.ok:
            match = _CAPABILITY_CODE.search(reply.last)
            if match:
                tokens += capability_tokens(match.group(1))
        if not reply.ok or not tokens:
            return Capabilities(supported=False, lines=reply.lines)
        return capabilities_from_tokens(tokens, reply.lines)


def _response_code(line: str) -> str:
    """The response code of a tagged status line, e.g. PRIVACYREQUIRED in ``a NO [PRIVACYREQUIRED] ...``."""
    match = _RESP_CODE.match(line)
    return match.group(1).upper() if match else ""


def capabilities_from_tokens(tokens: list[str] | tuple[str, ...], lines: tuple[str, ...]) -> Capabilities:
    """Read LOGINDISABLED, STARTTLS and AUTH= from capability atoms (also used for greeting codes)."""
    upper = [t.upper() for t in tokens]
    mechanisms = [t[5:] for t in upper if t.startswith("AUTH=")]
    return Capabilities(
        supported=True,
        lines=lines,
        starttls="STARTTLS" in upper,
        auth_mechanisms=tuple(split_mechanisms(mechanisms)),
        login_command="LOGINDISABLED" not in upper,
    )
