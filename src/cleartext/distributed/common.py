"""What the coordinator, the workers and `cleartext status` agree on: URLs, the broker, the shard message.

A shard message carries everything a worker needs to rebuild the scan's order exactly — the target
networks, the hostnames *as the coordinator resolved them*, the ports, the seed, the shard I of N, the
probe and politeness settings — so that workers never resolve names again (a name that changed its
address mid-scan would otherwise split one scan across two sets of addresses) and need no file from the
coordinator's machine. A plan too large to repeat in every message (a target file of a million lines)
travels once, in the store, and messages refer to it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cleartext.errors import CleartextError
from cleartext.probe import ProbeSettings
from cleartext.targets import SERVICES, Named, PortSpec, TargetSpace

if TYPE_CHECKING:
    import redis
    from dramatiq.brokers.redis import RedisBroker

    from cleartext.scan import ScanSpec

QUEUE = "cleartext-shards"
ACTOR = "cleartext_shard"
NAMESPACE = "cleartext"  # prefix of every Redis key we and Dramatiq use
MESSAGE_VERSION = 1

# Dramatiq's Redis broker counts a worker process dead when it has not heard from it for this long, and
# then puts the messages it held back on the queue. Every live worker process refreshes its heartbeat at
# least once a second (its delay-queue consumer polls Redis that often even while all its threads are
# busy), so 10 s is ten missed beats, yet short enough that a killed worker's shard runs again within
# ~20 s. A live worker wrongly presumed dead (a stall of over 10 s) only costs duplicate work: shards are
# claimed with a token and writes are idempotent.
HEARTBEAT_TIMEOUT_MS = 10_000
# Dramatiq looks for dead workers on a random share of its Redis commands (default 0.1 %: minutes until
# a dead worker is noticed). Workers look on every fetch: a Lua script of a few O(log n) commands, run at
# most once a second per idle consumer.
MAINTENANCE_CHANCE = 1_000_000

# A plan up to this size (JSON bytes) rides in every message; a larger one is read from the store.
PLAN_INLINE_MAX = 32 * 1024
# Default shard size: big enough that the queue stays small (a daily IPv4 pass on 7 ports is ~0.5 M
# messages), small enough that a shard takes minutes, not hours, so work spreads evenly.
DEFAULT_SHARD_ENDPOINTS = 50_000

REDIS_CONNECT_TIMEOUT_S = 5.0
REDIS_SOCKET_TIMEOUT_S = 15.0


class DistributedError(CleartextError):
    """A usage or setup problem, said in one line (exit status 2)."""


_REDIS_URL = re.compile(r"^rediss?://")


def check_broker_url(url: str) -> str:
    """``redis://[:password@]HOST[:PORT][/DB]`` (or rediss://); the URL, or a one-line error."""
    if not _REDIS_URL.match(url):
        raise DistributedError(f"--broker {redact(url)}: expected redis://HOST[:PORT][/DB]")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DistributedError(f"--broker {redact(url)}: {exc}") from None
    if not parts.hostname:
        raise DistributedError(f"--broker {redact(url)}: no host")
    if port is not None and not 0 < port < 65536:
        raise DistributedError(f"--broker {redact(url)}: bad port")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise DistributedError(f"--broker {redact(url)}: the path must be a database number, e.g. /0")
    return url


def check_store_url(url: str | None) -> str:
    """Distributed scans write to one central PostgreSQL store: anything else is a one-line error."""
    if url is None or not url.startswith(("postgresql://", "postgres://")):
        shown = "none" if url is None else redact(url)
        raise DistributedError(
            f"--broker needs a postgresql:// store shared by every worker (--store or $CLEARTEXT_STORE), "
            f"not {shown}"
        )
    return url


def redact(url: str) -> str:
    """The URL without its password: fit for logs, errors and the store."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def redis_client(url: str) -> redis.Redis:
    """A client that gives up on a dead server within seconds instead of hanging."""
    import redis

    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        health_check_interval=30,
    )


def make_broker(url: str, *, worker: bool, middleware: list[Any] | None = None) -> RedisBroker:
    """Dramatiq's Redis broker, tuned for shards (see HEARTBEAT_TIMEOUT_MS, MAINTENANCE_CHANCE).

    Dramatiq's default middleware is replaced: no TimeLimit (a shard takes as long as it takes; its
    progress is checkpointed), no ShutdownNotifications (an asynchronous exception could land anywhere in
    the event loop; workers stop their engines themselves), only Retries — with backoff, and unlimited
    for shards handed back by a stopping worker. The coordinator's broker never does maintenance: it
    only enqueues, and would otherwise run the dead-worker check once per message.
    """
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import Retries

    from cleartext.distributed.shard import ShardHandedBack

    def retry_when(retries: int, exc: BaseException) -> bool:
        return isinstance(exc, ShardHandedBack) or retries < 10

    stack = [Retries(min_backoff=5_000, max_backoff=300_000, retry_when=retry_when), *(middleware or [])]
    broker = RedisBroker(
        client=redis_client(url),
        namespace=NAMESPACE,
        heartbeat_timeout=HEARTBEAT_TIMEOUT_MS,
        maintenance_chance=MAINTENANCE_CHANCE if worker else 0,
        middleware=stack,
    )
    broker.declare_queue(QUEUE)
    return broker


def service_name(port: PortSpec) -> str:
    """The service name that parse_ports maps back to this port's protocol and TLS mode."""
    for name, value in SERVICES.items():
        if value == (port.protocol, port.tls_mode):
            return name
    raise ValueError(f"no service for {port}")  # pragma: no cover - SERVICES covers every pair


