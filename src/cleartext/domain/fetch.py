"""The domain view's I/O: DNS questions with the DNSSEC AD bit, and bounded HTTPS requests.

Everything a DNS server or a web server sends is hostile, so every request here is bounded: a deadline
for the whole exchange (a policy file dripped one byte a second ends as ``timeout``), a byte budget for
the body (``too-large``), h11's 16 KiB bound on the status line and headers, at most 16 CNAMEs in a DNS
chain (dnspython's own bound; a loop ends as ``loop``), redirects never followed (RFC 8461 3.3 forbids
it for MTA-STS, and a redirect to another host would be a request the domain did not ask for). Every
failure becomes an :class:`~cleartext.domain.model.Outcome`; only bugs raise.

DNSSEC. Queries set DO and AD; a validating resolver answers with AD set for data it validated (RFC 6840
5.7, 5.8). A SERVFAIL is asked again with CD (checking disabled): if the data then comes, validation
failed and the outcome is ``bogus``. cleartext does not validate signatures itself, so point
``--nameserver`` at a validating resolver you trust over a path you trust (as Postfix requires for DANE).

Web requests refuse a host that resolves into a reserved range (unless the operator allowed it, as for
the mail hosts): a hostile domain must not make the scanner fetch from its own network.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.resolver
import h11

from cleartext.domain.model import DnsResult, HttpResult, Outcome
from cleartext.resolve import ResolveError, Resolver, dns_resolver
from cleartext.targets import reserved_reason
from cleartext.text import sanitize

USER_AGENT = "cleartext (mail security check; https://github.com/cleartext)"
MAX_HEADER_BYTES = 16 * 1024
MAX_RECORDS = 50  # records kept from one DNS answer


@dataclass(slots=True)
class DnsAnswer:
    result: DnsResult
    rdata: list[object]


class Dns:
    """DNS questions for the domain view, to ``nameserver`` (``IP[:PORT]``) or the system's resolver."""

    def __init__(self, nameserver: str | None, lifetime: float = 5.0) -> None:
        self.nameserver = nameserver
        self.lifetime = lifetime
        self._plain = self._make(dns.flags.RD | dns.flags.AD)
        self._unchecked = self._make(dns.flags.RD | dns.flags.CD)

    def _make(self, flags: int) -> dns.asyncresolver.Resolver:
        res = dns_resolver(self.nameserver, self.lifetime)
        res.timeout = self.lifetime
        res.use_edns(0, dns.flags.DO, 1232)
        res.flags = flags
        res.cache = None
        return res

    async def query(self, name: str, rdtype: str) -> DnsAnswer:
        try:
            answer = await self._plain.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except dns.resolver.NXDOMAIN:
            return DnsAnswer(DnsResult(Outcome.ABSENT, "NXDOMAIN"), [])
        except dns.message.ChainTooLong:
            return DnsAnswer(DnsResult(Outcome.LOOP, "the CNAME chain is longer than 16 or loops"), [])
        except dns.resolver.NoNameservers as exc:
            # dnspython files an answer it could not use (a CNAME chain over 16 or looping) under the
            # nameserver's errors and gives up on that server.
            if any(isinstance(e[3], dns.message.ChainTooLong) for e in exc.kwargs.get("errors", [])):
                return DnsAnswer(DnsResult(Outcome.LOOP, "the CNAME chain is longer than 16 or loops"), [])
            if await self._answers_unchecked(name, rdtype):
                return DnsAnswer(DnsResult(Outcome.BOGUS, "DNSSEC validation failed at the resolver"), [])
            return DnsAnswer(DnsResult(Outcome.ERROR, _one_line(exc)), [])
        except dns.exception.Timeout:
            return DnsAnswer(DnsResult(Outcome.TIMEOUT, f"no answer within {self.lifetime:g} s"), [])
        except (dns.exception.DNSException, ValueError) as exc:
            return DnsAnswer(DnsResult(Outcome.ERROR, _one_line(exc)), [])
        authenticated = bool(answer.response.flags & dns.flags.AD)
        if answer.rrset is None:
            return DnsAnswer(DnsResult(Outcome.ABSENT, "no record of this type", authenticated), [])
        return DnsAnswer(DnsResult(Outcome.FOUND, None, authenticated), list(answer.rrset)[:MAX_RECORDS])

    async def _answers_unchecked(self, name: str, rdtype: str) -> bool:
        try:
            await self._unchecked.resolve(name, rdtype, raise_on_no_answer=False, search=False)
        except (dns.exception.DNSException, ValueError):
            return False
        return True


def _one_line(exc: BaseException) -> str:
    return sanitize(" ".join(str(exc).split()) or exc.__class__.__name__, 300)


def txt_strings(rdata: Sequence[object]) -> list[str]:
    """TXT records as text: each record's strings joined (RFC 8461 3.1, RFC 8460 3), sanitised."""
    out = []
    for rd in rdata:
        strings = getattr(rd, "strings", ())
        out.append(sanitize(b"".join(strings).decode("utf-8", "replace"), 1024))
    return out


@dataclass(slots=True)
class HttpSettings:
    resolver: Resolver
    ca_files: tuple[str, ...] = ()
    deadline: float = 10.0  # seconds for the whole request: resolve, connect, TLS, reply
    allow_reserved: bool = False
    port: int = 443


def _tls_context(ca_files: tuple[str, ...]) -> ssl.SSLContext:
    context = ssl.create_default_context()
    for path in ca_files:
        context.load_verify_locations(cafile=path)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


