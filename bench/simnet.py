#!/usr/bin/env python3
"""simnet: a simulated network of mail servers — every address of a loopback /16, on all 7 mail ports.

Why it exists: a scan engine's speed and its verdicts can only be judged against many servers whose
behaviour is known in advance. Real servers (the lab) are few and slow to start; the Internet is not
ours to benchmark against. simnet answers for every address of a network such as 127.77.0.0/16, and
each address behaves per a *profile* chosen deterministically from the address (a keyed hash), so the
harness knows the right verdict for every endpoint without asking simnet.

How it answers 65,536 addresses without 458,752 sockets: it runs inside a network namespace of its own
(``ip netns add cleartext-bench``) where only ``lo`` exists, and listens once per port on 0.0.0.0. Linux
routes the whole 127.0.0.0/8 to ``lo``, so a connection to any 127.77.x.y lands on that one socket, and
``getsockname()`` tells which address the client dialled. Nothing is exposed outside the namespace.

Profiles that must not even accept are done in the kernel, with nftables in the namespace: ``closed``
answers the SYN with a RST (the scanner sees "refused", as on the Internet), ``filtered`` drops the SYN
(connect timeout). Without nft, ``closed`` falls back to accept-then-RST (SO_LINGER 0) and the manifest
says so (the scanner then sees "closed").

    simnet.py manifest --network 127.77.0.0/16 --mix lab          # what each address is, and verdicts
    ip netns exec cleartext-bench simnet.py serve --network 127.77.0.0/16 --mix lab --dir /tmp/simnet

Bounded: each connection lives at most ``MAX_SESSION`` seconds and ``MAX_COMMANDS`` commands; the
server exits by itself after ``--max-runtime`` seconds. It refuses to serve anything but loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import os
import resource
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MAX_SESSION = 30.0  # seconds any one connection may live
MAX_COMMANDS = 64  # commands per connection
LINE_LIMIT = 8192  # bytes per command line
SILENT_DRAIN = 64 * 1024  # bytes a silent server reads (and drops) before it just waits
GARBAGE = b"\x8f\x00garbage-not-tls\xff\xfe" * 8  # what broken-tls sends where a TLS record belongs

# port -> (protocol, implicit TLS?)
PORTS: dict[int, tuple[str, bool]] = {
    25: ("smtp", False),
    587: ("smtp", False),
    465: ("smtp", True),
    110: ("pop3", False),
    995: ("pop3", True),
    143: ("imap", False),
    993: ("imap", True),
}
STARTTLS_PORTS = tuple(p for p, (_, implicit) in PORTS.items() if not implicit)
IMPLICIT_PORTS = tuple(p for p, (_, implicit) in PORTS.items() if implicit)

# Profiles the kernel answers (never reach a socket) / that never speak / real mail servers.
DEAD = ("closed", "filtered", "silent")
LIVE = (
    "plaintext-login",
    "starttls-ok",
    "starttls-login-before",
    "tls10-only",
    "slow-greeting",
    "broken-tls",
)
PROFILES = DEAD + LIVE

# Named mixes. "lab": mostly live, to load the TLS path; "internet": >99 % of addresses never answer,
# as an Internet-wide scan sees it (most drop the SYN, some RST, a few accept and never speak).
MIXES: dict[str, str] = {
    "lab": "closed=0.2,silent=0.05,live=0.75",
    "internet": "filtered=0.6,closed=0.38,silent=0.01,live=0.01",
    "live": "live=1",
}

NFT_TABLE = "cleartext_simnet"


# --- the plan: which address is which profile -------------------------------------------------------


def parse_mix(text: str) -> dict[str, float]:
    """``closed=0.2,silent=0.05,live=0.75`` (or a named mix) -> share per profile, summing to 1.

    ``live=X`` is split evenly over the live profiles not named on their own. Shares are normalised so
    that a mix need not add up exactly; an unknown profile name is an error, never silently dropped.
    """
    text = MIXES.get(text, text)
    shares: dict[str, float] = dict.fromkeys(PROFILES, 0.0)
    live_rest = 0.0
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"mix entry {part!r}: expected NAME=SHARE")
        share = float(value)
        if share < 0:
            raise ValueError(f"mix entry {part!r}: negative share")
        if name == "live":
            live_rest += share
        elif name in shares:
            shares[name] += share
        else:
            raise ValueError(f"unknown profile {name!r} (known: {', '.join(PROFILES)}, live)")
    unnamed = [p for p in LIVE if shares[p] == 0.0]
    for p in unnamed or LIVE:
        shares[p] += live_rest / len(unnamed or LIVE)
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("the mix is empty")
    return {p: s / total for p, s in shares.items()}


def _unit(seed: int, address: str, salt: bytes = b"") -> float:
    """A uniform number in [0, 1) from the address: stable across runs, processes and tools."""
    digest = hashlib.blake2b(
        ipaddress.ip_address(address).packed + salt, digest_size=8, key=seed.to_bytes(8, "big")
    ).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class Plan:
    """Which profile every address of the network has. Shared by simnet and the harness."""

    network: ipaddress.IPv4Network
    mix: dict[str, float]
    seed: int = 1
    _bounds: tuple[tuple[float, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        acc, bounds = 0.0, []
        for name in PROFILES:
            if self.mix.get(name, 0.0) > 0:
                acc += self.mix[name]
                bounds.append((acc, name))
        object.__setattr__(self, "_bounds", tuple(bounds))

    def profile(self, address: str) -> str:
        u = _unit(self.seed, address)
        for bound, name in self._bounds:
            if u < bound:
                return name
        return self._bounds[-1][1]

    def greeting_delay(self, address: str) -> float:
        """slow-greeting waits 1-2 s before it speaks, the same on every connection to that address."""
        return 1.0 + _unit(self.seed, address, b"delay")

    def addresses(self) -> Iterator[str]:
        for address in self.network:
            yield str(address)


# --- the right answers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What a correct scanner reports for one endpoint.

    ``login_before_tls``: can a password be sent before TLS (None where no dialog happens).
    ``tls_versions``: the protocol versions accepted (None where there is no working TLS).
    """

    status: str
    findings: frozenset[str]
    login_before_tls: bool | None
    tls_versions: frozenset[str] | None

    def as_json(self) -> dict[str, object]:
        return {
            "status": self.status,
            "findings": sorted(self.findings),
            "login_before_tls": self.login_before_tls,
            "tls_versions": sorted(self.tls_versions) if self.tls_versions is not None else None,
        }


