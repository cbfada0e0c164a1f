"""Tokens: owner specs, creation, verification (hash only in the store), revocation, the CLI."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import duckdb
import pytest

from cleartext.store import open_store
from cleartext.web.tokens import Owner, TokenError, TokenStore, parse_owner
from tests.conftest import run_cli


def test_owner_specs() -> None:
    owner = parse_owner(["AS64496", "as64497", "192.0.2.0/24", "2001:db8::/32", "fr", "198.51.100.7", "FR"])
    assert owner.asns == (64496, 64497)
    assert owner.networks == (
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("198.51.100.7/32"),
    )
    assert owner.countries == ("FR",)
    assert owner.specs() == ["AS64496", "AS64497", "192.0.2.0/24", "2001:db8::/32", "198.51.100.7/32", "FR"]
    assert owner.covers_address("192.0.2.200")
    assert owner.covers_address("::ffff:192.0.2.1")  # IPv4-mapped IPv6 is the IPv4 address
    assert not owner.covers_address("192.0.3.1")
    assert parse_owner([]).empty


@pytest.mark.parametrize(
    "spec", ["AS0", "AS99999999999", "FRA", "F", "192.0.2.7/24", "300.0.0.0/8", "example.org", ""]
)
def test_bad_owner_specs(spec: str) -> None:
    with pytest.raises(TokenError, match="invalid owner"):
        parse_owner([spec])


def test_create_verify_revoke(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with open_store(str(path)) as store:
        tokens = TokenStore(store)
        admin_id, admin = tokens.create(admin=True, label="CERT desk")
        owner_id, owner = tokens.create(admin=False, owner=parse_owner(["AS64496", "FR"]))
        assert admin.startswith(f"ct_{admin_id}_") and len(admin) == 3 + 8 + 1 + 43
        assert tokens.verify(admin).admin  # type: ignore[union-attr]
        found = tokens.verify(owner)
        assert found is not None and not found.admin and found.owner.specs() == ["AS64496", "FR"]
        # A wrong secret, another token's id with this secret, garbage: all None.
        assert tokens.verify(owner[:-1] + ("A" if owner[-1] != "A" else "B")) is None
        assert tokens.verify(f"ct_{admin_id}_{owner.rsplit('_', 1)[1]}") is None
        assert tokens.verify("ct_00000000_" + "A" * 43) is None
        for junk in ("", "Bearer x", admin + "x", admin.upper()):
            assert tokens.verify(junk) is None
        assert {t.token_id for t in tokens.list()} == {admin_id, owner_id}
        revoked = tokens.revoke(owner_id)
        assert revoked.revoked_at is not None and not revoked.active
        assert tokens.verify(owner) is None
        assert tokens.revoke(owner).revoked_at == revoked.revoked_at  # a whole token names its id too
        with pytest.raises(TokenError, match="no token"):
            tokens.revoke("ffffffff")
        with pytest.raises(TokenError, match="either"):
            tokens.create(admin=True, owner=parse_owner(["FR"]))
        with pytest.raises(TokenError, match="either"):
            tokens.create(admin=False, owner=Owner())
    # The store holds the SHA-256 of the secret, never the token or the secret.
    con = duckdb.connect(str(path), read_only=True)
    try:
        dump = repr(con.execute("SELECT * FROM web_tokens").fetchall())
    finally:
        con.close()
    for token in (admin, owner):
        secret = token.split("_", 2)[2]  # ct_<id>_<secret>; the secret is URL-safe base64, "_" included
        assert len(secret) >= 43
        assert secret not in dump and token not in dump


def test_token_cli(tmp_path: Path) -> None:
    store = str(tmp_path / "cli.duckdb")
    made = run_cli("token", "create", "--owner", "AS64496", "--owner", "192.0.2.0/24", "--store", store)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ct_") and "shown only now" in made.stderr
    admin = run_cli("token", "create", "--admin", "--label", "CERT", "--store", store)
    assert admin.returncode == 0, admin.stderr
    listed = run_cli("token", "list", "--json", "--store", store)
    assert listed.returncode == 0
    assert token not in listed.stdout and token.rsplit("_", 1)[1] not in listed.stdout
    assert '"owners": ["AS64496", "192.0.2.0/24"]' in listed.stdout
    token_id = token.split("_")[1]
    revoked = run_cli("token", "revoke", token_id, "--store", store)
    assert revoked.returncode == 0 and "revoked" in revoked.stderr
    # Usage errors: one line, exit 2 (the other refusals are TokenStore's, tested above).
    for args, message in (
        (["token", "create", "--admin", "--owner", "FR", "--store", store], "either --admin"),
        (["token", "list", "--store", str(tmp_path / "missing.duckdb")], "no store"),
    ):
        done = run_cli(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and done.stderr.count("\n") == 1
