"""`cleartext scan` against the real lab: Dovecot, Postfix and openssl s_server on loopback.

One scan of the whole lab (session-scoped) feeds every assertion, the way an operator would run it: the
real CLI, JSON Lines on stdout. Each test states the facts and the findings a profile exists to produce.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import ROOT, parse_records, run_cli

FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--endpoint-timeout", "40"]
HOSTS = {
    "plain.lab.example": "127.0.0.2",
    "mail.lab.example": "127.0.0.3",
    "secure.lab.example": "127.0.0.4",
    "legacy.lab.example": "127.0.0.5",
    "tls10.lab.example": "127.0.0.6",
}

Records = dict[tuple[str, int], dict[str, Any]]


@pytest.fixture(scope="session")
def scanned(lab: dict[str, Any]) -> Records:
    args = ["scan", *HOSTS, *FAST, "--ca-file", lab["ca_file"]]
    for host, address in HOSTS.items():
        args += ["--resolve", f"{host}:{address}"]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    records = parse_records(result.stdout)
    assert len(records) == len(HOSTS) * 7, "one record per address and default port"
    return {(r["address"], r["port"]): r for r in records}


@pytest.fixture(scope="session")
def secure_scanned(lab: dict[str, Any]) -> Records:
    """The TLS-required profile under the name on its certificate, and the optional one under a wrong name."""
    args = [
        "scan",
        "mail.lab.example",
        "wrong.lab.example",
        *FAST,
        "--ca-file",
        lab["ca_file"],
        "--resolve",
        "mail.lab.example:127.0.0.4",
        "--resolve",
        "wrong.lab.example:127.0.0.3",
    ]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    return {(r["address"], r["port"]): r for r in parse_records(result.stdout)}


def codes(record: dict[str, Any]) -> set[str]:
    return {f["code"] for f in record["findings"]}


def finding(record: dict[str, Any], code: str) -> dict[str, Any]:
    return next(f for f in record["findings"] if f["code"] == code)


def test_every_record_matches_the_schema(scanned: Records, secure_scanned: Records) -> None:
    schema = json.loads((ROOT / "src" / "cleartext" / "schema" / "record.schema.json").read_text())
    for record in [*scanned.values(), *secure_scanned.values()]:
        jsonschema.validate(record, schema)
        assert record["version"] == 2
        assert record["timings_ms"]["total"] >= 0
        assert record["connections"] <= 6


# --- plaintext: no TLS at all -----------------------------------------------------------------------


def test_plaintext_imap_allows_login_in_clear(scanned: Records) -> None:
    r = scanned[("127.0.0.2", 143)]
    assert r["status"] == "success" and r["software"] == "dovecot"
    assert r["plain"]["login_command"] is True
    assert {"PLAIN", "LOGIN"} <= set(r["plain"]["auth_mechanisms"])
    assert r["plain"]["starttls_advertised"] is False and r["plain"]["starttls_accepted"] is False
    assert codes(r) == {"cleartext-login", "no-tls"}
    login = finding(r, "cleartext-login")
    assert login["severity"] == "high" and login["evidence"]["password_in_clear"] is True
    assert any("AUTH=PLAIN" in line for line in login["evidence"]["capabilities"])
    assert r["tls"] is None and r["matrix"] is None and r["connections"] == 1


def test_plaintext_pop3_offers_user(scanned: Records) -> None:
    r = scanned[("127.0.0.2", 110)]
    assert r["plain"]["login_command"] is True
    assert codes(r) == {"cleartext-login", "no-tls"}
    assert "USER/PASS" in finding(r, "cleartext-login")["evidence"]["offered"]


def test_plaintext_smtp_relay_and_submission(scanned: Records) -> None:
    relay, submission = scanned[("127.0.0.2", 25)], scanned[("127.0.0.2", 587)]
    assert relay["software"] == "postfix"
    assert codes(relay) == {"no-tls"}, "no AUTH on the relay port: nothing to log in to"
    assert finding(relay, "no-tls")["severity"] == "medium"
    assert codes(submission) == {"cleartext-login", "no-tls"}
    assert finding(submission, "no-tls")["severity"] == "high"
    assert "PLAIN" in submission["plain"]["auth_mechanisms"]


def test_closed_ports_are_refused_not_timeouts(scanned: Records) -> None:
    for port in (465, 993, 995):
        r = scanned[("127.0.0.2", port)]
        assert r["status"] == "refused"
        assert r["findings"] == []


# --- STARTTLS offered, but login allowed before it ----------------------------------------------------


@pytest.mark.parametrize("port", [143, 110, 25, 587])
def test_starttls_optional_still_allows_login_before_tls(scanned: Records, port: int) -> None:
    r = scanned[("127.0.0.3", port)]
    assert r["status"] == "success"
    assert r["plain"]["starttls_advertised"] is True and r["plain"]["starttls_accepted"] is True
    assert "cleartext-login" in codes(r)
    assert "no-tls" not in codes(r)
    assert r["tls"]["version"] == "TLSv1.3"
    assert r["tls"]["trusted"] is True and r["tls"]["hostname_match"] is True
    assert r["tls"]["capabilities"], "capabilities are asked again after TLS"
    assert r["matrix"]["versions"] == {
        "SSLv3": "rejected",
        "TLSv1.0": "rejected",
        "TLSv1.1": "rejected",
        "TLSv1.2": "accepted",
        "TLSv1.3": "accepted",
    }
    assert codes(r) == {"cleartext-login"}


@pytest.mark.parametrize("port", [993, 995])
def test_starttls_optional_implicit_ports_are_clean(scanned: Records, port: int) -> None:
    r = scanned[("127.0.0.3", port)]
    assert r["status"] == "success" and r["plain"] is None
    assert r["tls"]["version"] == "TLSv1.3"
    assert r["greeting"], "the greeting is read inside TLS"
    assert r["findings"] == []


def test_wrong_name_is_a_hostname_mismatch(secure_scanned: Records) -> None:
    r = secure_scanned[("127.0.0.3", 993)]
    assert r["hostname"] == "wrong.lab.example"
    assert r["tls"]["hostname_match"] is False and r["tls"]["trusted"] is True
    assert codes(r) == {"cert-hostname-mismatch"}
    assert finding(r, "cert-hostname-mismatch")["evidence"]["dns_names"] == ["mail.lab.example"]


# --- TLS required -----------------------------------------------------------------------------------


def test_tls_required_profile_has_no_findings(secure_scanned: Records) -> None:
    answered = {k: r for k, r in secure_scanned.items() if k[0] == "127.0.0.4"}
    assert {port for (_, port) in answered} == {25, 465, 587, 110, 995, 143, 993}
    for (_, port), r in answered.items():
        assert r["status"] == "success", (port, r["status_detail"])
        assert r["findings"] == [], (port, r["findings"])
        assert r["tls"]["trusted"] is True and r["tls"]["hostname_match"] is True


def test_tls_required_hides_login_until_tls(secure_scanned: Records) -> None:
    imap = secure_scanned[("127.0.0.4", 143)]
    # The scanner's source address (127.0.0.1) differs from the server's, so Dovecot shows LOGINDISABLED.
    assert any("LOGINDISABLED" in line for line in imap["plain"]["capabilities"])
    assert imap["plain"]["login_command"] is False and imap["plain"]["auth_mechanisms"] == []
    assert "PLAIN" in imap["tls"]["auth_mechanisms"] and imap["tls"]["login_command"] is True
    pop3 = secure_scanned[("127.0.0.4", 110)]
    assert pop3["plain"]["login_command"] is False and pop3["tls"]["login_command"] is True
    submission = secure_scanned[("127.0.0.4", 587)]
    assert submission["plain"]["auth_mechanisms"] == []
    assert "PLAIN" in submission["tls"]["auth_mechanisms"]


# --- legacy TLS, expired self-signed weak certificate --------------------------------------------------


@pytest.mark.parametrize("port", [143, 993, 25, 465])
def test_legacy_profile(scanned: Records, port: int) -> None:
    r = scanned[("127.0.0.5", port)]
    assert r["status"] == "success", r["status_detail"]
    found = codes(r)
    assert {"legacy-tls", "weak-cipher", "cert-expired", "cert-untrusted", "cert-weak-key"} <= found
    assert "cleartext-login" not in found and "no-tls" not in found
    assert set(finding(r, "legacy-tls")["evidence"]["versions"]) == {"TLSv1.0", "TLSv1.1"}
    assert r["matrix"]["versions"]["SSLv3"] == "rejected"
    leaf = r["tls"]["chain"][0]
    assert leaf["key_bits"] == 1024 and leaf["self_signed"] is True
    assert finding(r, "cert-untrusted")["evidence"]["self_signed"] is True
    weak = finding(r, "weak-cipher")
    # The lab's Dovecot prefers its own order (ALL:@SECLEVEL=0), whose first weak choice is anonymous DH.
    assert "anon" in weak["evidence"]["classes"]
    # Anonymous suites are high on a login port, low on port 25 (opportunistic MTA-to-MTA TLS).
    assert weak["severity"] == ("low" if port == 25 else "high")
    assert r["connections"] <= 6


def test_bigger_connection_budget_completes_the_weak_classes(lab: dict[str, Any]) -> None:
    result = run_cli("scan", "127.0.0.5", "--ports", "993", "--max-connections", "10", *FAST)
    assert result.returncode == 0, result.stderr
    (r,) = parse_records(result.stdout)
    assert set(r["matrix"]["weak_classes"].values()) <= {"accepted", "rejected"}, r["matrix"]
    assert r["matrix"]["weak_classes"]["static-rsa"] == "accepted"
    assert r["matrix"]["weak_classes"]["anon"] == "accepted"
    # This Debian OpenSSL 3 has no RC4, DES, 3DES or export suites left to accept.
    for cls in ("rc4", "des", "3des", "export"):
        assert r["matrix"]["weak_classes"][cls] == "rejected"
    assert 6 < r["connections"] <= 10


# --- TLS 1.0/1.1 only, and anonymous/NULL suites (openssl s_server) -------------------------------------


def test_tls10_only_has_no_modern_tls(scanned: Records) -> None:
    r = scanned[("127.0.0.6", 993)]
    assert r["tls"]["version"] == "TLSv1.1"
    assert (
        r["matrix"]["versions"]["TLSv1.2"] == "rejected" and r["matrix"]["versions"]["TLSv1.3"] == "rejected"
    )
    assert {"no-modern-tls", "legacy-tls"} <= codes(r)
    assert finding(r, "no-modern-tls")["severity"] == "high"


def test_anon_and_null_suites_are_weak_ciphers(scanned: Records) -> None:
    r = scanned[("127.0.0.6", 995)]
    weak = finding(r, "weak-cipher")
    assert {"anon", "null"} <= set(weak["evidence"]["classes"])
    assert weak["severity"] == "high"
    assert any("anon" in suite for suite in weak["evidence"]["suites"])


def test_scan_writes_to_file_and_validates_first(lab: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    result = run_cli("scan", "127.0.0.4", "--ports", "993", "--out", str(out), *FAST)
    assert result.returncode == 0, result.stderr
    records = parse_records(out.read_text())
    assert [(r["address"], r["port"], r["status"]) for r in records] == [("127.0.0.4", 993, "success")]
    assert result.stdout == ""
