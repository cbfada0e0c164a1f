"""A server that accepts a connection and resets it at once: the record says `closed`, not `error`.

`error` means a local failure (the schema says so); a reset after the TCP handshake is the server's doing.
The reset can reach the client while it is still inside connect() (ECONNRESET there) or on its first
read: both are `closed`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from cleartext.probe import ProbeSettings, probe
from cleartext.record import Protocol, Status, TLSMode
from cleartext.targets import Endpoint

ATTEMPTS = 12


@pytest.fixture
def resetting_port() -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    listener.settimeout(10)

    def serve() -> None:
        for _ in range(ATTEMPTS * 2):  # bounded: every probe attempt, and its raw hellos if any
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()  # linger 0: a RST, not a FIN

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(5)


@pytest.mark.parametrize(
    ("protocol", "mode"), [(Protocol.SMTP, TLSMode.STARTTLS), (Protocol.IMAP, TLSMode.IMPLICIT)]
)
def test_a_reset_right_after_accept_is_closed(resetting_port: int, protocol: Protocol, mode: TLSMode) -> None:
    async def run() -> list[Status]:
        settings = ProbeSettings(read_timeout=2, endpoint_timeout=10)
        endpoint = Endpoint("127.0.0.1", resetting_port, protocol, mode, None)
        return [(await probe(endpoint, settings)).status for _ in range(ATTEMPTS // 2)]

    statuses = asyncio.run(run())
    assert set(statuses) == {Status.CLOSED}, statuses
