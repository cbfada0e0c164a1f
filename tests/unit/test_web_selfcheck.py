"""Self-check authorisation and rate limiting, without the lab: every probe here goes to 127.0.0.1.

Refusals happen before any packet, so a refused address (documentation ranges, someone else's network)
is never contacted. The one check that runs probes 127.0.0.1 on port 9, where nothing listens.
tests/integration/test_web_selfcheck.py runs the real thing against the lab.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from cleartext.enrich import Attribution
from cleartext.probe import ProbeSettings
from cleartext.resolve import Resolver
from cleartext.store import open_store
from cleartext.targets import parse_ports
from cleartext.web.app import AppConfig
from cleartext.web.data import Scope
from cleartext.web.selfcheck import RateLimited, RateLimiter, SelfChecker, SelfCheckRefused, SelfCheckSettings
from cleartext.web.tokens import TokenStore, parse_owner
from tests.unit.test_web_api import World, build_world, web_app

ATTRIBUTION = {
    "198.51.100.7": Attribution(asn=64501, country="FR", registry_country="FR"),
    "127.0.0.1": Attribution(),
}
RESOLVER = Resolver(
    overrides={
        "mail.own.example": ["127.0.0.1"],
        "mixed.example": ["127.0.0.1", "198.51.100.7"],
        "fr.example": ["198.51.100.7"],
    }
)


def settings(**kw: object) -> SelfCheckSettings:
    base: dict[str, object] = {
        "allow_reserved": True,
        "per_window": 2,
        "window_s": 600,
        "ports": parse_ports("9=smtp"),
        "probe": ProbeSettings(connect_timeout=1, read_timeout=1, endpoint_timeout=3, max_connections=1),
        "resolver": RESOLVER,
    }
    base.update(kw)
    return SelfCheckSettings(**base)  # type: ignore[arg-type]


def checker(**kw: object) -> SelfChecker:
    return SelfChecker(settings(**kw), lambda a: ATTRIBUTION.get(a, Attribution()), "geo")


def owner(*specs: str, token_id: str = "t1") -> Scope:
    return Scope(admin=False, owner=parse_owner(list(specs)), token_id=token_id)


def test_rate_limiter_is_a_sliding_window() -> None:
    now = [1000.0]
    limiter = RateLimiter(2, 60, clock=lambda: now[0])
    limiter.take("a")
    now[0] += 10
    limiter.take("a")
    limiter.take("b")  # per key
    with pytest.raises(RateLimited) as refused:
        limiter.take("a")
    assert 49 <= refused.value.retry_after <= 50
    now[0] += 50.5  # the first event has left the window
    limiter.take("a")
    with pytest.raises(RateLimited):
        limiter.take("a")


@pytest.mark.parametrize(
    ("scope", "host", "allowed"),
    [
        (owner("127.0.0.0/8"), "127.0.0.1", True),
        (owner("127.0.0.0/8"), "mail.own.example", True),
        (owner("127.0.0.0/8"), "mixed.example", False),  # one address outside: refused whole
        (owner("192.0.2.0/24"), "127.0.0.1", False),
        (owner("AS64501"), "fr.example", True),  # by the address's AS
        (owner("FR"), "198.51.100.7", True),  # by its geolocation country
        (owner("DE", "AS64500"), "198.51.100.7", False),
        (Scope(admin=True), "mixed.example", True),
    ],
)
def test_authorise(scope: Scope, host: str, allowed: bool) -> None:
    check = checker()
    if allowed:
        name, addresses = asyncio.run(check.authorise(scope, host))
        assert name == host and addresses
    else:
        with pytest.raises(SelfCheckRefused, match="not in the networks this token owns"):
            asyncio.run(check.authorise(scope, host))


def test_reserved_ranges_refused_unless_the_server_allows_them() -> None:
    check = checker(allow_reserved=False)
    with pytest.raises(SelfCheckRefused, match="reserved range"):
        asyncio.run(check.authorise(Scope(admin=True), "127.0.0.1"))
    with pytest.raises(SelfCheckRefused, match="reserved range"):
        asyncio.run(check.authorise(owner("198.51.100.0/24"), "198.51.100.7"))  # documentation range
    for bad in ("", "a" * 300, "bad host!", "-x.example"):
        with pytest.raises(SelfCheckRefused):
            asyncio.run(check.authorise(Scope(admin=True), bad))


def test_run_probes_and_counts_against_the_token() -> None:
    check = checker()
    scope = owner("127.0.0.0/8", token_id="mine")

    async def three() -> list[object]:
        out: list[object] = []
        for _ in range(3):
            try:
                out.append(await check.run(scope, "127.0.0.1"))
            except RateLimited as exc:
                out.append(exc)
        # Refusals do not count: another owner's refused check leaves its budget untouched.
        with pytest.raises(SelfCheckRefused):
            await check.run(owner("192.0.2.0/24", token_id="theirs"), "127.0.0.1")
        out.append(await check.run(owner("127.0.0.1/32", token_id="theirs"), "127.0.0.1"))
        return out

    first, second, third, other = asyncio.run(three())
    for result in (first, second, other):
        assert [r.observation.port for r in result.records] == [9]  # type: ignore[attr-defined]
        assert result.records[0].observation.status.value in ("refused", "connect-timeout")  # type: ignore[attr-defined]
    assert isinstance(third, RateLimited)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("selfcheck"))


@pytest.fixture(scope="module")
def api(world: World) -> Iterator[tuple[TestClient, dict[str, str]]]:
    store = open_store(str(world.store_path), create=False)
    try:
        tokens = TokenStore(store)
        made = {
            "loopback": tokens.create(admin=False, owner=parse_owner(["127.0.0.0/8"]))[1],
            "docs": tokens.create(admin=False, owner=parse_owner(["192.0.2.0/24"]))[1],
        }
        with TestClient(web_app(world, store, AppConfig(selfcheck=settings()))) as client:
            yield client, made
    finally:
        store.close()


def test_api_self_check(api: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = api

    def post(who: str, host: object) -> object:
        return client.post(
            "/api/self-check", json={"host": host}, headers={"Authorization": f"Bearer {tokens[who]}"}
        )

    refused = post("docs", "127.0.0.1")
    assert refused.status_code == 403 and "not in the networks" in refused.json()["detail"]  # type: ignore[attr-defined]
    ok = post("loopback", "127.0.0.1")
    assert ok.status_code == 200, ok.text  # type: ignore[attr-defined]
    body = ok.json()  # type: ignore[attr-defined]
    assert body["addresses"] == ["127.0.0.1"] and body["records"][0]["port"] == 9
    assert post("loopback", "127.0.0.1").status_code == 200  # type: ignore[attr-defined]
    limited = post("loopback", "127.0.0.1")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0  # type: ignore[attr-defined]
    assert post("docs", 42).status_code == 422  # type: ignore[attr-defined]
    assert client.post("/api/self-check", json={"host": "127.0.0.1"}).status_code == 401
