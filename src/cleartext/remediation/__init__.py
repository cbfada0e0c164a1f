"""How to fix each finding, for the software that was found: steps, a configuration snippet, references.

Why this exists: a finding that says "cleartext-login" helps nobody until the mail admin knows which line
of which file to change. `cleartext check` prints the :class:`Remedy` once per software and finding,
notification e-mails quote it, and ``docs/findings.md`` is rendered from the same data, so the advice
exists once. Given the host checked and the ports of the finding, its commands are the admin's own
(``openssl s_client -connect HOST:25 -starttls smtp``); without them they name mail.example.com.

The advice is data: one TOML file per software in this package (``dovecot.toml``, ``postfix.toml``, ...),
``generic.toml`` for everything else, ``domain.toml`` for the domain view and ``common.toml`` for what
they share (:mod:`.data` says what a file holds, :mod:`.render` how its fields are filled). To add or fix
advice for a software, edit its file; ``tests/unit/test_remediation_data.py`` renders every entry.

What is covered. Concrete configuration for Dovecot (2.3, with the 2.4 names where they differ), Postfix,
Exim, Courier, Microsoft Exchange, Cyrus IMAP (imapd.conf, cyrus.conf) and OpenSMTPD (smtpd.conf); a
hosted-service note for Gmail; generic text for everything else.
The advice must be *correct for the software found*, so a product is only used for a protocol it serves
(:func:`cleartext.software.serves`): a "Postfix" IMAP endpoint is a mis-identification and gets the
generic text. Dovecot does answer on SMTP: its submission service (Dovecot 2.3+) is configured with the
same ``ssl`` and plaintext-authentication settings as IMAP and POP3.

Sources: each data file's first lines say what its setting names were checked against. Paths such as
``/etc/letsencrypt/live/mail.example.com/`` and names such as ``EX01`` are examples to adapt.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from cleartext.findings import Code, DomainCode
from cleartext.record import Protocol
from cleartext.remediation.data import ANY, Book, book
from cleartext.remediation.render import PLACEHOLDER, Scope, Site, is_address, site_values
from cleartext.software import Software, display_name, serves

__all__ = [
    "GENERIC",
    "GNUTLS_STRONG",
    "GNUTLS_VERSIONS",
    "OPENSSL_CIPHERS",
    "PLACEHOLDER",
    "SPECIFIC",
    "Remedy",
    "Site",
    "domain_remedy",
    "remedy",
    "targets",
]

GENERIC = "generic"
"""The label of the fallback advice, for software we do not know or could not identify."""


@dataclass(frozen=True, slots=True)
class Remedy:
    """Advice for one finding on one kind of server.

    ``software`` is the label of the advice actually given ("Dovecot", "generic"), which is not always
    the software identified: an unknown product, or one seen on a protocol it cannot serve, gets the
    generic advice and the label says so.
    """

    software: str
    steps: tuple[str, ...]
    config: str | None = None  # a snippet to paste, with comments saying where it goes
    references: tuple[str, ...] = ()  # RFCs and documentation, by name


_COMMON = book("common")

SPECIFIC: tuple[Software, ...] = tuple(Software(name) for name in _COMMON.software)
"""Products with their own advice (every other product gets the generic text)."""

OPENSSL_CIPHERS = Scope([_COMMON], None, {}).render("{{openssl_ciphers}}")
"""An OpenSSL cipher string without any of our weak classes (it is Dovecot 2.3's own default)."""

GNUTLS_VERSIONS = Scope([_COMMON], None, {}).render("{{gnutls_versions}}")
"""A GnuTLS priority string for TLS 1.2 and later."""

GNUTLS_STRONG = Scope([_COMMON], None, {}).render("{{gnutls_strong}}")
"""The same without static-RSA key exchange, 3DES and RC4 (NULL, anonymous and export are not in NORMAL)."""


def targets() -> list[tuple[str, Protocol]]:
    """Every (software label key, protocol) pair with its own advice, generic first: what the doc lists."""
    pairs: list[tuple[str, Protocol]] = [(GENERIC, p) for p in Protocol]
    pairs += [(sw.value, p) for sw in SPECIFIC for p in Protocol if serves(sw, p)]
    return pairs


def _identify(software: str | None, protocol: Protocol) -> Software | None:
    """The product, when it is one we know and it can serve ``protocol``."""
    if not software:
        return None
    try:
        sw = Software(str(software).strip().lower())
    except ValueError:
        return None
    return sw if serves(sw, protocol) else None


def _render(
    books: list[Book], code: str, protocol: Protocol | None, site: Site | None
) -> tuple[Book, Remedy]:
    """The entry for ``code`` in the first of ``books`` that has one (else their ``[any]``), rendered with
    the fragments of all of them; and the file it came from."""
    for owner, entry in ((b, b.entry(key, protocol)) for key in (code, ANY) for b in books):
        if entry is not None:
            scope = Scope(books, protocol, {})
            if site is not None:
                scope.values.update(site_values(_COMMON, scope, site))
            steps, config, refs = scope.entry(entry)
            return owner, Remedy(owner.label, tuple(steps), config, tuple(refs))
    raise LookupError(f"no advice for {code} in {', '.join(b.name for b in books)}")  # the tests render all


def remedy(
    code: Code | str,
    software: str | None,
    protocol: Protocol,
    *,
    host: str | None = None,
    ports: Sequence[tuple[int, bool]] = (),
) -> Remedy:
    """The advice for ``code`` on a server running ``software`` (a :class:`Software` value or None).

    ``host`` (the name or address being checked) and ``ports`` (where the finding was seen: port, implicit
    TLS) make the commands in the advice the admin's own: ``openssl s_client`` on those ports of that
    host, certificates for that name. Without them the advice is the documentation's, for
    mail.example.com on the protocol's standard ports.

    Falls back to generic advice when the software is unknown, has no file of its own, or cannot
    serve ``protocol``. Raises ValueError for an unknown code or protocol.
    """
    code = Code(code)
    protocol = Protocol(protocol)
    site = Site(host.rstrip(".").lower() if host else None, tuple(ports))
    sw = _identify(software, protocol)
    generic = book(GENERIC)
    own = book(sw.value) if sw in SPECIFIC else None
    owner, fix = _render([own or generic, _COMMON], code, protocol, site)
    if owner is _COMMON:
        # An entry every software shares: under the product's own name where it has a file.
        fix = dataclasses.replace(fix, software=display_name(sw) if own and sw else GENERIC)
    elif owner is generic and sw is not None:
        # A product we recognise without a file of its own: the generic steps, saying so first.
        first = Scope([generic], protocol, {"product": display_name(sw)}).render(generic.identified or "")
        fix = dataclasses.replace(fix, steps=(first, *fix.steps))
    return _for_host(fix, site)


def _for_host(fix: Remedy, site: Site) -> Remedy:
    """Name the checked host wherever the advice names a host: certificates, paths, SNI blocks. An address
    is no name for a certificate, so advice for an address keeps the placeholder there."""
    if not site.host or is_address(site.host):
        return fix
    return dataclasses.replace(
        fix,
        steps=tuple(step.replace(PLACEHOLDER, site.host) for step in fix.steps),
        config=fix.config.replace(PLACEHOLDER, site.host) if fix.config else None,
    )


def domain_remedy(code: DomainCode | str) -> Remedy:
    """The advice for a domain finding (one text per code: zone records, policy files, certificates).
    Raises ValueError for an unknown code."""
    return _render([book("domain"), _COMMON], DomainCode(code), None, None)[1]
