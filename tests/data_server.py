"""A real HTTP server on 127.0.0.1 that publishes data files the way their publishers do, and misbehaves
on request: 304s for conditional requests, a wrong checksum, a truncated body, a stall, a trickle, a
redirect, an error status. Every request is recorded, so a test can assert what the client sent.
"""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    mode: str = "ok"  # ok, truncate, stall, trickle, status, redirect, chunked, always-304
    status: int = 200
    location: str = ""
    auth: str | None = None  # the Authorization header value required (401 otherwise)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class DataServer:
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def publish(self, path: str, body: bytes, **route: object) -> str:
        """Serve ``body`` at ``path`` with a stable ETag and Last-Modified; returns its URL."""
        self.routes[path] = Route(
            body,
            etag=f'"{hashlib.sha256(body).hexdigest()[:16]}"',
            last_modified=formatdate(1_700_000_000 + len(self.routes), usegmt=True),
            **route,  # type: ignore[arg-type]
        )
        return self.base + path

    def publish_md5(self, path: str, body: bytes, *, wrong: bool = False) -> None:
        """The file and its ``.md5`` in the RIRs' BSD style: ``MD5 (name) = hex``."""
        self.publish(path, body)
        digest = hashlib.md5(body + (b"x" if wrong else b"")).hexdigest()
        name = path.rsplit("/", 1)[-1]
        self.publish(path + ".md5", f"MD5 ({name}) = {digest}\n".encode())

    def requests(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?", 1)[0] == path]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        state = self.server.state
        state.seen.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = state.routes.get(self.path.split("?", 1)[0])
        if route is None:
            return self._plain(404, b"not found\n")
        if route.auth is not None and self.headers.get("Authorization") != route.auth:
            return self._plain(401, b"unauthorized\n")
        if route.mode == "status":
            return self._plain(route.status, b"failure\n")
        if route.mode == "redirect":
            self.send_response(302)
            self.send_header("Location", route.location)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        fresh = route.mode == "always-304" or (
            route.etag is not None and self.headers.get("If-None-Match") == route.etag
        )
        if fresh or (
            route.last_modified is not None
            and self.headers.get("If-None-Match") is None
            and self.headers.get("If-Modified-Since") == route.last_modified
        ):
            self.send_response(304)
            self.send_header("ETag", route.etag or "")
            self.end_headers()
            return None
        body = route.body
        self.send_response(200)
        if route.etag:
            self.send_header("ETag", route.etag)
        if route.last_modified:
            self.send_header("Last-Modified", route.last_modified)
        if route.mode == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if head:
            return None
        if route.mode == "truncate":  # a connection lost mid-body
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return None
        if route.mode == "stall":  # half the body, then nothing until the test ends
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            state.stop.wait(30)
            self.close_connection = True
            return None
        if route.mode == "trickle":  # one byte every 50 ms: never idle long enough for a read timeout
            for byte in body:
                if state.stop.wait(0.05):
                    break
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            return None
        if route.mode == "chunked":
            for start in range(0, len(body), 4096):
                piece = body[start : start + 4096]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return None
        self.wfile.write(body)
        return None

    def _plain(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    state: DataServer


@contextmanager
def data_server() -> Iterator[DataServer]:
    """A running server on 127.0.0.1 (a port of its own), stopped at the end."""
    server = _Server(("127.0.0.1", 0), _Handler)
    state = DataServer(port=server.server_address[1])
    server.state = state
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def refused_port() -> int:
    """A loopback port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def silent_listener() -> tuple[socket.socket, int]:
    """A socket that accepts connections (the kernel does) and never says a word: for connect-then-hang."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock, int(sock.getsockname()[1])

