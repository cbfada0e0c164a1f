"""Sans-IO TLS probing core: hand-built ClientHellos and a reader of the server's first flight.

Why sans-IO: the same bytes-in/results-out code serves the asyncio scanner, blocking tests
and fuzzing, and it can never leak a credential because it never writes anything but a
ClientHello. Nothing in this package imports asyncio, socket or ssl.
"""

from cleartext.tls.ciphers import (
    BROAD_SUITES,
    COMPACT_SUITES,
    SUITES,
    TLS13_SUITES,
    WEAK_SUITES,
    CipherSuite,
    WeakClass,
    is_tls13,
    suite_name,
    suites_in_class,
    weak_classes,
)
from cleartext.tls.hello import TLSVersion, client_hello, sni_hostname, version_label
from cleartext.tls.serverhello import (
    Outcome,
    ServerFlight,
    ServerFlightReader,
    alert_name,
)

__all__ = [
    "BROAD_SUITES",
    "COMPACT_SUITES",
    "SUITES",
    "TLS13_SUITES",
    "WEAK_SUITES",
    "CipherSuite",
    "Outcome",
    "ServerFlight",
    "ServerFlightReader",
    "TLSVersion",
    "WeakClass",
    "alert_name",
    "client_hello",
    "is_tls13",
    "sni_hostname",
    "suite_name",
    "suites_in_class",
    "version_label",
    "weak_classes",
]
