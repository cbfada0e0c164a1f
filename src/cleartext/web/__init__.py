"""The web dashboard and REST API: `cleartext serve`.

Read-only views of the store for two kinds of people: a CERT or ISP analyst with an *admin* token who
sees everything, and a network owner with an *owner* token who sees only the endpoints in their
networks (an AS, a CIDR, a country) and may run a self-check on their own hosts. See docs/web.md.

Modules:

- :mod:`cleartext.web.tokens`: owner specs, API tokens (stored hashed), the tables that keep them.
- :mod:`cleartext.web.data`: every query the API and the pages make, always inside a token's scope.
- :mod:`cleartext.web.selfcheck`: resolve, authorise, rate-limit and run `check` in-process.
- :mod:`cleartext.web.app`: the FastAPI application (API, pages, sessions, security headers).

FastAPI, Jinja2 and uvicorn are imported only here, so `cleartext scan` never pays for them.
"""
