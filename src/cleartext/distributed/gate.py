"""Politeness across every worker of a scan: one rate limit and one exclusion list, shared through Redis.

- **Rate**: ``--rate`` is new connections per second *for the whole scan*, however many workers run it. A
  token bucket lives in Redis (one hash per scan) and is refilled and drawn by a Lua script on Redis's own
  clock, so workers' clocks never matter and a draw is atomic. Each shard takes tokens in small chunks
  (about 1/50 of the rate, 1 to 64) so that a worker makes a few round trips per second, not one per
  connection, and paces what it took at no more than the scan's rate, so a chunk is not a burst.
- **Exclusions**: the coordinator publishes the opt-out list's text and a version (a digest) in a Redis
  hash; every running shard polls the version once a second and reloads the list when it changed, so an
  opt-out reaches all workers within a second or two. The address is checked again right before each
  connection, after every wait.
- **Reserved ranges** are refused by the engine itself on every worker (unless the scan was submitted with
  ``--allow-reserved``), exactly as in a single-machine scan.

When Redis does not answer, or the exclusion list cannot be refreshed for a few seconds, the gate reports
trouble and the shard pauses (its engine stops; nothing in flight is recorded) until Redis is back, within
the worker's patience. A scan never connects under a stale opt-out list or an unknown rate.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import math
import time
from bisect import bisect_right
from typing import TYPE_CHECKING

from cleartext.distributed.common import NAMESPACE, REDIS_CONNECT_TIMEOUT_S, REDIS_SOCKET_TIMEOUT_S
from cleartext.politeness import Excluded, Gate, HostLimiter, RateLimiter, parse_exclusions

if TYPE_CHECKING:
    import redis
    import redis.asyncio

log = logging.getLogger("cleartext.distributed")

REFRESH_S = 1.0  # how often each running shard looks for a new exclusion list
STALE_S = 4.0  # a list not confirmed for this long is stale: no new connections until it is
RATE_KEY_TTL_MS = 3_600_000

_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
    tokens = burst
    at = now
end
if now > at then
    tokens = math.min(burst, tokens + (now - at) * rate)
end
local granted = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local wait = 0
if granted == 0 then
    wait = math.ceil((1 - tokens) / rate * 1000000)
end
return {granted, wait}
"""


class GateUnavailable(Exception):
    """Redis stayed away past the worker's patience: the shard must stop (it is handed back)."""


def rate_key(scan_id: str) -> str:
    return f"{NAMESPACE}:rate:{scan_id}"


def exclusions_key(scan_id: str) -> str:
    return f"{NAMESPACE}:exclude:{scan_id}"


def exclusions_version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def publish_exclusions(client: redis.Redis, scan_id: str, text: str) -> str:
    """Make ``text`` the scan's exclusion list for every worker (one atomic HSET); returns its version."""
    parse_exclusions(text)  # never publish a list the workers would refuse
    version = exclusions_version(text)
    client.hset(exclusions_key(scan_id), mapping={"text": text, "version": version})
    return version


def async_client(url: str) -> redis.asyncio.Redis:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(
        url, socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S, socket_timeout=REDIS_SOCKET_TIMEOUT_S
    )


