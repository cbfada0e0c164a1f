"""The dashboard's pages: Jinja2 templates with autoescaping, the helpers they call, the one stylesheet.

The templates are files of the package (``templates/*.html``), the dashboard's own CSS and its icon
too (``static/``); pyproject.toml declares them package data, and a test builds a wheel and finds every
one of them inside. Everything a server sent (banners, capabilities, certificate names, replies)
reaches a template as a plain string and is escaped by Jinja's autoescape; the only markup inserted
unescaped is the SVG of :mod:`cleartext.report.html`'s charts, which escape every string they draw.

The pages contain no script at all (the CSP says ``script-src 'none'``); filters are plain GET forms,
and the stylesheet is a file of our own (``style-src 'self'``), so no inline style is needed either.
"""

from __future__ import annotations

import functools
import urllib.parse
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup, escape

from cleartext import __version__
from cleartext.findings import info
from cleartext.report.html import CSS as REPORT_CSS
from cleartext.report.html import SEVERITY_COLOUR, colour_css
from cleartext.software import display_name
from cleartext.text import sanitize
from cleartext.web.deps import web_state

# Every template a route renders or a template imports: the wheel test checks each is shipped.
TEMPLATES = (
    "base.html",
    "login.html",
    "overview.html",
    "endpoints.html",
    "record.html",
    "endpoint.html",
    "self-check.html",
    "error.html",
)
STATIC = ("dashboard.css", "icon.svg")


def static_file(name: str) -> str:
    return resources.files("cleartext.web").joinpath("static", name).read_text(encoding="utf-8")


@functools.cache
def stylesheet_css() -> str:
    """/static/app.css: the HTML report's stylesheet and colour classes, then the dashboard's own rules."""
    return REPORT_CSS.strip() + "\n" + colour_css() + "\n" + static_file("dashboard.css").strip() + "\n"


@functools.cache
def icon_svg() -> str:
    return static_file("icon.svg")


# -- what the templates call ------------------------------------------------------------------------------


def endpoint_href(scan_id: str, address: str, port: int) -> str:
    quote = urllib.parse.quote
    return f"/endpoints/{quote(scan_id, safe='')}/{quote(address, safe=':')}/{port}"


def api_endpoint_href(scan_id: str, address: str, port: int) -> str:
    return "/api" + endpoint_href(scan_id, address, port)


def finding_title(code: str) -> str:
    """The catalogue's title of an endpoint or a domain code; blank for one it does not know."""
    try:
        return info(code).title
    except ValueError:
        return ""


def printable(text: str, limit: int = 200) -> str:
    """Text an imported file may have put anywhere (a domain name): control characters shown as escapes.
    Autoescape then makes it safe as HTML; this makes it visible as what it is."""
    return sanitize(str(text), limit)


def sev_class(name: str | None) -> str:
    return name if name in SEVERITY_COLOUR else "info"


def software_name(value: str | None) -> str:
    return display_name(value) if value else ""


def code_spans(text: str) -> Markup:
    """Remediation steps write commands and settings in `backticks`: show them as <code>, escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: show the text as it is
        return Markup(escape(text))
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part)
        for index, part in enumerate(parts)
    )


def environment() -> Environment:
    """Autoescape on for every template (they are all HTML); undefined names are errors, not blanks."""
    env = Environment(
        loader=PackageLoader("cleartext.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["code_spans"] = code_spans
    env.filters["printable"] = printable
    # Globals, not render variables: the record macro is imported by two pages and sees only globals.
    env.globals.update(
        endpoint_href=endpoint_href, sev_class=sev_class, software_name=software_name, title=finding_title
    )
    return env


def render(request: Request, name: str, code: int = 200, **context: Any) -> HTMLResponse:
    """A page of the app serving ``request``; ``scope``, ``page``, ``who`` and ``csrf`` default to blank."""
    state = web_state(request)
    context.setdefault("scope", None)
    context.setdefault("page", "")
    context.setdefault("who", "")
    context.setdefault("csrf", "")
    html = state.templates.get_template(name).render(
        version=__version__,
        country_field=state.country_field,
        country_source=state.config.country_source,
        **context,
    )
    return HTMLResponse(html, status_code=code)
