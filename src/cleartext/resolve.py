"""Resolve: hostnames to addresses and mail domains to their MX hosts.

Kept apart from targets (pure parsing) because it does network I/O. ``--resolve HOST:ADDRESS``
overrides win over DNS, like curl's, so a test or an operator can pin a name without touching DNS.
A nameserver may be given explicitly (``IP`` or ``IP:PORT``); otherwise the system's is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver

from cleartext.errors import CleartextError
from cleartext.targets import is_hostname
from cleartext.text import sanitize

DNS_LIFETIME = 5.0


class ResolveError(CleartextError):
    """A name that does not resolve; the message is one line."""


@dataclass(slots=True)
class Resolver:
    overrides: Mapping[str, Sequence[str]] = field(default_factory=dict)
    nameserver: str | None = None  # "IP" or "IP:PORT"; None: the system's resolver
    _dns: dns.asyncresolver.Resolver | None = None

    def _resolver(self) -> dns.asyncresolver.Resolver:
        if self._dns is None:
            self._dns = dns_resolver(self.nameserver)
        return self._dns

    async def addresses(self, hostname: str) -> list[str]:
        """All addresses of a host (IPv4 first), or ResolveError."""
        name = hostname.rstrip(".").lower()
        if name in self.overrides:
            return list(self.overrides[name])
        if self.nameserver:
            found: list[str] = []
            for rdtype in ("A", "AAAA"):
                try:
                    answer = await self._resolver().resolve(name, rdtype)
                except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers) as exc:
                    raise ResolveError(f"cannot resolve {name}: {exc.__class__.__name__}") from None
                except (dns.resolver.NoAnswer, dns.exception.Timeout):
                    continue
                found += [r.to_text() for r in answer]
            if not found:
                raise ResolveError(f"cannot resolve {name}: no address")
            return found
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(name, None, type=socket.SOCK_STREAM), timeout=DNS_LIFETIME
            )
        except (OSError, TimeoutError) as exc:
            raise ResolveError(f"cannot resolve {name}: {getattr(exc, 'strerror', None) or exc}") from None
        ordered = sorted({info[4][0] for info in infos}, key=lambda a: (":" in a, a))
        if not ordered:
            raise ResolveError(f"cannot resolve {name}: no address")
        return ordered

    async def mail_hosts(self, domain: str) -> list[str]:
        """The MX hosts of a domain in preference order; the domain itself when it has none (RFC 5321
        5.1 implicit MX), or when the name is pinned by an override (then it is a host).

        ResolveError when the domain publishes a null MX (RFC 7505: it accepts no mail), or when the MX
        lookup itself fails (a timeout, SERVFAIL): falling back to the name's own address then would
        check a host the domain may not use for mail, and say nothing of why.
        """
        name = domain.rstrip(".").lower()
        if name in self.overrides:
            return [name]
        pin = f"to check {name} itself as a mail host, pin its address: --resolve {name}:ADDRESS"
        try:
            answer = await self._resolver().resolve(name, "MX")
        except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
            return [name]  # no MX: the implicit MX (a name that does not exist fails at its address)
        except dns.resolver.NoNameservers as exc:
            errors = exc.kwargs.get("errors") or []
            said = (
                f"the DNS server {errors[-1][0]} answered {sanitize(str(errors[-1][3]), 80)}"
                if errors
                else "no DNS server answered"
            )
            raise ResolveError(f"cannot look up the MX of {name}: {said}; {pin}") from None
        except dns.exception.Timeout:
            raise ResolveError(
                f"cannot look up the MX of {name}: no answer from the DNS server within {DNS_LIFETIME:g} s; "
                f"{pin}"
            ) from None
        except dns.name.EmptyLabel:
            raise ResolveError(f"cannot look up the MX of {name}: not a valid domain name") from None
        records = sorted(answer, key=lambda r: (r.preference, r.exchange.to_text()))
        exchanges = [r.exchange.to_text(omit_final_dot=True).lower() for r in records]
        # A null MX ("." RFC 7505) says the domain accepts no mail.
        if all(h in ("", ".") for h in exchanges):
            raise ResolveError(
                f"{name} publishes a null MX (RFC 7505): it accepts no mail, so no mail server of it to "
                f"check; {pin}"
            )
        # What DNS says is hostile too: an MX that is not a host name (escapes, shell characters) would end
        # up in the commands check suggests.
        hosts = list(dict.fromkeys(h for h in exchanges if is_hostname(h)))
        if not hosts:
            shown = sanitize(exchanges[0], 80)
            raise ResolveError(f"the MX of {name} names no valid host name ({shown!r}); {pin}")
        return hosts


def dns_resolver(nameserver: str | None, lifetime: float = DNS_LIFETIME) -> dns.asyncresolver.Resolver:
    """A dnspython resolver that asks ``nameserver`` (``IP`` or ``IP:PORT``), else the system's."""
    if nameserver:
        res = dns.asyncresolver.Resolver(configure=False)
        host, port = _split_hostport(nameserver)
        res.nameservers = [host]
        res.port = port
    else:
        res = dns.asyncresolver.Resolver()
    res.lifetime = lifetime
    return res


def _split_hostport(text: str) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:5353``, ``[::1]:5353`` or ``::1`` -> (address, port)."""
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = int(p)
    ipaddress.ip_address(host)  # ValueError for a bad address
    return host, port


def parse_nameserver(text: str) -> str:
    try:
        _split_hostport(text)
    except ValueError:
        raise ValueError(f"invalid --nameserver {text!r}: expected IP or IP:PORT") from None
    return text