MODERN = frozenset({"TLSv1.2", "TLSv1.3"})


def expected(profile: str, port: int, *, kernel_rst: bool = True) -> Expected:
    """The verdict per profile and port, as the simulated server is built to deserve it.

    Certificates are good (the harness passes simnet's CA with ``--ca-file`` and scans by address, so no
    name is checked): no certificate findings are expected anywhere.
    """
    implicit = PORTS[port][1]
    refused = Expected("refused" if kernel_rst else "closed", frozenset(), None, None)
    if profile == "closed":
        return refused
    if profile == "filtered":
        return Expected("connect-timeout" if kernel_rst else "read-timeout", frozenset(), None, None)
    if profile == "silent":
        return Expected("read-timeout", frozenset(), None, None)
    if profile == "plaintext-login":
        if implicit:  # a server without TLS has nothing on the implicit-TLS ports
            return refused
        return Expected("success", frozenset({"cleartext-login", "no-tls"}), True, None)
    if profile in ("starttls-ok", "slow-greeting"):
        return Expected("success", frozenset(), False, MODERN)
    if profile == "starttls-login-before":
        if implicit:
            return Expected("success", frozenset(), False, MODERN)
        return Expected("success", frozenset({"cleartext-login"}), True, MODERN)
    if profile == "tls10-only":
        return Expected("success", frozenset({"legacy-tls", "no-modern-tls"}), False, frozenset({"TLSv1.0"}))
    if profile == "broken-tls":
        return Expected("tls-error", frozenset({"starttls-failed"}), False, None)
    raise ValueError(f"unknown profile {profile!r}")


DESCRIPTIONS = {
    "closed": "RST to the SYN (nftables in the namespace): nothing listens",
    "filtered": "SYN dropped (nftables): no answer at all, as most of the Internet",
    "silent": "accepts the connection, never says a word",
    "plaintext-login": "greeting and capabilities offering login; no STARTTLS; implicit-TLS ports closed",
    "starttls-ok": "STARTTLS advertised, login only after TLS; TLS 1.2/1.3, good certificate",
    "starttls-login-before": "STARTTLS advertised, but login also offered before TLS",
    "tls10-only": "STARTTLS and implicit TLS, TLS 1.0 only (@SECLEVEL=0); login only after TLS",
    "slow-greeting": "as starttls-ok, but every greeting comes after 1-2 s",
    "broken-tls": "STARTTLS accepted (or implicit-TLS port), then garbage instead of a TLS record",
}


def manifest(plan: Plan, *, kernel_rst: bool, with_addresses: bool = False) -> dict[str, object]:
    """The plan in words and numbers: per profile its share, address count and expected verdicts."""
    counts = Counter(plan.profile(a) for a in plan.addresses())
    profiles = {}
    for name in PROFILES:
        if plan.mix.get(name, 0.0) <= 0:
            continue
        profiles[name] = {
            "share": round(plan.mix[name], 6),
            "addresses": counts.get(name, 0),
            "behaviour": DESCRIPTIONS[name],
            "expected": {str(p): expected(name, p, kernel_rst=kernel_rst).as_json() for p in PORTS},
        }
    out: dict[str, object] = {
        "network": str(plan.network),
        "seed": plan.seed,
        "ports": {str(p): {"protocol": proto, "implicit_tls": imp} for p, (proto, imp) in PORTS.items()},
        "closed_mode": "kernel-rst" if kernel_rst else "accept-then-rst",
        "profile_rule": "blake2b(address, key=seed) as a fraction in [0,1), against cumulative shares",
        "profiles": profiles,
    }
    if with_addresses:
        out["addresses"] = {a: plan.profile(a) for a in plan.addresses()}
    return out


