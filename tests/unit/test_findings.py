"""The finding catalogue is a contract: exact codes, default severities, complete texts, a matching doc."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from cleartext.findings import CATALOGUE, DOMAIN_CATALOGUE, Code, DomainCode, FindingInfo, info
from cleartext.record import Severity
from tests.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen-findings-doc"
DOC = ROOT / "docs" / "findings.md"

# The stable strings and their default severities, written out independently of the module under test:
# changing either is a change of contract and must be deliberate.
EXPECTED = {
    "cleartext-login": Severity.HIGH,
    "no-tls": Severity.HIGH,
    "starttls-failed": Severity.HIGH,
    "starttls-not-advertised": Severity.MEDIUM,
    "legacy-tls": Severity.MEDIUM,
    "no-modern-tls": Severity.HIGH,
    "weak-cipher": Severity.MEDIUM,
    "cert-expired": Severity.MEDIUM,
    "cert-not-yet-valid": Severity.MEDIUM,
    "cert-untrusted": Severity.MEDIUM,
    "cert-hostname-mismatch": Severity.MEDIUM,
    "cert-weak-key": Severity.MEDIUM,
    "cert-weak-signature": Severity.LOW,
    "starttls-injection": Severity.HIGH,
    "login-advertised-refused": Severity.INFO,
}


# The domain view's codes (domain records only), written out the same way.
EXPECTED_DOMAIN = {
    "autoconfig-cleartext-password": Severity.HIGH,
    "autoconfig-tls-not-offered": Severity.MEDIUM,
    "srv-prefers-plaintext": Severity.LOW,
    "no-smtp-tls-policy": Severity.MEDIUM,
    "mta-sts-testing": Severity.LOW,
    "mta-sts-invalid": Severity.MEDIUM,
    "mta-sts-mx-mismatch": Severity.MEDIUM,
    "mta-sts-mx-cert-invalid": Severity.HIGH,
    "mta-sts-short-max-age": Severity.LOW,
    "tls-rpt-missing": Severity.LOW,
    "dane-tlsa-mismatch": Severity.HIGH,
    "dane-tlsa-insecure": Severity.MEDIUM,
    "dane-tlsa-unusable": Severity.LOW,
    "dnssec-bogus": Severity.HIGH,
}


def test_codes_are_exactly_the_contract() -> None:
    assert {code.value for code in Code} == set(EXPECTED)
    assert set(CATALOGUE) == set(Code)


@pytest.mark.parametrize(("code", "severity"), sorted(EXPECTED.items()))
def test_default_severity(code: str, severity: Severity) -> None:
    assert info(code).severity is severity
    assert info(Code(code)) is CATALOGUE[Code(code)]


def test_every_entry_is_complete() -> None:
    titles = set()
    for code, entry in CATALOGUE.items():
        assert entry.code is code
        for text in (entry.title, entry.description, entry.risk, entry.raised_when):
            assert text.strip() and text == text.strip(), (code, text)
        assert len(entry.title) <= 60, code  # titles go into table cells and e-mail subjects
        assert entry.evidence, code
        keys = [key for key, _ in entry.evidence]
        assert len(keys) == len(set(keys)), code
        assert all(key.isidentifier() and holds for key, holds in entry.evidence), code
        titles.add(entry.title)
    assert len(titles) == len(CATALOGUE)


def test_severity_moves_are_documented_where_assess_makes_them() -> None:
    # assess.py moves these severities with the evidence; the catalogue must say so (and so the doc).
    moved = {code.value for code, entry in CATALOGUE.items() if entry.severity_rule}
    assert moved == {
        "cleartext-login",
        "no-tls",
        "legacy-tls",
        "weak-cipher",
        "cert-untrusted",
        "cert-hostname-mismatch",
    }
    assert "SSLv3" in info("legacy-tls").severity_rule
    assert "port 25" in info("no-tls").severity_rule


def test_domain_codes_are_exactly_the_contract() -> None:
    assert {code.value for code in DomainCode} == set(EXPECTED_DOMAIN)
    assert set(DOMAIN_CATALOGUE) == set(DomainCode)
    assert not set(EXPECTED_DOMAIN) & set(EXPECTED), "one code, one meaning, across both kinds"
    for code, severity in EXPECTED_DOMAIN.items():
        entry = info(code)
        assert entry.severity is severity and entry is DOMAIN_CATALOGUE[DomainCode(code)]
        assert entry.title and len(entry.title) <= 60 and entry.evidence and entry.raised_when
    moved = {code.value for code, entry in DOMAIN_CATALOGUE.items() if entry.severity_rule}
    assert moved == {
        "autoconfig-cleartext-password",
        "srv-prefers-plaintext",
        "mta-sts-mx-mismatch",
        "mta-sts-mx-cert-invalid",
    }


def test_unknown_code_is_refused() -> None:
    with pytest.raises(ValueError):
        info("cleartext_login")
    with pytest.raises(ValueError):
        info("")


def test_catalogue_cannot_be_changed() -> None:
    entry = info("no-tls")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.severity = Severity.LOW  # type: ignore[misc]
    with pytest.raises(TypeError):
        CATALOGUE[Code.NO_TLS] = entry  # type: ignore[index]
    assert isinstance(entry, FindingInfo)


def test_committed_doc_matches_the_code() -> None:
    """docs/findings.md is rendered from the catalogue and the remediation table; it must not drift."""
    rendered = load_script("gen-findings-doc").render()
    committed = DOC.read_text(encoding="utf-8")
    assert committed == rendered, "docs/findings.md is out of date: run scripts/gen-findings-doc"


def test_render_is_deterministic_and_complete() -> None:
    generator = load_script("gen-findings-doc")
    text = generator.render()
    assert text == generator.render()
    for code, entry in [*CATALOGUE.items(), *DOMAIN_CATALOGUE.items()]:
        assert f'<a id="{code.value}"></a>' in text
        assert entry.description in text and entry.risk in text
        for key, _ in entry.evidence:
            assert f"| `{key}` |" in text
    # The verdict rules the brief asks the page to explain.
    assert "LOGINDISABLED" in text
    assert "(`inferred`)" in text
    assert "### The login probe" in text and "IMAP LOGIN, the case no credential-free exchange" in text
    assert "never sends a credential" in text
    assert "Shadowserver" in text


def test_check_mode_of_the_script() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