def default_shards(endpoints: int) -> int:
    """About DEFAULT_SHARD_ENDPOINTS endpoints per shard, at least one."""
    return max(1, -(-endpoints // DEFAULT_SHARD_ENDPOINTS))


@dataclass(frozen=True)
class ScanPlan:
    """A :class:`~cleartext.scan.ScanSpec` resolved for the wire: hostnames resolved once by the
    coordinator, the seed drawn, CA files as PEM text; what fixes a distributed scan's order and manners,
    the same on every worker."""

    networks: list[str]  # collapsed, in TargetSpace order
    named: list[list[str]]  # [hostname, address], as resolved once by the coordinator
    ports: str  # "25=smtp,993=imaps": parse_ports gives back the same PortSpecs
    seed: int
    shards: int
    endpoints: int  # the space's size: a worker that computes another refuses the shard
    allow_reserved: bool = False
    probe: dict[str, Any] = field(default_factory=dict)  # ProbeSettings, with CA files as PEM text
    rate: float | None = None  # new connections per second, for the whole scan
    per_host: int = 4  # connections at once per address, within one shard
    exclusions: bool = False  # an exclusion list is shared through the broker for this scan

    @classmethod
    def build(
        cls, spec: ScanSpec, space: TargetSpace, *, seed: int, shards: int, exclusions: bool
    ) -> ScanPlan:
        settings = spec.settings
        probe = asdict(settings)
        # CA files exist on the coordinator's machine only: their content travels with the plan.
        probe["ca_files"] = [_read_pem(path) for path in settings.ca_files]
        return cls(
            networks=[str(n) for n in space.networks],
            named=[[n.hostname, n.address] for n in space.named],
            ports=",".join(f"{p.port}={service_name(p)}" for p in space.ports),
            seed=seed,
            shards=shards,
            endpoints=space.size,
            allow_reserved=spec.allow_reserved,
            probe=probe,
            rate=spec.rate,
            per_host=spec.per_host,
            exclusions=exclusions,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanPlan:
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    def space(self) -> TargetSpace:
        """The target space, exactly as the coordinator built it (same index of every endpoint)."""
        from cleartext.targets import parse_ports

        space = TargetSpace(
            [ipaddress.ip_network(n) for n in self.networks],
            [Named(h, a) for h, a in self.named],
            parse_ports(self.ports),
        )
        if space.size != self.endpoints:
            raise DistributedError(
                f"plan mismatch: this worker computes {space.size} endpoints, the coordinator "
                f"{self.endpoints} (different cleartext versions?)"
            )
        return space

    def settings(self, ca_dir: str | None = None) -> ProbeSettings:
        """The probe settings; CA certificates are written under ``ca_dir`` for the TLS code to read."""
        data = dict(self.probe)
        pems: list[str] = data.pop("ca_files", [])
        paths: list[str] = []
        if pems:
            import os
            import tempfile

            directory = ca_dir or tempfile.mkdtemp(prefix="cleartext-ca-")
            for pem in pems:
                digest = hashlib.sha256(pem.encode()).hexdigest()[:16]
                path = os.path.join(directory, f"{digest}.pem")
                if not os.path.exists(path):
                    with open(path, "w", encoding="ascii") as handle:
                        handle.write(pem)
                paths.append(path)
        return ProbeSettings(**data, ca_files=tuple(paths))


def _read_pem(path: str) -> str:
    # The TLS code reads CA files as PEM only; anything else in them is ignored there as well.
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


@dataclass(frozen=True)
class ShardTask:
    """One message: shard ``shard`` of ``plan.shards`` of scan ``scan_id``."""

    scan_id: str
    shard: int
    plan: ScanPlan | None  # None: too large to repeat; the worker reads it from the store

    def to_message(self) -> dict[str, Any]:
        return {
            "v": MESSAGE_VERSION,
            "scan_id": self.scan_id,
            "shard": self.shard,
            "plan": self.plan.to_dict() if self.plan is not None else None,
        }

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> ShardTask:
        if data.get("v") != MESSAGE_VERSION:
            raise DistributedError(f"unknown shard message version {data.get('v')!r}")
        plan = data.get("plan")
        return cls(str(data["scan_id"]), int(data["shard"]), ScanPlan.from_dict(plan) if plan else None)