# --- certificates -----------------------------------------------------------------------------------


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A private CA and an ECDSA P-256 leaf for mail.bench.example: (ca.pem, leaf.pem, leaf.key).

    ECDSA, not RSA: every raw ClientHello costs the server a signature, and a P-256 signature is ~30x
    cheaper than an RSA-2048 one, so simnet's CPU stays small next to the scanner's it is measuring.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cleartext bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mail.bench.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("mail.bench.example")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, leaf_path, key_path = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    # The chain file carries the leaf and the CA, as a real server sends its intermediates.
    leaf_path.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(serialization.Encoding.PEM)
    )
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, leaf_path, key_path


def server_contexts(leaf: Path, key: Path) -> dict[str, ssl.SSLContext]:
    """One server context per TLS behaviour: modern (1.2/1.3, AEAD only) and legacy (1.0 only)."""
    modern = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    modern.minimum_version = ssl.TLSVersion.TLSv1_2
    modern.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    modern.load_cert_chain(leaf, key)
    legacy = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS 1.0 is deprecated: that is the point of this profile
        warnings.simplefilter("ignore", DeprecationWarning)
        legacy.minimum_version = ssl.TLSVersion.TLSv1
        legacy.maximum_version = ssl.TLSVersion.TLSv1
    # OpenSSL 3 only speaks TLS 1.0 at security level 0; CBC-SHA suites, no weak class (no RC4/3DES/NULL).
    legacy.set_ciphers("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:@SECLEVEL=0")
    legacy.load_cert_chain(leaf, key)
    for ctx in (modern, legacy):
        ctx.options |= ssl.OP_NO_TICKET  # nobody resumes here; spare the work
    return {"modern": modern, "legacy": legacy}


# --- nftables: the profiles that never reach a socket ----------------------------------------------


def nft_rules(plan: Plan) -> str:
    """An nft script (one table of our own) for closed, filtered and plaintext-login's TLS ports."""
    closed, filtered, no_tls = [], [], []
    for address in plan.addresses():
        profile = plan.profile(address)
        if profile == "closed":
            closed.append(address)
        elif profile == "filtered":
            filtered.append(address)
        elif profile == "plaintext-login":
            no_tls.append(address)
    all_ports = ", ".join(map(str, PORTS))
    tls_ports = ", ".join(map(str, IMPLICIT_PORTS))
    lines = [
        f"table ip {NFT_TABLE} {{",
        "  set closed { type ipv4_addr; }",
        "  set filtered { type ipv4_addr; }",
        "  set no_tls { type ipv4_addr; }",
        "  chain input {",
        "    type filter hook input priority 0; policy accept;",
        f"    ip daddr @closed tcp dport {{ {all_ports} }} counter reject with tcp reset",
        f"    ip daddr @no_tls tcp dport {{ {tls_ports} }} counter reject with tcp reset",
        f"    ip daddr @filtered tcp dport {{ {all_ports} }} tcp flags syn counter drop",
        "  }",
        "}",
    ]
    for name, members in (("closed", closed), ("filtered", filtered), ("no_tls", no_tls)):
        for i in range(0, len(members), 4096):
            chunk = ", ".join(members[i : i + 4096])
            lines.append(f"add element ip {NFT_TABLE} {name} {{ {chunk} }}")
    return "\n".join(lines) + "\n"


def nft_install(plan: Plan) -> bool:
    """Load the rules into this namespace's nftables; False (and a fallback) where nft is missing."""
    if shutil.which("nft") is None:
        return False
    subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True, check=False)
    done = subprocess.run(["nft", "-f", "-"], input=nft_rules(plan), text=True, capture_output=True)
    if done.returncode != 0:
        print(f"simnet: nft failed, falling back to accept-then-RST: {done.stderr.strip()}", file=sys.stderr)
        return False
    return True


def nft_remove() -> None:
    if shutil.which("nft") is not None:
        subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True, check=False)


