"""Check one mail host: every mail port of each of its addresses, probed and judged, in a stable order.

The use case `cleartext check` and the web dashboard's self-check share. :func:`check_host` probes one
host (a name with its addresses, or an address); :func:`check_mail_hosts` is `check`'s whole run for
what the operator typed: a domain's MX hosts one after another (or the host itself), then the hosts a
domain's client configuration names. Both run the ordinary scan engine over a small plan, so a check
judges exactly as a scan does. Who may check what (the reserved ranges, a web owner's networks) is
decided before either is called, or, for the servers a domain names, here with a warning.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cleartext.politeness import Gate
from cleartext.record import Record
from cleartext.resolve import ResolveError, Resolver
from cleartext.scan import Engine, Plan, build_space
from cleartext.targets import (
    Named,
    PortSpec,
    TargetError,
    TargetSpace,
    TargetSpec,
    parse_targets,
    reserved_reason,
)

if TYPE_CHECKING:
    from cleartext.domain.check import Extra
    from cleartext.probe import ProbeSettings

# Endpoints in flight per port of a host: a check is one host at a time, and its ports are few.
IN_FLIGHT_PER_PORT = 4


class CheckRefused(TargetError):
    """A host the check must not probe (a reserved range without --allow-reserved); one line, exit 2."""


async def check_host(
    name: str,
    addresses: Sequence[str],
    ports: Sequence[PortSpec],
    settings: ProbeSettings,
    *,
    in_flight_per_port: int = IN_FLIGHT_PER_PORT,
) -> list[Record]:
    """Every port of every address of one host, sorted by address and then in the order of ``ports``.

    ``name`` is an IP address (then ``addresses`` is ignored and no certificate name is checked) or a host
    name with the addresses it resolved to, each probed with the name for the certificate check.
    """
    try:
        literal = str(ipaddress.ip_address(name)) == name
    except ValueError:
        literal = False
    if literal:
        space = build_space(parse_targets([name], allow_reserved=True), [], list(ports))
    else:
        space = build_space([], [Named(name, address) for address in addresses], list(ports))
    return await _probe(space, ports, settings, in_flight_per_port)


async def _probe(
    space: TargetSpace, ports: Sequence[PortSpec], settings: ProbeSettings, in_flight_per_port: int
) -> list[Record]:
    collected: list[Record] = []
    # Reserved space was decided by the caller (refused, or allowed by the operator).
    plan = Plan(space, seed=0, allow_reserved=True)
    engine = Engine(
        plan, settings, collected.append, concurrency=len(ports) * in_flight_per_port, gate=Gate(per_host=0)
    )
    await engine.run()
    order = [p.port for p in ports]
    collected.sort(key=lambda r: (r.observation.address, order.index(r.observation.port)))
    return collected


async def check_mail_hosts(
    spec: TargetSpec,
    ports: Sequence[PortSpec],
    resolver: Resolver,
    settings: ProbeSettings,
    *,
    allow_reserved: bool,
    extra: Sequence[Extra] = (),
    warn: Callable[[str], None],
) -> list[tuple[str, list[Record]]]:
    """`check`'s run: each host's title and records — the domain's MX hosts (or the host, or the address
    given) one after another, then the ``extra`` hosts the domain view found. A host the operator named
    that resolves into a reserved range is refused (:class:`CheckRefused`); one the domain named is left
    out with a warning, as is one that does not resolve."""
    if spec.network is not None:  # an address, as typed
        space = build_space([spec], [], list(ports))
        return [(spec.text, await _probe(space, ports, settings, IN_FLIGHT_PER_PORT))]
    names = await resolver.mail_hosts(spec.hostname or "")
    jobs = [(name, name, list(ports)) for name in names] + [(e.host, e.title, e.ports) for e in extra]
    results: list[tuple[str, list[Record]]] = []
    for index, (name, title, host_ports) in enumerate(jobs):
        named_by_domain = index >= len(names)  # a server the domain names: skipped if it cannot be probed
        try:
            addresses = await resolver.addresses(name)
        except ResolveError as exc:
            if not named_by_domain:
                raise
            warn(f"{title}: {exc}; not probed")
            continue
        reserved = [(a, why) for a in addresses if (why := reserved_reason(ipaddress.ip_address(a)))]
        if reserved and not allow_reserved:
            address, why = reserved[0]
            if named_by_domain:
                warn(f"{title} resolves to {address}, a reserved range ({why}); not probed")
                continue
            raise CheckRefused(
                f"{name} resolves to {address}, a reserved range ({why}); pass --allow-reserved to check it"
            )
        results.append((title, await check_host(name, addresses, host_ports, settings)))
    return results
