"""API tokens: who may read what. Owner specs, token creation, verification and revocation.

A token is ``ct_<id>_<secret>``: ``id`` (8 hex digits) is public — it names the token in listings and
in ``token revoke`` — and ``secret`` is 32 random bytes, URL-safe base64. The store keeps only the
SHA-256 of the secret: a stolen database gives no usable token, and since the secret has 256 bits of
entropy, a plain hash needs no salt or slow KDF (nobody can guess their way to a preimage). A
presented token is found by its id and its hash compared with :func:`hmac.compare_digest`, so the
comparison takes the same time wherever the first differing byte is.

An **owner** token carries one or more owner specs; it sees an endpoint when the endpoint's address
is inside one of its CIDRs, or the address's attribution (from the data files given to ``serve``)
names one of its ASNs or countries. An **admin** token sees everything. See docs/web.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cleartext.errors import CleartextError

if TYPE_CHECKING:
    from cleartext.store import Store

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

TOKEN_PREFIX = "ct_"
_TOKEN_RE = re.compile(r"ct_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_ASN_RE = re.compile(r"(?i)AS(\d{1,10})")
_COUNTRY_RE = re.compile(r"[A-Za-z]{2}")
MAX_OWNER_SPECS = 256
MAX_LABEL = 200

TOKENS_DDL = """
CREATE TABLE IF NOT EXISTS web_tokens (
    token_id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    admin BOOLEAN NOT NULL,
    owners TEXT NOT NULL,
    label TEXT,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


class TokenError(CleartextError):
    """A bad owner spec, an unknown token id: one line, for the CLI and the API alike."""


@dataclass(frozen=True, slots=True)
class Owner:
    """What an owner token owns: networks, AS numbers, ISO country codes (any of them suffices)."""

    networks: tuple[IPNetwork, ...] = ()
    asns: tuple[int, ...] = ()
    countries: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.networks or self.asns or self.countries)

    def specs(self) -> list[str]:
        """The owner as the specs a user types, in a stable order."""
        return [
            *(f"AS{asn}" for asn in self.asns),
            *(str(net) for net in self.networks),
            *self.countries,
        ]

    def covers_address(self, address: str) -> bool:
        """True when the address lies in one of the owner's networks (attribution not consulted)."""
        ip = ipaddress.ip_address(address)
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self.networks)