def nft_counters() -> dict[str, int]:
    """Packets the kernel refused or dropped per rule: connections that never reached simnet."""
    if shutil.which("nft") is None:
        return {}
    done = subprocess.run(
        ["nft", "-j", "list", "table", "ip", NFT_TABLE], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {}
    out: dict[str, int] = {}
    for item in json.loads(done.stdout).get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        name, packets = "", 0
        for expr in rule.get("expr", []):
            match = expr.get("match", {})
            right = match.get("right")
            if isinstance(right, str) and right.startswith("@"):
                name = right[1:]
            if "counter" in expr:
                packets = int(expr["counter"].get("packets", 0))
        if name:
            out[name] = packets
    return out


# --- the servers ------------------------------------------------------------------------------------


@dataclass
class Stats:
    """What simnet saw; the harness reads it over the control socket and differences it per tool run."""

    accepts: int = 0
    by_port: Counter[int] = field(default_factory=Counter)
    by_profile: Counter[str] = field(default_factory=Counter)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    tls_ok: int = 0
    tls_failed: int = 0
    commands: int = 0
    open_now: int = 0
    open_peak: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, object]:
        hist = Counter(self.by_endpoint.values())
        return {
            "accepts": self.accepts,
            "by_port": {str(k): v for k, v in sorted(self.by_port.items())},
            "by_profile": dict(sorted(self.by_profile.items())),
            "endpoints_seen": len(self.by_endpoint),
            "accepts_per_endpoint_hist": {str(k): v for k, v in sorted(hist.items())},
            "max_accepts_per_endpoint": max(self.by_endpoint.values(), default=0),
            "tls_ok": self.tls_ok,
            "tls_failed": self.tls_failed,
            "commands": self.commands,
            "open_now": self.open_now,
            "open_peak": self.open_peak,
            "errors": dict(self.errors),
            "cpu_s": round(sum(os.times()[:2]), 3),
            "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }

    def reset(self) -> None:
        fresh = Stats(open_now=self.open_now)
        self.__dict__.update(fresh.__dict__)


class TLSChannel:
    """Server-side TLS over a stream with memory BIOs, instead of ``StreamWriter.start_tls``.

    Why: a client on an implicit-TLS port sends its ClientHello the moment it connects. The stream
    protocol may already have read it into the StreamReader's buffer when ``start_tls`` installs its TLS
    layer, which then waits for a hello that already came. uvloop starts reading right after
    ``connection_made`` (pausing there does not hold), so sslyze's and Python's clients hung every time.
    Here every byte goes through ``reader.read()``, buffered ones first, so none is lost.
    """

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ctx: ssl.SSLContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.plain = bytearray()

    async def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def _fill(self) -> None:
        data = await self.reader.read(16384)
        if data:
            self.incoming.write(data)
        else:
            self.incoming.write_eof()

    async def handshake(self) -> None:
        for _ in range(64):  # a handshake is a few round trips; more means a client that stalls us
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                await self._flush()
                if self.incoming.eof:
                    raise EOFError("client closed during the handshake") from None
                await self._fill()
                continue
            await self._flush()
            return
        raise ssl.SSLError("handshake did not finish")

    async def readline(self) -> bytes:
        """One line of plaintext, b'' at EOF; ValueError past LINE_LIMIT (like StreamReader)."""
        while b"\n" not in self.plain:
            if len(self.plain) > LINE_LIMIT:
                raise ValueError("line too long")
            try:
                data = self.tls.read(16384)
                if not data:  # a ragged EOF (the peer closed without close_notify)
                    return b""
                self.plain += data
            except ssl.SSLWantReadError:
                await self._flush()
                if self.incoming.eof:
                    return b""
                await self._fill()
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
        end = self.plain.index(b"\n") + 1
        line = bytes(self.plain[:end])
        del self.plain[:end]
        return line

    async def write(self, data: bytes) -> None:
        self.tls.write(data)
        await self._flush()


class Session:
    """One accepted connection: the profile of the dialled address, line I/O, and the TLS upgrade."""

    def __init__(
        self,
        server: Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: str,
        port: int,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.address = address
        self.port = port
        self.profile = server.plan.profile(address)
        self.protocol, self.implicit = PORTS[port]
        self.tls = False
        self.channel: TLSChannel | None = None

    # The profile's features, as the server advertises them.
    @property
    def has_tls(self) -> bool:
        return self.profile != "plaintext-login"

    @property
    def login_now(self) -> bool:
        """Is login offered at this point of the session?"""
        if self.tls:
            return True
        return self.profile in ("plaintext-login", "starttls-login-before")

    async def send(self, data: bytes) -> None:
        if self.channel is not None:
            await self.channel.write(data)
            return
        self.writer.write(data)
        await self.writer.drain()

    async def line(self) -> bytes:
        """The next command line, b'' at EOF; a line over LINE_LIMIT ends the session (ValueError)."""
        data = await (self.channel.readline() if self.channel is not None else self.reader.readline())
        if data:
            self.server.stats.commands += 1
        return data

    def discard_pipelined(self) -> None:
        """What a client sent after STARTTLS in the same segment is dropped, as RFC 3207 asks and Postfix
        does: it must not reach the TLS layer (it would be read as a broken record) nor run inside TLS."""
        self.reader._buffer.clear()

    async def sasl(self, answer_ok: bytes, continuation: bytes, refused: bytes, has_initial: bool) -> None:
        """AUTH/AUTHENTICATE: refused before TLS unless login is offered now; otherwise a continuation
        (the probe answers "*", which cancels) or, with an initial response, a failed login."""
        if not self.login_now:
            await self.send(refused)
            return
        if has_initial:
            await self.send(answer_ok)
            return
        await self.send(continuation)
        await self.line()  # "*" from cleartext; simnet checks no credential, whatever comes
        await self.send(answer_ok)

    async def start_tls(self) -> bool:
        """Upgrade to TLS with the profile's context, or send garbage for broken-tls; True if it worked."""
        stats = self.server.stats
        if self.profile == "broken-tls":
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                await asyncio.wait_for(self.reader.read(4096), 5.0)  # let the ClientHello arrive
            self.writer.write(GARBAGE)
            await self.writer.drain()
            stats.tls_failed += 1
            return False
        ctx = self.server.contexts["legacy" if self.profile == "tls10-only" else "modern"]
        channel = TLSChannel(self.reader, self.writer, ctx)
        try:
            async with asyncio.timeout(10.0):
                await channel.handshake()
        except (ssl.SSLError, OSError, TimeoutError, EOFError):
            stats.tls_failed += 1
            return False
        stats.tls_ok += 1
        self.channel = channel
        self.tls = True
        return True

    async def run(self) -> None:
        if self.profile in ("silent", "filtered"):  # filtered reaches us only without nftables
            await self.silent()
            return
        if self.profile == "closed" or (self.profile == "plaintext-login" and self.implicit):
            # Only without nftables: the kernel would have refused the SYN. Accept, then RST.
            self.writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            return
        if self.implicit and not await self.start_tls():
            return
        if self.profile == "slow-greeting":
            await asyncio.sleep(self.server.plan.greeting_delay(self.address))
        await getattr(self, self.protocol)()

    async def silent(self) -> None:
        """Accept and never speak; read (and drop) what the client sends until it gives up."""
        got = 0
        while got < SILENT_DRAIN:
            data = await self.reader.read(4096)
            if not data:
                return
            got += len(data)
        await asyncio.sleep(MAX_SESSION)

    # -- SMTP (RFC 5321, 3207, 4954) --

    def ehlo(self) -> bytes:
        lines = ["mx.bench.example greets you", "PIPELINING", "SIZE 10240000"]
        if self.has_tls and not self.tls:
            lines.append("STARTTLS")
        if self.login_now:
            lines.append("AUTH PLAIN LOGIN")
        lines += ["ENHANCEDSTATUSCODES", "8BITMIME"]
        return b"".join(
            f"250{'-' if i < len(lines) - 1 else ' '}{text}\r\n".encode() for i, text in enumerate(lines)
        )

    async def smtp(self) -> None:
        await self.send(b"220 mx.bench.example ESMTP simnet\r\n")
        for _ in range(MAX_COMMANDS):
            line = await self.line()
            if not line:
                return
            verb = line.split(maxsplit=1)[0].upper() if line.strip() else b""
            if verb == b"EHLO":
                await self.send(self.ehlo())
            elif verb == b"HELO":
                await self.send(b"250 mx.bench.example\r\n")
            elif verb == b"STARTTLS":
                if not self.has_tls or self.tls:
                    await self.send(b"502 5.5.1 STARTTLS not available\r\n")
                    continue
                await self.send(b"220 2.0.0 Ready to start TLS\r\n")
                self.discard_pipelined()
                if not await self.start_tls():
                    return
            elif verb == b"AUTH":
                await self.sasl(
                    b"501 5.7.0 Authentication aborted\r\n" if len(line.split()) < 3
                    else b"535 5.7.8 Authentication failed\r\n",
                    b"334 \r\n",
                    b"530 5.7.0 Must issue a STARTTLS command first\r\n",
                    len(line.split()) >= 3,
                )
            elif verb in (b"NOOP", b"RSET"):
                await self.send(b"250 2.0.0 OK\r\n")
            elif verb == b"QUIT":
                await self.send(b"221 2.0.0 Bye\r\n")
                return
            else:
                await self.send(b"502 5.5.2 Command not recognized\r\n")

    # -- POP3 (RFC 1939, 2449, 2595) --

    async def pop3(self) -> None:
        await self.send(b"+OK simnet POP3 ready.\r\n")
        for _ in range(MAX_COMMANDS):
            line = await self.line()
            if not line:
                return
            verb = line.split(maxsplit=1)[0].upper() if line.strip() else b""
            if verb == b"CAPA":
                caps = ["TOP", "UIDL", "RESP-CODES", "PIPELINING"]
                if self.has_tls and not self.tls:
                    caps.append("STLS")
                if self.login_now:
                    caps += ["USER", "SASL PLAIN LOGIN"]
                await self.send(
                    b"+OK Capability list follows\r\n" + "".join(f"{c}\r\n" for c in caps).encode() + b".\r\n"
                )
            elif verb == b"STLS":
                if not self.has_tls or self.tls:
                    await self.send(b"-ERR Unknown command.\r\n")
                    continue
                await self.send(b"+OK Begin TLS negotiation now.\r\n")
                self.discard_pipelined()
                if not await self.start_tls():
                    return
            elif verb == b"AUTH":
                await self.sasl(
                    b"-ERR [AUTH] Authentication aborted.\r\n" if len(line.split()) < 3
                    else b"-ERR [AUTH] Authentication failed.\r\n",
                    b"+ \r\n",
                    b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.\r\n",
                    len(line.split()) >= 3,
                )
            elif verb == b"USER" and self.login_now:
                await self.send(b"+OK\r\n")  # PASS would follow; the probe never sends it
            elif verb in (b"USER", b"PASS", b"APOP"):
                await self.send(
                    b"-ERR [AUTH] Authentication failed.\r\n"
                    if self.login_now
                    else b"-ERR [AUTH] Plaintext authentication disallowed on non-secure connections.\r\n"
                )
            elif verb == b"NOOP":
                await self.send(b"+OK\r\n")
            elif verb == b"QUIT":
                await self.send(b"+OK Logging out.\r\n")
                return
            else:
                await self.send(b"-ERR Unknown command.\r\n")

    # -- IMAP (RFC 3501, 9051) --

    def capability(self) -> bytes:
        caps = ["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "IDLE"]
        if self.has_tls and not self.tls:
            caps.append("STARTTLS")
        caps += ["AUTH=PLAIN", "AUTH=LOGIN"] if self.login_now else ["LOGINDISABLED"]
        return ("* CAPABILITY " + " ".join(caps) + "\r\n").encode()

    async def imap(self) -> None:
        await self.send(b"* OK simnet IMAP4rev1 ready.\r\n")
        for _ in range(MAX_COMMANDS):
            line = await self.line()
            if not line:
                return
            parts = line.split(maxsplit=2)
            if len(parts) < 2:
                await self.send(b"* BAD Error in IMAP command received by server.\r\n")
                continue
            tag, verb = parts[0], parts[1].upper()
            if verb == b"CAPABILITY":
                await self.send(self.capability() + tag + b" OK Capability completed.\r\n")
            elif verb == b"STARTTLS":
                if not self.has_tls or self.tls:
                    await self.send(tag + b" BAD Unknown command.\r\n")
                    continue
                await self.send(tag + b" OK Begin TLS negotiation now.\r\n")
                self.discard_pipelined()
                if not await self.start_tls():
                    return
            elif verb == b"AUTHENTICATE":
                has_initial = len(parts) > 2 and len(parts[2].split()) > 1
                await self.sasl(
                    tag + b" BAD Authentication aborted by client.\r\n" if not has_initial
                    else tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n",
                    b"+ \r\n",
                    tag + b" NO [PRIVACYREQUIRED] Plaintext authentication disallowed.\r\n",
                    has_initial,
                )
            elif verb == b"LOGIN":
                await self.send(
                    tag + b" NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
                    if self.login_now
                    else tag + b" NO [PRIVACYREQUIRED] Plaintext authentication disallowed.\r\n"
                )
            elif verb == b"NOOP":
                await self.send(tag + b" OK NOOP completed.\r\n")
            elif verb == b"LOGOUT":
                await self.send(b"* BYE Logging out\r\n" + tag + b" OK Logout completed.\r\n")
                return
            else:
                await self.send(tag + b" BAD Error in IMAP command received by server.\r\n")


class Server:
    """Listeners on the 7 mail ports (0.0.0.0, SO_REUSEPORT so several workers can share them)."""

    def __init__(self, plan: Plan, contexts: dict[str, ssl.SSLContext]) -> None:
        self.plan = plan
        self.contexts = contexts
        self.stats = Stats()
        self.servers: list[asyncio.base_events.Server] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        sockname = writer.get_extra_info("sockname")
        address, port = sockname[0], sockname[1]
        session = Session(self, reader, writer, address, port)
        stats.accepts += 1
        stats.by_port[port] += 1
        stats.by_profile[session.profile] += 1
        stats.by_endpoint[f"{address}:{port}"] += 1
        stats.open_now += 1
        stats.open_peak = max(stats.open_peak, stats.open_now)
        try:
            async with asyncio.timeout(MAX_SESSION):
                await session.run()
        except (TimeoutError, ConnectionError, OSError, ValueError, EOFError, asyncio.IncompleteReadError):
            pass
        except ssl.SSLError:
            stats.errors["ssl"] += 1
        except Exception as exc:  # a bug here must not kill the listener; count it, keep serving
            stats.errors[type(exc).__name__] += 1
        finally:
            stats.open_now -= 1
            writer.transport.abort()

    async def start(self, host: str = "0.0.0.0") -> None:
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.StreamReaderProtocol:
            return asyncio.StreamReaderProtocol(asyncio.StreamReader(LINE_LIMIT, loop), self.handle, loop)

        for port in PORTS:
            self.servers.append(await loop.create_server(factory, host, port, reuse_port=True, backlog=4096))

    async def control(self, path: Path) -> None:
        """A line protocol on a UNIX socket (paths are not per-namespace, so the harness can reach it)."""

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                command = (await asyncio.wait_for(reader.readline(), 10)).strip().decode()
                if command == "stats":
                    reply: object = self.stats.as_json()
                elif command == "endpoints":
                    reply = dict(self.stats.by_endpoint)
                elif command == "reset":
                    self.stats.reset()
                    reply = {"ok": True}
                else:
                    reply = {"error": f"unknown command {command!r}"}
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
            finally:
                writer.close()

        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        self.servers.append(await asyncio.start_unix_server(serve, path))


# --- running ---------------------------------------------------------------------------------------


def raise_fd_limit() -> None:
    """Thousands of silent connections are held open at once: lift the soft fd limit to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def new_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("SIMNET_NO_UVLOOP"):
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def serve_worker(
    plan: Plan,
    contexts: dict[str, ssl.SSLContext],
    control: Path,
    deadline: float,
    on_ready: Callable[[], None] | None = None,
) -> None:
    server = Server(plan, contexts)
    await server.start()
    await server.control(control)
    if on_ready is not None:
        on_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, deadline - time.monotonic()))
    for srv in server.servers:
        srv.close()


def only_loopback_here(allow_veth: bool = False) -> bool:
    """True when ``lo`` is the only interface: inside our namespace nothing we serve can leave the box.
    With ``allow_veth``, veth interfaces are allowed too: the pipeline benchmark joins two namespaces of
    its own with a veth pair, whose other end is in a namespace with nothing but lo and that veth."""
    return all(name == "lo" or (allow_veth and _is_veth(name)) for _, name in socket.if_nameindex())


def _is_veth(name: str) -> bool:
    try:
        return Path(f"/sys/class/net/{name}/device").exists() is False and "veth" in subprocess.run(
            ["ip", "-d", "-o", "link", "show", "dev", name], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


def someone_listens() -> bool:
    """Is a server already on the ports here? With SO_REUSEPORT a second simnet would silently share
    them with the first, and each would see only part of the connections."""
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", 25)) == 0


def cmd_serve(args: argparse.Namespace) -> int:
    plan = Plan(ipaddress.IPv4Network(args.network), parse_mix(args.mix), args.seed)
    benchmarking = ipaddress.IPv4Network("198.18.0.0/15")  # RFC 2544: never routed on the Internet
    if not (plan.network.is_loopback or (args.veth and plan.network.subnet_of(benchmarking))):
        print("simnet: refusing a network outside 127.0.0.0/8 (198.18.0.0/15 with --veth)", file=sys.stderr)
        return 2
    if not only_loopback_here(allow_veth=args.veth) and not args.allow_host_namespace:
        print(
            "simnet: this namespace has interfaces besides lo; run me inside one of our own "
            "(ip netns exec ...), "
            "or pass --allow-host-namespace",
            file=sys.stderr,
        )
        return 2
    if someone_listens():
        print("simnet: port 25 already answers in this namespace: another simnet is running", file=sys.stderr)
        return 2
    directory = Path(args.dir)
    ca, leaf, key = make_certificates(directory)
    contexts = server_contexts(leaf, key)
    raise_fd_limit()
    kernel_rst = not args.no_nft and nft_install(plan)
    (directory / "manifest.json").write_text(json.dumps(manifest(plan, kernel_rst=kernel_rst), indent=1))
    deadline = time.monotonic() + args.max_runtime
    controls = [directory / f"control.{i}" for i in range(args.workers)]
    children: list[int] = []
    try:
        for i in range(1, args.workers):
            pid = os.fork()
            if pid == 0:  # a worker: its own loop on the shared (SO_REUSEPORT) ports
                loop = new_loop()
                try:
                    loop.run_until_complete(serve_worker(plan, contexts, controls[i], deadline))
                finally:
                    os._exit(0)
            children.append(pid)
        loop = new_loop()
        asyncio.set_event_loop(loop)

        def ready() -> None:
            """One JSON line on stdout once the ports listen: the harness waits for it."""
            info = {
                "ready": True,
                "ca": str(ca),
                "controls": [str(c) for c in controls],
                "manifest": str(directory / "manifest.json"),
                "kernel_rst": kernel_rst,
                "workers": [os.getpid(), *children],
            }
            print(json.dumps(info), flush=True)

        loop.run_until_complete(serve_worker(plan, contexts, controls[0], deadline, ready))
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        if kernel_rst:
            nft_remove()
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    plan = Plan(ipaddress.IPv4Network(args.network), parse_mix(args.mix), args.seed)
    data = manifest(plan, kernel_rst=not args.no_nft, with_addresses=args.addresses)
    if args.json or args.addresses:
        json.dump(data, sys.stdout, indent=1)
        print()
    else:
        print(manifest_table(plan, kernel_rst=not args.no_nft))
    return 0


def manifest_table(plan: Plan, *, kernel_rst: bool) -> str:
    """The manifest for people: profile, share, addresses, example addresses, verdict per TLS mode."""
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for address in plan.addresses():
        profile = plan.profile(address)
        counts[profile] += 1
        if len(examples.setdefault(profile, [])) < 3:
            examples[profile].append(address)

    def verdict(e: Expected) -> str:
        parts = [e.status, "+".join(sorted(e.findings)) or "no finding"]
        if e.tls_versions is not None:
            parts.append("/".join(sorted(e.tls_versions)))
        return ", ".join(parts)

    lines = [
        f"network {plan.network}, seed {plan.seed}, closed = "
        f"{'RST to the SYN (nftables)' if kernel_rst else 'accept then RST'}",
        "",
        f"{'profile':<22} {'share':>7} {'addresses':>9}  {'e.g.':<36} STARTTLS ports (25 587 110 143) | "
        "implicit TLS (465 993 995)",
    ]
    for name in PROFILES:
        if plan.mix.get(name, 0.0) <= 0:
            continue
        lines.append(
            f"{name:<22} {100 * plan.mix[name]:6.2f}% {counts[name]:>9}  "
            f"{', '.join(examples.get(name, [])):<36} "
            f"{verdict(expected(name, 25, kernel_rst=kernel_rst))} | "
            f"{verdict(expected(name, 993, kernel_rst=kernel_rst))}"
        )
    return "\n".join(lines)


def cmd_stats(args: argparse.Namespace) -> int:
    print(json.dumps(control_query([Path(p) for p in args.control], args.command), indent=1))
    return 0


def control_query(paths: list[Path], command: str = "stats") -> dict[str, object]:
    """Ask every worker, add the answers up (what the harness calls between tool runs)."""
    total: dict[str, object] = {}
    for path in paths:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        merge(total, json.loads(data))
    return total


def merge(into: dict[str, object], other: dict[str, object]) -> None:
    """Add counters of one worker into the total (numbers add, dicts merge, the max stays a max)."""
    for key, value in other.items():
        if key.startswith("max") or key == "open_peak":
            into[key] = max(int(into.get(key, 0)), int(value))  # type: ignore[call-overload]
        elif isinstance(value, dict):
            sub = into.setdefault(key, {})
            assert isinstance(sub, dict)
            merge(sub, value)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            into[key] = into.get(key, 0) + value  # type: ignore[operator]
        else:
            into[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    for name in ("serve", "manifest"):
        p = sub.add_parser(name)
        p.add_argument("--network", default="127.77.0.0/16", help="loopback network to answer for")
        p.add_argument("--mix", default="lab", help=f"profile shares or a named mix ({', '.join(MIXES)})")
        p.add_argument("--seed", type=int, default=1, help="key of the address -> profile hash")
        p.add_argument("--no-nft", action="store_true", help="closed = accept-then-RST, no filtered")
    serve = sub.choices["serve"]
    serve.add_argument("--dir", default="/tmp/cleartext-simnet", help="certificates, manifest, control")
    serve.add_argument("--workers", type=int, default=1, help="processes sharing the ports (SO_REUSEPORT)")
    serve.add_argument("--max-runtime", type=float, default=1800.0, help="exit by itself after this")
    serve.add_argument("--allow-host-namespace", action="store_true", help="serve outside a netns")
    serve.add_argument(
        "--veth",
        action="store_true",
        help="a namespace joined to another of ours by a veth pair: serve a network of 198.18.0.0/15 "
        "routed to lo (bench/pipeline.py)",
    )
    sub.choices["manifest"].add_argument("--addresses", action="store_true", help="JSON, with every address")
    sub.choices["manifest"].add_argument("--json", action="store_true", help="JSON instead of a table")
    stats = sub.add_parser("stats")
    stats.add_argument("control", nargs="+", help="control socket path(s)")
    stats.add_argument("--command", default="stats", choices=("stats", "endpoints", "reset"))
    sub.add_parser("nft", help="the kernel's refused/dropped counters (run inside the namespace)")
    args = parser.parse_args(argv)
    if args.verb == "nft":
        print(json.dumps(nft_counters()))
        return 0
    try:
        return {"serve": cmd_serve, "manifest": cmd_manifest, "stats": cmd_stats}[args.verb](args)
    except BrokenPipeError:  # `| head` closed our stdout: what was printed was wanted; stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
