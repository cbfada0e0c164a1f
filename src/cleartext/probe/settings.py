"""What one probe may do: timeouts, byte and connection budgets, and which optional steps run."""

from __future__ import annotations

from dataclasses import dataclass

LOGIN_PROBE_MODES = ("cancel", "made-up", "off")


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    connect_timeout: float = 5.0
    read_timeout: float = 10.0  # per step: one reply, one handshake
    endpoint_timeout: float = 60.0  # the whole endpoint, every connection included
    max_bytes: int = 256 * 1024  # everything received from one endpoint, over all its connections
    max_connections: int = 6
    ehlo_name: str = "cleartext.invalid"
    ca_files: tuple[str, ...] = ()
    tls_matrix: bool = True
    source_address: str | None = None
    discover: bool = False  # connect and greeting only (scan --discover)
    # "cancel": start a login in clear and cancel it before anything secret (the default); "made-up":
    # also send IMAP LOGIN with a random, non-existent identity where no credential-free exchange can
    # settle it (opt-in: the server logs a failed login); "off": judge from capability lists alone.
    login_probe: str = "cancel"
    injection_check: bool = True  # pipeline a command after STARTTLS (CVE-2011-0411 check)
