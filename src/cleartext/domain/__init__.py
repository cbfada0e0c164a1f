"""The domain view: what a mail domain tells mail clients and sending servers, and where that leads them.

A server can speak perfect TLS while its domain still steers passwords into clear text: mail clients
configure themselves from what the domain publishes (RFC 6186/8314 SRV records, the Thunderbird autoconfig
file, Microsoft Autodiscover), and sending MTAs decide whether to insist on TLS from the domain's policy
(MTA-STS, RFC 8461; DANE, RFC 7672; TLS-RPT, RFC 8460). The package is the same pipeline as the rest:

    lookup (I/O: DNS, HTTPS) ─▶ DomainObservation ─▶ assess (+ the endpoint records) ─▶ DomainRecord

- ``model``: the typed domain record, its own version and JSON form (``schema/domain.schema.json``).
- ``clientconfig``, ``policy``, ``dane``: sans-IO parsers (SRV, autoconfig/Autodiscover XML, MTA-STS and
  TLS-RPT records and policy, TLSA matching). Every byte they read is hostile; they never raise on it.
- ``fetch``: the only I/O here: DNS queries (with the DNSSEC AD bit) and bounded HTTPS requests.
- ``lookup``: one domain's lookups, run together, into a DomainObservation.
- ``assess``: the rules that turn a DomainObservation and the endpoint records into findings.
"""

from __future__ import annotations
