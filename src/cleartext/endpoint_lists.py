"""Endpoint lists: ``ip:port`` lines and the output of a SYN scanner (zmap, masscan, nmap), as endpoints.

The field's practice for an Internet-wide census is two stages: a stateless SYN scanner finds the open
ports, then an application-layer assessor talks to those only. This module is the join: it reads what the
first stage wrote -- a file or a pipe, line by line, never all of it at once -- and yields exactly the
endpoints it names, each with the mail service its port is for (the well-known ports, or ``--ports
PORT=SERVICE``). Formats, told apart by their first meaningful line unless named:

- ``plain``: ``192.0.2.1:25`` or ``[2001:db8::1]:993`` per line, optionally followed by the host name it
  was reached by (``192.0.2.1:25 mx1.example.org``: for SNI and the certificate check; what ``scan --mx``
  writes); ``#`` comments, blank lines;
- ``zmap``: zmap's CSV output with a header naming ``saddr`` and ``sport`` (``--output-fields=saddr,sport``);
  zmap's default output (one address per line, no port) needs exactly one ``--ports`` port;
- ``masscan-list``: ``masscan -oL`` (``open tcp 25 192.0.2.1 1700000000``);
- ``masscan-json``: ``masscan -oJ`` (a JSON array written one object per line);
- ``nmap-grepable``: ``nmap -oG`` (``Host: 192.0.2.1 ()  Ports: 25/open/tcp//smtp///, ...``).

A line that is not what its format says raises :class:`EndpointListError` naming the source and the line,
unless the caller asks for bad lines to be skipped and counted (:attr:`EndpointReader.skipped`). Ports a
scanner reports closed or filtered are not endpoints. An endpoint named twice is yielded once (bounded
memory: the de-duplication remembers at most ``dedupe_limit`` endpoints, then lets repeats through).
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from cleartext.targets import SERVICES, WELL_KNOWN_PORTS, Endpoint, PortSpec, TargetError, is_hostname

FORMATS = ("auto", "plain", "zmap", "masscan-list", "masscan-json", "nmap-grepable")
MAX_LINE = 4096  # longer than any line these formats write
DEDUPE_LIMIT = 2_000_000  # endpoints remembered to drop repeats (~150 MB at most)


class EndpointListError(TargetError):
    """A line that is not an endpoint of the list's format; the message names the source and line."""


