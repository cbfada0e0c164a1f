"""The shape every mail protocol client shares: sans-IO, bytes in, typed replies out.

A client never touches a socket. The probe writes the bytes a ``*_command()`` method returns, feeds
whatever it reads to :meth:`MailClient.receive_data`, and calls :meth:`MailClient.next_reply` until a
complete reply is framed. Framing depends on what was asked (an IMAP tag, a POP3 multi-line list, an SMTP
``250-`` continuation), so each command sets what the client expects next.

The per-protocol modules (smtp, pop3, imap) supply the framing and the reading of greetings and
capability lists. Nothing here judges: whether a capability list allows a cleartext login is decided in
assess; this layer only reports the facts (mechanisms offered, LOGIN/USER usable, STARTTLS advertised).

The login probe lives here too, as commands and the reading of their replies: ``auth_command()`` starts
a SASL exchange *without* an initial response, the server's reply says whether it would go on to take a
password (:class:`AuthAnswer`), and ``auth_cancel_command()`` ends the exchange with ``*`` (RFC 4954 §4,
RFC 9051 §6.2.2, RFC 5034 §4) before anything secret could be sent. No method here can produce a
password, a SASL response or a PASS command.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

from cleartext.protocols._buffer import LimitExceeded, LineBuffer
from cleartext.record import Protocol
from cleartext.text import sanitize

MAX_REPLY_LINES = 256  # a capability list of 256 lines is already absurd
MAX_LINE = 8192  # RFC 5321 allows 512 per reply line; IMAP capability lines run longer


class ProtocolViolation(Exception):
    """The server's reply cannot be framed as this protocol (after the greeting said it was one)."""


class Expect(StrEnum):
    GREETING = "greeting"
    CAPABILITIES = "capabilities"
    STARTTLS = "starttls"
    AUTH = "auth"  # the reply to AUTH/AUTHENTICATE: a continuation, or a refusal
    CANCEL = "cancel"  # the reply to "*"
    USER = "user"  # POP3 USER
    LOGIN = "login"  # IMAP LOGIN with a made-up identity (opt-in only)
    QUIT = "quit"


class AuthOutcome(StrEnum):
    """What a server did with the start of a login before TLS."""

    ACCEPTED = "accepted"  # it asked for the credentials: a client's password would cross in clear
    REFUSED = "refused"  # it said no before any credential (policy, not offered, unknown mechanism)
    UNKNOWN = "unknown"  # a temporary failure or an answer that says neither


class AuthReason(StrEnum):
    CHALLENGE = "challenge"  # a continuation: the server waits for the credentials
    TLS_REQUIRED = "tls-required"  # refused until TLS (530, 538, NO [PRIVACYREQUIRED], -ERR [AUTH] ...)
    NOT_OFFERED = "not-offered"  # no login here at all (503 authentication not enabled, unknown command)
    MECHANISM = "mechanism-unsupported"  # this SASL mechanism is not offered (504, NO/BAD unsupported)
    DENIED = "denied"  # refused without saying why (or a failed login, with the opt-in made-up identity)
    CHECKED = "checked"  # opt-in LOGIN: the made-up identity was checked and rejected as wrong
    TEMPORARY = "temporary"  # 4xx, NO [UNAVAILABLE]: says nothing either way
    UNEXPECTED = "unexpected"  # success without credentials, or an answer no standard gives


@dataclass(frozen=True, slots=True)
class AuthAnswer:
    outcome: AuthOutcome
    reason: AuthReason


_TLS_WORDS = ("tls", "ssl", "encrypt", "secur", "privacy", "plaintext", "starttls", "stls", "cleartext")
_MECH_WORDS = ("mechanism", "unsupported", "not supported", "unrecognized", "unknown auth", "unknown sasl")


def refusal_reason(text: str) -> AuthReason:
    """Why a server refused, from its words: TLS required, or this mechanism unsupported, or no reason."""
    low = text.lower()
    if any(w in low for w in _TLS_WORDS):
        return AuthReason.TLS_REQUIRED
    if any(w in low for w in _MECH_WORDS):
        return AuthReason.MECHANISM
    return AuthReason.DENIED


class GreetingKind(StrEnum):
    ACCEPT = "accept"  # the server is willing to talk
    REFUSE = "refuse"  # a mail server of this protocol that refuses us (SMTP 421/554, POP3 -ERR, IMAP BYE)
    NOT_MAIL = "not-mail"  # whatever answered is not this protocol


@dataclass(frozen=True, slots=True)
class Reply:
    """One complete server reply. ``lines`` are sanitised text, in the order received."""

    ok: bool
    code: str  # "250", "+OK", "-ERR", "+" (a continuation), "OK", "NO", "BAD", "BYE", "PREAUTH", or ""
    lines: tuple[str, ...]
    injected: bool = False  # the answer to the command sent after STARTTLS (IMAP: told by its tag)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def last(self) -> str:
        return self.lines[-1] if self.lines else ""


