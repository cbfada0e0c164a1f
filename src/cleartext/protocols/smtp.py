"""SMTP (RFC 5321) with STARTTLS (RFC 3207) and AUTH (RFC 4954), as a sans-IO client.

Replies are one or more lines ``NNN-text`` ending with ``NNN text``. We send EHLO (HELO if EHLO is
refused), STARTTLS, EHLO again after TLS, and QUIT — never AUTH, MAIL or anything that carries data.
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


def _reply_code(line: str) -> tuple[str, str] | None:
    """Return (code, separator) for a well-formed reply line, else None."""
    if len(line) >= 3 and line[:3].isdigit() and line[0] in "12345" and (len(line) == 3 or line[3] in " -"):
        return line[:3], line[3:4] or " "
    return None


class SMTPClient(MailClient):
    protocol = Protocol.SMTP
    capabilities_before_starttls = True

    def __init__(self, *, ehlo_name: str = "cleartext.invalid", **limits: int) -> None:
        super().__init__(**limits)
        self.ehlo_name = ehlo_name

    def capability_command(self) -> bytes:
        self._expect = Expect.CAPABILITIES
        return f"EHLO {self.ehlo_name}\r\n".encode("ascii")

    def fallback_capability_command(self) -> bytes:
        self._expect = Expect.CAPABILITIES
        return f"HELO {self.ehlo_name}\r\n".encode("ascii")

    def starttls_command(self) -> bytes:
        self._expect = Expect.STARTTLS
        return b"STARTTLS\r\n"

    def quit_command(self) -> bytes:
        self._expect = Expect.QUIT
        return b"QUIT\r\n"

    def _frame(self, line: str) -> Reply | None:
        parsed = _reply_code(line)
        if parsed is None:
            if self._expect is Expect.GREETING and not self._lines:
                return Reply(ok=False, code="", lines=(line,))
            raise ProtocolViolation(f"not an SMTP reply line: {line[:80]!r}")
        code, sep = parsed
        self._lines.append(line)
        if sep == "-":
            return None
        ok = code.startswith("2") or (self._expect is Expect.STARTTLS and code == "220")
        return Reply(ok=ok, code=code, lines=tuple(self._lines))

    def parse_greeting(self, reply: Reply) -> Greeting:
        if reply.code == "220":
            return Greeting(GreetingKind.ACCEPT, reply.text)
        if reply.code in ("421", "554", "521", "550", "450", "451", "452", "530"):
            return Greeting(GreetingKind.REFUSE, reply.text)
        return Greeting(GreetingKind.NOT_MAIL, reply.text)

    def parse_capabilities(self, reply: Reply) -> Capabilities:
        if not reply.ok:
            return Capabilities(supported=False, lines=reply.lines)
        starttls = False
        mechanisms: list[str] = []
        # The first line is the server's name and greeting; keywords follow, one per line.
        for line in reply.lines[1:]:
            words = line[4:].split()
            if not words:
                continue
            keyword = words[0].upper()
            if keyword == "STARTTLS":
                starttls = True
            elif keyword == "AUTH":
                mechanisms += words[1:]
            elif keyword.startswith("AUTH="):  # pre-RFC 4954 form some servers still send
                mechanisms += [keyword[5:], *words[1:]]
        return Capabilities(
            supported=True,
            lines=reply.lines,
            starttls=starttls,
            auth_mechanisms=tuple(split_mechanisms(mechanisms)),
            login_command=None,  # SMTP has no login command besides AUTH
        )
