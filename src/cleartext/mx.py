"""Mail domains to the endpoints of their MX hosts, at scale: what `scan --mx` probes.

A CERT's question is often about domains (a country's top-level domain, a sector's list), not addresses.
Each domain's MX hosts are looked up (in preference order; the domain itself when it has no MX, RFC 5321
§5.1), each host's addresses too, and every (address, port) is written once to an endpoint list -- with
the MX host name, kept for the certificate check -- however many domains share it (thousands of domains
have their mail at one provider). What happened to each domain is written as one JSON line: its MX hosts
and their addresses, or why there are none (null MX, NXDOMAIN, SERVFAIL, a timeout). Lookups run many at
a time, but the outcomes come out in the domains' order; host lookups are cached (bounded), as are the
endpoints already written.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TextIO

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from cleartext.resolve import DNS_LIFETIME, ResolveError, Resolver
from cleartext.targets import PortSpec, TargetError, ascii_hostname, is_hostname, reserved_reason
from cleartext.text import sanitize

MAX_MX = 16  # MX hosts kept per domain (real domains have 1-5)
HOST_CACHE = 100_000  # MX hosts whose addresses are remembered
SEEN_LIMIT = 5_000_000  # endpoints remembered for de-duplication
STATUSES = ("ok", "implicit-mx", "null-mx", "nxdomain", "no-address", "servfail", "timeout", "invalid")


@dataclass
class MXHost:
    host: str
    preference: int | None
    addresses: list[str] = field(default_factory=list)
    error: str | None = None  # why the host has no address


@dataclass
class DomainOutcome:
    """What one domain's lookups found: ``status`` from :data:`STATUSES`, its MX hosts, a detail."""

    domain: str
    status: str
    mx: list[MXHost] = field(default_factory=list)
    detail: str | None = None

    def to_json(self) -> str:
        return json.dumps({"kind": "mx-domain", **asdict(self)}, ensure_ascii=True, separators=(",", ":"))


