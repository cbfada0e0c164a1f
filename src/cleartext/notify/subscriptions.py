"""Who is told about what: recipients, what they subscribe to, and which endpoints reach which mailbox.

A recipient is an e-mail address with a language (``en`` or ``fr``) and an optional name. It subscribes
to autonomous systems (an ISP, a hoster), to prefixes (a university's /16) or to whole countries (a
national CERT). Matching is done on the attribution of each endpoint's address, so what an ASN or a
country subscription reaches depends on the attribution data the operator gives `cleartext notify`.

Everything a person types here ends up in the store and later in an e-mail header, so it is validated
strictly and refused with a one-line :class:`SubscriptionError` (the CLI turns it into exit status 2):
an address we could not deliver to, a prefix with host bits set, a country code ISO 3166-1 does not
assign. Addresses are kept in lower case so that ``Abuse@Example.NET`` and ``abuse@example.net`` are one
recipient (local parts are case-sensitive in theory and case-blind on every real mail system).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cleartext.enrich.model import Attribution
from cleartext.errors import CleartextError

__all__ = [
    "COUNTRIES",
    "KINDS",
    "LANGUAGES",
    "Matcher",
    "Recipient",
    "Subscription",
    "SubscriptionError",
    "check_email",
    "check_lang",
    "check_name",
    "parse_selector",
]

Kind = Literal["asn", "cidr", "country"]
KINDS: tuple[Kind, ...] = ("asn", "cidr", "country")
LANGUAGES = ("en", "fr")

# ISO 3166-1 alpha-2, the 249 assigned codes (Debian iso-codes 4.x), plus XK: Kosovo is user-assigned
# in ISO 3166 but used by the RIRs and the geolocation databases, so a CERT may well subscribe to it.
_COUNTRY_LIST = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV
    BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES
    ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE
    IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU
    NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM
    SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW XK
"""
COUNTRIES: frozenset[str] = frozenset(_COUNTRY_LIST.split())

# RFC 5321/5322 dot-atom local part and a DNS host name of at least two labels. No quoted local parts,
# no address literals, ASCII only: we do not ask the relay for SMTPUTF8, and a notification that
# bounces for want of it helps nobody.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@({_LABEL}(?:\.{_LABEL})+)")
_ASN = re.compile(r"(?:AS)?(\d{1,10})", re.IGNORECASE)
MAX_NAME = 200


