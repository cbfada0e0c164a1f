"""Targets: turn what the user typed into a lazy stream of endpoints to probe.

A target is an IP address, a CIDR block, a hostname or ``@FILE`` (one target per line, ``#`` comments).
Every spec is parsed and checked before anything is scanned, so a typo costs a one-line error and
exit 2, not half a scan. Addresses are never materialised: a /8 is a generator.

Reserved and special-purpose ranges (loopback, private, documentation, multicast, ...) are refused unless
the operator passes ``allow_reserved``: scanning them is almost always a mistake, and a tool that scans the
Internet must not wander into networks that are not the Internet.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from cleartext.errors import CleartextError
from cleartext.record import Protocol, TLSMode

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TargetError(CleartextError, ValueError):
    """A target or port specification the user must fix; the message is one line."""


# The mail services and how TLS is reached on each (RFC 8314 for the implicit-TLS ports).
SERVICES: dict[str, tuple[Protocol, TLSMode]] = {
    "smtp": (Protocol.SMTP, TLSMode.STARTTLS),
    "submission": (Protocol.SMTP, TLSMode.STARTTLS),
    "smtps": (Protocol.SMTP, TLSMode.IMPLICIT),
    "pop3": (Protocol.POP3, TLSMode.STARTTLS),
    "pop3s": (Protocol.POP3, TLSMode.IMPLICIT),
    "imap": (Protocol.IMAP, TLSMode.STARTTLS),
    "imaps": (Protocol.IMAP, TLSMode.IMPLICIT),
}
WELL_KNOWN_PORTS: dict[int, str] = {
    25: "smtp",
    587: "submission",
    465: "smtps",
    110: "pop3",
    995: "pop3s",
    143: "imap",
    993: "imaps",
}
DEFAULT_PORTS = (25, 465, 587, 110, 995, 143, 993)


@dataclass(frozen=True, slots=True)
class PortSpec:
    port: int
    protocol: Protocol
    tls_mode: TLSMode


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str
    port: int
    protocol: Protocol
    tls_mode: TLSMode
    hostname: str | None = None


def parse_ports(text: str) -> list[PortSpec]:
    """Parse ``25,465,2525=smtp,10993=imaps`` into port specs; unknown ports need a service name."""
    specs: list[PortSpec] = []
    seen: set[int] = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        number, _, service = item.partition("=")
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise TargetError(f"invalid port {item!r}: expected a number from 1 to 65535")
        port = int(number)
        service = service.strip().lower() or WELL_KNOWN_PORTS.get(port, "")
        if not service:
            raise TargetError(
                f"port {port} is not a mail port: name its service, e.g. {port}=smtp "
                f"(one of {', '.join(SERVICES)})"
            )
        if service not in SERVICES:
            raise TargetError(f"unknown service {service!r} for port {port} (one of {', '.join(SERVICES)})")
        if port not in seen:
            seen.add(port)
            specs.append(PortSpec(port, *SERVICES[service]))
    if not specs:
        raise TargetError("no ports given")
    return specs


# --- reserved ranges -------------------------------------------------------------------------------

# IANA special-purpose registries (RFC 6890 and successors) plus multicast and the old class E space.
RESERVED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "this network"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "shared address space"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4 relay anycast"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "broadcast"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing SIDs"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    )
)


def reserved_reason(address: IPAddress | IPNetwork) -> str | None:
    """Why an address (or a whole network) lies in reserved space, or None if it does not."""
    for net, why in RESERVED_NETWORKS:
        if net.version != address.version:
            continue
        if isinstance(address, ipaddress.IPv4Network | ipaddress.IPv6Network):
            if address.subnet_of(net):  # type: ignore[arg-type]
                return why
        elif address in net:
            return why
    return None


# --- target specs --------------------------------------------------------------------------------

_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9_-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9_-]{1,63}(?<!-))*\.?$")


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One parsed target: a network (a single address is a /32 or /128) or a hostname to resolve."""

    text: str
    network: IPNetwork | None = None
    hostname: str | None = None

    def addresses(self) -> Iterator[IPAddress]:
        assert self.network is not None
        if self.network.num_addresses == 1:
            yield self.network.network_address
        else:
            yield from self.network  # includes network/broadcast: a mail server may sit anywhere


def is_hostname(text: str) -> bool:
    return bool(_HOSTNAME.match(text)) and not text.replace(".", "").isdigit()


