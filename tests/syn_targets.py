"""Mail servers for the SYN-scanner pipeline test: SMTP on 25 and POP3 on 110 of every address routed to
this host (it runs in a network namespace of the test's own, with a /26 of 198.18.0.0/15 routed to its
loopback), each taking a login in clear -- so cleartext has something to find behind zmap or masscan.

    python3 tests/syn_targets.py [--seconds 120]

Standard library only; every session and the server itself are bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio

SESSION_S = 20.0


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"220 syn.test ESMTP\r\n")
    for _ in range(16):
        try:
            line = (await asyncio.wait_for(reader.readline(), SESSION_S)).strip().upper()
        except (TimeoutError, ConnectionError):
            break
        if not line:
            break
        if line.startswith((b"EHLO", b"HELO")):
            writer.write(b"250-syn.test\r\n250 AUTH PLAIN LOGIN\r\n")
        elif line.startswith(b"AUTH"):
            writer.write(b"334 \r\n")
        elif line == b"*":
            writer.write(b"501 5.7.0 Authentication aborted\r\n")
        elif line == b"QUIT":
            writer.write(b"221 bye\r\n")
            break
        else:
            writer.write(b"502 5.5.2 no\r\n")
        await writer.drain()
    writer.close()


async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"+OK syn.test POP3\r\n")
    for _ in range(16):
        try:
            line = (await asyncio.wait_for(reader.readline(), SESSION_S)).strip().upper()
        except (TimeoutError, ConnectionError):
            break
        if not line:
            break
        if line == b"CAPA":
            writer.write(b"+OK\r\nUSER\r\n.\r\n")
        elif line.startswith(b"USER"):
            writer.write(b"+OK\r\n")
        elif line == b"QUIT":
            writer.write(b"+OK bye\r\n")
            break
        else:
            writer.write(b"-ERR unknown command\r\n")
        await writer.drain()
    writer.close()


async def main(seconds: float) -> None:
    servers = [
        await asyncio.start_server(smtp, "0.0.0.0", 25),
        await asyncio.start_server(pop3, "0.0.0.0", 110),
    ]
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0)
    asyncio.run(main(parser.parse_args().seconds))
