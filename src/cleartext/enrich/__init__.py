"""Enrich: attribute each address to its AS, country and abuse contact, from data files users hold.

Offline by design: every fact comes from a file the operator downloaded (MMDB databases, iptoasn TSV,
RIR delegation statistics, RPSL dumps) or wrote (a contacts CSV); a lookup fetches nothing. The files
are downloaded beforehand by `cleartext data fetch` (fetch.py, sources.py, datadir.py). See
docs/attribution.md for the formats, the field mapping and the precedence between sources.
"""

from cleartext.enrich.enricher import DEFAULT_CACHE_SIZE, Enricher
from cleartext.enrich.errors import EnrichError
from cleartext.enrich.model import Attribution

__all__ = ["DEFAULT_CACHE_SIZE", "Attribution", "EnrichError", "Enricher"]
