"""The Enricher: precedence between sources, provenance, empty fields for what no file covers, caching."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cleartext.enrich import Attribution, Enricher, EnrichError
from tests.enrich_files import (
    asn_record,
    country_record,
    ipinfo_record,
    rpsl_object,
    write_contacts,
    write_iptoasn,
    write_mmdb,
    write_rir,
    write_rpsl,
)

Files = dict[str, Any]  # kind -> list of paths, passed to Enricher.from_paths(**files)


@pytest.fixture
def files(tmp_path: Path) -> Files:
    """One file of every kind, with deliberate disagreements between them."""
    asn = write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        {"192.0.2.0/24": asn_record(64496, "Example One"), "2001:db8::/32": asn_record(64499, "Example Six")},
    )
    city = write_mmdb(
        tmp_path / "GeoLite2-City.mmdb",
        {
            "192.0.2.0/26": country_record("BE", "NL"),
            "198.51.100.0/24": country_record("US", "CA"),
            "203.0.113.0/24": country_record(None, "JP"),
        },
        database_type="GeoLite2-City",
    )
    iptoasn = write_iptoasn(
        tmp_path / "ip2asn-v4.tsv.gz",
        [
            ("192.0.2.0", "192.0.2.255", 64510, "FR", "IPTOASN-DISAGREES"),  # the MMDB ASN wins
            ("198.51.100.0", "198.51.100.99", 64497, "GB", "EXAMPLE-TWO"),
            ("203.0.113.0", "203.0.113.255", 0, "None", "Not routed"),
        ],
        gz=True,
    )
    rir = write_rir(
        tmp_path / "delegated-ripencc-extended-latest",
        "ripencc",
        [
            ("NL", "ipv4", "192.0.2.0", 256, "allocated"),
            ("ZZ", "ipv4", "198.51.100.0", 64, "available"),
            ("DE", "ipv6", "2001:db8::", 32, "allocated"),
        ],
    )
    rpsl = write_rpsl(
        tmp_path / "ripe.db.gz",
        [
            rpsl_object(("inetnum", "192.0.2.0 - 192.0.2.255"), ("abuse-c", "AR1-TEST")),
            rpsl_object(("aut-num", "AS64497"), ("abuse-c", "AR2-TEST")),
            rpsl_object(("role", "One"), ("nic-hdl", "AR1-TEST"), ("abuse-mailbox", "abuse@one.example")),
            rpsl_object(("role", "Two"), ("nic-hdl", "AR2-TEST"), ("abuse-mailbox", "abuse@two.example")),
        ],
        gz=True,
    )
    contacts = write_contacts(
        tmp_path / "contacts.csv",
        [
            ("cidr", "192.0.2.128/25", "noc@one.example", "LU"),
            ("asn", "AS64499", "abuse@six.example", ""),
            ("country", "NL", "cert@nl.example", ""),
            ("country", "LU", "cert@lu.example", ""),
            ("country", "CA", "cert@ca.example", ""),
            ("country", "GB", "cert@gb.example", ""),
        ],
    )
    return {
        "mmdb": [asn, city],
        "iptoasn": [iptoasn],
        "rir": [rir],
        "rpsl": [rpsl],
        "contacts": [contacts],
    }


@pytest.fixture
def enricher(files: Files) -> Enricher:
    return Enricher.from_paths(**files)


def test_everything_agrees_on_a_well_covered_address(enricher: Enricher) -> None:
    assert enricher.lookup("192.0.2.10") == Attribution(
        asn=64496,
        as_name="Example One",
        country="BE",  # geolocation, from the City database
        registry_country="NL",  # delegation, from the RIR file (not MaxMind's registered_country)
        registry="ripencc",
        network="192.0.2.0/24",  # the route that gave the ASN
        abuse_contacts=("abuse@one.example",),
        cert="cert@nl.example",  # CERT of the registry country
        sources=(
            "GeoLite2-ASN.mmdb",
            "GeoLite2-City.mmdb",
            "delegated-ripencc-extended-latest",
            "ripe.db.gz",
            "contacts.csv",
        ),
    )


def test_operator_cidr_row_overrides_rpsl_and_names_the_cert_country(enricher: Enricher) -> None:
    found = enricher.lookup("192.0.2.200")
    assert found.abuse_contacts == ("noc@one.example",)
    assert found.cert == "cert@lu.example"
    assert found.country is None  # the City database has nothing for .128/25: left empty
    assert found.sources == ("GeoLite2-ASN.mmdb", "delegated-ripencc-extended-latest", "contacts.csv")


def test_fallbacks_iptoasn_asn_mmdb_registered_country_aut_num(enricher: Enricher) -> None:
    found = enricher.lookup("198.51.100.7")
    assert (found.asn, found.as_name) == (64497, "EXAMPLE-TWO")  # no MMDB ASN record: iptoasn
    assert found.network == "198.51.100.0/26"  # largest block around .7 inside .0-.99
    assert found.registry == "ripencc"  # available space: the registry, but no country from it
    assert found.registry_country == "CA"  # MaxMind's registered_country before iptoasn's GB
    assert found.country == "US"
    assert found.abuse_contacts == ("abuse@two.example",)  # the aut-num of the origin AS
    assert found.cert == "cert@ca.example"
    assert found.sources == (
        "ip2asn-v4.tsv.gz",
        "GeoLite2-City.mmdb",
        "delegated-ripencc-extended-latest",
        "ripe.db.gz",
        "contacts.csv",
    )


def test_iptoasn_country_is_the_last_registry_fallback(files: Files) -> None:
    with Enricher.from_paths(iptoasn=files["iptoasn"]) as alone:
        assert alone.lookup("198.51.100.70") == Attribution(
            asn=64497,
            as_name="EXAMPLE-TWO",
            registry_country="GB",  # the AS's registration country: nothing better was given
            network="198.51.100.64/27",
            sources=("ip2asn-v4.tsv.gz",),
        )


def test_not_routed_and_uncovered_addresses_stay_empty(enricher: Enricher) -> None:
    found = enricher.lookup("203.0.113.5")
    assert found.asn is None and found.as_name is None and found.country is None
    assert found.registry_country == "JP" and found.network == "203.0.113.0/24"
    assert found.sources == ("GeoLite2-City.mmdb",)
    assert enricher.lookup("100.64.0.1") == Attribution()


def test_ipv6_and_ipv4_mapped(enricher: Enricher) -> None:
    six = enricher.lookup("2001:db8:1::25")
    assert (six.asn, six.registry_country, six.network) == (64499, "DE", "2001:db8::/32")
    assert six.abuse_contacts == ("abuse@six.example",)  # the operator's asn row
    assert six.cert is None  # no CERT row for DE
    assert enricher.lookup("::ffff:192.0.2.10") == enricher.lookup("192.0.2.10")


def test_lookup_many_and_cache(files: Files) -> None:
    cached = Enricher.from_paths(**files)
    uncached = Enricher.from_paths(**files, cache_size=0)
    addresses = ["192.0.2.10", "198.51.100.7", "192.0.2.10", "2001:db8::1", "203.0.113.5"]
    assert cached.lookup_many(addresses) == uncached.lookup_many(addresses)
    assert [cached.lookup(a) for a in addresses] == cached.lookup_many(addresses)
    assert cached.lookup("192.0.2.10") is cached.lookup("192.0.2.10")
    cached.cache_clear()
    uncached.cache_clear()  # no cache: nothing to clear, and no error
    cached.close()
    uncached.close()


def test_bad_address(enricher: Enricher) -> None:
    for bad in ("mail.example", "192.0.2.1/32", "", "192.0.2.300"):
        with pytest.raises(ValueError, match="not an IP address"):
            enricher.lookup(bad)


def test_precedence_between_mmdbs_follows_the_order_given(tmp_path: Path) -> None:
    first = write_mmdb(
        tmp_path / "ipinfo_lite.mmdb",
        {"192.0.2.0/24": ipinfo_record(64501, "IPinfo", "SE")},
        database_type="ipinfo ipinfo_lite.mmdb",
    )
    second = write_mmdb(
        tmp_path / "dbip-asn.mmdb",
        {"192.0.2.0/25": asn_record(64502, "DB-IP")},
        database_type="DBIP-ASN-Lite (compat=GeoLite2-ASN)",
    )
    with Enricher.from_paths(mmdb=[first, second]) as enricher:
        found = enricher.lookup("192.0.2.1")
        assert (found.asn, found.as_name, found.country) == (64501, "IPinfo", "SE")
        assert found.sources == ("ipinfo_lite.mmdb",)
    with Enricher.from_paths(mmdb=[second, first]) as enricher:
        found = enricher.lookup("192.0.2.1")
        assert (found.asn, found.as_name, found.country) == (64502, "DB-IP", "SE")
        assert found.network == "192.0.2.0/25"
        assert found.sources == ("dbip-asn.mmdb", "ipinfo_lite.mmdb")


def test_sources_property_and_no_files(files: Files) -> None:
    with Enricher.from_paths(**files) as enricher:
        assert enricher.sources == tuple(p.name for kind in files.values() for p in kind)
    with Enricher.from_paths() as nothing:
        assert nothing.lookup("192.0.2.1") == Attribution() and nothing.sources == ()


def test_a_bad_file_fails_the_whole_load_by_name(files: Files, tmp_path: Path) -> None:
    swapped = {**files, "rir": files["contacts"]}
    with pytest.raises(EnrichError, match=r"contacts\.csv:1: not an RIR statistics record"):
        Enricher.from_paths(**swapped)
    with pytest.raises(EnrichError, match=r"ripe\.db\.gz: not a MaxMind DB"):
        Enricher.from_paths(mmdb=[*files["mmdb"], *files["rpsl"]])


def test_fast_attribution_builder_makes_the_same_record() -> None:
    """The enricher writes Attribution's slots directly (2 µs saved per lookup); the result must be
    indistinguishable from the constructor's — and the fast path must still apply to the model."""
    from cleartext.enrich.enricher import _attribution, _attribution_fast

    values = (
        64496,
        "Example",
        "BE",
        "NL",
        "ripencc",
        "192.0.2.0/24",
        ("a@one.example",),
        "c@nl.example",
        ("x",),
    )
    fast, slow = _attribution(*values), Attribution(*values)
    assert _attribution is _attribution_fast, "Attribution's fields changed: update enricher._FIELDS"
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    with pytest.raises(AttributeError):
        fast.asn = 1  # type: ignore[misc]  # still frozen