class SubscriptionError(CleartextError, ValueError):
    """Bad input for a subscription: the message is one line, fit for `cleartext: error: ...`."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """A mailbox that receives notifications, in its language, addressed by name when known."""

    email: str
    lang: str = "en"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Subscription:
    """One thing a recipient wants to hear about: ``asn`` 64500, ``cidr`` 192.0.2.0/24, ``country`` FR."""

    email: str
    kind: Kind
    value: str

    @property
    def label(self) -> str:
        """How the subscription is named to people: AS64500, 192.0.2.0/24, FR."""
        return f"AS{self.value}" if self.kind == "asn" else self.value


def check_email(text: str) -> str:
    """The address in canonical (lower-case) form; SubscriptionError when it is not one we can mail."""
    address = text.strip()
    match = _EMAIL.fullmatch(address)
    if match is None or len(address) > 254 or len(match.group(1)) > 64:
        raise SubscriptionError(f"invalid e-mail address {text!r}: expected local@domain.example (ASCII)")
    tld = match.group(2).rsplit(".", 1)[1]
    if tld.isdigit():
        raise SubscriptionError(f"invalid e-mail address {text!r}: the domain is not a host name")
    return address.lower()


def check_lang(text: str) -> str:
    lang = text.strip().lower()
    if lang not in LANGUAGES:
        raise SubscriptionError(f"unknown language {text!r}: expected {' or '.join(LANGUAGES)}")
    return lang


def check_name(text: str | None) -> str | None:
    """A display name for the To: header: printable, one line, bounded; empty means none."""
    if text is None or not text.strip():
        return None
    name = text.strip()
    if len(name) > MAX_NAME:
        raise SubscriptionError(f"name too long ({len(name)} characters, at most {MAX_NAME})")
    if not name.isprintable():
        raise SubscriptionError(f"invalid name {text!r}: control or invisible characters")
    return name


def parse_selector(kind: str, text: str) -> tuple[Kind, str]:
    """Validate one ``--asn``/``--cidr``/``--country`` value; returns (kind, canonical value)."""
    value = text.strip()
    if kind == "asn":
        match = _ASN.fullmatch(value)
        number = int(match.group(1)) if match else -1
        if not 0 < number < 2**32:
            raise SubscriptionError(f"invalid AS number {text!r}: expected 1 to 4294967295, e.g. 64500")
        return "asn", str(number)
    if kind == "cidr":
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise SubscriptionError(
                f"invalid CIDR {text!r}: expected a prefix such as 192.0.2.0/24"
            ) from None
        if "/" not in value:
            raise SubscriptionError(f"invalid CIDR {text!r}: no prefix length (write {network})")
        if str(network.network_address) != str(ipaddress.ip_address(value.split("/", 1)[0])):
            raise SubscriptionError(f"invalid CIDR {text!r}: host bits set (did you mean {network}?)")
        return "cidr", str(network)
    if kind == "country":
        code = value.upper()
        if code not in COUNTRIES:
            raise SubscriptionError(f"unknown country code {text!r}: expected ISO 3166-1 alpha-2, e.g. FR")
        return "country", code
    raise SubscriptionError(f"unknown subscription kind {kind!r}: expected one of {', '.join(KINDS)}")


def country_of(attribution: Attribution, source: str = "geo") -> str | None:
    """The country a country subscription is matched on.

    ``geo`` (default) is where the address is used (geolocation), ``registry`` where its holder is
    registered. Each falls back to the other when the data lacks it: with only RIR files there is no
    geolocation, and a CERT should still hear about its country's registrants.
    """
    first, second = (
        (attribution.country, attribution.registry_country)
        if source == "geo"
        else (attribution.registry_country, attribution.country)
    )
    return (first or second or "").upper() or None


class Matcher:
    """Which subscribers an endpoint concerns, given its address and attribution.

    ASN and country subscriptions are dictionary look-ups; prefixes are tested one by one (subscribed
    prefixes number in the hundreds, not millions). The answer for an address is cached: a record
    repeats its address once per port.
    """

    def __init__(self, subscriptions: Iterable[Subscription], country_source: str = "geo") -> None:
        self.by_asn: dict[int, set[str]] = {}
        self.by_country: dict[str, set[str]] = {}
        self.prefixes: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str, str]] = []
        self.country_source = country_source
        for sub in subscriptions:
            if sub.kind == "asn":
                self.by_asn.setdefault(int(sub.value), set()).add(sub.email)
            elif sub.kind == "country":
                self.by_country.setdefault(sub.value, set()).add(sub.email)
            else:
                self.prefixes.append((ipaddress.ip_network(sub.value), sub.email, sub.value))
        self._cache: dict[str, dict[str, list[str]]] = {}

    def match(self, address: str, attribution: Attribution) -> dict[str, list[str]]:
        """Subscribers concerned by this address -> the labels of the subscriptions that matched."""
        cached = self._cache.get(address)
        if cached is not None:
            return cached
        found: dict[str, list[str]] = {}
        if attribution.asn is not None:
            for email in self.by_asn.get(attribution.asn, ()):
                found.setdefault(email, []).append(f"AS{attribution.asn}")
        country = country_of(attribution, self.country_source)
        if country is not None:
            for email in self.by_country.get(country, ()):
                found.setdefault(email, []).append(country)
        if self.prefixes:
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                ip = None
            if ip is not None:
                for network, email, label in self.prefixes:
                    if ip.version == network.version and ip in network:
                        found.setdefault(email, []).append(label)
        if len(self._cache) < 1 << 16:
            self._cache[address] = found
        return found


def describe(selectors: Sequence[tuple[str, str]]) -> str:
    """``AS64500, 192.0.2.0/24, FR``: selectors as people write them."""
    return ", ".join(f"AS{v}" if k == "asn" else v for k, v in selectors)
