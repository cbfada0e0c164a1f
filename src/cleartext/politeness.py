"""Politeness: what the scanner owes the networks it touches.

- an **exclusion list** (the operator's opt-out file of addresses and CIDRs), re-read while a scan runs
  when the file changes, so an opt-out takes effect within a second without a restart;
- a **global rate limit** on new connections per second, shared by every connection the probe opens;
- a **per-host limit** on connections open at once to one address.

The probe calls :meth:`Gate.before_connect` before every connection and :meth:`Gate.after_close` after
it; the engine checks :meth:`Gate.excluded` before it starts an endpoint at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from cleartext.targets import TargetError, TargetSpec

RELOAD_INTERVAL = 0.5  # seconds between checks of the exclusion file's modification time


class Excluded(Exception):
    """The address is on the operator's exclusion list."""


def parse_exclusions(text: str) -> dict[int, tuple[list[int], list[int]]]:
    """Addresses and CIDRs, one per line, ``#`` comments -> merged integer ranges per IP version.

    The format of ``--exclude`` files (and of the list distributed workers share); ValueError names the
    first bad line as ``line N: ...``.
    """
    spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
    for number, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if not item:
            continue
        try:
            net = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"line {number}: not an address or CIDR: {item[:60]!r}") from None
        spans[net.version].append((int(net.network_address), int(net.broadcast_address)))
    ranges: dict[int, tuple[list[int], list[int]]] = {}
    for version, items in spans.items():
        merged: list[list[int]] = []
        for lo, hi in sorted(items):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        ranges[version] = ([m[0] for m in merged], [m[1] for m in merged])
    return ranges


class ExclusionList:
    """Addresses and CIDRs from a file (one per line, ``#`` comments), as sorted integer ranges."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self._ranges: dict[int, tuple[list[int], list[int]]] = {4: ([], []), 6: ([], [])}
        if path is not None:
            self._load(strict=True)

    def _load(self, *, strict: bool) -> None:
        assert self.path is not None
        try:
            stat = os.stat(self.path)
            text = Path(self.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            if strict:
                raise TargetError(f"cannot read exclusion file {self.path}: {exc}") from None
            return  # mid-scan: keep the last good list rather than dropping every exclusion
        try:
            ranges = parse_exclusions(text)
        except ValueError as exc:
            if strict:
                raise TargetError(f"{self.path}:{str(exc).removeprefix('line ')}") from None
            return  # a half-written file: keep the last good list, try again on the next change
        self._ranges = ranges
        self._stamp = (stat.st_mtime, stat.st_size)

    def refresh(self) -> None:
        """Re-read the file if it changed; cheap enough to call on every check (a stat every 0.5 s)."""
        if self.path is None:
            return
        now = time.monotonic()
        if now - self._checked < RELOAD_INTERVAL:
            return
        self._checked = now
        try:
            stat = os.stat(self.path)
        except OSError:
            return
        if (stat.st_mtime, stat.st_size) != self._stamp:
            self._load(strict=False)

    def __contains__(self, address: str) -> bool:
        self.refresh()
        ip = ipaddress.ip_address(address)
        starts, ends = self._ranges[ip.version]
        slot = bisect_right(starts, int(ip)) - 1
        return slot >= 0 and int(ip) <= ends[slot]


class RateLimiter:
    """At most ``rate`` new connections per second overall, handed out in order of asking."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def acquire(self) -> float:
        """Wait for a slot; return the seconds waited."""
        if not self.interval:
            return 0.0
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            await asyncio.sleep(wait)
        return wait

    def try_acquire(self) -> bool:
        """Take a slot if one is free now, without waiting."""
        if not self.interval:
            return True
        now = time.monotonic()
        if self._next > now:
            return False
        self._next = now + self.interval
        return True


