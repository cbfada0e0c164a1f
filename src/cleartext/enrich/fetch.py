"""Download one attribution source into the data directory: conditional, checked, bounded, atomic.

Run only by `cleartext data fetch`, never by a scan or a lookup. For each source:

1. its published checksum, when there is one (the RIRs' ``.md5``, MaxMind's ``.sha256``): if it is the
   checksum of the file already held, nothing is downloaded;
2. a GET with ``If-None-Match`` / ``If-Modified-Since`` from the last fetch (only while the file on disk
   is the one that fetch wrote): ``304`` means unchanged;
3. the body streamed into a temporary file beside the target, never more than the source's
   ``max_bytes``, each read bounded by ``timeout`` and the whole file by ``max_time``; a body shorter
   than its Content-Length is a failure;
4. the checksum compared, MMDB archives unpacked (gzip, or MaxMind's tar.gz: only the one ``.mmdb``
   member is read, its name never used as a path), and the file opened by the reader that will use it;
5. only then renamed over the old file. Any failure removes the temporary file and leaves the old one.

HTTP is the standard library's ``urllib`` (HTTPS verified against the system's trust store, proxies
from the usual environment variables): what the task needs — conditional GET, streaming, redirects — is
there, so no dependency is added. Redirects are followed (at most 5) but never from https to http, and
credentials are never sent on a redirect (MaxMind redirects to a storage host with a signed URL).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import hashlib
import http.client
import os
import re
import socket
import ssl
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol
from urllib.parse import urlencode, urlsplit, urlunsplit

from cleartext import __version__
from cleartext.enrich.datadir import PART_SUFFIX, Entry, Manifest, now_iso, sync_directory
from cleartext.enrich.errors import EnrichError
from cleartext.enrich.sources import Source, redact

DEFAULT_TIMEOUT = 30.0  # seconds without progress: connecting, or waiting for the next bytes
DEFAULT_MAX_TIME = 3600.0  # seconds for one file, however it trickles in
CHUNK = 1 << 16
MAX_REDIRECTS = 5
CHECKSUM_MAX_BYTES = 1 << 16
TAR_MAX_MEMBERS = 64
USER_AGENT = f"cleartext/{__version__} (attribution data fetch)"
_HEX = re.compile(rb"(?<![0-9A-Fa-f])([0-9A-Fa-f]{64}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{32})(?![0-9A-Fa-f])")
_ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256"}
GZIP_MAGIC = b"\x1f\x8b"


class FetchError(Exception):
    """One source could not be fetched; ``str()`` is one line. ``network``: the host was not reached."""

    def __init__(self, message: str, *, network: bool = False) -> None:
        super().__init__(" ".join(message.split()))
        self.network = network


@dataclass(frozen=True, slots=True)
class Credentials:
    maxmind_account: str | None = None
    maxmind_key: str | None = None
    ipinfo_token: str | None = None

    def has(self, auth: str | None) -> bool:
        if auth == "maxmind":
            return bool(self.maxmind_account and self.maxmind_key)
        if auth == "ipinfo":
            return bool(self.ipinfo_token)
        return True


@dataclass(frozen=True, slots=True)
class Settings:
    timeout: float = DEFAULT_TIMEOUT
    max_time: float = DEFAULT_MAX_TIME
    credentials: Credentials = Credentials()
    user_agent: str = USER_AGENT
    ca_files: tuple[str, ...] = ()  # extra trust anchors (a mirror with a private CA; the tests' server)


@dataclass(frozen=True, slots=True)
class Outcome:
    source: str
    status: str  # "updated", "unchanged" or "failed"
    file: str
    bytes: int = 0  # received from the network
    seconds: float = 0.0
    detail: str = ""
    network: bool = False  # failed without reaching the host (offline, refused, DNS)


class Listener(Protocol):
    """Told what happens, for a progress bar or log lines."""

    def started(self, source: Source, total: int | None) -> None: ...
    def advanced(self, source: Source, count: int) -> None: ...
    def finished(self, source: Source, outcome: Outcome) -> None: ...


def fetch_source(
    source: Source,
    manifest: Manifest,
    settings: Settings,
    listener: Listener,
    *,
    today: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Fetch ``source`` into the manifest's directory and record it there; never raises FetchError."""
    started = time.monotonic()
    job = _Job(source, manifest, settings, listener)
    try:
        status, detail = job.run(today())
        outcome = Outcome(source.name, status, source.file, job.received, 0.0, detail)
    except FetchError as exc:
        outcome = Outcome(source.name, "failed", source.file, job.received, 0.0, str(exc), exc.network)
    finally:
        job.cleanup()
    outcome = replace(outcome, seconds=round(time.monotonic() - started, 3))
    listener.finished(source, outcome)
    return outcome


