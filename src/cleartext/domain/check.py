"""The domain view inside `cleartext check DOMAIN`: look the domain up, name the extra endpoints to probe,
and assess the domain once the endpoint records are in.

The order is the pipeline's: the lookups first (they name servers that no MX points to: an autoconfig
file's IMAP host, an SRV record's submission host), then every endpoint is probed and assessed like any
other, then the domain is judged against those records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cleartext.domain.assess import assess_domain
from cleartext.domain.lookup import LookupSettings, look_up
from cleartext.domain.model import DomainObservation, DomainRecord, Socket
from cleartext.record import Protocol, Record, TLSMode
from cleartext.resolve import Resolver
from cleartext.targets import PortSpec

MAX_ADVERTISED = 16  # endpoints probed because the domain names them (a hostile file may name hundreds)


@dataclass(slots=True)
class Extra:
    """A host the domain sends clients to, with the ports it names there, beyond the MX hosts' scan."""

    host: str
    title: str
    ports: list[PortSpec] = field(default_factory=list)


@dataclass(slots=True)
class DomainView:
    observation: DomainObservation
    extra: list[Extra] = field(default_factory=list)

    def assess(self, records: Sequence[Record]) -> DomainRecord:
        return assess_domain(self.observation, records)


def _publishes(obs: DomainObservation) -> bool:
    """Is this name a mail domain, rather than a host? MX records, or a client configuration."""
    return bool(obs.mx) or bool(obs.advertised())


def extra_endpoints(obs: DomainObservation, scanned: Sequence[str], ports: Sequence[PortSpec]) -> list[Extra]:
    """Advertised (host, port)s not already in the check (``scanned`` hosts on ``ports``), by host."""
    covered = {(h.rstrip(".").lower(), p.port) for h in scanned for p in ports}
    extras: dict[str, Extra] = {}
    sources: dict[str, list[str]] = {}
    count = 0
    for server in obs.advertised():
        key = (server.hostname, server.port)
        if key in covered or count >= MAX_ADVERTISED:
            continue
        covered.add(key)
        count += 1
        mode = TLSMode.IMPLICIT if server.socket is Socket.SSL else TLSMode.STARTTLS
        extra = extras.setdefault(server.hostname, Extra(server.hostname, server.hostname))
        extra.ports.append(PortSpec(server.port, Protocol(server.protocol), mode))
        names = sources.setdefault(server.hostname, [])
        if server.source not in names:
            names.append(server.source)
    for host, extra in extras.items():
        extra.title = f"{host} (named by {', '.join(sources[host])})"
    return list(extras.values())


async def look_up_domain(
    name: str,
    resolver: Resolver,
    *,
    ports: Sequence[PortSpec],
    ca_files: tuple[str, ...],
    deadline: float,
    allow_reserved: bool,
) -> DomainView | None:
    """The domain view of ``name``, or None when the name publishes nothing a domain would (a host), or
    is pinned by ``--resolve`` (then it is a host, as for the MX lookup, and no DNS is asked at all)."""
    if name.rstrip(".").lower() in resolver.overrides:
        return None
    obs = await look_up(
        name,
        LookupSettings(
            resolver=resolver, ca_files=ca_files, deadline=deadline, allow_reserved=allow_reserved
        ),
    )
    if not _publishes(obs):
        return None
    scanned = [mx.host for mx in obs.mx] or [obs.domain]  # what `check` probes on every port
    return DomainView(obs, extra_endpoints(obs, scanned, ports))
