"""The web dashboard and REST API: `cleartext serve`.

Read-only views of the store for two kinds of people: a CERT or ISP analyst with an *admin* token who
sees everything, and a network owner with an *owner* token who sees only the endpoints in their
networks (an AS, a CIDR, a country) and may run a self-check on their own hosts. See docs/web.md.

Modules:

- :mod:`cleartext.web.tokens`: owner specs, API tokens (stored hashed), the tables that keep them.
- :mod:`cleartext.web.data`: every query the API and the pages make, always inside a token's scope.
- :mod:`cleartext.web.selfcheck`: resolve, authorise, rate-limit and run `check` in-process.
- :mod:`cleartext.web.security`: security headers, sessions and their cookie, CSRF, same-origin forms.
- :mod:`cleartext.web.deps`: the app's state, and what a route takes from a request (token, scope,
  filters).
- :mod:`cleartext.web.remedies`: the fix for each finding of a record, for pages and API alike.
- :mod:`cleartext.web.templating`: the Jinja2 environment over ``templates/*.html``, the stylesheet.
- :mod:`cleartext.web.routes`: the two routers, ``api`` (/api/...) and ``pages`` (the dashboard).
- :mod:`cleartext.web.app`: ``create_app``: builds the state, adds the headers and the routers.

FastAPI, Jinja2 and uvicorn are imported only here, so `cleartext scan` never pays for them.
"""
