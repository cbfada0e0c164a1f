"""The client's CPU for one full TLS handshake, as the probe makes it: the floor under a full assessment.

The probe completes one real handshake per TLS endpoint (cleartext.probe.dialog) with its permissive
client context (cleartext.probe.transport.handshake_context). This runs that handshake in memory BIOs
against simnet's two server contexts (ECDSA P-256 leaf; TLS 1.2/1.3 AEAD, and TLS 1.0 CBC), with no
socket and no event loop, and times only the client's calls (thread CPU time), step by step:

    new        SSLContext.wrap_bio (SSL_new)
    hello      the first do_handshake: the ClientHello (an X25519 key share)
    flight     the second: the server's flight (key exchange, certificate, its verification attempt,
               the signature check, the key schedule) and the client's Finished
    tickets    the first read: TLS 1.3 session tickets and one line of data
    chain      get_unverified_chain, as cleartext.probe.chain reads it

    bench/.venv/bin/python bench/handshake_cpu.py                # 400 handshakes per server context
    bench/.venv/bin/python bench/handshake_cpu.py --count 2000

No network at all; certificates are made in a temporary folder as simnet makes its own.
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "src"))

import simnet  # noqa: E402

from cleartext.probe.transport import handshake_context  # noqa: E402

STEPS = ("new", "hello", "flight", "tickets", "chain")


def _timed(spent: dict[str, list[float]], step: str, call: Callable[[], object]) -> None:
    start = time.thread_time()
    with contextlib.suppress(ssl.SSLWantReadError):  # the client waits for the server's answer
        call()
    spent[step].append(time.thread_time() - start)


def handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext, spent: dict[str, list[float]]) -> str:
    """One handshake in memory BIOs, the client's steps timed into ``spent``; the version agreed."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    start = time.thread_time()
    client = client_ctx.wrap_bio(c_in, c_out)
    spent["new"].append(time.thread_time() - start)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    _timed(spent, "hello", client.do_handshake)
    s_in.write(c_out.read())
    with contextlib.suppress(ssl.SSLWantReadError):
        server.do_handshake()
    c_in.write(s_out.read())
    _timed(spent, "flight", client.do_handshake)
    s_in.write(c_out.read())
    server.do_handshake()
    server.write(b"* OK ready\r\n")
    c_in.write(s_out.read())
    _timed(spent, "tickets", lambda: client.read(1024))
    inner = getattr(client, "_sslobj", None)
    _timed(spent, "chain", lambda: inner.get_unverified_chain() if inner is not None else None)
    return client.version() or "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=400, help="handshakes per server context")
    args = parser.parse_args(argv)
    print(f"{ssl.OPENSSL_VERSION}; client CPU per handshake, microseconds (median of {args.count})")
    print(f"| server | version | {' | '.join(STEPS)} | total |")
    print("|---|---|" + "---:|" * (len(STEPS) + 1))
    with tempfile.TemporaryDirectory() as folder:
        _ca, leaf, key = simnet.make_certificates(Path(folder))
        contexts = simnet.server_contexts(leaf, key)
        for name in ("modern", "legacy"):
            spent: dict[str, list[float]] = {step: [] for step in STEPS}
            for _ in range(min(50, args.count)):  # warm-up: first handshakes load providers and tables
                handshake(handshake_context(), contexts[name], {step: [] for step in STEPS})
            version = "?"
            for _ in range(args.count):
                version = handshake(handshake_context(), contexts[name], spent)
            medians = [1e6 * statistics.median(spent[step]) for step in STEPS]
            cells = " | ".join(f"{m:.0f}" for m in medians)
            print(f"| {name} | {version} | {cells} | {sum(medians):.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
