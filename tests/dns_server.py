"""A tiny authoritative DNS server on 127.0.0.1 (UDP) for tests: real queries, answers from a zone dict.

A zone maps (name with final dot, type) to answers in presentation form, or to one of two behaviours:
``SERVFAIL`` (the server fails) or ``DROP`` (it never answers: the client times out). A name absent from
the zone is NXDOMAIN; a name present with other types is NODATA.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

SERVFAIL = "SERVFAIL"
DROP = "DROP"

Zone = Mapping[tuple[str, str], Sequence[str] | str]


@contextmanager
def dns_server(zone: Zone) -> Iterator[str]:
    """Serve ``zone``; yields ``127.0.0.1:PORT`` for --nameserver. Bounded lifetime (10,000 polls)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        for _ in range(10_000):  # bounded: at most 10,000 polls of 0.2 s
            if stop.is_set():
                return
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            key = (question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype))
            answers = zone.get(key)
            if answers == DROP:
                continue
            if answers == SERVFAIL:
                response.set_rcode(dns.rcode.SERVFAIL)
            elif answers:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", key[1], *answers))
            elif not any(name == key[0] for name, _ in zone):
                response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        sock.close()
