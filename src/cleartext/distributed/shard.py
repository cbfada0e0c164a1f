"""One shard on one worker: claim it, scan it with the ordinary Engine, store it, mark it done.

The life of a shard message (the Dramatiq actor calls :func:`run_shard`):

1. **Claim**: the shard's row becomes ``running`` under a fresh token (host/pid/random). If it is
   already ``done`` (a redelivery after the worker died between marking it done and acknowledging the
   message) there is nothing to scan; the scan's end is checked again and the message acknowledged.
2. **Resume**: a shard that an earlier attempt had begun continues from that attempt's last saved
   checkpoint (its tracker's watermark and the positions done above it, with their counts), which only
   ever covers records already in the store. Endpoints after it are probed again; their records replace
   the earlier ones (the store writes per scan and endpoint), so each endpoint ends up stored once.
3. **Scan**: the Engine walks shard I of N of the seeded permutation — the very order of a
   single-machine ``--shard I/N`` — through a :class:`~cleartext.distributed.gate.SharedGate`, emitting
   into a :class:`~cleartext.distributed.sink.ShardSink`. When Redis or the store goes away, the engine
   is stopped (what was in flight is dropped, not recorded) and started again from its tracker once they
   are back, within the worker's patience.
4. **Finish**: every record written, the row is marked ``done`` with its counts; when it was the last
   shard, the scan is finished in the store (``finish_scan``). Only then does the actor return, so the
   broker acknowledges the message: a worker killed at any earlier point leaves the message to be
   delivered again.

A worker that stops (SIGTERM) or gives up on an outage saves a checkpoint, queues the row again and
raises :class:`ShardHandedBack`, which Dramatiq retries — the shard continues elsewhere from there.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from dramatiq.errors import Retry

from cleartext.distributed import db
from cleartext.distributed.common import DistributedError, ScanPlan, ShardTask
from cleartext.distributed.gate import GateUnavailable, SharedGate, async_client, exclusions_key, rate_key
from cleartext.distributed.sink import Checkpoint, ShardSink
from cleartext.scan import Engine, Plan, Tracker, run_loop
from cleartext.store import StoreError

log = logging.getLogger("cleartext.distributed")

# Set when this worker process shuts down: every running shard stops, checkpoints and hands itself back.
STOPPING = threading.Event()

_plans: dict[str, ScanPlan] = {}
_plans_lock = threading.Lock()


class _PacedEngine(Engine):
    """The engine, holding back new endpoints while enough of them wait for the scan's rate tokens.

    Engine admits a new endpoint while ``len(pending) < self.concurrency``; here ``concurrency`` is read
    live: the configured number, or 1 (admit nothing until a probe finishes) while the gate's backlog
    is at its ``max_waiting``. Without this the engine would start thousands of probes at once, each
    waiting for a token against its own endpoint deadline. Nothing else of the engine changes.
    """

    def __init__(self, *args: Any, shared_gate: SharedGate, **kwargs: Any) -> None:
        self._shared_gate = shared_gate
        self._full = 1
        super().__init__(*args, gate=shared_gate, **kwargs)

    @property
    def concurrency(self) -> int:
        gate = self._shared_gate
        if gate.rate_value and gate.backlog >= gate.max_waiting:
            return 1  # the backlog includes admitted probes, so pending is not empty: the engine waits
        return self._full

    @concurrency.setter
    def concurrency(self, value: int) -> None:
        self._full = value


class ShardHandedBack(Retry):
    """The shard stopped unfinished and was queued again (worker stopping, an outage): not an error."""


class ShardRejected(Exception):
    """A message this worker must not run (its scan is not in this store, the plan does not match)."""


@dataclass(frozen=True)
class DaemonConfig:
    """How a `cleartext worker` daemon reaches the store and the broker, and how hard it works; the
    scan's own parameters come with each shard, in its plan (:class:`~.common.ScanPlan`)."""

    store_url: str
    broker_url: str
    concurrency: int  # endpoints in flight per shard
    patience: float  # seconds to wait for an unreachable Redis or store before handing a shard back
    ca_dir: str | None = None


def run_shard(payload: dict[str, Any], config: DaemonConfig) -> None:
    """The actor's body: one shard from claim to done (see the module docstring)."""
    try:
        task = ShardTask.from_message(payload)
    except (DistributedError, KeyError, TypeError, ValueError) as exc:
        raise ShardRejected(f"not a shard message: {exc}") from None
    token = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(3)}"
    central = db.Central(config.store_url, patience=config.patience)
    try:
        _ShardRun(task, token, central, config).run()
    finally:
        central.close()


