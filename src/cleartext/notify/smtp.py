"""Sending through the operator's SMTP server: TLS required, the certificate verified, and one hook
called just before the end of data, where the exactly-once bookkeeping needs it.

Why stdlib ``smtplib`` driven step by step rather than ``sendmail()``: the ledger must be committed at
one precise point — after the message body was accepted for transfer (354 and the body written) and
*before* the terminating ``.`` is written, because from the moment the dot leaves, the server may accept
the message and we may never hear its 250 (a SIGKILL, a dropped connection). ``sendmail()`` writes body
and dot in one call, so the transaction is done here with MAIL, RCPT, DATA, the dot-stuffed body, the
hook, then the dot (see docs/notify.md, "Exactly once").

TLS is not negotiable: ``starttls`` mode refuses a server that does not offer STARTTLS (before any MAIL
command, so nothing is sent), ``implicit`` mode speaks TLS from the first byte (port 465). TLS 1.2 is
the minimum; the certificate is verified against the system store plus ``--ca-file`` and the host name
given, unless the operator says ``--insecure-skip-verify``. Credentials are only ever sent inside TLS
and never appear in an error message.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartext.errors import CleartextError

__all__ = ["Relay", "RelayError", "SendError", "SmtpSettings", "UncertainDelivery", "tls_context"]

TLS_MODES = ("starttls", "implicit")
DEFAULT_PORTS = {"starttls": 587, "implicit": 465}


class RelayError(CleartextError):
    """The relay cannot be used at all (no TLS, bad certificate, refused login): one line, exit 2."""


class SendError(Exception):
    """One message was refused or could not be handed over; ``temporary`` says whether to retry."""

    def __init__(self, message: str, *, code: int | None, temporary: bool, connection_lost: bool = False):
        super().__init__(message)
        self.code = code
        self.temporary = temporary
        self.connection_lost = connection_lost


class UncertainDelivery(Exception):
    """The end of data was written but no reply was read: the server may or may not have the message."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    tls: str = "starttls"
    user: str | None = None
    password: str | None = None
    ca_files: Sequence[Path] = ()
    insecure_skip_verify: bool = False
    timeout: float = 30.0
    ehlo_name: str | None = None

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def tls_context(ca_files: Sequence[Path] = (), *, insecure: bool = False) -> ssl.SSLContext:
    """A client context: TLS 1.2 or later, system trust plus the given CA files, host name checked."""
    ctx = ssl.create_default_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    for path in ca_files:
        ctx.load_verify_locations(cafile=str(path))
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _reply_text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]


