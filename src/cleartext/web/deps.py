"""What a route takes from its request: the app's state, the token, its scope, the filters.

The state (:class:`WebState`: the store's views, the tokens, the sessions, the self-checker, the
templates) is built once by :func:`cleartext.web.app.create_app` and kept on ``app.state.web``; routes
reach it through :data:`StateDep`, never through module globals, so two apps in one process (the tests
make many) never share a session or a store.

A request's token is its bearer header if it has one (and then only that), else the token of its
dashboard session; it is looked up again on every request, so a revoked token stops working at once.
Its :class:`~cleartext.web.data.Scope` is what every query is confined to.

Filters come from query parameters in two ways that must agree: typed FastAPI parameters for the API
(:func:`api_filters`, a bad value is a 422) and a form's raw values for the endpoints page
(:func:`parse_filters`, a bad value is a message on the page). Both end in :func:`parse_filters`.
"""

# No `from __future__ import annotations`: FastAPI reads these signatures (and the aliases below) when
# a route is declared.

import ipaddress
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment

from cleartext.findings import Code
from cleartext.record import Protocol, Status
from cleartext.report.stats import COUNTRY_SOURCES
from cleartext.web.data import CountrySource, Filters, Scope, WebData
from cleartext.web.security import SESSION_COOKIE, Session, Sessions
from cleartext.web.selfcheck import SelfChecker, SelfCheckSettings
from cleartext.web.tokens import TokenInfo, TokenStore

# The largest `offset` a list takes: far beyond any scan, far within the BIGINT both databases take (an
# offset of 2**63 reached DuckDB and came back as a 503 with the store's path and DuckDB's message).
MAX_OFFSET = 10**15


@dataclass(slots=True)
class AppConfig:
    country_source: CountrySource = "geo"
    selfcheck: SelfCheckSettings = field(default_factory=SelfCheckSettings)
    session_ttl_s: float = 12 * 3600
    max_sessions: int = 10_000


@dataclass(slots=True)
class WebState:
    """Everything the routes of one app share; the app's creator owns the store under ``data``."""

    config: AppConfig
    data: WebData
    tokens: TokenStore
    sessions: Sessions
    checker: SelfChecker
    templates: Environment

    @property
    def country_field(self) -> str:
        """What "country" means on this server, in words (geolocation or registry)."""
        return COUNTRY_SOURCES[self.config.country_source]


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


StateDep = Annotated[WebState, Depends(web_state)]


# -- authentication ---------------------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="An API token: `cleartext token create`.")
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def session_of(request: Request) -> tuple[Session, TokenInfo] | None:
    """The request's dashboard session and its token; a session whose token was revoked is dropped."""
    state = web_state(request)
    session = state.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    token = state.tokens.get(session.token_id)
    if token is None or not token.active:
        state.sessions.drop(request.cookies.get(SESSION_COOKIE))
        return None
    return session, token


def token_of(request: Request, credentials: HTTPAuthorizationCredentials | None) -> TokenInfo | None:
    """The request's token: the bearer header if there is one (and then only it), else the session."""
    if credentials is not None:
        return web_state(request).tokens.verify(credentials.credentials)
    found = session_of(request)
    return found[1] if found is not None else None


def api_token(request: Request, credentials: BearerDep) -> TokenInfo:
    token = token_of(request, credentials)
    if token is None:
        raise HTTPException(
            401, "a valid token is needed (Authorization: Bearer ct_...)", {"WWW-Authenticate": "Bearer"}
        )
    return token


TokenDep = Annotated[TokenInfo, Depends(api_token)]


def api_scope(token: TokenDep) -> Scope:
    return Scope.of(token)


ScopeDep = Annotated[Scope, Depends(api_scope)]


# -- filters and pages ------------------------------------------------------------------------------------


class SeverityFilter(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"
    NONE = "none"


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
    asn: Annotated[str | None, Query(pattern=r"^(?:[Aa][Ss])?[0-9]{1,10}$", description="AS64496")] = None,
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


FiltersDep = Annotated[Filters, Depends(api_filters)]
ScanQuery = Annotated[str | None, Query(alias="scan", description="scan id (default: the latest)")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]


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
