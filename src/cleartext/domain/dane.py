"""DANE for SMTP, sans-IO: does a TLSA RRset (RFC 6698, RFC 7672) match the chain a port-25 scan saw?

RFC 7672 3.1.3: SMTP clients use only DANE-TA(2) and DANE-EE(3) records; PKIX-TA(0) and PKIX-EE(1) are
"unusable". A scan keeps, per certificate, the SHA-256 of the whole certificate and of its public key
(SubjectPublicKeyInfo), so the records cleartext can check are ``3 0 1``, ``3 1 1``, ``2 0 1`` and
``2 1 1`` — the ones RFC 7671 5 recommends and nearly every domain publishes. A set whose usable records
are all of another matching type (0: exact, 2: SHA-512) is "unverifiable", never a mismatch.

DANE-EE matches the leaf only (its names and dates do not matter, RFC 7672 3.1.1); DANE-TA matches a
certificate the server sent above the leaf (3.1.2), which must then be in the chain: a TA published only
in DNS is not checked here.
"""

from __future__ import annotations

from collections.abc import Sequence

from cleartext.domain.model import Tlsa
from cleartext.record import Certificate

USABLE = (2, 3)
CHECKABLE_MATCHING = (1,)  # SHA2-256, what the record keeps
MATCH = "match"
MISMATCH = "mismatch"
UNVERIFIABLE = "unverifiable"
UNUSABLE = "unusable"


def label(record: Tlsa) -> str:
    """``3 1 1 ab12cd34…`` for evidence and the terminal."""
    data = record.data[:16] + ("…" if len(record.data) > 16 else "")
    return f"{record.usage} {record.selector} {record.matching_type} {data}"


def _digest(cert: Certificate, selector: int) -> str | None:
    if selector == 0:
        return cert.sha256
    if selector == 1:
        return cert.spki_sha256
    return None


def match_chain(records: Sequence[Tlsa], chain: Sequence[Certificate]) -> tuple[str, Tlsa | None]:
    """The verdict for one served chain (leaf first) and the record that matched, if any."""
    usable = [
        r for r in records if r.usage in USABLE and r.selector in (0, 1) and r.matching_type in (0, 1, 2)
    ]
    if not usable:
        return UNUSABLE, None
    checkable = [r for r in usable if r.matching_type in CHECKABLE_MATCHING]
    for record in checkable:
        candidates = chain[:1] if record.usage == 3 else chain[1:]
        for cert in candidates:
            digest = _digest(cert, record.selector)
            if digest is not None and digest == record.data.lower():
                return MATCH, record
    if not checkable:
        return UNVERIFIABLE, None
    # A DANE-EE selector-1 record against a leaf whose key hash was not kept (an old record) cannot fail.
    if all(r.selector == 1 and any(c.spki_sha256 is None for c in chain) for r in checkable):
        return UNVERIFIABLE, None
    return MISMATCH, None
