"""The FastAPI application: read-only REST API under /api, server-rendered dashboard pages, sessions.

Authentication. The API takes ``Authorization: Bearer ct_...``; the dashboard logs in with the same
token once and then carries a session cookie (HttpOnly, SameSite=Strict, Secure behind TLS) that names
a server-side session, never the token. Every request looks the token up again, so a revoked token
stops working at once, sessions included. Forms that change something (log out, self-check) carry a
per-session CSRF value as well, and a POST whose Origin is another site is refused.

Authorisation is :class:`~cleartext.web.data.Scope`: every data access goes through
:class:`~cleartext.web.data.WebData` with the request's scope, so an owner token sees only its own
endpoints, by any route, filter or download. An endpoint outside the scope is a 404, the same answer
as an endpoint that does not exist, so that owners cannot even probe for each other's endpoints.

Safety. No page has a script; the CSP is ``default-src 'self'; script-src 'none'`` and the stylesheet
is a file of ours. Every header of :data:`SECURITY_HEADERS` is set on every response, HSTS too when
the request came over TLS. The OpenAPI description is at /openapi.json; the interactive docs pages are
off, since they load their scripts from a CDN.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures at definition time,
# and the dependency aliases (ScopeDep, FiltersDep) are locals of create_app that it must resolve.

import ipaddress
import json
import logging
import secrets
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders

from cleartext import __version__
from cleartext.findings import Code
from cleartext.record import Protocol, Record, Status
from cleartext.remediation import Remedy, remedy
from cleartext.report.html import (
    breakdown_chart,
    finding_chart,
    render_html,
    severity_chart,
    trend_chart,
)
from cleartext.report.stats import COUNTRY_SOURCES, Stats
from cleartext.store import LATEST, StoreError
from cleartext.web.data import CountrySource, Filters, Scope, WebData
from cleartext.web.selfcheck import RateLimited, SelfChecker, SelfCheckRefused, SelfCheckSettings
from cleartext.web.templating import api_endpoint_href, environment, icon_svg, stylesheet_css
from cleartext.web.tokens import TokenInfo, TokenStore

if TYPE_CHECKING:
    from cleartext.enrich import Enricher
    from cleartext.store import Store

log = logging.getLogger("cleartext.web")

SESSION_COOKIE = "cleartext_session"
MAX_FORM_BYTES = 4096
PAGE_SIZE = 50
# The largest `offset` a list takes: far beyond any scan, far within the BIGINT both databases take (an
# offset of 2**63 reached DuckDB and came back as a 503 with the store's path and DuckDB's message).
MAX_OFFSET = 10**15

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


class SeverityFilter(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    NONE = "none"


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
}


@dataclass(slots=True)
class AppConfig:
    country_source: CountrySource = "geo"
    selfcheck: SelfCheckSettings = field(default_factory=SelfCheckSettings)
    session_ttl_s: float = 12 * 3600
    max_sessions: int = 10_000


# -- sessions ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    token_id: str
    csrf: str
    expires: float


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


# -- security headers -------------------------------------------------------------------------------------


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


# -- helpers ----------------------------------------------------------------------------------------------


def parse_filters(params: MutableMapping[str, Any] | Any) -> tuple[Filters, dict[str, str], list[str]]:
    """Filters from query parameters as a form sends them (empty means "any").

    Returns the filters, the values to show back in the form, and one message per value refused.
    """
    filters = Filters()
    shown: dict[str, str] = {}
    errors: list[str] = []

    def get(name: str) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        value = str(value).strip()
        if value:
            shown[name] = value
        return value or None

    enums: dict[str, type[StrEnum]] = {
        "protocol": Protocol,
        "code": Code,
        "severity": SeverityFilter,
        "status": Status,
    }
    for name, enum in enums.items():
        value = get(name)
        if value is not None:
            try:
                setattr(filters, name, enum(value.lower()).value)
            except ValueError:
                errors.append(f"unknown {name} {value!r}")
    if (port := get("port")) is not None:
        if port.isdigit() and 0 <= int(port) <= 65535:
            filters.port = int(port)
        else:
            errors.append(f"port {port!r} is not a TCP port")
    if (country := get("country")) is not None:
        if len(country) == 2 and country.isalpha() and country.isascii():
            filters.country = country.upper()
        else:
            errors.append(f"country {country!r} is not a two-letter code")
    if (asn := get("asn")) is not None:
        digits = asn[2:] if asn[:2].lower() == "as" else asn
        if digits.isdigit() and digits.isascii() and 0 < int(digits) < 2**32:
            filters.asn = int(digits)
        else:
            errors.append(f"AS {asn!r} is not an AS number")
    if (address := get("address")) is not None:
        try:
            filters.address = ipaddress.ip_network(address, strict=False)
        except ValueError:
            errors.append(f"{address!r} is neither an address nor a CIDR")
    if (software := get("software")) is not None:
        filters.software = software.lower()[:40]
    return filters, shown, errors


def parse_offset(value: str | None) -> int | None:
    """A page's ``offset`` query parameter (absent: 0), or None unless it is an integer in [0, MAX_OFFSET]."""
    if value is None or value == "":
        return 0
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(MAX_OFFSET)):
        return None
    number = int(value)
    return number if number <= MAX_OFFSET else None


