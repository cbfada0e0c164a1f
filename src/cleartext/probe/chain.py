"""The certificate chain: read from the TLS object, described and verified once per distinct chain."""

from __future__ import annotations

import copy
import ssl
from functools import lru_cache
from typing import TYPE_CHECKING

from cleartext.record import Certificate, TLSPhase
from cleartext.tls import certs

if TYPE_CHECKING:
    from cleartext.probe.dialog import EndpointProbe


@lru_cache(maxsize=4096)
def describe(der: bytes) -> Certificate:
    """Certificate facts, parsed once per certificate: the ports of one host share their chain."""
    return certs.describe(der)


@lru_cache(maxsize=4096)
def verify(chain: tuple[bytes, ...], ca_files: tuple[str, ...]) -> certs.TrustVerdict:
    """Chain verification, once per distinct chain (it was the probe's costliest step after the handshake)."""
    return certs.verify_chain(chain, certs.trust_roots(ca_files))


def peer_chain(ssl_object: ssl.SSLObject) -> list[bytes]:
    """The chain the server sent, leaf first (Python 3.13 has a public API; 3.11/3.12 a private one)."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:
        inner = getattr(ssl_object, "_sslobj", None)
        getter = getattr(inner, "get_unverified_chain", None)
    if getter is not None:
        try:
            chain = getter() or []
            out = []
            for cert in chain:
                der = cert if isinstance(cert, bytes) else cert.public_bytes(2)  # _ssl.ENCODING_DER
                out.append(der)
            if out:
                return out
        except (ssl.SSLError, ValueError, TypeError, AttributeError):
            pass
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []




def judge(ep: EndpointProbe) -> None:
    if not ep.chain:
        return
    if ep.obs.tls is None:
        ep.obs.tls = TLSPhase(error="no complete handshake; chain from a raw hello")
    tls = ep.obs.tls
    tls.chain = [copy.copy(describe(der)) for der in ep.chain[:10]]
    verdict = verify(tuple(ep.chain[:10]), ep.settings.ca_files)
    tls.trusted = verdict.trusted
    tls.verify_error = verdict.error
    if ep.target.hostname:
        tls.hostname_checked = ep.target.hostname
        tls.hostname_match = certs.hostname_matches(ep.chain[0], ep.target.hostname)