@dataclass
class EndpointReader:
    """Reads one source (a name for messages and its lines) into endpoints."""

    source: str
    fmt: str = "auto"
    ports: Mapping[int, PortSpec] = field(default_factory=dict)  # --ports: PORT=SERVICE and known ports
    skip_bad: bool = False
    dedupe_limit: int = DEDUPE_LIMIT
    skipped: int = 0  # bad lines passed over (with skip_bad)
    closed: int = 0  # ports the scanner reported not open
    duplicates: int = 0
    _seen: set[tuple[str, int]] = field(default_factory=set)
    _lineno: int = 0
    _header: list[str] | None = None
    _name: str | None = None  # the host name of the current plain line ("ADDRESS:PORT HOSTNAME")

    def endpoints(self, lines: Iterable[str]) -> Iterator[Endpoint]:
        if self.fmt not in FORMATS:
            raise EndpointListError(f"unknown endpoint list format {self.fmt!r}: one of {', '.join(FORMATS)}")
        for self._lineno, raw in enumerate(lines, 1):
            line = raw.rstrip("\r\n")
            if len(line) > MAX_LINE:
                self._bad("line too long")
                continue
            text = line.strip()
            if not text:
                continue
            if self.fmt == "auto":
                if text.startswith("#") and not text.startswith(("#masscan", "# Nmap")):
                    continue  # a comment says nothing of the format (masscan -oG starts with "# Masscan")
                self.fmt = _sniff(text)
            try:
                found = list(self._parse(text))
            except EndpointListError:
                raise
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                self._bad(str(exc) or type(exc).__name__)
                continue
            for address, port in found:
                endpoint = self._endpoint(address, port)
                if endpoint is not None:
                    yield endpoint

    # -- one line per format --------------------------------------------------------------------------

    def _parse(self, text: str) -> Iterator[tuple[str, int]]:
        if self.fmt == "plain":
            if not text.startswith("#"):
                endpoint, _, name = text.partition(" ")
                try:
                    host, number = _host_port(endpoint)
                except ValueError as exc:
                    if not name:
                        raise
                    # An error names the whole line, not its first word: "'not an endpoint'".
                    raise ValueError(str(exc).replace(repr(endpoint), repr(text[:80]), 1)) from None
                name = name.strip()
                if name and not is_hostname(name):
                    raise ValueError(f"{name[:80]!r} is not a host name")
                self._name = name.lower() or None
                yield host, number
        elif self.fmt == "zmap":
            yield from self._zmap(text)
        elif self.fmt == "masscan-list":
            if not text.startswith("#"):
                state, proto, port, address = text.split()[:4]
                if proto != "tcp":
                    return
                if state != "open":
                    self.closed += 1
                    return
                yield address, _port(port)
        elif self.fmt == "masscan-json":
            text = text.strip(",").strip()  # masscan puts the separating comma before or after a record
            if text in ("", "[", "]", "{finished: 1}"):
                return
            obj = json.loads(text)
            for item in obj.get("ports", []):
                if item.get("proto", "tcp") != "tcp":
                    continue
                if item.get("status", "open") != "open":
                    self.closed += 1
                    continue
                yield str(obj["ip"]), _port(str(item["port"]))
        elif self.fmt == "nmap-grepable":
            yield from self._nmap(text)

    def _zmap(self, text: str) -> Iterator[tuple[str, int]]:
        if text.startswith("#"):
            return
        if self._header is None:
            cells = [c.strip() for c in next(csv.reader([text]))]
            if "saddr" in cells:
                self._header = cells
                return
            self._header = []  # zmap's default output: addresses only
        if not self._header:
            if len(self.ports) != 1:
                raise EndpointListError(
                    f"{self.source}:{self._lineno}: zmap output without a port column needs exactly one "
                    "--ports port (zmap scans one port per run; or write --output-fields=saddr,sport)"
                )
            yield text, next(iter(self.ports))
            return
        row = dict(zip(self._header, next(csv.reader([text])), strict=False))
        if "sport" not in row:
            raise EndpointListError(f"{self.source}: zmap CSV without a sport column")
        if row.get("classification", "synack") not in ("synack", "") or row.get("success", "1") == "0":
            self.closed += 1
            return
        yield row["saddr"].strip(), _port(row["sport"])

    def _nmap(self, text: str) -> Iterator[tuple[str, int]]:
        """``Host: ADDR ()<TAB>Ports: 25/open/tcp//smtp///, ...`` (masscan -oG puts a Timestamp first)."""
        if text.startswith("#") or "Ports:" not in text:
            return
        host = _GREP_HOST.search(text)
        if host is None:
            raise ValueError("no Host: field")
        ports = text.partition("Ports:")[2]
        for entry in ports.split("\t")[0].split(","):
            fields = entry.strip().split("/")
            if len(fields) < 3 or fields[2] != "tcp":
                continue
            if fields[1] != "open":
                self.closed += 1
                continue
            yield host.group(1), _port(fields[0])

    # -- checks --------------------------------------------------------------------------------------

    def _endpoint(self, address: str, port: int) -> Endpoint | None:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            self._bad(f"{address!r} is not an IP address")
            return None
        spec = self.ports.get(port)
        if spec is None:
            service = WELL_KNOWN_PORTS.get(port)
            if service is None:
                self._bad(f"port {port} has no mail service: name it with --ports {port}=SERVICE")
                return None
            protocol, mode = SERVICES[service]
        else:
            protocol, mode = spec.protocol, spec.tls_mode
        key = (str(ip), port)
        if key in self._seen:
            self.duplicates += 1
            return None
        if len(self._seen) < self.dedupe_limit:
            self._seen.add(key)
        return Endpoint(str(ip), port, protocol, mode, self._name if self.fmt == "plain" else None)

    def _bad(self, why: str) -> None:
        if not self.skip_bad:
            raise EndpointListError(f"{self.source}:{self._lineno}: {why} ({self.fmt} format)")
        self.skipped += 1


_GREP_HOST = re.compile(r"(?:^|\t)Host:\s+(\S+)")


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    return port


def _host_port(text: str) -> tuple[str, int]:
    """``1.2.3.4:25`` or ``[2001:db8::1]:25`` (a bare IPv6 address has too many colons to be one)."""
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
        if not sep:
            raise ValueError(f"{text!r}: expected [IPv6]:PORT")
        return host, _port(port)
    host, sep, port = text.rpartition(":")
    if not sep or ":" in host:
        raise ValueError(f"{text!r}: expected ADDRESS:PORT (IPv6 as [ADDRESS]:PORT)")
    return host, _port(port)


def _sniff(first: str) -> str:
    """The format of a list from its first meaningful line."""
    if first.startswith("#masscan") or first.startswith(("open tcp ", "closed tcp ")):
        return "masscan-list"
    if first.startswith(("[", "{")):
        return "masscan-json"
    if first.startswith(("# Nmap", "Host: ", "Timestamp: ")) or ("Host:" in first and "Ports:" in first):
        return "nmap-grepable"
    cells = first.split(",")
    if "saddr" in cells:
        return "zmap"
    try:
        ipaddress.ip_address(first)
        return "zmap"  # zmap's default output: one address per line
    except ValueError:
        return "plain"
