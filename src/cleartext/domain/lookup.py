"""Look a mail domain up: every DNS question and HTTPS request of the domain view, run together.

One call, one :class:`~cleartext.domain.model.DomainObservation`. The questions are independent, so they
run concurrently; each is bounded on its own (cleartext.domain.fetch), and the MTA-STS policy and the
TLSA records wait only for what they need (the _mta-sts record, the MX hosts).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass

import dns.rdtypes.ANY.TLSA

from cleartext.domain.clientconfig import (
    SRV_SERVICES,
    autodiscover_request,
    parse_autoconfig,
    parse_autodiscover,
)
from cleartext.domain.fetch import Dns, HttpSettings, https_request, name_join, txt_strings
from cleartext.domain.model import (
    ClientConfig,
    DnsResult,
    DomainObservation,
    MtaSts,
    MxHost,
    Outcome,
    SrvLookup,
    SrvRecord,
    Tlsa,
    TlsRpt,
)
from cleartext.domain.policy import parse_sts_policy, parse_sts_records, parse_tlsrpt_records
from cleartext.resolve import Resolver
from cleartext.text import sanitize

MAX_MX = 10  # MX hosts whose TLSA records are asked for
POLICY_MAX_BYTES = 64 * 1024  # an MTA-STS policy is a few lines; RFC 8461 3.3 lets senders bound it
XML_MAX_BYTES = 256 * 1024  # autoconfig and Autodiscover documents


@dataclass(slots=True)
class LookupSettings:
    resolver: Resolver  # names of web hosts (with --resolve overrides) and the DNS server to ask
    ca_files: tuple[str, ...] = ()
    deadline: float = 10.0  # seconds per DNS question or HTTPS request
    allow_reserved: bool = False


def _host(name: object) -> str:
    return sanitize(str(name).rstrip(".").lower(), 255) or "."


async def _mx(dns_: Dns, domain: str, obs: DomainObservation) -> None:
    answer = await dns_.query(domain, "MX")
    obs.mx_dns = answer.result
    hosts: dict[str, MxHost] = {}
    for rd in sorted(
        answer.rdata, key=lambda r: (getattr(r, "preference", 0), str(getattr(r, "exchange", "")))
    ):
        host = _host(getattr(rd, "exchange", "."))
        if host != "." and host not in hosts:  # "." is a null MX (RFC 7505)
            hosts[host] = MxHost(host=host, preference=int(getattr(rd, "preference", 0)))
    obs.mx = list(hosts.values())
    await asyncio.gather(*(_tlsa(dns_, mx) for mx in obs.mx[:MAX_MX]))


async def _tlsa(dns_: Dns, mx: MxHost) -> None:
    answer = await dns_.query(name_join("_25._tcp", mx.host), "TLSA")
    mx.tlsa = answer.result
    mx.tlsa_records = [
        Tlsa(rd.usage, rd.selector, rd.mtype, rd.cert.hex())
        for rd in answer.rdata
        if isinstance(rd, dns.rdtypes.ANY.TLSA.TLSA)
    ]


async def _srv(dns_: Dns, domain: str, service: str) -> SrvLookup:
    name = name_join(f"_{service}._tcp", domain)
    answer = await dns_.query(name, "SRV")
    records = [
        SrvRecord(int(rd.priority), int(rd.weight), int(rd.port), _host(rd.target))  # type: ignore[attr-defined]
        for rd in answer.rdata
        if hasattr(rd, "priority")
    ]
    records.sort(key=lambda r: (r.priority, -r.weight, r.target))
    return SrvLookup(service, name, answer.result, records)


async def _mta_sts(dns_: Dns, http: HttpSettings, domain: str) -> MtaSts:
    answer = await dns_.query(name_join("_mta-sts", domain), "TXT")
    sts = MtaSts(dns=answer.result, records=txt_strings(answer.rdata)[:20])
    parsed = parse_sts_records(sts.records)
    sts.id, sts.record_errors = parsed.id, parsed.errors
    if not any(r.startswith("v=STSv1") for r in sts.records):
        return sts  # no policy announced: nothing to fetch (RFC 8461 3.3)
    result, body = await https_request(
        http, name_join("mta-sts", domain), "/.well-known/mta-sts.txt", max_bytes=POLICY_MAX_BYTES
    )
    sts.policy = result
    if result.outcome is Outcome.FOUND:
        policy = parse_sts_policy(body)
        sts.version, sts.mode, sts.mx, sts.max_age = policy.version, policy.mode, policy.mx, policy.max_age
        sts.policy_errors = policy.errors
    return sts


async def _tls_rpt(dns_: Dns, domain: str) -> TlsRpt:
    answer = await dns_.query(name_join("_smtp._tls", domain), "TXT")
    rpt = TlsRpt(dns=answer.result, records=txt_strings(answer.rdata)[:20])
    parsed = parse_tlsrpt_records(rpt.records)
    rpt.rua, rpt.errors = parsed.rua, parsed.errors
    return rpt


async def _autoconfig(http: HttpSettings, domain: str, host: str, path: str) -> ClientConfig:
    result, body = await https_request(http, host, path, max_bytes=XML_MAX_BYTES)
    config = ClientConfig("autoconfig", result)
    if result.outcome is Outcome.FOUND:
        config.servers, config.errors = parse_autoconfig(body, domain)
    return config


async def _autodiscover(http: HttpSettings, domain: str, host: str) -> ClientConfig:
    result, body = await https_request(
        http,
        host,
        "/autodiscover/autodiscover.xml",
        max_bytes=XML_MAX_BYTES,
        method="POST",
        body=autodiscover_request(f"postmaster@{domain}"),
        content_type="text/xml; charset=utf-8",
    )
    config = ClientConfig("autodiscover", result)
    if result.outcome is Outcome.FOUND:
        config.servers, config.errors = parse_autodiscover(body, domain)
    return config


async def look_up(domain: str, settings: LookupSettings) -> DomainObservation:
    """Everything the domain publishes for clients and senders. Never raises for what the network does."""
    domain = domain.rstrip(".").lower()
    started = time.monotonic()
    obs = DomainObservation(
        domain=domain, checked_at=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    dns_ = Dns(settings.resolver.nameserver, lifetime=settings.deadline)
    http = HttpSettings(
        resolver=settings.resolver,
        ca_files=settings.ca_files,
        deadline=settings.deadline,
        allow_reserved=settings.allow_reserved,
    )
    query = "?emailaddress=postmaster%40" + domain
    configs = asyncio.gather(
        _autoconfig(http, domain, name_join("autoconfig", domain), "/mail/config-v1.1.xml" + query),
        _autoconfig(http, domain, domain, "/.well-known/autoconfig/mail/config-v1.1.xml" + query),
        _autodiscover(http, domain, domain),
        _autodiscover(http, domain, name_join("autodiscover", domain)),
    )
    _, srv, sts, rpt, found = await asyncio.gather(
        _mx(dns_, domain, obs),
        asyncio.gather(*(_srv(dns_, domain, s) for s in SRV_SERVICES)),
        _mta_sts(dns_, http, domain),
        _tls_rpt(dns_, domain),
        configs,
    )
    obs.srv, obs.mta_sts, obs.tls_rpt, obs.client_configs = srv, sts, rpt, list(found)
    obs.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    return obs


__all__ = ["DnsResult", "LookupSettings", "look_up"]