class _Job:
    def __init__(self, source: Source, manifest: Manifest, settings: Settings, listener: Listener) -> None:
        self.source = source
        self.manifest = manifest
        self.directory = manifest.directory
        self.settings = settings
        self.listener = listener
        self.received = 0
        self.target = self.directory / source.file
        self.raw = self.directory / f".{source.file}.raw{PART_SUFFIX}"
        self.part = self.directory / f".{source.file}{PART_SUFFIX}"
        self.deadline = _Deadline(settings.max_time)  # the whole source: checksum, body, unpacking

    def cleanup(self) -> None:
        self.deadline.cancel()
        self.raw.unlink(missing_ok=True)
        self.part.unlink(missing_ok=True)

    def run(self, today: datetime) -> tuple[str, str]:
        source = self.source
        if not self.settings.credentials.has(source.auth):
            need = (
                "--maxmind-account-id and --maxmind-license-key"
                if source.auth == "maxmind"
                else "--ipinfo-token"
            )
            raise FetchError(f"needs {need}")
        previous = self.manifest.entries.get(source.name)
        notes: list[str] = []
        published = self._published_checksum(notes)
        candidates = _month_urls(source.url, today)
        if published is not None and previous is not None and previous.checksum == published:  # noqa: SIM102
            if self._held(previous, candidates[0]):  # the file on disk is the one with that checksum
                self._record(previous, replace(previous, checked_at=now_iso()))
                return "unchanged", "published checksum unchanged"
        for index, url in enumerate(candidates):
            held = self._held(previous, url)
            try:
                response = self._open(url, _conditional(previous) if held else {})
                break
            except FetchError as exc:
                # This month's DB-IP file is not out yet on the first days of a month: take last month's.
                if "HTTP 404" not in str(exc) or index == len(candidates) - 1:
                    raise
        if response is None:  # 304
            if not held or previous is None:
                raise FetchError(f"{redact(url)}: 304 Not Modified to a request that was not conditional")
            self._record(previous, replace(previous, checked_at=now_iso()))
            return "unchanged", "304 Not Modified"
        with response:
            etag = _validator(response.headers.get("ETag"))
            last_modified = _validator(response.headers.get("Last-Modified"))
            digests = self._receive(response, published)
        published = self._verify(published, digests, notes)
        self._unpack()
        sha256 = _file_sha256(self.part)
        self._validate()
        stamp = now_iso()
        if held and previous is not None and previous.sha256 == sha256:
            self._record(
                previous,
                replace(
                    previous, checked_at=stamp, etag=etag, last_modified=last_modified, checksum=published
                ),
            )
            return "unchanged", "; ".join(["same content", *notes])
        os.replace(self.part, self.target)
        sync_directory(self.directory)
        stat = self.target.stat()
        entry = Entry(
            source=source.name,
            kind=source.kind,
            file=source.file,
            url=redact(url),
            sha256=sha256,
            size=stat.st_size,
            mtime_ns=stat.st_mtime_ns,
            fetched_at=stamp,
            checked_at=stamp,
            etag=etag,
            last_modified=last_modified,
            checksum=published,
        )
        self._record(previous, entry)
        return "updated", "; ".join(notes)

    # -- steps ---------------------------------------------------------------------------------------

    def _held(self, previous: Entry | None, url: str) -> bool:
        """The file on disk is the one the last fetch of this URL wrote: its validators still apply."""
        return previous is not None and previous.matches_disk(self.directory) and previous.url == redact(url)

    def _published_checksum(self, notes: list[str]) -> str | None:
        """``"md5:<hex>"`` (or sha1, sha256) from the source's checksum file; None when it has none."""
        if not self.source.checksum_url:
            return None
        try:
            response = self._open(self.source.checksum_url, {})
        except FetchError as exc:
            if "HTTP 404" in str(exc):
                notes.append("no checksum published")
                return None
            raise
        assert response is not None
        with response:
            body = _read_bounded(response, CHECKSUM_MAX_BYTES)
        found = _HEX.search(body)
        if found is None:
            raise FetchError(f"{redact(self.source.checksum_url)}: no md5, sha1 or sha256 checksum in it")
        digest = found.group(1).decode().lower()
        return f"{_ALGORITHMS[len(digest)]}:{digest}"

    def _open(self, url: str, headers: dict[str, str]) -> Any:
        """The response, or None for 304. Statuses other than 200 and 304 are FetchError."""
        url = self._authorised(url)
        request = urllib.request.Request(url, headers={"User-Agent": self.settings.user_agent})
        for key, value in headers.items():
            request.add_header(key, value)
        credentials = self.settings.credentials
        if self.source.auth == "maxmind" and credentials.maxmind_account and credentials.maxmind_key:
            token = base64.b64encode(f"{credentials.maxmind_account}:{credentials.maxmind_key}".encode())
            request.add_unredirected_header("Authorization", f"Basic {token.decode()}")  # not on redirects
        opener = _opener(self.deadline, self.settings.ca_files)
        shown = redact(url)
        connected = self.deadline.connected
        try:
            return opener.open(request, timeout=self.settings.timeout)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 304:
                return None
            hint = " (check the licence key or token)" if exc.code in (401, 403) else ""
            raise FetchError(f"{shown}: HTTP {exc.code} {_reason(exc.reason)}{hint}") from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            if self.deadline.expired:
                raise self._too_slow() from None
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if self.deadline.connected > connected:  # the host answered the connection, then failed
                if isinstance(reason, TimeoutError):
                    raise FetchError(f"{shown}: no answer within {self.settings.timeout:g} s") from None
                raise FetchError(f"{shown}: {_reason(reason)}") from None
            raise FetchError(f"cannot reach {_host(url)}: {_reason(reason)}", network=True) from None

    def _authorised(self, url: str) -> str:
        token = self.settings.credentials.ipinfo_token
        if self.source.auth != "ipinfo" or not token:
            return url
        parts = urlsplit(url)
        query = f"{parts.query}&" if parts.query else ""
        return urlunsplit(parts._replace(query=query + urlencode({"token": token})))

    def _receive(self, response: Any, published: str | None) -> dict[str, Any]:
        """Stream the body into the raw temporary file; the digests of what was received."""
        limit = self.source.max_bytes
        length = _content_length(response)
        if length is not None and length > limit:
            raise FetchError(f"{self._shown()}: {length} bytes announced, more than the {limit} allowed")
        digests: dict[str, Any] = {"sha256": hashlib.sha256()}
        if published is not None:
            algorithm = published.split(":", 1)[0]
            digests.setdefault(algorithm, hashlib.new(algorithm, usedforsecurity=False))
        self.listener.started(self.source, length)
        fd = os.open(self.raw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as out:
            while True:
                try:
                    chunk = response.read1(CHUNK)
                except TimeoutError:
                    raise FetchError(
                        f"{self._shown()}: stalled {self.settings.timeout:g} s after {self.received} bytes"
                    ) from None
                except (http.client.HTTPException, OSError) as exc:
                    if self.deadline.expired:
                        raise self._too_slow() from None
                    raise FetchError(
                        f"{self._shown()}: transfer broken after {self.received} bytes: {_reason(exc)}"
                    ) from None
                if self.deadline.expired:
                    raise self._too_slow()
                if not chunk:
                    break
                self.received += len(chunk)
                if self.received > limit:
                    raise FetchError(f"{self._shown()}: more than the {limit} bytes allowed")
                for digest in digests.values():
                    digest.update(chunk)
                out.write(chunk)
                self.listener.advanced(self.source, len(chunk))
            out.flush()
            os.fsync(out.fileno())
        if length is not None and self.received != length:
            raise FetchError(f"{self._shown()}: truncated: {self.received} of {length} bytes received")
        if self.received == 0:
            raise FetchError(f"{self._shown()}: empty body")
        return digests

    def _verify(self, published: str | None, digests: dict[str, Any], notes: list[str]) -> str | None:
        if published is None:
            return None
        algorithm, expected = published.split(":", 1)
        got = digests[algorithm].hexdigest()
        if got == expected:
            return published
        # The checksum file may have been replaced between the two requests: ask once more.
        again = self._published_checksum(notes)
        if again is not None and again == f"{algorithm}:{got}":
            return again
        raise FetchError(
            f"{self._shown()}: {algorithm} checksum mismatch: published {expected}, received {got}"
        )

    def _unpack(self) -> None:
        """The file as readers want it in ``self.part``: MMDB archives unpacked, others as received."""
        if self.source.kind != "mmdb":
            os.replace(self.raw, self.part)
            return
        limit = self.source.max_bytes
        try:
            if tarfile.is_tarfile(self.raw):
                with tarfile.open(self.raw, "r:*") as archive:
                    self._untar(archive, limit)
            elif _starts_with(self.raw, GZIP_MAGIC):
                with gzip.open(self.raw, "rb") as stream:
                    _copy_bounded(stream, self.part, limit)
            else:
                os.replace(self.raw, self.part)
        except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise FetchError(f"{self._shown()}: cannot unpack: {_reason(exc)}") from None

    def _untar(self, archive: tarfile.TarFile, limit: int) -> None:
        found = None
        for _ in range(TAR_MAX_MEMBERS + 1):
            member = archive.next()
            if member is None:
                break
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or "\\" in member.name:
                raise FetchError(f"{self._shown()}: archive member {member.name!r} has an unsafe path")
            if not member.name.lower().endswith(".mmdb"):
                continue
            if not member.isreg():
                raise FetchError(f"{self._shown()}: archive member {member.name!r} is not a regular file")
            if found is not None:
                raise FetchError(f"{self._shown()}: archive holds more than one .mmdb file")
            if member.size > limit:
                raise FetchError(f"{self._shown()}: archive member larger than the {limit} bytes allowed")
            stream = archive.extractfile(member)
            assert stream is not None
            _copy_bounded(stream, self.part, limit)
            found = member.name
        else:
            raise FetchError(f"{self._shown()}: archive has more than {TAR_MAX_MEMBERS} members")
        if found is None:
            raise FetchError(f"{self._shown()}: archive holds no .mmdb file")

    def _validate(self) -> None:
        """Open the file with the reader that will use it: a file it refuses is never installed."""
        from cleartext.enrich.iptoasn import IptoasnReader
        from cleartext.enrich.mmdb import MmdbReader
        from cleartext.enrich.rir import RirReader

        kind = self.source.kind
        try:
            if kind == "mmdb":
                MmdbReader(self.part).close()
            elif kind == "rir":
                RirReader.from_paths([self.part])
            elif kind == "iptoasn":
                IptoasnReader.from_paths([self.part])
            else:
                _check_rpsl(self.part)
        except EnrichError as exc:
            line = f" (line {exc.line})" if exc.line is not None else ""
            raise FetchError(f"{self._shown()}: not a usable {kind} file{line}: {exc.reason}") from None

    def _record(self, previous: Entry | None, entry: Entry) -> None:
        if previous != entry:
            self.manifest.entries[self.source.name] = entry
            self.manifest.save()

    def _shown(self) -> str:
        return redact(self.source.url)

    def _too_slow(self) -> FetchError:
        return FetchError(
            f"{self._shown()}: not received within {self.settings.max_time:g} s ({self.received} bytes came)"
        )


def _month_urls(url: str, today: datetime) -> list[str]:
    """The URL, or for a ``{month}`` URL this month's and last month's."""
    if "{month}" not in url:
        return [url]
    last = today.replace(day=1) - timedelta(days=1)
    return [url.replace("{month}", today.strftime("%Y-%m")), url.replace("{month}", last.strftime("%Y-%m"))]


def _conditional(previous: Entry | None) -> dict[str, str]:
    headers = {}
    if previous is not None and previous.etag:
        headers["If-None-Match"] = previous.etag
    if previous is not None and previous.last_modified:
        headers["If-Modified-Since"] = previous.last_modified
    return headers


def _check_rpsl(path: Path) -> None:
    """An RPSL dump: its first object starts with ``attribute: value``, and a gzip stream is whole.

    A full parse of the RIPE inetnum dump takes minutes; reading the stream to its end (which checks
    gzip's CRC and length) takes seconds and catches a truncated or damaged download.
    """
    from cleartext.enrich.rpsl import _ATTRIBUTE
    from cleartext.enrich.textfile import open_text

    first: str | None = None
    with open_text(path) as lines:
        for line in lines:
            if first is None:
                if not line.strip() or line[0] in "%#":
                    continue
                first = line
                colon = line.find(":")
                if colon < 1 or not _ATTRIBUTE.fullmatch(line, 0, colon):
                    raise EnrichError(path, "not an RPSL dump (expected 'attribute: value')")
    if first is None:
        raise EnrichError(path, "no RPSL objects: not an RPSL database dump")


class _Deadline:
    """Bounds one request's whole duration: at expiry its sockets are shut down, so a read returns."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self.connected = 0
        self._sockets: list[Any] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def add(self, sock: Any) -> None:
        with self._lock:
            self.connected += 1
            self._sockets.append(sock)
            if self.expired:
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: Any) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _Watched:
    """A connection that hands its socket to the deadline as soon as it is connected."""

    sock: Any

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self._deadline.add(self.sock)


class _WatchedHTTP(_Watched, http.client.HTTPConnection):
    pass


class _WatchedHTTPS(_Watched, http.client.HTTPSConnection):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(functools.partial(_WatchedHTTP, deadline=self._deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline, context: ssl.SSLContext) -> None:
        super().__init__(context=context)
        self._deadline = deadline
        self._ssl_context = context

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        opened = functools.partial(_WatchedHTTPS, deadline=self._deadline, context=self._ssl_context)
        return self.do_open(opened, req)


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if new.scheme not in ("http", "https") or (old.scheme == "https" and new.scheme != "https"):
            raise urllib.error.HTTPError(
                req.full_url, code, f"redirect to {redact(newurl)} refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(deadline: _Deadline, ca_files: tuple[str, ...]) -> urllib.request.OpenerDirector:
    context = ssl.create_default_context()
    for ca_file in ca_files:
        context.load_verify_locations(cafile=ca_file)
    return urllib.request.build_opener(_HTTPHandler(deadline), _HTTPSHandler(deadline, context), _Redirects())


def _content_length(response: Any) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None or response.headers.get("Transfer-Encoding"):
        return None
    try:
        length = int(value)
    except ValueError:
        raise FetchError(f"bad Content-Length {value[:40]!r}") from None
    return length if length >= 0 else None


def _validator(value: str | None) -> str | None:
    """An ETag or Last-Modified to send back next time: kept only if short printable ASCII."""
    if value is None or len(value) > 256 or not value.isascii() or not value.isprintable():
        return None
    return value


def _read_bounded(response: Any, limit: int) -> bytes:
    try:
        body: bytes = response.read(limit + 1)
    except (http.client.HTTPException, OSError) as exc:
        raise FetchError(f"checksum file: {_reason(exc)}") from None
    if len(body) > limit:
        raise FetchError(f"checksum file larger than {limit} bytes")
    return body


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _copy_bounded(stream: _Readable, path: Path, limit: int) -> None:
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as out:
        while chunk := stream.read(CHUNK):
            written += len(chunk)
            if written > limit:
                raise FetchError(f"unpacks to more than the {limit} bytes allowed")
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(magic)) == magic


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _host(url: str) -> str:
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.hostname}{port}"


def _reason(reason: object) -> str:
    """A short, one-line reason from an exception or urllib's ``reason`` (never a URL with its query)."""
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"certificate not trusted ({reason.verify_message})"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower() if reason.strerror[:1].isupper() else reason.strerror
    if isinstance(reason, http.client.IncompleteRead):
        return "connection closed early"
    text = str(reason) or type(reason).__name__
    return " ".join(text.split())[:200]
