"""Distributed scanning: one coordinator, any number of workers, one central PostgreSQL store.

``cleartext scan TARGETS --broker redis://... --store postgresql://...`` (the coordinator, see
:mod:`.coordinator`) cuts the scan's seeded order into shards and queues one Dramatiq message per shard
on Redis; ``cleartext worker`` (:mod:`.worker`) runs shards with the ordinary scan engine
(:mod:`.shard`), writing records into the store; ``cleartext status`` (:mod:`.status`) shows progress
from anywhere. The rate limit and the exclusion list are shared by every worker through Redis
(:mod:`.gate`). See docs/distributed.md.

Importing this package is cheap: Dramatiq and redis are imported when a command needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from cleartext.resolve import Resolver
    from cleartext.scan import RunOptions, ScanSpec


def submit(
    spec: ScanSpec,
    run: RunOptions,
    resolver: Resolver,
    *,
    broker: str,
    shards: int | None,
    wait: bool,
    warn: Callable[[str], None],
) -> int:
    """Queue a distributed scan; with ``wait``, follow it to its end. Returns the exit status."""
    from cleartext.distributed.coordinator import submit as _submit

    return _submit(spec, run, resolver, broker=broker, shards=shards, wait=wait, warn=warn)


__all__ = ["submit"]