# The integer query parameters and their ranges, for messages that say what is accepted.
_BOUNDS: dict[str, tuple[int, int]] = {"offset": (0, MAX_OFFSET), "limit": (1, 1000), "port": (0, 65535)}


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line of our own words: which parameter, and what it must be.

    Pydantic's messages and the value sent stay out of the body (they are a library's words, and echo
    what the client sent).
    """
    parts = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
        name = ".".join(loc) or "request"
        kind = str(error.get("type", ""))
        ctx = error.get("ctx") or {}
        if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than", "int_parsing"):
            low, high = _BOUNDS.get(name) or (ctx.get("ge"), ctx.get("le"))
            if low is not None and high is not None:
                parts.append(f"{name} must be an integer from {low} to {high}")
            else:
                parts.append(f"{name} must be an integer")
        elif kind == "missing":
            parts.append(f"{name} is required")
        else:
            parts.append(f"{name} has a value this API does not accept")
    return "; ".join(parts) or "invalid request"


def remedies_of(record: Record) -> list[Remedy | None]:
    """The fix for each finding, for the software found (None for a code we have no advice for)."""
    out: list[Remedy | None] = []
    for finding in record.findings:
        try:
            out.append(remedy(finding.code, record.observation.software, record.observation.protocol))
        except ValueError:
            out.append(None)
    return out


def remedy_dict(code: str, value: Remedy | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "code": code,
        "software": value.software,
        "steps": list(value.steps),
        "config": value.config,
        "references": list(value.references),
    }


def _who(token: TokenInfo) -> str:
    kind = "admin" if token.admin else "owner of " + ", ".join(token.owner.specs())
    return f"{token.label} · {kind}" if token.label else kind


def _charts(stats: Stats, country_field: str) -> list[Markup]:
    """The overview's charts, drawn by the HTML report's own chart functions."""
    exposed = "exposed / open endpoints"
    return [
        Markup(chart)
        for chart in (
            breakdown_chart(stats, "protocol", "Exposed endpoints by protocol", exposed),
            finding_chart(stats),
            breakdown_chart(
                stats, "tls_version", "TLS versions accepted", "exposed / open endpoints accepting it"
            ),
            severity_chart(stats),
            breakdown_chart(stats, "asn", "Top autonomous systems", exposed, limit=10),
            breakdown_chart(stats, "country", "Top countries", f"{country_field} · {exposed}", limit=10),
            breakdown_chart(stats, "port", "By port", exposed),
            breakdown_chart(stats, "software", "By server software", exposed),
        )
    ]


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else ""


# -- the application --------------------------------------------------------------------------------------


def create_app(
    store: "Store",
    *,
    enricher: "Enricher | None" = None,
    fingerprint: str = "none",
    config: AppConfig | None = None,
) -> FastAPI:
    """The application over an open store. The caller owns the store and the enricher (and closes them)."""
    config = config or AppConfig()
    data = WebData(store, enricher, fingerprint=fingerprint, country_source=config.country_source)
    tokens = TokenStore(store)
    sessions = Sessions(config.session_ttl_s, config.max_sessions)
    checker = SelfChecker(config.selfcheck, data.lookup, config.country_source)
    templates = environment()
    country_field = COUNTRY_SOURCES[config.country_source]
    bearer = HTTPBearer(auto_error=False, description="An API token: `cleartext token create`.")

    app = FastAPI(
        title="cleartext",
        version=__version__,
        summary="Read-only API over cleartext's results store: scans, endpoints, findings, statistics.",
        description=(
            "Every route needs a token (`Authorization: Bearer ct_...`). An owner token sees only the "
            "endpoints in its networks (its CIDRs, or addresses attributed to its ASNs or countries); "
            "an admin token sees everything. Lists are paginated with `limit` and `offset` and return "
            "`total`. See docs/web.md."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.add_middleware(SecurityHeaders)
    app.state.data = data
    app.state.tokens = tokens
    app.state.sessions = sessions
    app.state.checker = checker

    # -- authentication ---------------------------------------------------------------------------------

    def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> TokenInfo | None:
        """The request's token: the bearer header if there is one (and then only it), else the session."""
        if credentials is not None:
            return tokens.verify(credentials.credentials)
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        token = tokens.get(session.token_id)
        if token is None or not token.active:
            sessions.drop(request.cookies.get(SESSION_COOKIE))
            return None
        return token

    def api_token(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> TokenInfo:
        token = token_of(request, credentials)
        if token is None:
            raise HTTPException(
                401, "a valid token is needed (Authorization: Bearer ct_...)", {"WWW-Authenticate": "Bearer"}
            )
        return token

    def api_scope(token: Annotated[TokenInfo, Depends(api_token)]) -> Scope:
        return Scope.of(token)

    def api_filters(
        protocol: Annotated[Protocol | None, Query(description="smtp, pop3 or imap")] = None,
        port: Annotated[int | None, Query(ge=0, le=65535)] = None,
        code: Annotated[Code | None, Query(description="endpoints with this finding code")] = None,
        severity: Annotated[
            SeverityFilter | None,
            Query(description="endpoints: worst severity ('none': no finding); findings: its severity"),
        ] = None,
        status: Annotated[Status | None, Query(description="the endpoint's status")] = None,
        country: Annotated[
            str | None, Query(pattern="^[A-Za-z]{2}$", description="ISO country (the server's source)")
        ] = None,
        asn: Annotated[
            str | None, Query(pattern=r"^(?:[Aa][Ss])?[0-9]{1,10}$", description="AS64496")
        ] = None,
        address: Annotated[str | None, Query(description="one address, or a CIDR")] = None,
        software: Annotated[str | None, Query(max_length=40, description="e.g. dovecot")] = None,
    ) -> Filters:
        raw = {
            "protocol": protocol,
            "port": port,
            "code": code,
            "severity": severity,
            "status": status,
            "country": country,
            "asn": asn,
            "address": address,
            "software": software,
        }
        filters, _, errors = parse_filters({k: v for k, v in raw.items() if v is not None})
        if errors:
            raise HTTPException(422, "; ".join(errors))
        return filters

    def scan_or_404(scope: Scope, scan_id: str | None) -> str:
        """The scan asked for (404 if unknown), or the scope's latest scan (404 if there is none)."""
        if scan_id is None or scan_id == LATEST:
            latest = data.latest_scan(scope)
            if latest is None:
                raise HTTPException(404, "the store has no scan")
            return latest
        try:
            data.store.scan(scan_id)
        except StoreError:
            raise HTTPException(404, f"no scan {scan_id!r}") from None
        return scan_id

    ScopeDep = Annotated[Scope, Depends(api_scope)]
    FiltersDep = Annotated[Filters, Depends(api_filters)]
    ScanQuery = Annotated[str | None, Query(alias="scan", description="scan id (default: the latest)")]
    Limit = Annotated[int, Query(ge=1, le=1000)]
    Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]

    def page_json(page: Any, request: Request) -> dict[str, Any]:
        next_url = None
        if page.offset + len(page.items) < page.total:
            query = dict(request.query_params)
            query["offset"] = str(page.offset + page.limit)
            next_url = f"{request.url.path}?{urllib.parse.urlencode(query)}"
        return {
            "total": page.total,
            "limit": page.limit,
            "offset": page.offset,
            "next": next_url,
            "items": [item.to_dict() for item in page.items],
        }

    @app.exception_handler(StoreError)
    async def store_error(request: Request, exc: StoreError) -> JSONResponse:
        # The store's message names its file or URL and the database's own words: for the log only.
        log.error("store error on %s: %s", request.url.path, exc)
        return JSONResponse({"detail": "store unavailable"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)

    # -- API --------------------------------------------------------------------------------------------

    @app.get("/api/me", tags=["tokens"])
    def api_me(token: Annotated[TokenInfo, Depends(api_token)]) -> dict[str, Any]:
        """The token making the request: its kind, what it owns, and which country ownership uses."""
        return {**token.to_dict(), "country_source": config.country_source, "country_field": country_field}

    @app.get("/api/scans", tags=["scans"])
    def api_scans(scope: ScopeDep) -> dict[str, Any]:
        """Every scan, oldest first. Owner tokens get their own endpoint counts and no scan parameters."""
        return {"items": [v.to_dict() for v in data.scans(scope)]}

    @app.get("/api/scans/{scan_id}", tags=["scans"])
    def api_scan(scope: ScopeDep, scan_id: str) -> dict[str, Any]:
        view = data.scan(scope, scan_or_404(scope, scan_id))
        if view is None:
            raise HTTPException(404, f"no scan {scan_id!r}")
        return view.to_dict()

    @app.get("/api/scans/{scan_id}/stats", tags=["statistics"])
    def api_stats(scope: ScopeDep, scan_id: str) -> dict[str, Any]:
        """The report statistics (as `cleartext report --format json`) of the token's endpoints."""
        return data.stats(scope, scan_or_404(scope, scan_id)).to_dict()

    @app.get("/api/trend", tags=["statistics"])
    def api_trend(scope: ScopeDep, upto: Annotated[str | None, Query()] = None) -> dict[str, Any]:
        """Series across the token's last scans (up to 12, up to scan ``upto``): totals and breakdowns."""
        series = data.trend(scope, upto)
        return series.to_dict() if series is not None else {"scans": [], "series": {}}

    @app.get("/api/scans/{scan_id}/report.html", tags=["downloads"], response_class=HTMLResponse)
    def api_report(scope: ScopeDep, scan_id: str) -> Response:
        """The self-contained HTML report of the token's endpoints in this scan (a download)."""
        scan_id = scan_or_404(scope, scan_id)
        page = render_html(data.stats(scope, scan_id), data.trend(scope, scan_id))
        return HTMLResponse(
            page, headers={"content-disposition": f'attachment; filename="cleartext-{scan_id}.html"'}
        )

    @app.get("/api/scans/{scan_id}/export.{fmt}", tags=["downloads"])
    def api_export(scope: ScopeDep, filters: FiltersDep, scan_id: str, fmt: ExportFormat) -> Response:
        """The token's endpoints of a scan (filtered) as CSV, Parquet or JSON Lines: the store's formats."""
        scan_id = scan_or_404(scope, scan_id)
        folder = tempfile.TemporaryDirectory(prefix="cleartext-web-")
        path = Path(folder.name) / f"export.{fmt.value}"
        try:
            data.export(scope, scan_id, filters, fmt.value, path)
        except BaseException:
            folder.cleanup()
            raise
        return FileResponse(
            path,
            media_type=_MEDIA[fmt.value],
            filename=f"cleartext-{scan_id}.{fmt.value}",
            background=BackgroundTask(folder.cleanup),
        )

    @app.get("/api/endpoints", tags=["endpoints"])
    def api_endpoints(
        request: Request,
        scope: ScopeDep,
        filters: FiltersDep,
        scan: ScanQuery = None,
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Annotated[Literal["address", "severity"], Query()] = "address",
    ) -> dict[str, Any]:
        """Endpoints of a scan (one per address and port), filtered, in address order or worst first."""
        scan_id = scan_or_404(scope, scan)
        page = data.endpoints(scope, scan_id, filters, limit=limit, offset=offset, sort=sort)
        return {"scan_id": scan_id, **page_json(page, request)}

    @app.get("/api/endpoints/{scan_id}/{address}/{port}", tags=["endpoints"])
    def api_endpoint(scope: ScopeDep, scan_id: str, address: str, port: int) -> dict[str, Any]:
        """One endpoint: the whole record, its attribution, the fix for each finding, and its history."""
        found = data.endpoint(scope, scan_id, address, port)
        if found is None:
            raise HTTPException(404, "no such endpoint")
        record, row = found
        return {
            "record": record.to_dict(),
            "attribution": {
                "asn": row.asn,
                "as_name": row.as_name,
                "country": row.country,
                "registry_country": row.registry_country,
                "network": row.network,
            },
            "remediation": [
                remedy_dict(f.code, r) for f, r in zip(record.findings, remedies_of(record), strict=True)
            ],
            "history": [h.to_dict() for h in data.history(scope, row.address, row.port)],
        }

    @app.get("/api/findings", tags=["findings"])
    def api_findings(
        request: Request,
        scope: ScopeDep,
        filters: FiltersDep,
        scan: ScanQuery = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> dict[str, Any]:
        """One row per finding per endpoint, worst first; ``code`` and ``severity`` filter the findings."""
        scan_id = scan_or_404(scope, scan)
        page = data.findings(scope, scan_id, filters, limit=limit, offset=offset)
        return {"scan_id": scan_id, **page_json(page, request)}

    @app.post("/api/self-check", tags=["self-check"])
    async def api_self_check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> JSONResponse:
        """Check a host of the token's own networks now (JSON body ``{"host": "mail.example.net"}``).

        Bearer tokens only (the dashboard's form does the same for a session). 403 when the host
        resolves outside the token's networks, 429 past the per-token rate limit.
        """
        if credentials is None:
            raise HTTPException(401, "a bearer token is needed", {"WWW-Authenticate": "Bearer"})
        token = await run_in_threadpool(tokens.verify, credentials.credentials)
        if token is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        body = await request.body()
        try:
            host = json.loads(body[:MAX_FORM_BYTES]).get("host")
        except (ValueError, AttributeError):
            host = None
        if not isinstance(host, str):
            raise HTTPException(422, 'expected a JSON body {"host": "..."}')
        try:
            result = await checker.run(Scope.of(token), host)
        except SelfCheckRefused as exc:
            raise HTTPException(403, str(exc)) from None
        except RateLimited as exc:
            raise HTTPException(429, str(exc), {"Retry-After": str(int(exc.retry_after) + 1)}) from None
        return JSONResponse(
            {
                "host": result.host,
                "addresses": result.addresses,
                "records": [r.to_dict() for r in result.records],
                "remediation": [
                    [remedy_dict(f.code, x) for f, x in zip(r.findings, remedies_of(r), strict=True)]
                    for r in result.records
                ],
            }
        )

    # -- pages ------------------------------------------------------------------------------------------

    def render(name: str, code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("scope", None)
        context.setdefault("page", "")
        context.setdefault("who", "")
        context.setdefault("csrf", "")
        html = templates.get_template(name).render(
            version=__version__,
            country_field=country_field,
            country_source=config.country_source,
            **context,
        )
        return HTMLResponse(html, status_code=code)

    @dataclass(slots=True)
    class PageAuth:
        token: TokenInfo
        scope: Scope
        session: Any

        def context(self, page: str) -> dict[str, Any]:
            return {
                "scope": self.scope,
                "page": page,
                "who": _who(self.token),
                "csrf": self.session.csrf if self.session else "",
                "admin": self.scope.admin,
            }

    def page_auth(request: Request) -> PageAuth | None:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None:
            return None
        token = tokens.get(session.token_id)
        if token is None or not token.active:
            sessions.drop(request.cookies.get(SESSION_COOKIE))
            return None
        return PageAuth(token, Scope.of(token), session)

    def to_login() -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

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

    async def form(request: Request) -> dict[str, str]:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
        fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), max_num_fields=8)
        return {k: v[0] for k, v in fields.items() if v}

    @app.get("/static/app.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(stylesheet_css(), media_type="text/css; charset=utf-8")

    @app.get("/static/icon.svg", include_in_schema=False)
    def icon() -> Response:
        return Response(icon_svg(), media_type="image/svg+xml")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/login", include_in_schema=False)
    def login_page(request: Request) -> Response:
        if page_auth(request) is not None:
            return RedirectResponse("/", status_code=303)
        return render("login.html", error=None)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        if not same_origin(request):
            return render("error.html", 403, status="403", message="cross-site form refused")
        fields = await form(request)
        token = await run_in_threadpool(tokens.verify, fields.get("token", ""))
        if token is None:
            return render("login.html", 401, error="That token is not valid (or has been revoked).")
        sid, _ = sessions.create(token.token_id)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            sid,
            max_age=int(config.session_ttl_s),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        fields = await form(request)
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None and same_origin(request):
            if not secrets.compare_digest(fields.get("csrf", ""), session.csrf):
                return render("error.html", 403, status="403", message="stale form: reload and try again")
            sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    @app.get("/", include_in_schema=False)
    def overview(request: Request, scan: str | None = None) -> Response:
        auth = page_auth(request)
        if auth is None:
            return to_login()
        scope = auth.scope
        scans = data.scans(scope)
        known = {s.scan_id for s in scans}
        scan_id = scan if scan in known else data.latest_scan(scope)
        if scan_id is None:
            return render("overview.html", stats=None, scan_id=None, **auth.context("overview"))
        stats = data.stats(scope, scan_id)
        series = data.trend(scope, scan_id)
        trend = None
        if series is not None:
            trend = Markup(
                trend_chart(
                    series,
                    [
                        ("exposed", "exposed"),
                        ("cleartext_login", "cleartext-login"),
                        ("no_tls", "no-tls"),
                        ("open", "open endpoints"),
                    ],
                )
            )
        cards = [
            ("records", "records", stats.records, "", ""),
            ("open", "open endpoints", stats.open, "", ""),
            (
                "exposed",
                "exposed (any finding)",
                stats.exposed,
                _pct(stats.exposed, stats.open),
                "bad" if stats.exposed else "ok",
            ),
            (
                "cleartext_login",
                "password before TLS (cleartext-login)",
                stats.cleartext_login,
                _pct(stats.cleartext_login, stats.open),
                "bad" if stats.cleartext_login else "ok",
            ),
            (
                "no_tls",
                "no TLS at all (no-tls)",
                stats.no_tls,
                _pct(stats.no_tls, stats.open),
                "bad" if stats.no_tls else "ok",
            ),
        ]
        quoted = urllib.parse.quote(scan_id, safe="")
        downloads = [
            ("CSV", f"/api/scans/{quoted}/export.csv"),
            ("Parquet", f"/api/scans/{quoted}/export.parquet"),
            ("JSON Lines", f"/api/scans/{quoted}/export.jsonl"),
            ("HTML report", f"/api/scans/{quoted}/report.html"),
            ("statistics (JSON)", f"/api/scans/{quoted}/stats"),
        ]
        return render(
            "overview.html",
            stats=stats,
            scan_id=scan_id,
            scans=scans,
            cards=cards,
            charts=_charts(stats, country_field),
            trend=trend,
            downloads=downloads,
            **auth.context("overview"),
        )

    @app.get("/endpoints", include_in_schema=False)
    def endpoints_page(request: Request) -> Response:
        auth = page_auth(request)
        if auth is None:
            return to_login()
        scope = auth.scope
        params = request.query_params
        filters, shown, errors = parse_filters(params)
        sort: Literal["address", "severity"] = "address" if params.get("sort") == "address" else "severity"
        offset = parse_offset(params.get("offset"))
        if offset is None:
            message = f"offset must be an integer from 0 to {MAX_OFFSET}"
            return render("error.html", 422, status="422", message=message, **auth.context("endpoints"))
        scans = data.scans(scope)
        known = {s.scan_id for s in scans}
        wanted = params.get("scan")
        scan_id = wanted if wanted in known else data.latest_scan(scope)
        context = auth.context("endpoints")
        if scan_id is None:
            return render("endpoints.html", scan_id=None, error=None, **context)
        page = data.endpoints(scope, scan_id, filters, limit=PAGE_SIZE, offset=offset, sort=sort)
        base = {"scan": scan_id, **filters.to_query(), "sort": sort}

        def href(at: int) -> str:
            return "/endpoints?" + urllib.parse.urlencode({**base, "offset": str(at)})

        prev_href = href(max(0, offset - PAGE_SIZE)) if offset > 0 else None
        next_href = href(offset + PAGE_SIZE) if offset + len(page.items) < page.total else None
        export_query = urllib.parse.urlencode(filters.to_query())
        quoted = urllib.parse.quote(scan_id, safe="")
        downloads = [
            (label, f"/api/scans/{quoted}/export.{fmt}" + (f"?{export_query}" if export_query else ""))
            for label, fmt in (("CSV", "csv"), ("Parquet", "parquet"), ("JSON Lines", "jsonl"))
        ]
        return render(
            "endpoints.html",
            scan_id=scan_id,
            scans=scans,
            page_=page,
            q={
                **{k: None for k in ("protocol", "port", "status", "code", "severity", "country", "asn")},
                "address": None,
                **shown,
            },
            sort=sort,
            error="; ".join(errors) or None,
            protocols=[p.value for p in Protocol],
            statuses=[s.value for s in Status],
            codes=[c.value for c in Code],
            severities=[s.value for s in SeverityFilter],
            prev_href=prev_href,
            next_href=next_href,
            downloads=downloads,
            **context,
        )

    @app.get("/endpoints/{scan_id}/{address}/{port}", include_in_schema=False)
    def endpoint_page(request: Request, scan_id: str, address: str, port: int) -> Response:
        auth = page_auth(request)
        if auth is None:
            return to_login()
        found = data.endpoint(auth.scope, scan_id, address, port)
        if found is None:
            return render("error.html", 404, status="404", message="No such endpoint.", **auth.context(""))
        record, row = found
        return render(
            "endpoint.html",
            record=record,
            row=row,
            remedies=remedies_of(record),
            history=data.history(auth.scope, row.address, row.port),
            api_href=api_endpoint_href(row.scan_id, row.address, row.port),
            **auth.context("endpoints"),
        )

    def selfcheck_context(auth: PageAuth) -> dict[str, Any]:
        return {
            "owner_specs": auth.token.owner.specs(),
            "per_window": config.selfcheck.per_window,
            "window_min": max(1, round(config.selfcheck.window_s / 60)),
            **auth.context("self-check"),
        }

    @app.get("/self-check", include_in_schema=False)
    def self_check_page(request: Request) -> Response:
        auth = page_auth(request)
        if auth is None:
            return to_login()
        return render("self-check.html", error=None, host=None, result=None, **selfcheck_context(auth))

    @app.post("/self-check", include_in_schema=False)
    async def self_check(request: Request) -> Response:
        auth = await run_in_threadpool(page_auth, request)
        if auth is None:
            return to_login()
        fields = await form(request)
        context = selfcheck_context(auth)
        host = fields.get("host", "")
        if not same_origin(request) or not secrets.compare_digest(fields.get("csrf", ""), auth.session.csrf):
            return render(
                "self-check.html",
                403,
                error="stale or cross-site form refused",
                host=host,
                result=None,
                **context,
            )
        try:
            result = await checker.run(auth.scope, host)
        except SelfCheckRefused as exc:
            return render("self-check.html", 403, error=str(exc), host=host, result=None, **context)
        except RateLimited as exc:
            response = render("self-check.html", 429, error=str(exc), host=host, result=None, **context)
            response.headers["retry-after"] = str(int(exc.retry_after) + 1)
            return response
        return render(
            "self-check.html",
            error=None,
            host=host,
            result=result,
            remedies=[remedies_of(r) for r in result.records],
            **context,
        )

    return app