class HostLimiter:
    """At most ``limit`` connections open at once to one address.

    Slots are counted per address and handed over in order of asking; idle addresses are forgotten, so
    memory stays flat over millions of them. (asyncio.Semaphore per address did the same, but it cannot
    be taken without awaiting, and the probe's fast path wants exactly that.)
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}

    def try_acquire(self, address: str) -> bool:
        """Take a slot if one is free now and nobody queues for it."""
        count = self._open.get(address, 0)
        if count < self.limit and address not in self._waiters:
            self._open[address] = count + 1
            return True
        return False

    async def acquire(self, address: str) -> float:
        if self.try_acquire(address):
            return 0.0
        start = time.monotonic()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(address, deque()).append(waiter)
        try:
            await waiter  # resolved by release(): the slot is handed over, the count unchanged
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(address)  # handed over just as we were cancelled: pass it on
            else:
                queue = self._waiters.get(address)
                if queue is not None:
                    with contextlib.suppress(ValueError):
                        queue.remove(waiter)
                    if not queue:
                        del self._waiters[address]
            raise
        return time.monotonic() - start

    def release(self, address: str) -> None:
        queue = self._waiters.get(address)
        while queue:
            waiter = queue.popleft()
            if not queue:
                del self._waiters[address]
            if not waiter.done():
                waiter.set_result(None)
                return
        count = self._open[address] - 1
        if count:
            self._open[address] = count
        else:
            del self._open[address]


class Gate:
    """The politeness checks every connection passes; see the module docstring."""

    def __init__(self, exclusions: ExclusionList | None = None, rate: float | None = None, per_host: int = 0):
        self.exclusions = exclusions
        self.rate = RateLimiter(rate)
        self.hosts = HostLimiter(per_host) if per_host > 0 else None

    def excluded(self, address: str) -> bool:
        return self.exclusions is not None and address in self.exclusions

    async def before_connect(self, address: str) -> float:
        """Wait for the per-host and global limits; raise Excluded. Returns the seconds waited."""
        waited = await self.hosts.acquire(address) if self.hosts else 0.0
        waited += await self.rate.acquire()
        # Checked after the waits, right before the connection: an opt-out that arrived while this
        # connection queued for its slot still stops it.
        if self.excluded(address):
            if self.hosts:
                self.hosts.release(address)
            raise Excluded(address)
        return waited

    def admit_now(self, address: str) -> bool:
        """before_connect without waiting, when neither limit has to make us wait; else False, nothing taken.

        Why: the probe suspends its endpoint deadline around a wait, which costs two timer
        reschedules; most connections never wait at all, and then need none.
        """
        if self.hosts is not None and not self.hosts.try_acquire(address):
            return False
        if not self.rate.try_acquire():
            if self.hosts is not None:
                self.hosts.release(address)
            return False
        if self.excluded(address):
            if self.hosts is not None:
                self.hosts.release(address)
            raise Excluded(address)
        return True

    def after_close(self, address: str) -> None:
        if self.hosts:
            self.hosts.release(address)


# --- the guard against scanning the Internet by mistake ---------------------------------------------
#
# `cleartext scan 1.2.3.4/0` (meant: /32) would otherwise walk the whole IPv4 space at full speed. Like
# masscan, which refuses 0.0.0.0/0 without an exclude file, a scan larger than a /8 needs the operator
# to say so (--internet-scale) and to have an opt-out file (--exclude); like zmap, whose default rate is
# modest, it then runs at LARGE_SCAN_RATE unless --rate says otherwise. An audit of one's own /16, or
# even a /8, is not affected. The check is pure arithmetic on the parsed targets: it runs before any
# name is resolved and before any socket exists.

LARGE_SCAN_ADDRESSES = 1 << 24
"""A scan of more addresses than this (a /8, 16,777,216) is Internet-scale."""

LARGE_SCAN_RATE = 1000.0
"""New connections per second of an Internet-scale scan without --rate: about a year for the IPv4
space on the seven default ports, so that the operator chooses a faster rate knowingly."""


def scan_addresses(specs: Sequence[TargetSpec]) -> int:
    """The addresses a scan covers before any filtering: its networks (overlaps counted once), plus one
    per hostname (a name's addresses are not known before it is resolved, and are few)."""
    v4 = [s.network for s in specs if isinstance(s.network, ipaddress.IPv4Network)]
    v6 = [s.network for s in specs if isinstance(s.network, ipaddress.IPv6Network)]
    networks = sum(n.num_addresses for n in ipaddress.collapse_addresses(v4))
    networks += sum(n.num_addresses for n in ipaddress.collapse_addresses(v6))
    return networks + sum(1 for s in specs if s.hostname is not None)


def _meant(spec: TargetSpec) -> str:
    """A hint when the network was written with host bits set, as a typo of its prefix length would be."""
    address, _, _ = spec.text.partition("/")
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return ""
    if spec.network is None or ip == spec.network.network_address:
        return ""
    if spec.network.prefixlen == 0:
        return f" (did you mean {ip}/{ip.max_prefixlen}?)"
    return f" ({ip} has host bits set for /{spec.network.prefixlen}: a typo?)"


def internet_scale_rate(
    specs: Sequence[TargetSpec], *, confirmed: bool, exclude: str | None, rate: float | None
) -> tuple[float | None, int | None]:
    """The guard: (the rate the scan runs at, its address count if it is Internet-scale, else None).

    Raises TargetError (one line) for an Internet-scale scan without ``confirmed`` (--internet-scale) or
    without an opt-out file.
    """
    total = scan_addresses(specs)
    if total <= LARGE_SCAN_ADDRESSES:
        return rate, None
    if not confirmed:
        huge = [s for s in specs if s.network is not None and s.network.num_addresses > LARGE_SCAN_ADDRESSES]
        what = (
            f"{huge[0].text} covers {huge[0].network.num_addresses:,} addresses{_meant(huge[0])}"  # type: ignore[union-attr]
            if huge
            else f"the targets cover {total:,} addresses"
        )
        raise TargetError(
            f"{what}, more than a /8 ({LARGE_SCAN_ADDRESSES:,}); to scan that much of the Internet, pass "
            "--internet-scale and an opt-out file (--exclude FILE)"
        )
    if exclude is None:
        raise TargetError(
            f"an Internet-scale scan ({total:,} addresses) needs an opt-out file: --exclude FILE "
            "(addresses and CIDRs whose owners asked not to be scanned, re-read while the scan runs; "
            "it may start empty)"
        )
    return (LARGE_SCAN_RATE if rate is None else rate), total
