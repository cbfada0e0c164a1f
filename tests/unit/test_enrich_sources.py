"""The source catalogue of `data fetch`: selection, overrides, the sources file, names from URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleartext.enrich.datadir import DataDirError, Entry, Manifest
from cleartext.enrich.sources import (
    Catalogue,
    SourceError,
    add_mmdb_url,
    apply_url_flags,
    load_config,
    redact,
)


def test_groups_select_in_catalogue_order() -> None:
    catalogue = Catalogue()
    names = [s.name for s in catalogue.select(["rir", "iptoasn"])]
    assert names == ["iptoasn", "rir-arin", "rir-ripencc", "rir-apnic", "rir-lacnic", "rir-afrinic"]
    assert [s.file for s in catalogue.select(["rpsl-afrinic"])] == ["afrinic.db.gz"]
    assert len(catalogue.select(["rpsl"])) == 13
    with pytest.raises(SourceError, match="unknown source 'ripe'"):
        catalogue.select(["ripe"])


def test_url_flag_keeps_the_publishers_checksum_convention() -> None:
    catalogue = Catalogue()
    apply_url_flags(["rir-arin=https://mirror.example/arin/delegated-arin-extended-latest"], catalogue)
    arin = catalogue.get("rir-arin")
    assert (
        arin is not None
        and arin.checksum_url == "https://mirror.example/arin/delegated-arin-extended-latest.md5"
    )
    apply_url_flags(["iptoasn=http://127.0.0.1:8080/x.tsv.gz"], catalogue)
    iptoasn = catalogue.get("iptoasn")
    assert iptoasn is not None and iptoasn.checksum_url is None
    for bad in ("iptoasn", "iptoasn=", "=http://x.example/", "iptoasn=file:///etc/passwd"):
        with pytest.raises(SourceError):
            apply_url_flags([bad], catalogue)


def test_sources_file_overrides_and_adds(tmp_path: Path) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(
        '[sources.rir-apnic]\nurl = "https://mirror.example/apnic"\nchecksum_url = ""\nmax_age_days = 2\n'
        '[sources.my-geo]\nkind = "mmdb"\nfile = "my-geo.mmdb"\nurl = "https://data.example/geo.mmdb.gz"\n'
    )
    catalogue = Catalogue()
    load_config(path, catalogue)
    apnic = catalogue.get("rir-apnic")
    assert apnic is not None and (apnic.url, apnic.checksum_url, apnic.max_age_days, apnic.kind) == (
        "https://mirror.example/apnic",
        None,
        2,
        "rir",
    )
    mine = catalogue.get("my-geo")
    assert mine is not None and (mine.kind, mine.file, mine.default) == ("mmdb", "my-geo.mmdb", True)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sources.rir-arin]\nfile = 'x'\n", "kind and file are fixed"),
        ("[sources.mine]\nkind = 'mmdb'\nurl = 'https://x.example/a'\n", "a new source needs file"),
        ("[sources.mine]\nkind = 'csv'\nfile = 'a'\nurl = 'https://x.example/a'\n", "kind must be one of"),
        ("[sources.mine]\nkind = 'rir'\nfile = '.hidden'\nurl = 'https://x.example/a'\n", "plain file name"),
        ("[sources.Mine]\nkind = 'rir'\nfile = 'a'\nurl = 'https://x.example/a'\n", "lower-case"),
        ("[sources.iptoasn]\nmax_bytes = 'big'\n", "max_bytes must be a int"),
        ("[sources.iptoasn]\nmax_bytes = 0\n", "must be positive"),
        ("[other]\n", "unknown table 'other'"),
        ("[sources.iptoasn\n", "not TOML"),
        (
            "[sources.mine]\nkind = 'rir'\nfile = 'ip2asn-combined.tsv.gz'\nurl = 'https://x.example/a'\n",
            "is another source's",
        ),
    ],
)
def test_bad_sources_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    with pytest.raises(SourceError, match=message) as caught:
        load_config(path, Catalogue())
    assert "\n" not in str(caught.value)


def test_mmdb_url_names_its_file_from_the_url_only() -> None:
    catalogue = Catalogue()
    source = add_mmdb_url("https://data.example/dl/City-Lite.mmdb.tar.gz?token=abc", catalogue)
    assert (source.name, source.file, source.kind) == ("mmdb-city-lite", "City-Lite.mmdb", "mmdb")
    for bad in ("https://data.example/", "https://data.example/..", "https://data.example/%2e%2e"):
        with pytest.raises(SourceError):
            add_mmdb_url(bad, catalogue)


def test_redact_hides_secrets_but_not_maxminds_suffix() -> None:
    assert (
        redact("https://user:pw@ipinfo.example/data/x.mmdb?token=s3cret")
        == "https://ipinfo.example/data/x.mmdb?token=…"
    )
    assert (
        redact("https://dl.example/db/download?suffix=tar.gz")
        == "https://dl.example/db/download?suffix=tar.gz"
    )


def test_a_damaged_manifest_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "cleartext-data.json").write_text('{"version": 1, "files": [{"source": "x"}]}')
    with pytest.raises(DataDirError, match="damaged data manifest"):
        Manifest.load(tmp_path)
    entry = Entry("x", "rir", "../../etc/passwd", "u", "0" * 64, 1, 1, "t", "t")
    manifest = Manifest(tmp_path, {"x": entry})
    manifest.save()
    with pytest.raises(DataDirError, match="bad entry for 'x'"):
        Manifest.load(tmp_path)
