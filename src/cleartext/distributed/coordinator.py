"""The coordinator: `cleartext scan ... --broker URL` cuts a scan into shards and queues them.

It resolves hostnames once, registers the scan in the central store (``begin_scan``) with its plan and
one ``queued`` row per shard, publishes the exclusion list to the broker, and enqueues one message per
shard; then it prints the scan id and returns, or with ``--wait`` follows the scan to its end, showing
progress and publishing every change of the ``--exclude`` file to the workers.

`cleartext requeue` puts shards back on the queue when the broker lost them (a Redis restarted without
persistence, a coordinator killed while enqueueing).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cleartext.distributed import db
from cleartext.distributed.common import (
    ACTOR,
    PLAN_INLINE_MAX,
    QUEUE,
    DistributedError,
    ScanPlan,
    ShardTask,
    check_broker_url,
    check_store_url,
    default_shards,
    make_broker,
    redact,
    redis_client,
)
from cleartext.distributed.gate import exclusions_version, parse_exclusions, publish_exclusions
from cleartext.distributed.status import duration, scan_status
from cleartext.resolve import Resolver
from cleartext.scan import build_space, resolve_named, run_loop
from cleartext.store import Store, StoreError, open_store

if TYPE_CHECKING:
    from dramatiq.brokers.redis import RedisBroker

    from cleartext.scan import RunOptions, ScanSpec

WAIT_POLL_S = 0.5  # the --exclude file is checked this often while waiting


def _error(message: str) -> None:
    print(f"cleartext: error: {message}", file=sys.stderr)


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
    """Queue a distributed scan (see the module docstring); the exit status."""
    try:
        return _submit(spec, run, resolver, broker, shards, wait, warn)
    except DistributedError as exc:
        _error(str(exc))
        return 2


def _submit(
    spec: ScanSpec,
    run: RunOptions,
    resolver: Resolver,
    broker_url: str,
    shards: int | None,
    wait: bool,
    warn: Callable[[str], None],
) -> int:
    import redis

    check_broker_url(broker_url)
    store_url = check_store_url(run.store)
    if run.out is not None or run.resume:
        raise DistributedError("--out and --resume do not apply with --broker: records go to the store")
    if spec.shards != 1:
        raise DistributedError("--shard does not apply with --broker: the scan is cut into --shards")
    if run.concurrency:
        raise DistributedError(
            "--concurrency is set per worker with --broker: cleartext worker --concurrency"
        )
    if spec.settings.source_address:
        raise DistributedError(
            "--source-address is an address of one machine; it does not apply with --broker"
        )
    if shards is not None and shards < 1:
        raise DistributedError("--shards must be at least 1")
    client = redis_client(broker_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise DistributedError(f"cannot reach the broker {redact(broker_url)}: {exc}") from None
    exclusions = Path(spec.exclude).read_text(encoding="utf-8") if spec.exclude else None
    if exclusions is not None:
        try:
            parse_exclusions(exclusions)
        except ValueError as exc:
            raise DistributedError(f"{spec.exclude}: {exc}") from None

    seed = spec.seed if spec.seed is not None else secrets.randbits(63)
    named = run_loop(resolve_named(spec.specs, resolver, warn))
    space = build_space(spec.specs, named, spec.ports)
    count = shards or default_shards(space.size)
    plan = ScanPlan.build(spec, space, seed=seed, shards=count, exclusions=exclusions is not None)
    try:
        store = open_store(store_url)
    except StoreError as exc:
        raise DistributedError(str(exc)) from None
    try:
        db.ensure_tables(store)
        params = {"seed": seed, "shards": count, "broker": redact(broker_url), "distributed": True}
        scan_id = store.begin_scan({**spec.params(), **params})
        version = exclusions_version(exclusions) if exclusions is not None else None
        db.create_scan(store, scan_id, plan, redact(broker_url), exclusions, version)
    except StoreError as exc:
        store.close()
        raise DistributedError(str(exc)) from None
    try:
        if exclusions is not None:
            publish_exclusions(client, scan_id, exclusions)
        queued = enqueue(make_broker(broker_url, worker=False), scan_id, plan, range(count))
    except redis.RedisError as exc:
        store.close()
        print(scan_id)
        _error(
            f"the broker failed while queueing scan {scan_id} ({exc}); when it is back, "
            f"`cleartext requeue {scan_id}` queues the shards it lost"
        )
        return 1
    print(scan_id, flush=True)
    print(
        f"cleartext: scan {scan_id}: {space.size:,} endpoints in {queued:,} shard{'s' * (queued != 1)} "
        f"queued on {redact(broker_url)}; `cleartext status {scan_id}` shows its progress",
        file=sys.stderr,
    )
    if not wait:
        store.close()
        return 0
    store.close()
    return wait_for(scan_id, store_url, client, spec.exclude, run.progress_interval)


def enqueue(broker: RedisBroker, scan_id: str, plan: ScanPlan, shards: range | list[int]) -> int:
    """One message per shard; the plan rides along unless it is too large (then workers read the store)."""
    from dramatiq import Message

    inline = plan if len(plan.to_json()) <= PLAN_INLINE_MAX else None
    count = 0
    for shard in shards:
        payload = ShardTask(scan_id, shard, inline).to_message()
        broker.enqueue(Message(queue_name=QUEUE, actor_name=ACTOR, args=(payload,), kwargs={}, options={}))
        count += 1
    return count


class _ExclusionWatch:
    """Publishes the --exclude file again whenever it changes (its modification time or size)."""

    def __init__(self, path: str, scan_id: str, client: object, central: db.Central) -> None:
        self.path = path
        self.scan_id = scan_id
        self.client = client
        self.central = central
        self.stamp = self._stamp()
        self.bad: str | None = None

    def _stamp(self) -> tuple[float, int] | None:
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size)

    def check(self) -> None:
        import redis

        stamp = self._stamp()
        if stamp is None or stamp == self.stamp:
            return
        try:
            text = Path(self.path).read_text(encoding="utf-8")
            version = publish_exclusions(self.client, self.scan_id, text)  # type: ignore[arg-type]
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            if str(exc) != self.bad:  # a half-written file: the last good list stays in force
                print(f"cleartext: warning: {self.path}: {exc}; the last good list stays", file=sys.stderr)
                self.bad = str(exc)
            return
        except redis.RedisError as exc:
            print(f"cleartext: warning: cannot publish {self.path}: {exc}; retrying", file=sys.stderr)
            return
        self.stamp, self.bad = stamp, None
        print(f"cleartext: {self.path} changed: exclusion list {version} published", file=sys.stderr)
        try:
            self.central.call(
                "exclusions", lambda store: db.save_exclusions(store, self.scan_id, text, version)
            )
        except StoreError as exc:
            print(f"cleartext: warning: exclusion list not saved in the store: {exc}", file=sys.stderr)


def wait_for(scan_id: str, store_url: str, client: object, exclude: str | None, interval: float) -> int:
    """Follow the scan to its end: a progress line per ``interval``; the exclusion file re-published."""
    central = db.Central(store_url, patience=300)
    watch = _ExclusionWatch(exclude, scan_id, client, central) if exclude else None
    last_line = 0.0
    last_poll = 0.0
    try:
        for _ in range(10**9):  # until the scan finishes (or Ctrl-C)
            if watch is not None:
                watch.check()
            now = time.monotonic()
            if now - last_poll >= 1.0:
                last_poll = now
                status = central.call("status", lambda store: scan_status(store, scan_id))
                if status.finished_at is not None:
                    summary = ", ".join(f"{n} {name}" for name, n in status.counts.items())
                    print(
                        f"cleartext: {status.stored} endpoints: {summary or 'none'}; scan {scan_id} finished "
                        f"in {duration(status.elapsed_s)}",
                        file=sys.stderr,
                    )
                    return 0
                if now - last_line >= interval:
                    last_line = now
                    print(
                        f"cleartext: {status.shards_done}/{status.shards} shards done, "
                        f"{status.done:,}/{status.endpoints:,} endpoints, {status.rate:,.1f}/s, "
                        f"ETA {duration(status.eta_s)}",
                        file=sys.stderr,
                        flush=True,
                    )
            time.sleep(WAIT_POLL_S)
    except KeyboardInterrupt:
        print(f"cleartext: stopped waiting; the scan goes on (cleartext status {scan_id})", file=sys.stderr)
        return 130
    except StoreError as exc:
        _error(f"{exc}; the scan goes on (cleartext status {scan_id})")
        return 1
    finally:
        central.close()
    return 1  # pragma: no cover - the loop bound is never reached


def requeue(scan_id: str, broker_url: str, store_url: str, *, everything: bool) -> int:
    """Queue again the shards of a scan that no worker holds; publish its exclusion list again."""
    import redis

    try:
        check_broker_url(broker_url)
        check_store_url(store_url)
        try:
            store: Store = open_store(store_url)
        except StoreError as exc:
            raise DistributedError(str(exc)) from None
        try:
            scan_id = store.resolve_scan(scan_id)  # 'latest' too
            plan = db.load_plan(store, scan_id) if db.has_tables(store) else None
            if plan is None:
                raise DistributedError(f"scan {scan_id} was not distributed")
            shards = db.shards_to_requeue(store, scan_id, everything)
            text, _ = db.load_exclusions(store, scan_id)
        except StoreError as exc:
            raise DistributedError(str(exc)) from None
        finally:
            store.close()
        client = redis_client(broker_url)
        try:
            if text is not None:
                publish_exclusions(client, scan_id, text)
            queued = enqueue(make_broker(broker_url, worker=False), scan_id, plan, shards)
        except redis.RedisError as exc:
            raise DistributedError(f"cannot reach the broker {redact(broker_url)}: {exc}") from None
    except DistributedError as exc:
        _error(str(exc))
        return 2
    print(f"cleartext: {queued} shard(s) of scan {scan_id} queued again", file=sys.stderr)
    return 0
