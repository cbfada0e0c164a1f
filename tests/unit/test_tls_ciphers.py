"""The cipher-suite table: names, weak classes and the offered lists.

The weak classes decide verdicts in our reports, so the rules that derive them from IANA
names are pinned here suite by suite for the cases that matter.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from cleartext.tls.ciphers import (
    BROAD_SUITES,
    COMPACT_SUITES,
    SUITES,
    TLS13_SUITES,
    TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
    TLS_FALLBACK_SCSV,
    WEAK_SUITES,
    WeakClass,
    is_tls13,
    suite_name,
    suites_in_class,
    weak_classes,
)

W = WeakClass


def test_weak_class_values_are_the_closed_set() -> None:
    assert {c.value for c in WeakClass} == {"null", "anon", "export", "rc4", "3des", "des", "static-rsa"}


def test_table_is_broad_and_consistent() -> None:
    assert len(SUITES) >= 120
    names = [s.name for s in SUITES.values()]
    assert len(names) == len(set(names)), "duplicate names"
    for code, suite in SUITES.items():
        assert suite.code == code
        assert 0 <= code <= 0xFFFF
        assert re.fullmatch(r"TLS_[A-Za-z0-9_]+", suite.name), suite.name


@pytest.mark.parametrize(
    ("code", "name", "classes"),
    [
        (0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA", {W.TRIPLE_DES, W.STATIC_RSA}),
        (0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", {W.TRIPLE_DES}),
        (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5", {W.EXPORT, W.RC4, W.STATIC_RSA}),
        (0x0004, "TLS_RSA_WITH_RC4_128_MD5", {W.RC4, W.STATIC_RSA}),
        (0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA", {W.RC4}),
        (0x0018, "TLS_DH_anon_WITH_RC4_128_MD5", {W.ANON, W.RC4}),
        (0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5", {W.ANON, W.EXPORT, W.RC4}),
        (0x00A6, "TLS_DH_anon_WITH_AES_128_GCM_SHA256", {W.ANON}),
        (0xC018, "TLS_ECDH_anon_WITH_AES_128_CBC_SHA", {W.ANON}),
        (0xC015, "TLS_ECDH_anon_WITH_NULL_SHA", {W.ANON, W.NULL}),
        (0x0001, "TLS_RSA_WITH_NULL_MD5", {W.NULL, W.STATIC_RSA}),
        (0xC010, "TLS_ECDHE_RSA_WITH_NULL_SHA", {W.NULL}),
        (0x0009, "TLS_RSA_WITH_DES_CBC_SHA", {W.DES, W.STATIC_RSA}),
        (0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA", {W.DES}),
        (0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA", {W.EXPORT, W.DES}),
        (0x0062, "TLS_RSA_EXPORT1024_WITH_DES_CBC_SHA", {W.EXPORT, W.DES, W.STATIC_RSA}),
        (0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5", {W.EXPORT, W.STATIC_RSA}),
        (0x002F, "TLS_RSA_WITH_AES_128_CBC_SHA", {W.STATIC_RSA}),
        (0x009C, "TLS_RSA_WITH_AES_128_GCM_SHA256", {W.STATIC_RSA}),
        (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", set()),
        (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", set()),
        (0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", set()),
        (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM", set()),
        (0xC031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256", set()),
        (0x1301, "TLS_AES_128_GCM_SHA256", set()),
    ],
)
def test_known_suites(code: int, name: str, classes: set[WeakClass]) -> None:
    assert suite_name(code) == name
    assert weak_classes(code) == frozenset(classes)
    assert SUITES[code].is_weak == bool(classes)


def test_unknown_codes() -> None:
    assert suite_name(0xABCD) == "0xABCD"
    assert suite_name(0x0A0A) == "0x0A0A"  # a GREASE value
    assert weak_classes(0xABCD) == frozenset()
    assert not is_tls13(0xABCD)


def test_tls13_suites() -> None:
    assert TLS13_SUITES == (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)
    assert all(is_tls13(c) for c in TLS13_SUITES)
    assert [c for c, s in SUITES.items() if s.tls13] == list(TLS13_SUITES)
    assert not is_tls13(0xC02F)


def test_broad_suites_shape() -> None:
    assert TLS_FALLBACK_SCSV not in BROAD_SUITES
    assert 0x0000 not in BROAD_SUITES
    assert TLS_EMPTY_RENEGOTIATION_INFO_SCSV in BROAD_SUITES
    assert len(BROAD_SUITES) == len(set(BROAD_SUITES))
    assert 120 <= len(BROAD_SUITES) < 250
    assert set(TLS13_SUITES) <= set(BROAD_SUITES)
    weak_flags = [bool(weak_classes(c)) for c in BROAD_SUITES if c != TLS_EMPTY_RENEGOTIATION_INFO_SCSV]
    first_weak = weak_flags.index(True)
    assert not any(weak_flags[:first_weak]) and all(weak_flags[first_weak:]), "strong first, then weak"
    # Every offerable suite we know is in the broad list.
    offerable = set(SUITES) - {0x0000, TLS_FALLBACK_SCSV}
    assert set(BROAD_SUITES) == offerable


def test_compact_suites_stay_below_128_and_cover_every_class() -> None:
    assert len(COMPACT_SUITES) < 128
    assert TLS_FALLBACK_SCSV not in COMPACT_SUITES
    assert TLS_EMPTY_RENEGOTIATION_INFO_SCSV in COMPACT_SUITES
    assert set(TLS13_SUITES) <= set(COMPACT_SUITES)
    positions = [BROAD_SUITES.index(c) for c in COMPACT_SUITES]
    assert positions == sorted(positions), "same order as BROAD_SUITES"
    for cls in WeakClass:
        assert any(cls in weak_classes(c) for c in COMPACT_SUITES), cls
    # The suites that mail servers really pick are all there.
    assert {0xC02F, 0xC030, 0xCCA8, 0x009E, 0xC013, 0x0033, 0x002F, 0x0035, 0x000A, 0x0005, 0x0004} <= set(
        COMPACT_SUITES
    )


@pytest.mark.parametrize("cls", list(WeakClass))
def test_suites_in_class(cls: WeakClass) -> None:
    codes = suites_in_class(cls)
    assert codes, f"no suite in class {cls}"
    assert suites_in_class(cls.value) == codes
    assert all(cls in weak_classes(c) for c in codes)
    assert TLS_FALLBACK_SCSV not in codes and 0x0000 not in codes
    assert {c for c in WEAK_SUITES if cls in weak_classes(c)} == set(codes)


def test_class_sizes_are_plausible() -> None:
    assert len(suites_in_class(W.TRIPLE_DES)) >= 8
    assert len(suites_in_class(W.ANON)) >= 15
    assert len(suites_in_class(W.STATIC_RSA)) >= 25
    assert set(WEAK_SUITES) == {c for cls in WeakClass for c in suites_in_class(cls)}


def test_suites_in_class_rejects_unknown_class() -> None:
    with pytest.raises(ValueError):
        suites_in_class("rot13")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl binary")
def test_names_agree_with_local_openssl() -> None:
    """Every suite the local OpenSSL knows (PSK/SRP aside) has the same IANA name here."""
    out = subprocess.run(
        ["openssl", "ciphers", "-stdname", "-V", "ALL:COMPLEMENTOFALL:@SECLEVEL=0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    checked = 0
    for line in out.splitlines():
        parts = line.split()
        hi, lo = parts[0].split(",")
        code = int(hi, 16) << 8 | int(lo, 16)
        std = parts[2]
        if "PSK" in std or "SRP" in std:
            continue
        assert suite_name(code) == std
        checked += 1
    assert checked >= 50