def read_domains(lines: Iterable[str], source: str) -> Iterable[tuple[int, str]]:
    """(line number, domain) of a domain list; ``#`` comments and blank lines skipped; a line that is no
    domain name is a TargetError naming the source and line."""
    for number, raw in enumerate(lines, 1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        name = ascii_hostname(text.lstrip("@"))
        if name is None:
            raise TargetError(f"{source}:{number}: {sanitize(text, 80)!r} is not a domain name")
        yield number, name.rstrip(".").lower()


class MXResolver:
    """Looks up domains' MX hosts and their addresses; ``lookup`` never raises on what DNS says."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self._hosts: OrderedDict[str, tuple[list[str], str | None]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[tuple[list[str], str | None]]] = {}

    def _dns(self) -> dns.asyncresolver.Resolver:
        return self.resolver._resolver()

    async def lookup(self, domain: str) -> DomainOutcome:
        pinned = self.resolver.overrides.get(domain)
        if pinned is not None:  # --resolve pins the name as a host, as for check
            return DomainOutcome(domain, "implicit-mx", [MXHost(domain, None, list(pinned))])
        try:
            answer = await self._dns().resolve(domain, "MX")
        except dns.resolver.NXDOMAIN:
            return DomainOutcome(domain, "nxdomain", detail="the domain does not exist")
        except dns.resolver.NoAnswer:
            host = await self._host(domain, None)
            status = "implicit-mx" if host.addresses else "no-address"
            return DomainOutcome(domain, status, [host], "no MX: the domain itself receives its mail")
        except dns.resolver.NoNameservers as exc:
            errors = exc.kwargs.get("errors") or []
            said = sanitize(str(errors[-1][3]), 80) if errors else "no server answered"
            return DomainOutcome(domain, "servfail", detail=f"the MX lookup failed: {said}")
        except dns.exception.Timeout:
            return DomainOutcome(domain, "timeout", detail=f"no answer within {DNS_LIFETIME:g} s")
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.NameTooLong):
            return DomainOutcome(domain, "invalid", detail="not a valid domain name")
        records = sorted(answer, key=lambda r: (r.preference, r.exchange.to_text()))[:MAX_MX]
        exchanges = [(r.preference, r.exchange.to_text(omit_final_dot=True).lower()) for r in records]
        if all(host in ("", ".") for _, host in exchanges):
            return DomainOutcome(domain, "null-mx", detail="null MX (RFC 7505): the domain accepts no mail")
        hosts = await asyncio.gather(
            *(self._host(host, pref) for pref, host in exchanges if is_hostname(host))
        )
        if not hosts:
            return DomainOutcome(domain, "invalid", detail="its MX names no valid host name")
        status = "ok" if any(h.addresses for h in hosts) else "no-address"
        return DomainOutcome(domain, status, list(hosts))

    async def _host(self, host: str, preference: int | None) -> MXHost:
        addresses, error = await self._addresses(host)
        return MXHost(host, preference, list(addresses), error)

    async def _addresses(self, host: str) -> tuple[list[str], str | None]:
        """A host's addresses, each host looked up once (concurrent askers share one lookup)."""
        cached = self._hosts.get(host)
        if cached is not None:
            self._hosts.move_to_end(host)
            return cached
        pending = self._pending.get(host)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[tuple[list[str], str | None]] = asyncio.get_running_loop().create_future()
        self._pending[host] = future
        try:
            try:
                result: tuple[list[str], str | None] = (await self.resolver.addresses(host), None)
            except ResolveError as exc:
                result = ([], str(exc))
            self._hosts[host] = result
            if len(self._hosts) > HOST_CACHE:
                self._hosts.popitem(last=False)
            future.set_result(result)
            return result
        finally:
            del self._pending[host]


async def outcomes(
    domains: Iterable[str], resolver: MXResolver, *, concurrency: int = 200
) -> AsyncIterator[DomainOutcome]:
    """Each domain's outcome, in the domains' order, with up to ``concurrency`` lookups in flight."""
    window: asyncio.Queue[asyncio.Task[DomainOutcome] | None] = asyncio.Queue(maxsize=max(1, concurrency))

    async def feed() -> None:
        for domain in domains:
            await window.put(asyncio.ensure_future(resolver.lookup(domain)))
        await window.put(None)

    feeder = asyncio.ensure_future(feed())
    try:
        while (task := await window.get()) is not None:
            yield await task
    finally:
        feeder.cancel()
        while not window.empty():
            leftover = window.get_nowait()
            if leftover is not None:
                leftover.cancel()


@dataclass
class MXListing:
    """Counts of one domain list turned into an endpoint list."""

    domains: int = 0
    endpoints: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    shared: int = 0  # endpoints another domain had already named
    reserved: int = 0  # addresses in reserved ranges, left out


async def write_endpoint_list(
    domains: Sequence[str] | Iterable[str],
    resolver: Resolver,
    ports: Sequence[PortSpec],
    endpoints_out: TextIO,
    domains_out: TextIO | None,
    *,
    allow_reserved: bool = False,
    concurrency: int = 200,
) -> MXListing:
    """Resolve the domains and write each new MX endpoint (``ADDRESS:PORT HOST``) once, and each
    domain's outcome as a JSON line."""
    counts = MXListing()
    seen: set[tuple[str, int]] = set()
    async for outcome in outcomes(domains, MXResolver(resolver), concurrency=concurrency):
        counts.domains += 1
        counts.by_status[outcome.status] = counts.by_status.get(outcome.status, 0) + 1
        if domains_out is not None:
            domains_out.write(outcome.to_json() + "\n")
        for host in outcome.mx:
            for address in host.addresses:
                if not allow_reserved and reserved_reason(ipaddress.ip_address(address)) is not None:
                    counts.reserved += 1
                    continue
                for spec in ports:
                    key = (address, spec.port)
                    if key in seen:
                        counts.shared += 1
                        continue
                    if len(seen) < SEEN_LIMIT:
                        seen.add(key)
                    shown = f"[{address}]" if ":" in address else address
                    endpoints_out.write(f"{shown}:{spec.port} {host.host}\n")
                    counts.endpoints += 1
    return counts
