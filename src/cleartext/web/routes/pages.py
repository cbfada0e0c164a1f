"""The dashboard: server-rendered pages, logging in and out, the stylesheet and the icon.

A page needs a dashboard session (:func:`page_auth`; without one it redirects to /login) and shows
only what the session's token may see, through the same :class:`~cleartext.web.data.WebData` queries
as the API. Forms that change something (log out, self-check) carry the session's CSRF value and are
refused when a browser says they were posted from another site. None of these routes is in the
OpenAPI description.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures when they are declared.

import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from cleartext.findings import Code
from cleartext.record import Protocol, Status
from cleartext.report.html import breakdown_chart, finding_chart, severity_chart, trend_chart
from cleartext.report.stats import Stats
from cleartext.web.data import Scope
from cleartext.web.deps import (
    MAX_OFFSET,
    SeverityFilter,
    StateDep,
    WebState,
    parse_filters,
    parse_offset,
    session_of,
)
from cleartext.web.remedies import remedies_of
from cleartext.web.security import (
    SESSION_COOKIE,
    Session,
    clear_session_cookie,
    read_form,
    same_origin,
    set_session_cookie,
)
from cleartext.web.selfcheck import RateLimited, SelfCheckRefused
from cleartext.web.templating import api_endpoint_href, icon_svg, render, stylesheet_css
from cleartext.web.tokens import TokenInfo

PAGE_SIZE = 50
DOMAINS_SHOWN = 50  # domains listed on the overview; the API pages through the rest

router = APIRouter(include_in_schema=False)


@dataclass(slots=True)
class PageAuth:
    token: TokenInfo
    scope: Scope
    session: Session

    def context(self, page: str) -> dict[str, Any]:
        """What base.html shows of the session: the navigation, who is logged in, the log-out form."""
        return {
            "scope": self.scope,
            "page": page,
            "who": _who(self.token),
            "csrf": self.session.csrf,
            "admin": self.scope.admin,
        }


def page_auth(request: Request) -> PageAuth | None:
    found = session_of(request)
    if found is None:
        return None
    session, token = found
    return PageAuth(token, Scope.of(token), session)


def to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _who(token: TokenInfo) -> str:
    kind = "admin" if token.admin else "owner of " + ", ".join(token.owner.specs())
    return f"{token.label} · {kind}" if token.label else kind


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else ""


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


# -- files ------------------------------------------------------------------------------------------------


@router.get("/static/app.css")
def stylesheet() -> Response:
    return Response(stylesheet_css(), media_type="text/css; charset=utf-8")


@router.get("/static/icon.svg")
def icon() -> Response:
    return Response(icon_svg(), media_type="image/svg+xml")


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response(status_code=204)


# -- logging in and out -----------------------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> Response:
    if page_auth(request) is not None:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", error=None)


@router.post("/login")
async def login(request: Request, state: StateDep) -> Response:
    if not same_origin(request):
        return render(request, "error.html", 403, status="403", message="cross-site form refused")
    fields = await read_form(request)
    token = await run_in_threadpool(state.tokens.verify, fields.get("token", ""))
    if token is None:
        return render(request, "login.html", 401, error="That token is not valid (or has been revoked).")
    sid, _ = state.sessions.create(token.token_id)
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, sid, state.config.session_ttl_s, https=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request, state: StateDep) -> Response:
    fields = await read_form(request)
    session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is not None and same_origin(request):
        if not session.csrf_matches(fields.get("csrf", "")):
            return render(
                request, "error.html", 403, status="403", message="stale form: reload and try again"
            )
        state.sessions.drop(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response)
    return response


# -- the pages --------------------------------------------------------------------------------------------


@router.get("/")
def overview(request: Request, state: StateDep, scan: str | None = None) -> Response:
    auth = page_auth(request)
    if auth is None:
        return to_login()
    data, scope = state.data, auth.scope
    scans = data.scans(scope)
    known = {s.scan_id for s in scans}
    scan_id = scan if scan in known else data.latest_scan(scope)
    if scan_id is None:
        return render(request, "overview.html", stats=None, scan_id=None, **auth.context("overview"))
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
    # stats.domains is None for a scope that sees no domain rows, and for a scan without domains.
    domains = data.domains(scope, scan_id, limit=DOMAINS_SHOWN) if stats.domains is not None else None
    if domains is not None:
        downloads.append(("domains (JSON)", f"/api/scans/{quoted}/domains"))
    return render(
        request,
        "overview.html",
        stats=stats,
        domains=domains,
        scan_id=scan_id,
        scans=scans,
        cards=cards,
        charts=_charts(stats, state.country_field),
        trend=trend,
        downloads=downloads,
        **auth.context("overview"),
    )


@router.get("/endpoints")
def endpoints_page(request: Request, state: StateDep) -> Response:
    auth = page_auth(request)
    if auth is None:
        return to_login()
    data, scope = state.data, auth.scope
    params = request.query_params
    filters, shown, errors = parse_filters(params)
    sort: Literal["address", "severity"] = "address" if params.get("sort") == "address" else "severity"
    offset = parse_offset(params.get("offset"))
    if offset is None:
        message = f"offset must be an integer from 0 to {MAX_OFFSET}"
        return render(request, "error.html", 422, status="422", message=message, **auth.context("endpoints"))
    scans = data.scans(scope)
    known = {s.scan_id for s in scans}
    wanted = params.get("scan")
    scan_id = wanted if wanted in known else data.latest_scan(scope)
    context = auth.context("endpoints")
    if scan_id is None:
        return render(request, "endpoints.html", scan_id=None, error=None, **context)
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
        request,
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


@router.get("/endpoints/{scan_id}/{address}/{port}")
def endpoint_page(request: Request, state: StateDep, scan_id: str, address: str, port: int) -> Response:
    auth = page_auth(request)
    if auth is None:
        return to_login()
    found = state.data.endpoint(auth.scope, scan_id, address, port)
    if found is None:
        return render(
            request, "error.html", 404, status="404", message="No such endpoint.", **auth.context("")
        )
    record, row = found
    return render(
        request,
        "endpoint.html",
        record=record,
        row=row,
        remedies=remedies_of(record),
        history=state.data.history(auth.scope, row.address, row.port),
        api_href=api_endpoint_href(row.scan_id, row.address, row.port),
        **auth.context("endpoints"),
    )


def _selfcheck_context(state: WebState, auth: PageAuth) -> dict[str, Any]:
    settings = state.config.selfcheck
    return {
        "owner_specs": auth.token.owner.specs(),
        "per_window": settings.per_window,
        "window_min": max(1, round(settings.window_s / 60)),
        **auth.context("self-check"),
    }


@router.get("/self-check")
def self_check_page(request: Request, state: StateDep) -> Response:
    auth = page_auth(request)
    if auth is None:
        return to_login()
    context = _selfcheck_context(state, auth)
    return render(request, "self-check.html", error=None, host=None, result=None, **context)


@router.post("/self-check")
async def self_check(request: Request, state: StateDep) -> Response:
    auth = await run_in_threadpool(page_auth, request)
    if auth is None:
        return to_login()
    fields = await read_form(request)
    context = _selfcheck_context(state, auth)
    host = fields.get("host", "")
    if not same_origin(request) or not auth.session.csrf_matches(fields.get("csrf", "")):
        return render(
            request,
            "self-check.html",
            403,
            error="stale or cross-site form refused",
            host=host,
            result=None,
            **context,
        )
    try:
        result = await state.checker.run(auth.scope, host)
    except SelfCheckRefused as exc:
        return render(request, "self-check.html", 403, error=str(exc), host=host, result=None, **context)
    except RateLimited as exc:
        response = render(request, "self-check.html", 429, error=str(exc), host=host, result=None, **context)
        response.headers["retry-after"] = str(int(exc.retry_after) + 1)
        return response
    return render(
        request,
        "self-check.html",
        error=None,
        host=host,
        result=result,
        remedies=[remedies_of(r) for r in result.records],
        **context,
    )
