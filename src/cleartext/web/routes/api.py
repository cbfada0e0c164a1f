"""The REST API under /api: read-only JSON and downloads of the store, each inside the token's scope.

Every route takes its scope from :data:`~cleartext.web.deps.ScopeDep` (a bearer token, or the
dashboard's session for GETs) and reads only through :class:`~cleartext.web.data.WebData` with it, so
an owner token sees only its own endpoints by any route, filter or download. An endpoint outside the
scope is a 404, the same answer as one that does not exist. The self-check is the one POST, and takes
a bearer token only.
"""

# No `from __future__ import annotations`: FastAPI reads the route signatures when they are declared.

import json
import tempfile
import urllib.parse
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from cleartext.report.html import render_html
from cleartext.store import LATEST, StoreError
from cleartext.web.data import Page, Scope, WebData
from cleartext.web.deps import (
    BearerDep,
    FiltersDep,
    Limit,
    Offset,
    ScanQuery,
    ScopeDep,
    StateDep,
    TokenDep,
)
from cleartext.web.remedies import remediation_json
from cleartext.web.security import MAX_FORM_BYTES
from cleartext.web.selfcheck import RateLimited, SelfCheckRefused

router = APIRouter()


class ExportFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSONL = "jsonl"


_MEDIA = {
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/x-ndjson",
}


def scan_or_404(data: WebData, scope: Scope, scan_id: str | None) -> str:
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


def page_json(page: Page, request: Request) -> dict[str, Any]:
    """A page of a list with its total, and the URL of the next page (the same query, the next offset)."""
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


@router.get("/api/me", tags=["tokens"])
def api_me(state: StateDep, token: TokenDep) -> dict[str, Any]:
    """The token making the request: its kind, what it owns, and which country ownership uses."""
    return {
        **token.to_dict(),
        "country_source": state.config.country_source,
        "country_field": state.country_field,
    }


@router.get("/api/scans", tags=["scans"])
def api_scans(state: StateDep, scope: ScopeDep) -> dict[str, Any]:
    """Every scan, oldest first. Owner tokens get their own endpoint counts and no scan parameters."""
    return {"items": [v.to_dict() for v in state.data.scans(scope)]}


@router.get("/api/scans/{scan_id}", tags=["scans"])
def api_scan(state: StateDep, scope: ScopeDep, scan_id: str) -> dict[str, Any]:
    view = state.data.scan(scope, scan_or_404(state.data, scope, scan_id))
    if view is None:
        raise HTTPException(404, f"no scan {scan_id!r}")
    return view.to_dict()


@router.get("/api/scans/{scan_id}/stats", tags=["statistics"])
def api_stats(state: StateDep, scope: ScopeDep, scan_id: str) -> dict[str, Any]:
    """The report statistics (as `cleartext report --format json`) of the token's endpoints."""
    return state.data.stats(scope, scan_or_404(state.data, scope, scan_id)).to_dict()


