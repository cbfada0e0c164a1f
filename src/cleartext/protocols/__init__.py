"""Sans-IO mail protocol clients: they frame replies and read capabilities, and never touch a socket."""

from __future__ import annotations

from cleartext.protocols.base import MailClient
from cleartext.protocols.imap import IMAPClient
from cleartext.protocols.pop3 import POP3Client
from cleartext.protocols.smtp import SMTPClient
from cleartext.record import Protocol


def client_for(protocol: Protocol, *, ehlo_name: str = "cleartext.invalid") -> MailClient:
    """A fresh client for one connection."""
    if protocol is Protocol.SMTP:
        return SMTPClient(ehlo_name=ehlo_name)
    if protocol is Protocol.POP3:
        return POP3Client()
    return IMAPClient()


__all__ = ["IMAPClient", "MailClient", "POP3Client", "SMTPClient", "client_for"]