async def https_request(
    settings: HttpSettings,
    host: str,
    path: str,
    *,
    max_bytes: int,
    method: str = "GET",
    body: bytes = b"",
    content_type: str | None = None,
) -> tuple[HttpResult, bytes]:
    """One HTTPS request to ``host`` (certificate verified for that name), bounded in time and size.
    Returns the outcome and, when it is ``found``, the body."""
    url = f"https://{host}{path}"
    started = time.monotonic()
    result = HttpResult(url=url, outcome=Outcome.ERROR)
    data = bytearray()
    try:
        async with asyncio.timeout(settings.deadline):
            await _exchange(settings, host, path, method, body, content_type, max_bytes, result, data)
    except TimeoutError:
        result.outcome, result.detail = Outcome.TIMEOUT, f"no complete reply within {settings.deadline:g} s"
    result.bytes = len(data)
    result.elapsed_ms = round((time.monotonic() - started) * 1000, 1)
    return result, bytes(data) if result.outcome is Outcome.FOUND else b""


async def _exchange(
    settings: HttpSettings,
    host: str,
    path: str,
    method: str,
    body: bytes,
    content_type: str | None,
    max_bytes: int,
    result: HttpResult,
    data: bytearray,
) -> None:
    try:
        addresses = await settings.resolver.addresses(host)
    except ResolveError as exc:
        result.outcome, result.detail = Outcome.ABSENT, sanitize(str(exc), 300)
        return
    if not settings.allow_reserved:
        for address in addresses:
            why = reserved_reason(ipaddress.ip_address(address))
            if why:
                result.outcome = Outcome.REFUSED
                result.detail = f"not fetched: {host} resolves to {address}, a reserved range ({why})"
                return
    writer: asyncio.StreamWriter | None = None
    try:
        reader, writer = await _connect(settings, host, addresses)
        if reader is None or writer is None:
            result.outcome, result.detail = Outcome.REFUSED, f"nothing answers on {host} port {settings.port}"
            return
        conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
        headers = [
            ("Host", host),
            ("User-Agent", USER_AGENT),
            ("Accept", "*/*"),
            ("Connection", "close"),
        ]
        if method == "POST":
            headers += [("Content-Type", content_type or "text/xml"), ("Content-Length", str(len(body)))]
        writer.write(conn.send(h11.Request(method=method, target=path, headers=headers)))
        if body:
            writer.write(conn.send(h11.Data(data=body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        await _read_reply(conn, reader, max_bytes, result, data)
    except ssl.SSLCertVerificationError as exc:
        result.outcome = Outcome.TLS_ERROR
        result.detail = sanitize(f"certificate not valid for {host}: {exc.verify_message}", 300)
    except ssl.SSLError as exc:
        result.outcome, result.detail = Outcome.TLS_ERROR, sanitize(exc.reason or str(exc), 300)
    except h11.RemoteProtocolError as exc:
        result.outcome, result.detail = Outcome.HTTP_ERROR, sanitize(f"bad HTTP reply: {exc}", 300)
    except (ConnectionError, OSError, EOFError, asyncio.IncompleteReadError) as exc:
        result.outcome, result.detail = Outcome.HTTP_ERROR, sanitize(f"connection lost: {exc}", 300)
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1)


async def _connect(
    settings: HttpSettings, host: str, addresses: list[str]
) -> tuple[asyncio.StreamReader | None, asyncio.StreamWriter | None]:
    """TLS to the first of (at most two of) the host's addresses that accepts a connection."""
    context = _tls_context(settings.ca_files)
    for address in addresses[:2]:
        try:
            return await asyncio.open_connection(
                address, settings.port, ssl=context, server_hostname=host, limit=MAX_HEADER_BYTES
            )
        except ssl.SSLError:
            raise
        except OSError:
            continue
    return None, None


async def _read_reply(
    conn: h11.Connection,
    reader: asyncio.StreamReader,
    max_bytes: int,
    result: HttpResult,
    data: bytearray,
) -> None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            chunk = await reader.read(16384)
            conn.receive_data(chunk)  # b"" means EOF; h11 raises if the reply is then incomplete
            continue
        if isinstance(event, h11.Response):
            result.http_status = event.status_code
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            result.content_type = sanitize(headers.get("content-type", ""), 120) or None
            if event.status_code != 200:
                absent = event.status_code in (404, 410)
                result.outcome = Outcome.ABSENT if absent else Outcome.HTTP_ERROR
                location = headers.get("location")
                result.detail = f"HTTP {event.status_code}" + (
                    f" to {sanitize(location, 200)} (redirects are not followed)" if location else ""
                )
                return
            length = headers.get("content-length", "")
            if length.isdigit() and int(length) > max_bytes:
                result.outcome = Outcome.TOO_LARGE
                result.detail = f"Content-Length {int(length)} exceeds the bound of {max_bytes} bytes"
                return
        elif isinstance(event, h11.Data):
            data += event.data
            if len(data) > max_bytes:
                del data[max_bytes:]
                result.outcome = Outcome.TOO_LARGE
                result.detail = f"more than {max_bytes} bytes: stopped reading"
                return
        elif isinstance(event, h11.EndOfMessage):
            result.outcome = Outcome.FOUND
            return
        elif isinstance(event, h11.ConnectionClosed):
            result.outcome, result.detail = Outcome.HTTP_ERROR, "the server closed before its reply ended"
            return
        else:  # InformationalResponse (1xx): keep reading
            continue


def name_join(*labels: str) -> str:
    """``_mta-sts`` + ``example.com`` -> ``_mta-sts.example.com`` (no trailing dot)."""
    return ".".join(label.strip(".") for label in labels if label)
