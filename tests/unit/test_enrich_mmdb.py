"""MMDB databases written for real (mmdb_writer): each vendor's flavour, detection, damage and misuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartext.enrich.errors import EnrichError
from cleartext.enrich.mmdb import MmdbHit, MmdbReader
from tests.enrich_files import asn_record, country_record, ipinfo_record, write_contacts, write_mmdb


def hit(path: Path, address: str) -> MmdbHit | None:
    with MmdbReader(path) as reader:
        return reader.lookup(address, 6 if ":" in address else 4)


def test_geolite2_asn(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        {"192.0.2.0/24": asn_record(64496, "Example One"), "2001:db8::/32": asn_record(64497, "Example Six")},
    )
    with MmdbReader(path) as reader:
        assert reader.flavour == "asn" and reader.gives_asn and not reader.gives_country
        assert reader.extension  # the C extension is installed with maxminddb's wheel
        assert reader.lookup("192.0.2.9", 4) == MmdbHit(64496, "Example One", None, None, 24)
        assert reader.lookup("2001:db8::9", 6) == MmdbHit(64497, "Example Six", None, None, 32)
        assert reader.lookup("198.51.100.1", 4) is None


@pytest.mark.parametrize("database_type", ["GeoLite2-Country", "GeoLite2-City", "DBIP-Country-Lite"])
def test_country_databases(tmp_path: Path, database_type: str) -> None:
    path = write_mmdb(
        tmp_path / f"{database_type}.mmdb",
        {
            "192.0.2.0/25": country_record("nl", "DE"),
            "192.0.2.128/25": country_record(None, "FR"),  # anycast: registered, not located
        },
        database_type=database_type,
    )
    with MmdbReader(path) as reader:
        assert reader.flavour == "country" and reader.gives_country and not reader.gives_asn
    assert hit(path, "192.0.2.1") == MmdbHit(None, None, "NL", "DE", 25)
    assert hit(path, "192.0.2.200") == MmdbHit(None, None, None, "FR", 25)


def test_dbip_asn_lite_uses_geolite2_fields(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "dbip-asn-lite.mmdb",
        {"198.51.100.0/24": asn_record(64498, "DB-IP Example")},
        database_type="DBIP-ASN-Lite (compat=GeoLite2-ASN)",
    )
    assert hit(path, "198.51.100.77") == MmdbHit(64498, "DB-IP Example", None, None, 24)


def test_ipinfo_lite(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "ipinfo_lite.mmdb",
        {"203.0.113.0/24": ipinfo_record(64499, "IPinfo Example", "JP")},
        database_type="ipinfo ipinfo_lite.mmdb",
    )
    with MmdbReader(path) as reader:
        assert reader.flavour == "ipinfo" and reader.gives_asn and reader.gives_country
    assert hit(path, "203.0.113.1") == MmdbHit(64499, "IPinfo Example", "JP", None, 24)


def test_flavour_from_fields_when_the_type_says_nothing(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "custom.mmdb",
        {"203.0.113.0/24": ipinfo_record(64499, "Custom", "JP")},
        database_type="Acme-Lite",
    )
    with MmdbReader(path) as reader:
        assert reader.flavour == "fields"
    assert hit(path, "203.0.113.1") == MmdbHit(64499, "Custom", "JP", None, 24)


def test_unknown_database_without_known_fields(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "GeoIP2-Anonymous-IP.mmdb",
        {"192.0.2.0/24": {"is_anonymous": True}},
        database_type="GeoIP2-Anonymous-IP",
    )
    with pytest.raises(EnrichError, match="has no AS or country fields this reader knows"):
        MmdbReader(path)


def test_ipv4_only_database(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "v4.mmdb", {"192.0.2.0/24": asn_record(64496, "Four")}, ip_version=4)
    assert hit(path, "192.0.2.1") == MmdbHit(64496, "Four", None, None, 24)
    assert hit(path, "2001:db8::1") is None


def test_fields_of_the_wrong_type_are_left_empty(tmp_path: Path) -> None:
    path = write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        {
            "192.0.2.0/24": {"autonomous_system_number": "64496", "autonomous_system_organization": 7},
            "198.51.100.0/24": {"autonomous_system_number": 64497, "autonomous_system_organization": ""},
        },
    )
    assert hit(path, "192.0.2.1") == MmdbHit(None, None, None, None, 24)
    assert hit(path, "198.51.100.1") == MmdbHit(64497, None, None, None, 24)


def test_not_an_mmdb(tmp_path: Path) -> None:
    csv_file = write_contacts(tmp_path / "contacts.csv", [("asn", "64496", "abuse@one.example", "")])
    with pytest.raises(EnrichError, match="not a MaxMind DB") as caught:
        MmdbReader(csv_file)
    assert str(caught.value) == f"{csv_file}: not a MaxMind DB (MMDB) file, or a truncated one"
    with pytest.raises(EnrichError, match="cannot read"):
        MmdbReader(tmp_path / "absent.mmdb")


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_mmdb(tmp_path: Path, keep: float) -> None:
    path = write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        {f"192.0.2.{i * 4}/30": asn_record(64496 + i % 16, f"Net {i}") for i in range(64)},
    )
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(EnrichError, match=r"GeoLite2-ASN\.mmdb: .*(truncated|damaged)"):
        MmdbReader(path)


def test_damage_behind_intact_metadata_is_reported_at_lookup(tmp_path: Path) -> None:
    """A file cut inside its data section but still ending in metadata opens, then fails by name."""
    path = write_mmdb(
        tmp_path / "GeoLite2-ASN.mmdb",
        {f"192.0.2.{i * 4}/30": asn_record(64496 + i % 16, f"Net {i}") for i in range(64)},
    )
    data = path.read_bytes()
    metadata = data.rfind(b"\xab\xcd\xefMaxMind.com")
    path.write_bytes(data[: metadata - 200] + data[metadata:])
    reader = MmdbReader(path)
    with pytest.raises(EnrichError, match=r"GeoLite2-ASN\.mmdb: damaged MMDB file"):
        for i in range(256):
            reader.lookup(f"192.0.2.{i}", 4)
    reader.close()
