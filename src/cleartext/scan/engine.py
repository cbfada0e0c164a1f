"""Scan: the engine that drives the probe over a scan's whole target space, politely and resumably.

The targets become a flat index space (cleartext.targets.TargetSpace), walked in a seeded pseudo-random
order (cleartext.scan.permutation) so that no network sees a burst, optionally one shard of it. At most
``concurrency`` endpoints are in flight; each finished endpoint is assessed and handed to ``emit`` at once,
and only then counted as done for the checkpoint. Memory stays flat whatever the size of the space.

Addresses in reserved space inside a scanned network, and addresses on the operator's exclusion list, are
passed over without a packet and without a record (a /0 holds hundreds of millions of them); a hostname
that resolves into reserved space gets a ``blocklisted`` record, since the operator asked for it by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import resource
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from cleartext.assess import assess
from cleartext.endpoint_lists import EndpointReader
from cleartext.politeness import Gate
from cleartext.probe import ProbeSettings, probe
from cleartext.record import Observation, Record, Status
from cleartext.resolve import ResolveError, Resolver
from cleartext.scan.checkpoint import Tracker
from cleartext.scan.permutation import Permutation
from cleartext.scan.progress import ScanProgress
from cleartext.targets import Endpoint, Named, PortSpec, TargetSpace, TargetSpec, reserved_reason

T = TypeVar("T")

# What the engine awaits per endpoint: in this process by default (probe + assess), or a worker pool's
# dispatch (cleartext.scan.workers). A coroutine or a future; either way it yields the endpoint's record.
Prober = Callable[[Endpoint], Awaitable[Record]]

# The cyclic garbage collector's thresholds while a loop runs (CPython's first is 700). A scan allocates
# millions of short-lived objects that reference counting frees: at 700, collections walking every
# endpoint in flight took ~10 % of a busy scanner's CPU (perf); at 100,000 a dense scan used 20-30 %
# less (bench/RESULTS.md, "Latest runs", *The collector*). The probe makes no cycles at all
# (tests/integration/test_probe_cycles.py). At these thresholds the oldest generation would almost never
# be collected, so the loop runs a full collection itself every GC_EVERY seconds: whatever else makes a
# cycle is freed within that time (a pass with 4,096 endpoints in flight takes tens of milliseconds).
GC_THRESHOLD = (100_000, 20, 100)
GC_EVERY = 30.0

FD_RESERVE = 256  # descriptors kept for the output, the store, DNS, the event loop
AUTO_CONCURRENCY_MAX = 4096


async def resolve_named(
    specs: Sequence[TargetSpec], resolver: Resolver, warn: Callable[[str], None]
) -> list[Named]:
    """Resolve the hostname targets once, before the scan: their addresses are fixed for its whole run.

    A name that does not resolve is a warning while other targets remain; when none remains (the only
    target was that name), ResolveError: a scan of nothing is a usage error, not a success.
    """
    named: list[Named] = []
    failures: list[str] = []
    for spec in specs:
        if spec.hostname is None:
            continue
        try:
            addresses = await resolver.addresses(spec.hostname)
        except ResolveError as exc:
            failures.append(str(exc))
            continue
        named += [Named(spec.hostname, address) for address in addresses]
    if failures and not named and all(spec.network is None for spec in specs):
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise ResolveError(f"{failures[0]}{more}; nothing to scan")
    for failure in failures:
        warn(failure)
    return named


def build_space(
    specs: Sequence[TargetSpec], named: Sequence[Named], ports: Sequence[PortSpec]
) -> TargetSpace:
    return TargetSpace([s.network for s in specs if s.network is not None], named, ports)


def raise_fd_limit() -> int:
    """Raise the soft limit on open files to the hard limit (allowed without privileges); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def auto_concurrency(requested: int) -> int:
    """Endpoints in flight: what was asked, bounded by the descriptors we can have (one socket each)."""
    limit = max(16, raise_fd_limit() - FD_RESERVE)
    return min(requested, limit) if requested > 0 else min(AUTO_CONCURRENCY_MAX, limit)