def parse_owner(specs: Sequence[str]) -> Owner:
    """``AS64496``, ``192.0.2.0/24`` (or one address), ``2001:db8::/32``, ``FR`` → an :class:`Owner`.

    Raises TokenError naming the first spec that is none of those, or a CIDR with host bits set
    (``192.0.2.7/24`` is almost always a typo for a /24 or for one address; we do not guess which).
    """
    networks: list[IPNetwork] = []
    asns: list[int] = []
    countries: list[str] = []
    if len(specs) > MAX_OWNER_SPECS:
        raise TokenError(f"at most {MAX_OWNER_SPECS} --owner values per token")
    for raw in specs:
        spec = raw.strip()
        if match := _ASN_RE.fullmatch(spec):
            asn = int(match.group(1))
            if not 0 < asn < 2**32:
                raise TokenError(f"invalid owner {raw!r}: AS numbers run from 1 to 4294967295")
            asns.append(asn)
        elif _COUNTRY_RE.fullmatch(spec):
            countries.append(spec.upper())
        else:
            try:
                networks.append(ipaddress.ip_network(spec, strict=True))
            except ValueError as exc:
                raise TokenError(
                    f"invalid owner {raw!r}: expected an AS number (AS64496), a CIDR (192.0.2.0/24) "
                    f"or a two-letter country code (FR) ({exc})"
                    if "/" in spec
                    else f"invalid owner {raw!r}: expected an AS number (AS64496), a CIDR "
                    "(192.0.2.0/24) or a two-letter country code (FR)"
                ) from None
    return Owner(
        networks=tuple(dict.fromkeys(networks)),
        asns=tuple(dict.fromkeys(asns)),
        countries=tuple(dict.fromkeys(countries)),
    )


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed: never the secret, which the store does not have."""

    token_id: str
    admin: bool
    owner: Owner = field(default_factory=Owner)
    label: str | None = None
    created_at: str = ""
    revoked_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.token_id,
            "kind": "admin" if self.admin else "owner",
            "owners": self.owner.specs(),
            "label": self.label,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TokenStore:
    """Tokens in the results store (table ``web_tokens``, created on first use)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        store.ensure_tables("web_tokens", 1, TOKENS_DDL)

    def create(self, *, admin: bool, owner: Owner | None = None, label: str | None = None) -> tuple[str, str]:
        """A new token; returns ``(token_id, token)``. The token is shown once and never stored."""
        owner = owner or Owner()
        if admin == (not owner.empty):
            raise TokenError("a token is either --admin or has at least one --owner, not both")
        if label is not None and len(label) > MAX_LABEL:
            raise TokenError(f"--label is longer than {MAX_LABEL} characters")
        for _ in range(16):  # 16 clashes of a 32-bit id: something else is wrong
            token_id = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            with self.store.transaction():
                if self.store.query("SELECT 1 FROM web_tokens WHERE token_id = ?", (token_id,)):
                    continue
                self.store.execute(
                    "INSERT INTO web_tokens (token_id, secret_sha256, admin, owners, label, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (token_id, _hash(secret), admin, json.dumps(owner.specs()), label, _now()),
                )
            return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"
        raise TokenError("could not find a free token id")

    def list(self) -> list[TokenInfo]:
        rows = self.store.query(
            "SELECT token_id, admin, owners, label, created_at, revoked_at FROM web_tokens "
            "ORDER BY created_at, token_id"
        )
        return [_info(row) for row in rows]

    def get(self, token_id: str) -> TokenInfo | None:
        rows = self.store.query(
            "SELECT token_id, admin, owners, label, created_at, revoked_at FROM web_tokens "
            "WHERE token_id = ?",
            (token_id,),
        )
        return _info(rows[0]) if rows else None

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token (kept, marked revoked, so listings show who had access and until when)."""
        token_id = token_id.strip().removeprefix(TOKEN_PREFIX).split("_")[0].lower()
        with self.store.transaction():
            rows = self.store.query("SELECT revoked_at FROM web_tokens WHERE token_id = ?", (token_id,))
            if not rows:
                raise TokenError(f"no token {token_id!r}")
            if rows[0][0] is None:
                self.store.execute(
                    "UPDATE web_tokens SET revoked_at = ? WHERE token_id = ?", (_now(), token_id)
                )
        info = self.get(token_id)
        assert info is not None
        return info

    def verify(self, token: str) -> TokenInfo | None:
        """The active token this string is, or None (malformed, unknown, wrong secret or revoked)."""
        match = _TOKEN_RE.fullmatch(token.strip())
        if match is None:
            return None
        token_id, secret = match.groups()
        rows = self.store.query(
            "SELECT token_id, admin, owners, label, created_at, revoked_at, secret_sha256 "
            "FROM web_tokens WHERE token_id = ?",
            (token_id,),
        )
        # Hash and compare even for an unknown id, so an unknown id and a wrong secret take equal time.
        stored = rows[0][6] if rows else "0" * 64
        if not hmac.compare_digest(_hash(secret).encode(), str(stored).encode()) or not rows:
            return None
        info = _info(rows[0][:6])
        return info if info.active else None


def _info(row: tuple[Any, ...]) -> TokenInfo:
    token_id, admin, owners, label, created_at, revoked_at = row
    return TokenInfo(
        token_id=str(token_id),
        admin=bool(admin),
        owner=parse_owner(json.loads(owners)) if owners else Owner(),
        label=label,
        created_at=str(created_at),
        revoked_at=revoked_at,
    )
