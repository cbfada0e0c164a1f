"""The FastAPI application: the state its routes share, the security headers, the error handlers, the routers.

Authentication. The API takes ``Authorization: Bearer ct_...``; the dashboard logs in with the same
token once and then carries a session cookie that names a server-side session, never the token
(:mod:`cleartext.web.security`). Every request looks the token up again (:mod:`cleartext.web.deps`), so
a revoked token stops working at once, sessions included.

Authorisation is :class:`~cleartext.web.data.Scope`: every data access of both routers
(:mod:`cleartext.web.routes.api`, :mod:`cleartext.web.routes.pages`) goes through
:class:`~cleartext.web.data.WebData` with the request's scope, so an owner token sees only its own
endpoints, by any route, filter or download.

Safety. No page has a script; the CSP is ``default-src 'self'; script-src 'none'`` and the stylesheet
is a file of ours. Every header of :data:`~cleartext.web.security.SECURITY_HEADERS` is set on every
response, HSTS too when the request came over TLS. The OpenAPI description is at /openapi.json; the
interactive docs pages are off, since they load their scripts from a CDN.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cleartext import __version__
from cleartext.store import StoreError
from cleartext.web.data import WebData
from cleartext.web.deps import AppConfig, WebState, validation_message
from cleartext.web.routes import api, pages
from cleartext.web.security import CSP, SESSION_COOKIE, SecurityHeaders, Sessions
from cleartext.web.selfcheck import SelfChecker
from cleartext.web.templating import api_endpoint_href, environment
from cleartext.web.tokens import TokenStore

if TYPE_CHECKING:
    from cleartext.enrich import Enricher
    from cleartext.store import Store

# What `cleartext serve` and the tests take from here, wherever it is defined.
__all__ = ["CSP", "SESSION_COOKIE", "AppConfig", "api_endpoint_href", "create_app"]

log = logging.getLogger("cleartext.web")


async def store_error(request: Request, exc: StoreError) -> JSONResponse:
    # The store's message names its file or URL and the database's own words: for the log only.
    log.error("store error on %s: %s", request.url.path, exc)
    return JSONResponse({"detail": "store unavailable"}, status_code=503)


async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)


def create_app(
    store: Store,
    *,
    enricher: Enricher | None = None,
    fingerprint: str = "none",
    config: AppConfig | None = None,
) -> FastAPI:
    """The application over an open store. The caller owns the store and the enricher (and closes them)."""
    config = config or AppConfig()
    data = WebData(store, enricher, fingerprint=fingerprint, country_source=config.country_source)
    state = WebState(
        config=config,
        data=data,
        tokens=TokenStore(store),
        sessions=Sessions(config.session_ttl_s, config.max_sessions),
        checker=SelfChecker(config.selfcheck, data.lookup, config.country_source),
        templates=environment(),
    )
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
    app.state.web = state
    app.exception_handler(StoreError)(store_error)
    app.exception_handler(RequestValidationError)(invalid_request)
    app.include_router(api.router)
    app.include_router(pages.router)
    return app
