#!/usr/bin/env python3
"""floor: the minimal discovery loop — connect, read the greeting, close — as the speed floor.

Why: "discovery within 2x of a minimal loop" needs the minimal loop measured on the same endpoints, the
same machine and the same timeouts in the same run. This is the tightest plain-asyncio loop that still
answers "is a mail server there": a fixed pool of workers pulls endpoints from one iterator, each one
connects, (on implicit-TLS ports) does the TLS handshake it cannot avoid, reads one line, and closes.
No parsing, no records: one JSON summary on stdout.

    floor.py --targets FILE --ports 25,465,587,110,995,143,993 --concurrency 1000 --timeout 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import random
import resource
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator

IMPLICIT = {465, 993, 995}


def tls_context() -> ssl.SSLContext:
    """Completes with anything and verifies nothing: the floor must not fail where the scanner succeeds."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


async def one(address: str, port: int, timeout: float, ctx: ssl.SSLContext) -> str:
    """One endpoint, one connection: the status in the scanner's vocabulary."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(address, port)
    except TimeoutError:
        return "connect-timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "closed"
    try:
        async with asyncio.timeout(timeout):  # the same per-step budget as the scanner's --read-timeout
            if port in IMPLICIT:
                await writer.start_tls(ctx, ssl_handshake_timeout=timeout + 1)  # the outer one fires first
        async with asyncio.timeout(timeout):
            line = await reader.readline()
        return "success" if line else "closed"
    except TimeoutError:
        return "read-timeout"
    except ssl.SSLError:
        return "tls-error"
    except (OSError, ValueError):
        return "closed"
    finally:
        writer.transport.abort()


async def run(endpoints: list[tuple[str, int]], concurrency: int, timeout: float) -> Counter[str]:
    ctx = tls_context()
    counts: Counter[str] = Counter()
    source: Iterator[tuple[str, int]] = iter(endpoints)

    async def worker() -> None:
        for address, port in source:  # the shared iterator hands each endpoint to exactly one worker
            counts[await one(address, port, timeout, ctx)] += 1

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(endpoints)))))
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", required=True, help="file of addresses, one a line")
    parser.add_argument("--ports", default="25,465,587,110,995,143,993")
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=3.0, help="connect, and then read, timeout")
    parser.add_argument("--seed", type=int, default=1, help="shuffle seed (the scanner permutes too)")
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with open(args.targets) as fh:
        addresses = [line.strip() for line in fh if line.strip()]
    ports = [int(p) for p in args.ports.split(",")]
    endpoints = list(itertools.product(addresses, ports))
    random.Random(args.seed).shuffle(endpoints)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    start = time.monotonic()
    counts = runner(run(endpoints, args.concurrency, args.timeout))
    elapsed = time.monotonic() - start
    json.dump(
        {"endpoints": len(endpoints), "elapsed_s": round(elapsed, 3), "status": dict(counts)}, sys.stdout
    )
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