@router.get("/api/scans/{scan_id}/domains", tags=["domains"])
def api_domains(
    request: Request,
    state: StateDep,
    scope: ScopeDep,
    scan_id: str,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The scan's domain records (imported `check DOMAIN --json` lines), worst first: MX hosts, MTA-STS
    mode, TLS-RPT, DANE and the findings with their evidence. Admin tokens only (403 for an owner token:
    a domain cannot be tied to an owner's networks, docs/web.md)."""
    scan_id = scan_or_404(state.data, scope, scan_id)
    if not state.data.sees_domains(scope):
        raise HTTPException(403, "domain records are visible to admin tokens only")
    page = state.data.domains(scope, scan_id, limit=limit, offset=offset)
    return {"scan_id": scan_id, **page_json(page, request)}


@router.get("/api/trend", tags=["statistics"])
def api_trend(
    state: StateDep, scope: ScopeDep, upto: Annotated[str | None, Query()] = None
) -> dict[str, Any]:
    """Series across the token's last scans (up to 12, up to scan ``upto``): totals and breakdowns."""
    series = state.data.trend(scope, upto)
    return series.to_dict() if series is not None else {"scans": [], "series": {}}


@router.get("/api/scans/{scan_id}/report.html", tags=["downloads"], response_class=HTMLResponse)
def api_report(state: StateDep, scope: ScopeDep, scan_id: str) -> Response:
    """The self-contained HTML report of the token's endpoints in this scan (a download)."""
    scan_id = scan_or_404(state.data, scope, scan_id)
    page = render_html(state.data.stats(scope, scan_id), state.data.trend(scope, scan_id))
    return HTMLResponse(
        page, headers={"content-disposition": f'attachment; filename="cleartext-{scan_id}.html"'}
    )


@router.get("/api/scans/{scan_id}/export.{fmt}", tags=["downloads"])
def api_export(
    state: StateDep, scope: ScopeDep, filters: FiltersDep, scan_id: str, fmt: ExportFormat
) -> Response:
    """The token's endpoints of a scan (filtered) as CSV, Parquet or JSON Lines: the store's formats."""
    scan_id = scan_or_404(state.data, scope, scan_id)
    folder = tempfile.TemporaryDirectory(prefix="cleartext-web-")
    path = Path(folder.name) / f"export.{fmt.value}"
    try:
        state.data.export(scope, scan_id, filters, fmt.value, path)
    except BaseException:
        folder.cleanup()
        raise
    return FileResponse(
        path,
        media_type=_MEDIA[fmt.value],
        filename=f"cleartext-{scan_id}.{fmt.value}",
        background=BackgroundTask(folder.cleanup),
    )


@router.get("/api/endpoints", tags=["endpoints"])
def api_endpoints(
    request: Request,
    state: StateDep,
    scope: ScopeDep,
    filters: FiltersDep,
    scan: ScanQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["address", "severity"], Query()] = "address",
) -> dict[str, Any]:
    """Endpoints of a scan (one per address and port), filtered, in address order or worst first."""
    scan_id = scan_or_404(state.data, scope, scan)
    page = state.data.endpoints(scope, scan_id, filters, limit=limit, offset=offset, sort=sort)
    return {"scan_id": scan_id, **page_json(page, request)}


@router.get("/api/endpoints/{scan_id}/{address}/{port}", tags=["endpoints"])
def api_endpoint(state: StateDep, scope: ScopeDep, scan_id: str, address: str, port: int) -> dict[str, Any]:
    """One endpoint: the whole record, its attribution, the fix for each finding, and its history."""
    found = state.data.endpoint(scope, scan_id, address, port)
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
        "remediation": remediation_json(record),
        "history": [h.to_dict() for h in state.data.history(scope, row.address, row.port)],
    }


@router.get("/api/findings", tags=["findings"])
def api_findings(
    request: Request,
    state: StateDep,
    scope: ScopeDep,
    filters: FiltersDep,
    scan: ScanQuery = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """One row per finding per endpoint, worst first; ``code`` and ``severity`` filter the findings."""
    scan_id = scan_or_404(state.data, scope, scan)
    page = state.data.findings(scope, scan_id, filters, limit=limit, offset=offset)
    return {"scan_id": scan_id, **page_json(page, request)}


@router.post("/api/self-check", tags=["self-check"])
async def api_self_check(request: Request, state: StateDep, credentials: BearerDep) -> JSONResponse:
    """Check a host of the token's own networks now (JSON body ``{"host": "mail.example.net"}``).

    Bearer tokens only (the dashboard's form does the same for a session). 403 when the host
    resolves outside the token's networks, 429 past the per-token rate limit.
    """
    if credentials is None:
        raise HTTPException(401, "a bearer token is needed", {"WWW-Authenticate": "Bearer"})
    token = await run_in_threadpool(state.tokens.verify, credentials.credentials)
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
        result = await state.checker.run(Scope.of(token), host)
    except SelfCheckRefused as exc:
        raise HTTPException(403, str(exc)) from None
    except RateLimited as exc:
        raise HTTPException(429, str(exc), {"Retry-After": str(int(exc.retry_after) + 1)}) from None
    return JSONResponse(
        {
            "host": result.host,
            "addresses": result.addresses,
            "records": [r.to_dict() for r in result.records],
            "remediation": [remediation_json(r) for r in result.records],
        }
    )
