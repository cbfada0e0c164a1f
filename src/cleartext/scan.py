"""Scan: run the probe over a stream of endpoints with bounded concurrency, emitting records as they finish.

Targets arrive as a lazy stream and at most ``concurrency`` endpoints are in flight, so memory stays flat
whatever the size of the target list. Each finished endpoint is assessed and handed to ``emit`` at once.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Sequence
from typing import Any, TypeVar

from cleartext.assess import assess
from cleartext.probe import ProbeSettings, probe
from cleartext.record import Observation, Record, Status
from cleartext.resolve import ResolveError, Resolver
from cleartext.targets import Endpoint, PortSpec, TargetSpec, reserved_reason

T = TypeVar("T")


async def expand(
    specs: Sequence[TargetSpec],
    ports: Sequence[PortSpec],
    resolver: Resolver,
    *,
    allow_reserved: bool,
    warn: Callable[[str], None],
) -> AsyncIterator[tuple[Endpoint, str | None]]:
    """Yield (endpoint, reason it is blocklisted or None), lazily, in target order."""
    for spec in specs:
        if spec.network is not None:
            for address in spec.addresses():
                reason = None if allow_reserved else reserved_reason(address)
                for port in ports:
                    yield Endpoint(str(address), port.port, port.protocol, port.tls_mode), reason
            continue
        assert spec.hostname is not None
        try:
            addresses = await resolver.addresses(spec.hostname)
        except ResolveError as exc:
            warn(str(exc))
            continue
        for text in addresses:
            address = ipaddress.ip_address(text)
            reason = None if allow_reserved else reserved_reason(address)
            for port in ports:
                yield Endpoint(text, port.port, port.protocol, port.tls_mode, spec.hostname), reason


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


async def run(
    items: AsyncIterator[tuple[Endpoint, str | None]],
    settings: ProbeSettings,
    emit: Callable[[Record], None],
    *,
    concurrency: int = 100,
) -> Counter[str]:
    """Probe every endpoint, at most ``concurrency`` at once; return counts by status."""
    counts: Counter[str] = Counter()
    pending: set[asyncio.Task[Observation]] = set()

    def finish(done: Iterable[asyncio.Task[Observation]]) -> None:
        for task in done:
            record = assess(task.result())
            counts[record.observation.status.value] += 1
            emit(record)

    async for endpoint, blocked in items:
        if blocked is not None:
            record = blocked_record(endpoint, blocked)
            counts[record.observation.status.value] += 1
            emit(record)
            continue
        if len(pending) >= concurrency:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            finish(done)
        pending.add(asyncio.create_task(probe(endpoint, settings)))
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        finish(done)
    return counts


def run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on uvloop where it is installed (faster sockets), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it builds
        return asyncio.run(coro)
    return uvloop.run(coro)