class SharedGate(Gate):
    """The engine's politeness gate on a worker: shared rate and exclusions, plus the local per-host cap.

    ``backlog`` counts endpoints waiting here for a connection plus those the engine has just admitted
    and that have not reached the gate yet; the shard's engine admits no new endpoint while it is at
    ``max_waiting`` (see cleartext.distributed.shard), because every wait here runs against the
    endpoint's own deadline in the probe: a thousand endpoints queued for tokens at a low rate would
    time out without a packet sent.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        scan_id: str,
        *,
        rate: float | None,
        per_host: int,
        exclusions: bool,
        patience: float,
    ) -> None:
        # The parent's rate limiter paces this shard locally at the scan's rate (a chunk of tokens is
        # then never a burst); the shared bucket below caps the whole scan.
        super().__init__(None, rate, per_host)
        self.client = client
        self.scan_id = scan_id
        self.rate_value = rate
        self.shared_exclusions = exclusions
        self.patience = patience
        self.waiting = 0  # connections inside before_connect
        self.admitted = 0  # endpoints the engine admitted that have not reached before_connect yet
        self._arrived: set[asyncio.Task[object]] = set()
        self.trouble_since: float | None = None  # monotonic time Redis started failing
        self.version: str | None = None
        self.refreshed = 0.0  # monotonic time the list was last confirmed current
        self._ranges: dict[int, tuple[list[int], list[int]]] = {4: ([], []), 6: ([], [])}
        self._tokens = 0
        self._lock = asyncio.Lock()
        self._take = client.register_script(_TAKE)
        self.chunk = max(1, min(64, int((rate or 0) / 50)))
        # At most this many tokens pile up while nobody draws: a tenth of a second's worth, and at least
        # a chunk.
        self.burst = max(self.chunk, math.ceil((rate or 0) * 0.1))
        self.max_waiting = max(4, 2 * self.chunk)

    # -- health -----------------------------------------------------------------------------------

    def _trouble(self, exc: BaseException) -> None:
        if self.trouble_since is None:
            self.trouble_since = time.monotonic()
            log.warning("scan %s: Redis unreachable (%s); pausing new connections", self.scan_id, exc)

    def _ok(self) -> None:
        if self.trouble_since is not None:
            log.warning("scan %s: Redis reachable again", self.scan_id)
        self.trouble_since = None

    @property
    def stale(self) -> bool:
        return self.shared_exclusions and time.monotonic() - self.refreshed > STALE_S

    @property
    def healthy(self) -> bool:
        return self.trouble_since is None and not self.stale

    @property
    def backlog(self) -> int:
        return self.waiting + self.admitted

    def reset(self) -> None:
        """Fresh local state for a new engine round (the last one was stopped with endpoints waiting)."""
        if self.hosts is not None:
            self.hosts = HostLimiter(self.hosts.limit)
        self.rate = RateLimiter(self.rate_value)
        self.admitted = 0
        self._arrived.clear()

    # -- exclusions -------------------------------------------------------------------------------

    def excluded(self, address: str) -> bool:
        """The engine's question before it admits an endpoint (it does when the answer is no)."""
        if self._on_list(address):
            return True
        self.admitted += 1
        return False

    def _on_list(self, address: str) -> bool:
        if not self.shared_exclusions:
            return False
        ip = ipaddress.ip_address(address)
        starts, ends = self._ranges[ip.version]
        slot = bisect_right(starts, int(ip)) - 1
        return slot >= 0 and int(ip) <= ends[slot]

    async def refresh(self) -> bool:
        """Look for a new list once; True when the list is known to be current."""
        import redis

        key = exclusions_key(self.scan_id)
        try:
            version = await self.client.hget(key, "version")
            if version is not None and _text(version) != self.version:
                text, version = await self.client.hmget(key, ["text", "version"])
                if text is not None and version is not None:
                    ranges = parse_exclusions(_text(text))
                    self._ranges, self.version = ranges, _text(version)
                    log.info("scan %s: exclusion list %s loaded", self.scan_id, self.version)
        except redis.RedisError as exc:
            self._trouble(exc)
            return False
        except ValueError as exc:  # published by someone else than our coordinator: keep the last good one
            log.error(
                "scan %s: bad exclusion list in Redis (%s); keeping the last good one", self.scan_id, exc
            )
            return False
        self._ok()
        if version is None:
            log.warning(
                "scan %s: no exclusion list in Redis (`cleartext requeue` publishes it again)", self.scan_id
            )
            return False
        self.refreshed = time.monotonic()
        return True

    async def refresher(self) -> None:
        """Poll for a new list every REFRESH_S until cancelled (with the shard's event loop)."""
        for _ in range(10**9):
            await asyncio.sleep(REFRESH_S)
            if self.shared_exclusions:
                await self.refresh()

    async def wait_healthy(self, deadline: float) -> bool:
        """After trouble: wait until Redis answers and the list is current again, or the deadline."""
        import redis

        delay = 0.2
        while time.monotonic() < deadline:
            try:
                await self.client.ping()
            except redis.RedisError as exc:
                self._trouble(exc)
            else:
                self._ok()
                if not self.shared_exclusions or await self.refresh():
                    return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return False

    # -- the connection gate ----------------------------------------------------------------------

    async def _take_token(self) -> None:
        import redis

        deadline = time.monotonic() + self.patience
        delay = 0.1
        async with self._lock:  # one draw at a time; waiters are served in order
            while time.monotonic() < deadline:
                if self._tokens > 0:
                    self._tokens -= 1
                    return
                try:
                    granted, wait_us = await self._take(
                        keys=[rate_key(self.scan_id)],
                        args=[float(self.rate_value or 0), self.burst, self.chunk, RATE_KEY_TTL_MS],
                    )
                except redis.RedisError as exc:
                    self._trouble(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                self._ok()
                self._tokens = int(granted)
                if not self._tokens:
                    await asyncio.sleep(min(1.0, max(0.002, int(wait_us) / 1e6)))
        raise GateUnavailable(f"no rate tokens from Redis for {self.patience:g} s")

    async def _until_current(self) -> None:
        deadline = time.monotonic() + self.patience
        while self.stale:
            if time.monotonic() > deadline:
                raise GateUnavailable(f"exclusion list not confirmed for {self.patience:g} s")
            await asyncio.sleep(0.1)

    def admit_now(self, address: str) -> bool:
        # Every connection goes through before_connect here: it counts arrivals and draws shared tokens.
        return False

    async def before_connect(self, address: str) -> float:
        start = time.monotonic()
        task = asyncio.current_task()
        if task is not None and task not in self._arrived:  # this endpoint's first connection
            self._arrived.add(task)
            task.add_done_callback(self._arrived.discard)
            self.admitted = max(0, self.admitted - 1)
        self.waiting += 1
        try:
            if self.hosts is not None:
                await self.hosts.acquire(address)
            try:
                await self.rate.acquire()
                if self.rate_value:
                    await self._take_token()
                await self._until_current()
            except BaseException:
                if self.hosts is not None:
                    self.hosts.release(address)
                raise
        finally:
            self.waiting -= 1
        # Checked after every wait, right before the connection: an opt-out that arrived meanwhile wins.
        if self._on_list(address):
            if self.hosts is not None:
                self.hosts.release(address)
            raise Excluded(address)
        return time.monotonic() - start