def _dot_stuff(data: bytes) -> bytes:
    """RFC 5321 4.5.2: a line starting with '.' gets another; the body ends with CRLF."""
    data = re.sub(rb"(?m)^\.", b"..", data)
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class Relay:
    """One connection to the operator's SMTP server, opened by :meth:`connect`, reused for every message."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._context = tls_context(settings.ca_files, insecure=settings.insecure_skip_verify)
        self._smtp: smtplib.SMTP | None = None
        self._in_data = False  # between DATA's 354 and the final dot: a QUIT would become message text
        self.tls_version: str | None = None

    @property
    def connected(self) -> bool:
        return self._smtp is not None

    def connect(self) -> None:
        """Connect, get TLS, log in; RelayError (one line) when the relay must not or cannot be used."""
        s = self.settings
        smtp: smtplib.SMTP | None = None
        try:
            if s.tls == "implicit":
                smtp = smtplib.SMTP_SSL(
                    s.host, s.port, local_hostname=s.ehlo_name, timeout=s.timeout, context=self._context
                )
                self._ehlo(smtp)
            else:
                smtp = smtplib.SMTP(s.host, s.port, local_hostname=s.ehlo_name, timeout=s.timeout)
                self._ehlo(smtp)
                if not smtp.has_extn("starttls"):
                    raise RelayError(
                        f"SMTP server {s.where} does not offer STARTTLS: refusing to send in clear "
                        "(nothing sent; for a port with implicit TLS use --tls implicit)"
                    )
                code, reply = smtp.starttls(context=self._context)
                if code != 220:
                    raise RelayError(f"SMTP server {s.where} refused STARTTLS: {code} {_reply_text(reply)}")
                self._ehlo(smtp)
            sock = smtp.sock
            self.tls_version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
            if self.tls_version is None:  # cannot happen with smtplib; checked because it must not
                raise RelayError(f"no TLS on the connection to {s.where}: refusing to send")
            if s.user:
                if not smtp.has_extn("auth"):
                    raise RelayError(
                        f"SMTP server {s.where} offers no AUTH after TLS: cannot log in as {s.user}"
                    )
                try:
                    smtp.login(s.user, s.password or "")
                except smtplib.SMTPAuthenticationError as exc:
                    refusal = f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
                    raise RelayError(f"SMTP login as {s.user} refused by {s.where}: {refusal}") from None
                except smtplib.SMTPException as exc:
                    raise RelayError(
                        f"SMTP login as {s.user} on {s.where} failed: {_one_line(exc)}"
                    ) from None
        except RelayError:
            self._drop(smtp)
            raise
        except ssl.SSLCertVerificationError as exc:
            self._drop(smtp)
            reason = exc.verify_message or exc.reason or str(exc)
            raise RelayError(
                f"TLS certificate of {s.where} not trusted: {reason} (nothing sent; --ca-file adds a CA, "
                "--insecure-skip-verify skips the check)"
            ) from None
        except ssl.SSLError as exc:
            self._drop(smtp)
            raise RelayError(
                f"TLS with {s.where} failed: {exc.reason or _one_line(exc)} (nothing sent)"
            ) from None
        except smtplib.SMTPNotSupportedError:
            self._drop(smtp)
            raise RelayError(
                f"SMTP server {s.where} does not offer STARTTLS: refusing to send in clear"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            self._drop(smtp)
            raise RelayError(f"cannot use SMTP server {s.where}: {_one_line(exc)} (nothing sent)") from None
        self._smtp = smtp

    def _ehlo(self, smtp: smtplib.SMTP) -> None:
        code, reply = smtp.ehlo()
        if code != 250:
            raise RelayError(
                f"SMTP server {self.settings.where} refused EHLO: {code} {_reply_text(reply)} "
                "(ESMTP is needed for TLS)"
            )

    @staticmethod
    def _drop(smtp: smtplib.SMTP | None) -> None:
        if smtp is not None:
            with contextlib.suppress(Exception):
                smtp.close()

    def send(self, sender: str, recipient: str, data: bytes, before_end: Callable[[], None]) -> str:
        """Send one message to one recipient; returns the server's reply to the end of data.

        ``before_end`` is called after the body was written and before the final dot. Raises SendError
        for a refusal or a failure before that point (nothing was accepted), UncertainDelivery for a
        failure after it, and SendError for a refusal of the end of data.
        """
        smtp = self._smtp
        if smtp is None:
            raise SendError("not connected", code=None, temporary=True, connection_lost=True)
        try:
            code, reply = smtp.mail(sender)
            if code != 250:
                self._refused("MAIL FROM", code, reply)
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                self._refused("RCPT TO", code, reply)
            code, reply = smtp.docmd("DATA")
            if code != 354:
                self._refused("DATA", code, reply)
            self._in_data = True
            smtp.send(_dot_stuff(data))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._lost()
            raise SendError(
                f"connection lost before the end of data: {_one_line(exc)}",
                code=None,
                temporary=True,
                connection_lost=True,
            ) from None
        try:
            before_end()
        except BaseException:
            self._lost()  # never QUIT inside DATA: the server discards a message without its dot
            raise
        try:
            smtp.send(b".\r\n")
            self._in_data = False
            code, reply = smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._lost()
            raise UncertainDelivery(f"no reply to the end of data: {_one_line(exc)}") from None
        if code != 250:
            self._refused("end of data", code, reply, reset=code != 421)
        return f"{code} {_reply_text(reply)}"

    def _refused(self, stage: str, code: int, reply: bytes, *, reset: bool = True) -> None:
        """A 4xx or 5xx (or garbage) at some stage: reset the transaction and raise SendError."""
        text = f"{stage}: {code} {_reply_text(reply)}"
        lost = code == 421 or code < 0  # 421: the server closes the channel; -1: unreadable reply
        if lost:
            self._lost()
        elif reset:
            try:
                self._smtp.rset() if self._smtp is not None else None
            except (smtplib.SMTPException, OSError):
                self._lost()
                lost = True
        raise SendError(text, code=code, temporary=not 500 <= code < 600, connection_lost=lost)

    def _lost(self) -> None:
        self._drop(self._smtp)
        self._smtp = None
        self._in_data = False

    def close(self) -> None:
        """QUIT politely, unless inside DATA (then just close: the unfinished message is discarded)."""
        smtp, self._smtp = self._smtp, None
        in_data, self._in_data = self._in_data, False
        if smtp is not None and not in_data:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                smtp.quit()
            self._drop(smtp)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
