"""Notify: tell the owners of affected mail servers, by e-mail, once per scan, never in clear.

- :mod:`.subscriptions` — who wants to hear about what (ASNs, prefixes, countries), validated input
  and the matching of endpoints to recipients;
- :mod:`.ledger` — the tables in the results store: recipients, subscriptions, opt-outs, and the
  per-(scan, recipient) ledger that makes delivery exactly-once across crashes;
- :mod:`.compose` and :mod:`.templates` — the message: summary, endpoints, fixes, CSV attachment,
  plain text and HTML, English and French;
- :mod:`.smtp` — the relay connection, TLS required, the hook before the end of data;
- :mod:`.run` — one `cleartext notify` run.

See docs/notify.md. The CLI commands are in :mod:`cleartext.cli.notify`.
"""
