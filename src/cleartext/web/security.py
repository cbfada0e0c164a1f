"""What keeps the dashboard safe in a browser: the headers of every response, sessions, CSRF, same-origin.

Headers. Every response gets :data:`SECURITY_HEADERS` (a route may set one of its own first), HSTS when
the request came over TLS, and ``Cache-Control: no-store`` except on the stylesheet and the icon. The
CSP allows no script at all and only our own stylesheet.

Sessions. Logging in with a token creates a server-side :class:`Session`; the cookie
(:data:`SESSION_COOKIE`: HttpOnly, SameSite=Strict, Secure behind TLS) holds its random id, never the
token. Forms that change something carry the session's CSRF value, and a form a browser marks as
posted from another site is refused (:func:`same_origin`).

Nothing here knows tokens, scopes or the store: :mod:`cleartext.web.deps` turns a session into a token.
"""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response
from starlette.datastructures import MutableHeaders

SESSION_COOKIE = "cleartext_session"
MAX_FORM_BYTES = 4096

CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"


class SecurityHeaders:
    """Pure ASGI middleware: every response gets the security headers (a route may set its own first)."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(
        self, scope: MutableMapping[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if https:
                    headers["strict-transport-security"] = HSTS
                if "cache-control" not in headers:
                    headers["cache-control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- sessions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    token_id: str
    csrf: str
    expires: float

    def csrf_matches(self, value: str) -> bool:
        """Whether a form's ``csrf`` field is this session's value (compared in constant time)."""
        return secrets.compare_digest(value, self.csrf)


class Sessions:
    """Server-side sessions in memory: the cookie holds a random id, never the token.

    Lost on restart (people log in again), bounded in number (the oldest go first).
    """

    def __init__(self, ttl: float, cap: int) -> None:
        self.ttl = ttl
        self.cap = cap
        self._items: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, token_id: str) -> tuple[str, Session]:
        sid = secrets.token_urlsafe(32)
        session = Session(token_id, secrets.token_urlsafe(24), time.monotonic() + self.ttl)
        with self._lock:
            now = time.monotonic()
            for key in [k for k, s in self._items.items() if s.expires <= now]:
                del self._items[key]
            while len(self._items) >= self.cap:
                del self._items[next(iter(self._items))]
            self._items[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            session = self._items.get(sid)
            if session is not None and session.expires <= time.monotonic():
                del self._items[sid]
                return None
            return session

    def drop(self, sid: str | None) -> None:
        with self._lock:
            self._items.pop(sid or "", None)


def set_session_cookie(response: Response, sid: str, ttl_s: float, *, https: bool) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, for the whole site, Secure when served over TLS."""
    response.set_cookie(
        SESSION_COOKIE,
        sid,
        max_age=int(ttl_s),
        httponly=True,
        samesite="strict",
        secure=https,
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


# -- forms ------------------------------------------------------------------------------------------------


def same_origin(request: Request) -> bool:
    """False for a form posted from another site.

    Browsers say where a request comes from in ``Sec-Fetch-Site``; ``Origin`` is no help here,
    because with ``Referrer-Policy: no-referrer`` Chromium sends ``Origin: null`` even for our own
    forms. A client that sends neither (curl, scripts) is not a browser that could be tricked.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return origin.rstrip("/") == str(request.base_url).rstrip("/")


async def read_form(request: Request) -> dict[str, str]:
    """A posted form's fields (the first value of each), at most :data:`MAX_FORM_BYTES` and 8 fields."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, "form too large")
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
    return {k: v[0] for k, v in fields.items() if v}
