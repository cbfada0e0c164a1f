"""Self-check: a network owner runs `check` on one of their own hosts from the dashboard.

Why the order resolve → authorise → probe, with the probe pinned to the addresses that were authorised:
a name is resolved once, every address it gives must lie in the token's networks, and the probe then
connects to exactly those addresses. Resolving again at probe time would let a name that changed in
between (DNS rebinding) turn the scanner against someone else's host. One address outside the owner's
networks refuses the whole check: a host that is only partly yours is not yours to probe.

Reserved ranges (loopback, private, documentation, ...) are refused as `cleartext check` refuses them,
unless the server was started with the self-check's allow-reserved setting (for labs and tests).

Each token gets a bounded number of checks per window (a sliding window kept in memory), and the server
runs a bounded number at once, so the dashboard cannot be turned into a scanner.
"""

from __future__ import annotations

import asyncio
import collections
import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cleartext.enrich.model import Attribution
from cleartext.probe import ProbeSettings
from cleartext.record import Record
from cleartext.resolve import ResolveError, Resolver
from cleartext.targets import (
    DEFAULT_PORTS,
    PortSpec,
    is_hostname,
    parse_ports,
    reserved_reason,
)
from cleartext.web.data import CountrySource, Scope

MAX_HOST = 253


class SelfCheckRefused(Exception):
    """The check may not run: a bad host, a name that does not resolve, an address not owned (one line)."""


class RateLimited(Exception):
    """Too many checks for this token in the window; ``retry_after`` seconds until the next one."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"too many self-checks; try again in {int(retry_after) + 1} s")
        self.retry_after = retry_after


@dataclass(slots=True)
class SelfCheckSettings:
    allow_reserved: bool = False  # labs and tests only: loopback and private ranges become checkable
    per_window: int = 5  # checks per token per window
    window_s: float = 600.0
    concurrent: int = 2  # checks running at once, all tokens together
    ports: list[PortSpec] = field(default_factory=lambda: parse_ports(",".join(map(str, DEFAULT_PORTS))))
    probe: ProbeSettings = field(
        default_factory=lambda: ProbeSettings(connect_timeout=5.0, read_timeout=10.0, endpoint_timeout=30.0)
    )
    resolver: Resolver = field(default_factory=Resolver)


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key: a sliding window of timestamps."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> None:
        """Count one event for ``key``, or raise RateLimited (and count nothing)."""
        now = self.clock()
        with self._lock:
            events = self._events.setdefault(key, collections.deque())
            while events and events[0] <= now - self.window:
                events.popleft()
            if len(events) >= self.limit:
                raise RateLimited(events[0] + self.window - now)
            events.append(now)


@dataclass(slots=True)
class SelfCheckResult:
    host: str
    addresses: list[str]
    records: list[Record]


class SelfChecker:
    """Authorise and run self-checks for scopes, with a per-token rate limit and a global concurrency cap."""

    def __init__(
        self,
        settings: SelfCheckSettings,
        lookup: Callable[[str], Attribution],
        country_source: CountrySource,
    ) -> None:
        self.settings = settings
        self.lookup = lookup
        self.country_source = country_source
        self.limiter = RateLimiter(settings.per_window, settings.window_s)
        self._running = asyncio.Semaphore(max(1, settings.concurrent))

    async def authorise(self, scope: Scope, host: str) -> tuple[str, list[str]]:
        """Resolve ``host`` and return (name, addresses) if the scope owns every address, else refuse."""
        host = host.strip().rstrip(".").lower()
        if not host or len(host) > MAX_HOST:
            raise SelfCheckRefused("enter a host name or an IP address")
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            if not is_hostname(host):
                raise SelfCheckRefused(f"{host!r} is neither a host name nor an IP address") from None
            try:
                addresses = await self.settings.resolver.addresses(host)
            except ResolveError as exc:
                raise SelfCheckRefused(str(exc)) from None
        for address in addresses:
            ip = ipaddress.ip_address(address)
            why = reserved_reason(ip)
            if why and not self.settings.allow_reserved:
                raise SelfCheckRefused(f"{host} resolves to {address}, a reserved range ({why})")
            if not scope.owns(address, self.lookup(address), self.country_source):
                raise SelfCheckRefused(
                    f"{host} resolves to {address}, which is not in the networks this token owns"
                )
        return host, addresses

    async def run(self, scope: Scope, host: str) -> SelfCheckResult:
        """Authorise, count against the token's rate limit, then probe every mail port of every address."""
        from cleartext.check import check_host

        name, addresses = await self.authorise(scope, host)
        self.limiter.take(scope.token_id or scope.key)
        async with self._running:
            # Fewer in flight than `check`: a server runs many self-checks beside its other work.
            collected = await check_host(
                name, addresses, self.settings.ports, self.settings.probe, in_flight_per_port=2
            )
        return SelfCheckResult(name, addresses, collected)
