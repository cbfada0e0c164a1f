"""SMTP (RFC 5321) with STARTTLS (RFC 3207) and AUTH (RFC 4954), as a sans-IO client.

Replies are one or more lines ``NNN-text`` ending with ``NNN text``. We send EHLO (HELO if EHLO is
refused), ``AUTH PLAIN`` with no initial response and, if the server answers 334, ``*`` to cancel it
(RFC 4954 §4), STARTTLS (with HELP in the same segment, for the injection check), EHLO again after TLS,
and QUIT — never a credential, MAIL or anything that carries data.
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


def _reply_code(line: str) -> tuple[str, str] | None:
    """Return (code, separator) for a well-formed reply line, else None."""
    if len(line) >= 3 and line[:3].isdigit() and line[0] in "12345" and (len(line) == 3 or line[3] in " -"):
        return line[:3], line[3:4] or " "
    return None


# 503 "authentication not enabled" (Postfix), "AUTH command used when not advertised" (Exim); 500/502
# AUTH unknown or not implemented: there is no login here, whatever the reason.
_NOT_OFFERED = ("500", "502", "503")


class SMTPClient(MailClient):
    protocol = Protocol.SMTP
    capabilities_before_starttls = True
    # HELP is answered 214 (or 502 when not implemented): never 250, so inside TLS its answer cannot be
    # taken for the EHLO reply that follows it (EHLO worked in clear, so it is not refused after TLS).
    INJECTED = b"HELP\r\n"

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

    def auth_command(self, mechanism: str = PROBE_MECHANISM) -> bytes:
        self._expect = Expect.AUTH
        return f"AUTH {mechanism}\r\n".encode("ascii")

    def read_auth(self, reply: Reply) -> AuthAnswer:
        code = reply.code
        if code == "334":
            return AuthAnswer(AuthOutcome.ACCEPTED, AuthReason.CHALLENGE)
        if code in ("530", "538"):  # RFC 3207 "must issue STARTTLS first"; RFC 4954 "encryption required"
            return AuthAnswer(AuthOutcome.REFUSED, AuthReason.TLS_REQUIRED)
        if code in _NOT_OFFERED:
            return AuthAnswer(AuthOutcome.REFUSED, AuthReason.NOT_OFFERED)
        if code == "504":  # unrecognized mechanism, or (Postfix) "Encryption required for ... mechanism"
            reason = refusal_reason(reply.text)
            if reason is AuthReason.DENIED:
                reason = AuthReason.MECHANISM
            return AuthAnswer(AuthOutcome.REFUSED, reason)
        if code.startswith("5"):
            return AuthAnswer(AuthOutcome.REFUSED, refusal_reason(reply.text))
        if code.startswith("4"):  # 454 temporary failure, 421 closing: no answer either way
            return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.TEMPORARY)
        return AuthAnswer(AuthOutcome.UNKNOWN, AuthReason.UNEXPECTED)

    def is_injected_reply(self, reply: Reply) -> bool:
        # The first reply inside TLS should be EHLO's 250; anything else but 421 answers the HELP.
        return reply.code not in ("250", "", "421")

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