def blocked_record(endpoint: Endpoint, reason: str) -> Record:
    obs = Observation(
        address=endpoint.address,
        port=endpoint.port,
        protocol=endpoint.protocol,
        tls_mode=endpoint.tls_mode,
        hostname=endpoint.hostname,
        status=Status.BLOCKLISTED,
        status_detail=f"reserved range ({reason}); not scanned",
        timings_ms={"total": 0.0},
    )
    return Record(observation=obs)


class ListedEndpoints:
    """A scan's endpoints read from an endpoint list (cleartext.endpoint_lists): exactly those, in the
    list's order (a SYN scanner's own order is already spread over the networks), each numbered by its
    position among the list's endpoints. The list is streamed, never held: a walk reads it again, and a
    list read from stdin can be walked once (no --resume: there is nothing to read again)."""

    def __init__(
        self,
        reader_factory: Callable[[], EndpointReader],
        open_lines: Callable[[], Iterable[str]],
        *,
        size: int | None = None,
        rewindable: bool = True,
    ) -> None:
        self._reader_factory = reader_factory
        self._open_lines = open_lines
        self.size = size  # endpoints in the list, when counted beforehand (a file); None for a pipe
        self.rewindable = rewindable
        self.reader: EndpointReader | None = None  # the last walk's reader: its counts of skipped lines

    def walk(self, shard: int, shards: int, start: int) -> Iterator[tuple[int, Endpoint]]:
        self.reader = self._reader_factory()
        count = 0
        for position, endpoint in enumerate(self.reader.endpoints(self._open_lines())):
            count = position + 1
            if position >= start and position % shards == shard:
                yield position, endpoint
        self.size = count  # read to its end: now the list's size is known

    def positions_of(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The positions of these endpoints (what a resumed scan finds in its output after the last
        saved state: a second or two of records), by reading the list again."""
        if not keys or not self.rewindable:
            return {}
        found: dict[tuple[str, int], int] = {}
        reader = self._reader_factory()
        for position, endpoint in enumerate(reader.endpoints(self._open_lines())):
            key = (endpoint.address, endpoint.port)
            if key in keys:
                found[key] = position
                if len(found) == len(keys):
                    break
        return found


@dataclass(frozen=True)
class Plan:
    """Everything that fixes a scan's order: the space (or an endpoint list), the seed and the shard."""

    space: TargetSpace
    seed: int
    shard: int = 0
    shards: int = 1
    allow_reserved: bool = False
    listed: ListedEndpoints | None = None  # when set, the scan probes exactly these, not the space

    @property
    def size(self) -> int | None:
        """Positions in all; None for a list not counted before (a pipe)."""
        return self.listed.size if self.listed is not None else self.space.size

    @property
    def shard_size(self) -> int | None:
        """Endpoints in this shard (None: not known before the end of a piped list)."""
        size = self.size
        if size is None:
            return None
        return max(0, (size - self.shard + self.shards - 1) // self.shards)

    def walk(self, start: int) -> Iterator[tuple[int, Endpoint]]:
        """(position, endpoint) of this shard from position ``start`` on, in the scan's order."""
        if self.listed is not None:
            yield from self.listed.walk(self.shard, self.shards, start)
            return
        perm = Permutation(self.space.size, self.seed)
        for position, index in perm.positions(self.shard, self.shards, start=start):
            yield position, self.space.endpoint(index)

    def positions_of(self, found: list[tuple[str, int, str | None]]) -> set[int]:
        """The positions of endpoints seen in an output (address, port, hostname), for --resume."""
        if self.listed is not None:
            return set(self.listed.positions_of({(a, p) for a, p, _ in found}).values())
        perm = Permutation(self.space.size, self.seed)
        out = set()
        for address, port, hostname in found:
            index = self.space.index_of(address, port, hostname)
            if index is not None:
                out.add(perm.position(index))
        return out


class Engine:
    def __init__(
        self,
        plan: Plan,
        settings: ProbeSettings,
        emit: Callable[[Record], None],
        *,
        concurrency: int,
        gate: Gate | None = None,
        tracker: Tracker | None = None,
        progress: ScanProgress | None = None,
        on_tick: Callable[[], None] | None = None,
        prober: Prober | None = None,
    ) -> None:
        self.plan = plan
        self.settings = settings
        self.emit = emit
        self.concurrency = max(1, concurrency)
        self.gate = gate
        self.tracker = tracker or Tracker(plan.shard, plan.shards)
        self.progress = progress
        self.on_tick = on_tick
        self.counts: Counter[str] = Counter()
        self.prober: Prober = prober or self._probe_here

    async def _probe_here(self, endpoint: Endpoint) -> Record:
        return assess(await probe(endpoint, self.settings, self.gate))

    def _finish(self, record: Record, position: int) -> None:
        self.emit(record)  # may raise (full disk, closed pipe): then the position is not marked done
        self.tracker.complete(position)
        status = record.observation.status.value
        self.counts[status] += 1
        if self.progress is not None:
            self.progress.advance(status)

    def _pass_over(self, position: int) -> None:
        self.tracker.complete(position)
        self.counts["skipped"] += 1
        if self.progress is not None:
            self.progress.skip()

    async def _ticker(self) -> None:
        for _ in range(10**9):  # bounded only by the scan's own end, which cancels this task
            await asyncio.sleep(1.0)
            if self.progress is not None:
                self.progress.tick()
            if self.on_tick is not None:
                self.on_tick()

    async def run(self, stop: asyncio.Event | None = None) -> Counter[str]:
        """Scan until the shard is done or ``stop`` is set; every finished endpoint's record is emitted."""
        plan = self.plan
        pending: dict[asyncio.Future[Record], int] = {}
        # Finished probes queue here as they complete. asyncio.wait(pending) would hook and unhook a
        # callback on every pending probe at each call: ~0.5 ms at 1,000 in flight, per wake-up.
        finished: deque[asyncio.Future[Record]] = deque()
        wake = asyncio.Event()
        ticker = asyncio.create_task(self._ticker())

        def on_done(future: asyncio.Future[Record]) -> None:
            finished.append(future)
            wake.set()

        async def drain(timeout: float | None = None) -> None:
            """Emit every finished endpoint, after waiting up to ``timeout`` for one if none has."""
            if not finished:
                wake.clear()
                if timeout is None:  # the common wait, once per endpoint: no timeout scope (~9 µs) for it
                    await wake.wait()
                else:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(timeout):
                            await wake.wait()
            while finished:
                future = finished.popleft()
                position = pending.pop(future)
                self._finish(future.result(), position)  # only now is the position done (exactly once)

        try:
            for position, endpoint in plan.walk(start=self.tracker.watermark):
                if stop is not None and stop.is_set():
                    break
                if self.tracker.is_done(position):
                    continue
                if not plan.allow_reserved:
                    reason = reserved_reason(ipaddress.ip_address(endpoint.address))
                    if reason is not None:
                        if endpoint.hostname is not None:
                            self._finish(blocked_record(endpoint, reason), position)
                        else:
                            self._pass_over(position)
                        continue
                if self.gate is not None and self.gate.excluded(endpoint.address):
                    self._pass_over(position)
                    continue
                while len(pending) >= self.concurrency:
                    await drain()
                # ensure_future: a prober that returns a future (the worker pool) costs no task.
                future = asyncio.ensure_future(self.prober(endpoint))
                pending[future] = position
                future.add_done_callback(on_done)
            while pending and not (stop is not None and stop.is_set()):
                await drain(timeout=0.5)
        finally:
            ticker.cancel()
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return self.counts


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop where it is installed (faster sockets), else on asyncio's loop."""
    with rare_collections():
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvloop is a dependency wherever it builds
            return asyncio.run(_collecting(coro))
        return uvloop.run(_collecting(coro))


async def _collecting(coro: Coroutine[Any, Any, T], every: float = GC_EVERY) -> T:
    """``coro``, with a full garbage collection every ``every`` seconds while it runs."""

    async def collector() -> None:
        while True:
            await asyncio.sleep(every)
            gc.collect()

    task = asyncio.ensure_future(collector())
    try:
        return await coro
    finally:
        task.cancel()


@contextlib.contextmanager
def rare_collections() -> Iterator[None]:
    """While the loop runs: what exists now (modules, tables) is frozen out of every collection, and
    collections come at GC_THRESHOLD instead of CPython's default; both are restored afterwards."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