def _load_plan(task: ShardTask, central: db.Central) -> ScanPlan:
    if task.plan is not None:
        return task.plan
    with _plans_lock:
        plan = _plans.get(task.scan_id)
    if plan is None:
        plan = central.call("plan", lambda store: db.load_plan(store, task.scan_id))
        if plan is None:
            raise ShardRejected(f"scan {task.scan_id} is not a distributed scan of {central.url}")
        with _plans_lock:
            _plans[task.scan_id] = plan
    return plan


class _ShardRun:
    def __init__(self, task: ShardTask, token: str, central: db.Central, config: DaemonConfig) -> None:
        self.task = task
        self.token = token
        self.central = central
        self.config = config
        self.name = f"shard {task.shard}"

    def run(self) -> None:
        task, central = self.task, self.central
        plan = _load_plan(task, central)
        self.name = f"shard {task.shard}/{plan.shards} of {task.scan_id}"
        claim = central.call("claim", lambda store: db.claim(store, task.scan_id, task.shard, self.token))
        if claim is None:
            raise ShardRejected(f"{self.name}: not in {central.url}")
        if claim.state == "done":
            log.info("%s: already done (a redelivery)", self.name)
            self._finish_scan()
            return
        try:
            space = plan.space()
            settings = plan.settings(self.config.ca_dir)
        except (DistributedError, TypeError, ValueError, OSError) as exc:  # another version's plan, say
            self._hand_back(f"rejected by {self.token}: {exc}")  # `cleartext status` shows why
            raise ShardRejected(f"{self.name}: {exc}") from None
        self.plan = Plan(space, plan.seed, task.shard, plan.shards, plan.allow_reserved)
        self.scan_plan = plan
        if claim.checkpoint:
            cp = claim.checkpoint
            self.tracker = Tracker(int(cp["watermark"]), plan.shards, {int(p) for p in cp["above"]})
        else:
            self.tracker = Tracker(task.shard, plan.shards)
        self.counts: Counter[str] = Counter(claim.counts)
        done_before = self._done()
        log.info(
            "%s: attempt %d, %s (%d endpoints)",
            self.name,
            claim.attempts,
            f"resuming after {done_before} done" if done_before else "starting",
            claim.size,
        )
        self.sink = ShardSink(central, task.scan_id, task.shard, self.token)
        central.on_trouble = self.sink.on_trouble
        started = time.monotonic()
        try:
            outcome = run_loop(self._scan(settings))
        except Exception as exc:  # a bug: hand the shard back with the error, let Dramatiq retry it
            self._stop_sink()
            self._hand_back(f"{type(exc).__name__}: {exc}")
            raise
        flushed = self._stop_sink()
        if outcome == "complete" and flushed:
            counts = dict(self.counts)
            if central.call(
                "done", lambda store: db.mark_done(store, task.scan_id, task.shard, self.token, counts)
            ):
                elapsed = time.monotonic() - started
                summary = ", ".join(f"{n} {s}" for s, n in self.counts.most_common())
                log.info("%s: done in %.1f s: %s", self.name, elapsed, summary or "nothing")
                self._finish_scan()
            else:
                log.info("%s: complete, but another attempt owns it now", self.name)
            return
        if outcome == "lost" or self.sink.lost:
            return  # another attempt owns the shard; it acknowledges its own message
        reason = outcome if flushed else f"store unreachable: {self.sink.error}"
        if flushed:
            try:
                self.sink.save_final(self._checkpoint())
            except StoreError as exc:  # the last saved checkpoint stays; a little more is redone
                log.error("%s: final checkpoint not saved: %s", self.name, exc)
        self._hand_back(None if outcome == "stopping" else reason)
        log.warning("%s: handed back after %d done (%s)", self.name, self._done(), reason)
        raise ShardHandedBack(f"{self.name}: {reason}", delay=1000 if outcome == "stopping" else 5000)

    # -- helpers ----------------------------------------------------------------------------------

    def _done(self) -> int:
        """Positions of this shard done (passed-over ones included), from the tracker."""
        t, shard, shards = self.tracker, self.task.shard, self.plan.shards
        below = max(0, (t.watermark - shard + shards - 1) // shards)
        return below + len(t.above)

    def _checkpoint(self) -> Checkpoint:
        return Checkpoint(self.tracker.watermark, sorted(self.tracker.above), dict(self.counts), self._done())

    def _stop_sink(self) -> bool:
        """Write out what the sink holds; False if the store stayed away."""
        try:
            self.sink.close(self.config.patience + 30)
        except StoreError as exc:
            log.error("%s: records not stored: %s", self.name, exc)
            return False
        return True

    def _hand_back(self, error: str | None) -> None:
        try:
            self.central.call(
                "hand back",
                lambda store: db.hand_back(store, self.task.scan_id, self.task.shard, self.token, error),
                patience=min(self.config.patience, 30),
            )
        except StoreError as exc:  # the row stays "running"; its stale heartbeat tells the story
            log.error("%s: could not queue the shard again in the store: %s", self.name, exc)

    def _finish_scan(self) -> None:
        scan_id = self.task.scan_id
        if self.central.call("finish", lambda store: db.finish_if_complete(store, scan_id)):
            log.info("scan %s: every shard done; finished", scan_id)
            try:  # the scan's rate bucket and exclusion list are no longer needed
                from cleartext.distributed.common import redis_client

                redis_client(self.config.broker_url).delete(rate_key(scan_id), exclusions_key(scan_id))
            except Exception as exc:
                log.warning("scan %s: could not remove its Redis keys: %s", scan_id, exc)

    # -- the scan itself, on this thread's own event loop -------------------------------------------

    async def _scan(self, settings: Any) -> str:
        plan, sink = self.scan_plan, self.sink
        client = async_client(self.config.broker_url)
        gate = SharedGate(
            client,
            self.task.scan_id,
            rate=plan.rate,
            per_host=plan.per_host,
            exclusions=plan.exclusions,
            patience=self.config.patience,
        )
        refresher: asyncio.Task[None] | None = None
        try:
            if plan.exclusions and not await gate.wait_healthy(time.monotonic() + self.config.patience):
                return f"exclusion list unavailable for {self.config.patience:g} s"
            refresher = asyncio.create_task(gate.refresher())
            for _ in range(10_000):  # one round per outage survived; bounded by patience in practice
                gate.reset()
                engine = _PacedEngine(
                    self.plan,
                    settings,
                    sink,
                    concurrency=self.config.concurrency,
                    shared_gate=gate,
                    tracker=self.tracker,
                    on_tick=lambda: sink.snapshot(self._checkpoint()),
                )
                engine.counts = self.counts  # carried over from the checkpoint and earlier rounds
                running = asyncio.create_task(engine.run())
                watcher = asyncio.create_task(self._watch(gate, running))
                try:
                    await asyncio.wait([running])
                finally:
                    watcher.cancel()
                if not running.cancelled() and isinstance(running.exception(), GateUnavailable):
                    return str(running.exception())
                if not running.cancelled():
                    running.result()  # a bug in the engine: raised here, the shard is handed back
                if self.tracker.watermark >= self.plan.space.size:
                    return "complete"
                if STOPPING.is_set():
                    return "stopping"
                if sink.lost:
                    return "lost"
                if sink.error is not None:
                    return f"store unreachable: {sink.error}"
                log.warning(
                    "%s: paused (Redis or the store unreachable) after %d done", self.name, self._done()
                )
                if not await self._recover(gate):
                    return f"Redis or the store unreachable for {self.config.patience:g} s"
                log.warning("%s: resumed", self.name)
            return "too many interruptions"
        finally:
            if refresher is not None:
                refresher.cancel()
            await client.aclose()

    async def _watch(self, gate: SharedGate, running: asyncio.Task[Any]) -> None:
        """Stop the engine when the worker stops, the shard was taken over, or Redis or the store fail.

        The engine's own stop event is only looked at between two admissions, and an engine whose
        probes all wait for rate tokens that Redis cannot give would never get there: its run is
        cancelled instead. Engine.run then cancels its probes in flight; their positions stay undone
        (their records were never emitted) and are probed again when the round resumes.
        """
        sink = self.sink
        for _ in range(10**9):  # until the engine's round ends and cancels this
            if STOPPING.is_set() or sink.lost or sink.error is not None or sink.troubled or not gate.healthy:
                running.cancel()
                return
            await asyncio.sleep(0.05)

    async def _recover(self, gate: SharedGate) -> bool:
        """Wait, with backoff, until Redis answers and the store takes writes again."""
        deadline = time.monotonic() + self.config.patience
        if not await gate.wait_healthy(deadline):
            return False
        remaining = max(1.0, deadline - time.monotonic())
        try:  # a round trip on the store's connection proves it (and reopens it if it was lost)
            await asyncio.to_thread(self.central.call, "reconnect", _ping, patience=remaining)
        except StoreError:
            return False
        for _ in range(int(remaining * 10) + 1):
            if self.sink.error is not None or STOPPING.is_set():
                return False
            if not self.sink.troubled:
                return True
            await asyncio.sleep(0.1)
        return False


def _ping(store: Any) -> None:
    store.query("SELECT 1")