def ascii_hostname(text: str) -> str | None:
    """A hostname as DNS and certificates carry it: internationalised names (``bücher.example``) become
    their A-labels (``xn--bcher-kva.example``) by IDNA 2008 with UTS #46 mapping, as browsers and
    dnspython do; None when the text is not a hostname."""
    if text.isascii():
        return text if is_hostname(text) else None
    import idna  # a dependency of dnspython's IDNA 2008 codec; imported only for non-ASCII names

    try:
        converted = idna.encode(text.rstrip("."), uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    return converted if is_hostname(converted) else None


def parse_target(text: str, *, allow_reserved: bool = False, origin: str = "") -> TargetSpec:
    """Parse one target (no ``@FILE``); raise TargetError with a one-line reason."""
    where = f" ({origin})" if origin else ""
    raw = text.strip()
    if not raw:
        raise TargetError(f"empty target{where}")
    try:
        if "/" in raw:
            network = ipaddress.ip_network(raw, strict=False)
        else:
            network = ipaddress.ip_network(ipaddress.ip_address(raw.strip("[]")))
    except ValueError:
        name = ascii_hostname(raw) if "/" not in raw and ":" not in raw else None
        if name is not None:
            return TargetSpec(text=raw, hostname=name.rstrip(".").lower())
        raise TargetError(f"invalid target {raw!r}{where}: not an IP address, CIDR or hostname") from None
    if not allow_reserved:
        why = reserved_reason(network)
        if why:
            raise TargetError(
                f"target {raw} is in a reserved range ({why}){where}; pass --allow-reserved to scan it"
            )
    return TargetSpec(text=raw, network=network)


def read_target_file(path: str) -> Iterator[tuple[str, str]]:
    """Yield (target text, origin) from a target file; ``-`` is standard input."""
    import sys

    try:
        handle = sys.stdin if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise TargetError(f"cannot read target file {path}: {exc.strerror or exc}") from None
    try:
        for number, line in enumerate(handle, 1):
            text = line.split("#", 1)[0].strip()
            if text:
                yield text, f"{path}:{number}"
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(f"cannot read target file {path}: {exc}") from None
    finally:
        if handle is not sys.stdin:
            handle.close()


def parse_targets(texts: Sequence[str], *, allow_reserved: bool = False) -> list[TargetSpec]:
    """Parse every target (expanding @FILE); all are checked before any is scanned."""
    specs: list[TargetSpec] = []
    for text in texts:
        if text.startswith("@"):
            path = text[1:]
            if not path:
                raise TargetError("'@' needs a file name: @FILE")
            if path != "-" and not Path(path).is_file():
                raise TargetError(f"cannot read target file {path}: no such file")
            for line, origin in read_target_file(path):
                specs.append(parse_target(line, allow_reserved=allow_reserved, origin=origin))
        else:
            specs.append(parse_target(text, allow_reserved=allow_reserved))
    if not specs:
        raise TargetError("no targets given")
    return specs


def parse_resolve(items: Sequence[str]) -> dict[str, list[str]]:
    """Parse ``--resolve HOST:ADDRESS`` overrides (like curl's) into host -> addresses."""
    table: dict[str, list[str]] = {}
    for item in items:
        host, sep, addr = item.partition(":")
        name = ascii_hostname(host) if sep else None
        if name is None:
            raise TargetError(f"invalid --resolve {item!r}: expected HOST:ADDRESS")
        try:
            address = ipaddress.ip_address(addr.strip("[]"))
        except ValueError:
            raise TargetError(f"invalid --resolve {item!r}: {addr!r} is not an IP address") from None
        table.setdefault(name.rstrip(".").lower(), []).append(str(address))
    return table


@dataclass(frozen=True, slots=True)
class Named:
    """A hostname target after resolution: one of its addresses, kept beside the name."""

    hostname: str
    address: str


class TargetSpace:
    """Every endpoint (address x port) of a scan, addressable by a flat index — never materialised.

    Plain networks are collapsed first (overlapping targets are scanned once); resolved hostnames are
    kept as their own entries because the name matters for the certificate check. Index layout:
    ``address_index * len(ports) + port_index``.
    """

    def __init__(
        self, networks: Sequence[IPNetwork], named: Sequence[Named], ports: Sequence[PortSpec]
    ) -> None:
        v4 = ipaddress.collapse_addresses(n for n in networks if n.version == 4)
        v6 = ipaddress.collapse_addresses(n for n in networks if n.version == 6)
        v4_list, v6_list = list(v4), list(v6)
        self.networks: list[IPNetwork] = [*v4_list, *v6_list]
        self._v4_count = len(v4_list)
        self._first_ints = [int(n.network_address) for n in self.networks]
        self.named = list(dict.fromkeys(named))
        self.ports = list(ports)
        self._starts: list[int] = []
        total = 0
        for net in self.networks:
            self._starts.append(total)
            total += net.num_addresses
        self._network_addresses = total
        self.addresses = total + len(self.named)
        self.size = self.addresses * len(self.ports)
        self._port_index = {p.port: i for i, p in enumerate(self.ports)}

    def endpoint(self, index: int) -> Endpoint:
        address_index, port_index = divmod(index, len(self.ports))
        port = self.ports[port_index]
        if address_index < self._network_addresses:
            slot = bisect_right(self._starts, address_index) - 1
            net = self.networks[slot]
            address = str(net.network_address + (address_index - self._starts[slot]))
            return Endpoint(address, port.port, port.protocol, port.tls_mode)
        named = self.named[address_index - self._network_addresses]
        return Endpoint(named.address, port.port, port.protocol, port.tls_mode, named.hostname)

    def index_of(self, address: str, port: int, hostname: str | None) -> int | None:
        """The inverse of :meth:`endpoint` (for resuming); None if not part of this space."""
        port_index = self._port_index.get(port)
        if port_index is None:
            return None
        if hostname is not None:
            try:
                slot = self.named.index(Named(hostname, address))
            except ValueError:
                return None
            return (self._network_addresses + slot) * len(self.ports) + port_index
        ip = ipaddress.ip_address(address)
        lo, hi = (0, self._v4_count) if ip.version == 4 else (self._v4_count, len(self.networks))
        slot = bisect_right(self._first_ints, int(ip), lo, hi) - 1
        if slot < lo or ip not in self.networks[slot]:
            return None
        offset = int(ip) - self._first_ints[slot]
        return (self._starts[slot] + offset) * len(self.ports) + port_index
