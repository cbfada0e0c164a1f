"""The attribution of one address: who routes it, where it is, whom to tell.

Filled by the enrich stage from data files the operator holds (MMDB databases, iptoasn ranges, RIR
delegation statistics, RPSL dumps, a contacts CSV); read by reports and notifications. Every field may
be empty: a data file that lacks an address leaves the field empty, it never guesses.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Attribution:
    asn: int | None = None  # origin AS of the most specific route covering the address
    as_name: str | None = None
    country: str | None = None  # geolocation country, ISO 3166-1 alpha-2 (MMDB country databases)
    registry_country: str | None = None  # country of the RIR delegation (delegated-extended stats)
    registry: str | None = None  # afrinic, apnic, arin, lacnic, ripencc
    network: str | None = None  # the most specific prefix matched, CIDR
    abuse_contacts: tuple[str, ...] = ()  # abuse mailboxes (RPSL abuse-c -> role abuse-mailbox, user CSV)
    cert: str | None = None  # national CERT contact for the country (user CSV)
    sources: tuple[str, ...] = ()  # names of the data files that contributed, for provenance