@dataclass(frozen=True, slots=True)
class Greeting:
    kind: GreetingKind
    text: str
    capabilities: tuple[str, ...] | None = None  # IMAP may list them in the greeting's response code
    apop: bool = False  # POP3 greeting carries an APOP timestamp


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a capability command (EHLO, CAPA, CAPABILITY) revealed."""

    supported: bool  # False: the command was refused; the other fields are then empty or unknown
    lines: tuple[str, ...]  # the capability lines as sent (sanitised)
    starttls: bool = False
    auth_mechanisms: tuple[str, ...] = ()  # SASL mechanisms, upper case, in server order
    login_command: bool | None = None  # IMAP LOGIN / POP3 USER usable (None: not applicable or unknown)


def split_mechanisms(words: list[str]) -> list[str]:
    """Upper-case SASL mechanism names, deduplicated, keeping order; junk tokens dropped."""
    seen: list[str] = []
    for word in words:
        mech = word.strip().upper()
        if mech and len(mech) <= 40 and all(c.isalnum() or c in "-_" for c in mech) and mech not in seen:
            seen.append(mech)
    return seen


#: The SASL mechanism every login probe starts with: the one clients use to send a password as is.
PROBE_MECHANISM = "PLAIN"


class MailClient(ABC):
    """A scripted mail client: greeting, capabilities, a login started and cancelled, STARTTLS,
    capabilities again, quit."""

    protocol: ClassVar[Protocol]
    #: whether capabilities must be asked before STARTTLS may be sent (SMTP: EHLO first, RFC 3207)
    capabilities_before_starttls: ClassVar[bool] = False
    #: the command sent in the same segment as STARTTLS to see whether it is answered inside TLS
    #: (CVE-2011-0411): chosen so that its answer cannot be mistaken for the next expected reply
    INJECTED: ClassVar[bytes] = b"NOOP\r\n"

    def __init__(self, *, max_line: int = MAX_LINE, max_reply_lines: int = MAX_REPLY_LINES) -> None:
        self._buffer = LineBuffer(max_line)
        self._max_reply_lines = max_reply_lines
        self._expect = Expect.GREETING
        self._lines: list[str] = []

    # -- feeding -------------------------------------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        self._buffer.feed(data)

    def next_reply(self) -> Reply | None:
        """Frame the next complete reply to what was last asked; None if more bytes are needed.

        Raises LimitExceeded (too long) or ProtocolViolation (unframeable after a valid greeting).
        """
        while True:
            line = self._next_line()
            if line is None:
                return None
            reply = self._frame(line)
            if reply is not None:
                self._lines = []
                return reply
            if len(self._lines) > self._max_reply_lines:
                raise LimitExceeded(f"reply longer than {self._max_reply_lines} lines")

    def _next_line(self) -> str | None:
        """The next complete protocol line, sanitised (IMAP overrides this to splice in literals)."""
        raw = self._buffer.take_line()
        return None if raw is None else sanitize(raw, MAX_LINE)

    def take_pending(self) -> bytes:
        """Bytes that arrived after the last framed reply (after STARTTLS they are an injection sign)."""
        return self._buffer.take_all()

    def after_tls(self) -> None:
        """Forget everything buffered in clear: nothing from before the handshake is trusted after it."""
        self._buffer.take_all()
        self._lines = []

    # -- commands: each returns the bytes to send and sets what is expected next ----------------------
    def expect_greeting(self) -> None:
        self._expect = Expect.GREETING

    @abstractmethod
    def capability_command(self) -> bytes: ...

    def fallback_capability_command(self) -> bytes | None:
        """A second way to open the dialog when the capability command was refused (SMTP: HELO)."""
        return None

    @abstractmethod
    def starttls_command(self) -> bytes: ...

    def starttls_injected_command(self) -> bytes:
        """STARTTLS and, in the same segment, one harmless command. A server that keeps what it read in
        clear and answers that command inside TLS lets an attacker's injected commands into the
        encrypted session (CVE-2011-0411); a sound one discards it or closes the connection."""
        return self.starttls_command() + self.INJECTED

    def is_injected_reply(self, reply: Reply) -> bool:
        """After an injected STARTTLS: is this first reply inside TLS the injected command's answer?"""
        return reply.injected

    @abstractmethod
    def auth_command(self, mechanism: str = PROBE_MECHANISM) -> bytes:
        """Start a SASL exchange with no initial response (nothing secret in it)."""

    def auth_cancel_command(self) -> bytes:
        """``*``: cancel the exchange the server is waiting on (sent only after a continuation)."""
        self._expect = Expect.CANCEL
        return b"*\r\n"

    @abstractmethod
    def read_auth(self, reply: Reply) -> AuthAnswer:
        """What the reply to :meth:`auth_command` says about a login before TLS."""

    @abstractmethod
    def quit_command(self) -> bytes: ...

    # -- reading replies -------------------------------------------------------------------------------
    @abstractmethod
    def _frame(self, line: str) -> Reply | None:
        """Take one line; return the reply when it is complete."""

    @abstractmethod
    def parse_greeting(self, reply: Reply) -> Greeting: ...

    @abstractmethod
    def parse_capabilities(self, reply: Reply) -> Capabilities: ...

    def starttls_accepted(self, reply: Reply) -> bool:
        return reply.ok


__all__ = [
    "PROBE_MECHANISM",
    "AuthAnswer",
    "AuthOutcome",
    "AuthReason",
    "Capabilities",
    "Expect",
    "Greeting",
    "GreetingKind",
    "LimitExceeded",
    "MailClient",
    "ProtocolViolation",
    "Reply",
    "refusal_reason",
    "split_mechanisms",
]
