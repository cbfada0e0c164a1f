"""Remediation: a remedy for every finding on every server that makes sense, and advice that is correct.

Where the real tool is installed (postconf, doveconf), the snippets are checked by it: a setting name the
software does not know makes the test fail, which is the mistake that matters most to an admin pasting it.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from cleartext.findings import Code
from cleartext.record import Protocol
from cleartext.remediation import (
    GENERIC,
    GNUTLS_STRONG,
    GNUTLS_VERSIONS,
    OPENSSL_CIPHERS,
    SPECIFIC,
    Remedy,
    remedy,
    targets,
)
from cleartext.software import Software, display_name, serves

S, I, P = Protocol.SMTP, Protocol.IMAP, Protocol.POP3  # noqa: E741
LE = "/etc/letsencrypt/live/mail.example.com"

ALL_TARGETS = targets()


def test_targets_cover_generic_and_every_sensible_pairing() -> None:
    assert {(GENERIC, p) for p in Protocol} <= set(ALL_TARGETS)
    assert ("dovecot", S) in ALL_TARGETS  # Dovecot's submission service
    assert ("postfix", S) in ALL_TARGETS and ("postfix", I) not in ALL_TARGETS
    assert ("exim", P) not in ALL_TARGETS
    for sw in (Software.COURIER, Software.EXCHANGE):
        assert all((sw.value, p) in ALL_TARGETS for p in Protocol)
    assert set(SPECIFIC) >= {
        Software.DOVECOT,
        Software.POSTFIX,
        Software.EXIM,
        Software.COURIER,
        Software.EXCHANGE,
    }


@pytest.mark.parametrize("code", list(Code))
@pytest.mark.parametrize(("software", "protocol"), ALL_TARGETS)
def test_every_code_has_a_remedy(code: Code, software: str, protocol: Protocol) -> None:
    fix = remedy(code, None if software == GENERIC else software, protocol)
    assert isinstance(fix, Remedy)
    assert fix.steps and all(isinstance(s, str) and s.strip() for s in fix.steps)
    assert fix.references and all(r.strip() for r in fix.references)
    assert fix.software == (GENERIC if software == GENERIC else fix.software)
    if software != GENERIC:
        assert fix.software != GENERIC
    if fix.config is not None:
        assert fix.config.strip() and fix.config.endswith("\n")
    assert len(set(fix.steps)) == len(fix.steps), "a step is repeated"


@pytest.mark.parametrize("code", list(Code))
@pytest.mark.parametrize("software", [*Software, None, "", "Unknown Server 1.0", "DOVECOT"])
@pytest.mark.parametrize("protocol", list(Protocol))
def test_any_software_protocol_pair_gets_sound_advice(
    code: Code, software: object, protocol: Protocol
) -> None:
    fix = remedy(code, software, protocol)  # type: ignore[arg-type]
    assert fix.steps
    name = str(software).lower() if software else ""
    if name and name in {s.value for s in Software} and not serves(name, protocol):
        assert fix.software == GENERIC  # a product on a protocol it cannot serve was mis-identified


def test_labels_and_fallbacks() -> None:
    assert remedy("cleartext-login", "dovecot", I).software == "Dovecot"
    assert remedy("cleartext-login", "Dovecot", P).software == "Dovecot"  # case-insensitive
    assert remedy("cleartext-login", "dovecot", S).software == "Dovecot"  # submission
    assert remedy("cleartext-login", "postfix", I).software == GENERIC
    assert remedy("cleartext-login", "exim", P).software == GENERIC
    assert remedy("cleartext-login", None, S).software == GENERIC
    assert remedy("cleartext-login", "frobnicator", S).software == GENERIC
    assert remedy(Code.NO_TLS, "exchange", P).software == "Microsoft Exchange"
    assert remedy(Code.NO_TLS, "gmail", I).software.startswith("Gmail")


def test_recognised_product_without_table_is_named_in_generic_advice() -> None:
    fix = remedy("cleartext-login", "sendmail", S)
    assert fix.software == GENERIC
    assert display_name("sendmail") in fix.steps[0]
    assert display_name("sendmail") not in remedy("cleartext-login", None, S).steps[0]


def test_cyrus_and_opensmtpd_get_their_own_settings() -> None:
    cyrus = remedy("cleartext-login", "cyrus", I)
    assert cyrus.software == "Cyrus IMAP" and "allowplaintext: no" in (cyrus.config or "")
    assert "LOGINDISABLED" in " ".join(cyrus.steps) and "tls_required: yes" in (cyrus.config or "")
    assert remedy("cleartext-login", "cyrus", P).software == "Cyrus IMAP"
    assert "tls_versions: tls1_2 tls1_3" in (remedy("legacy-tls", "cyrus", I).config or "")
    assert "tls_ciphers: " in (remedy("weak-cipher", "cyrus", P).config or "")
    assert "tls_server_cert:" in (remedy("cert-expired", "cyrus", I).config or "")
    assert remedy("no-tls", "cyrus", S).software == GENERIC  # Cyrus serves no SMTP: a mis-identification
    smtpd = remedy("cleartext-login", "opensmtpd", S)
    assert smtpd.software == "OpenSMTPD"
    listeners = smtpd.config or ""
    assert "port submission tls-require pki mail.example.com auth" in listeners
    assert "smtps pki mail.example.com auth" in listeners and "AUTH only inside TLS" in smtpd.steps[0]
    assert 'protocols "tlsv1.2,tlsv1.3"' in (remedy("legacy-tls", "opensmtpd", S).config or "")
    assert remedy("no-tls", "opensmtpd", I).software == GENERIC


def test_commands_name_the_host_and_ports_checked() -> None:
    """For `check`: the host being checked, the ports of the finding, never the documentation's example."""
    fix = remedy("legacy-tls", "postfix", S, host="mx.example.org", ports=[(25, False)])
    text = " ".join(fix.steps) + (fix.config or "")
    command = "openssl s_client -tls1_1 -connect mx.example.org:25 -starttls smtp -servername mx.example.org"
    assert command in text
    assert "mail.example.com" not in text and ":587" not in text and ":465" not in text
    login = remedy("cleartext-login", None, S, host="mx.example.org", ports=[(25, False)])
    assert "`nc -C mx.example.org 25`" in " ".join(login.steps)
    cert = remedy("cert-expired", "dovecot", I, host="Imap.Example.org.", ports=[(143, False), (993, True)])
    steps = " ".join(cert.steps)
    assert "certbot certonly --standalone -d imap.example.org" in steps
    assert "-connect imap.example.org:993 -servername imap.example.org </dev/null" in steps
    assert "/etc/letsencrypt/live/imap.example.org/fullchain.pem" in (cert.config or "")
    weak = remedy("weak-cipher", None, P, host="2001:db8::25", ports=[(110, False), (995, True)])
    assert "`nmap --script ssl-enum-ciphers -p 110,995 [2001:db8::25]`" in " ".join(weak.steps)
    # An address is no name for a certificate: -servername is left out, the example name stays there.
    by_address = remedy("cert-expired", "postfix", S, host="192.0.2.25", ports=[(465, True)])
    steps = " ".join(by_address.steps)
    assert "`openssl s_client -connect 192.0.2.25:465 </dev/null" in steps
    assert "-d mail.example.com" in steps
    # Without a host the advice is the documentation's, as before.
    assert "mail.example.com:587 -starttls smtp" in " ".join(remedy("no-tls", "postfix", S).steps)


def test_unknown_code_or_protocol_is_refused() -> None:
    with pytest.raises(ValueError):
        remedy("cleartext_login", "dovecot", I)
    with pytest.raises(ValueError):
        remedy("no-tls", "dovecot", "gopher")  # type: ignore[arg-type]


def test_remedy_is_frozen() -> None:
    fix = remedy("no-tls", None, S)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fix.steps = ()  # type: ignore[misc]


# --- the advice says the right things -------------------------------------------------------------------


def config(code: str, software: str, protocol: Protocol) -> str:
    text = remedy(code, software, protocol).config
    assert text is not None, (code, software, protocol)
    return text


def test_dovecot_cleartext_login() -> None:
    for protocol in Protocol:
        text = config("cleartext-login", "dovecot", protocol)
        assert "disable_plaintext_auth = yes" in text  # 2.3
        assert "auth_allow_cleartext = no" in text  # 2.4
        assert "ssl = required" in text


def test_dovecot_tls_settings() -> None:
    assert "ssl_min_protocol = TLSv1.2" in config("legacy-tls", "dovecot", I)
    assert f"ssl_cipher_list = {OPENSSL_CIPHERS}" in config("weak-cipher", "dovecot", P)
    cert = config("cert-expired", "dovecot", I)
    assert f"ssl_cert = <{LE}/fullchain.pem" in cert and f"ssl_key = <{LE}/privkey.pem" in cert
    assert "ssl_server_cert_file" in cert  # the 2.4 name, without '<'
    assert "inet_listener imaps" in config("no-tls", "dovecot", I)
    assert "inet_listener pop3s" in config("no-tls", "dovecot", P)
    assert "inet_listener submissions" in config("no-tls", "dovecot", S)


def test_dovecot_23_file_settings_use_the_less_than_prefix() -> None:
    for code in Code:
        for protocol in Protocol:
            text = remedy(code, "dovecot", protocol).config or ""
            for line in text.splitlines():
                if re.match(r"^ssl_(cert|key) = ", line):
                    assert line.split("= ", 1)[1].startswith("<"), line
                if "ssl_server_cert_file" in line or "ssl_server_key_file" in line:
                    assert "<" not in line, line


def test_postfix_settings() -> None:
    login = config("cleartext-login", "postfix", S)
    assert "smtpd_tls_auth_only = yes" in login
    assert "smtpd_tls_security_level = may" in login  # port 25 must stay opportunistic
    assert "-o smtpd_tls_security_level=encrypt" in login  # 587
    assert "-o smtpd_tls_wrappermode=yes" in login  # 465
    legacy = config("legacy-tls", "postfix", S)
    assert "smtpd_tls_protocols = >=TLSv1.2" in legacy
    assert "smtpd_tls_mandatory_protocols = >=TLSv1.2" in legacy
    assert "!TLSv1.1" in legacy  # the syntax for Postfix before 3.6
    assert "smtpd_tls_exclude_ciphers" in config("weak-cipher", "postfix", S)
    chain = config("cert-untrusted", "postfix", S)
    assert f"smtpd_tls_chain_files = {LE}/privkey.pem, {LE}/fullchain.pem" in chain  # key before chain


def test_postfix_never_requires_tls_on_port_25() -> None:
    for code in Code:
        text = remedy(code, "postfix", S).config or ""
        main_cf = text.split("master.cf")[0]
        assert "smtpd_tls_security_level = encrypt" not in main_cf


def test_exim_settings() -> None:
    login = config("cleartext-login", "exim", S)
    assert "auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}" in login
    assert "tls_advertise_hosts = *" in login
    assert "tls_on_connect_ports = 465" in login
    legacy = config("legacy-tls", "exim", S)
    assert "openssl_options = +no_sslv3 +no_tlsv1 +no_tlsv1_1" in legacy
    assert f"tls_require_ciphers = {GNUTLS_VERSIONS}" in legacy  # GnuTLS builds (Debian)
    cert = config("cert-expired", "exim", S)
    assert "tls_certificate = " in cert and "tls_privatekey = " in cert


def test_courier_settings() -> None:
    assert "IMAP_TLS_REQUIRED=1" in config("cleartext-login", "courier", I)
    assert "POP3_TLS_REQUIRED=1" in config("cleartext-login", "courier", P)
    assert 'ESMTPAUTH=""' in config("cleartext-login", "courier", S)
    for protocol in Protocol:
        legacy = config("legacy-tls", "courier", protocol)
        assert 'TLS_PROTOCOL="TLSv1.2+"' in legacy and f'TLS_PRIORITY="{GNUTLS_VERSIONS}"' in legacy
        weak = config("weak-cipher", "courier", protocol)
        assert f'TLS_CIPHER_LIST="{OPENSSL_CIPHERS}"' in weak and f'TLS_PRIORITY="{GNUTLS_STRONG}"' in weak
        assert "TLS_CERTFILE=" in config("cert-expired", "courier", protocol)


def test_exchange_settings() -> None:
    assert "Set-ImapSettings -LoginType SecureLogin" in config("cleartext-login", "exchange", I)
    assert "Set-PopSettings -LoginType SecureLogin" in config("cleartext-login", "exchange", P)
    assert "BasicAuthRequireTLS" in config("cleartext-login", "exchange", S)
    cert = config("cert-expired", "exchange", I)
    assert "Enable-ExchangeCertificate" in cert and "-Services IMAP,POP,SMTP" in cert
    legacy = config("legacy-tls", "exchange", S)
    for version in ("SSL 3.0", "TLS 1.0", "TLS 1.1"):
        assert f"SCHANNEL\\Protocols\\{version}\\Server]" in legacy
    assert '"Enabled"=dword:00000000' in legacy and '"DisabledByDefault"=dword:00000001' in legacy
    assert "TLS 1.2\\Server]" in config("no-modern-tls", "exchange", S)
    assert "Triple DES 168]" in config("weak-cipher", "exchange", I)


def test_exchange_auth_mechanisms_are_valid_combinations() -> None:
    """Exchange refuses BasicAuthRequireTLS without BasicAuth and Tls, and ExchangeServer without Tls."""
    for code in Code:
        for protocol in Protocol:
            text = remedy(code, "exchange", protocol).config or ""
            for values in re.findall(r"-AuthMechanism (\S+)", text):
                mechanisms = set(values.split(","))
                if "BasicAuthRequireTLS" in mechanisms:
                    assert {"BasicAuth", "Tls"} <= mechanisms, values
                if "ExchangeServer" in mechanisms:
                    assert "Tls" in mechanisms, values
                assert "None" not in mechanisms or mechanisms == {"None"}, values


def test_exchange_never_disables_ecdhe_rsa_suites() -> None:
    # 'TLS_ECDHE_RSA_WITH_*' contains '_RSA_WITH_': a careless filter would switch off the good suites.
    text = config("weak-cipher", "exchange", S)
    assert "'TLS_RSA_*'" in text and "_RSA_WITH_" not in text


def test_certificate_advice_is_concrete() -> None:
    for software, protocol in ALL_TARGETS:
        if software == "gmail":
            continue
        sw = None if software == GENERIC else software
        expired = " ".join(remedy("cert-expired", sw, protocol).steps)
        assert re.search(r"certbot|acme\.sh|win-acme|ACME", expired), (software, protocol)
        names = " ".join(remedy("cert-hostname-mismatch", sw, protocol).steps)
        assert "MX" in names or "FQDN" in names, (software, protocol)
        key = " ".join(remedy("cert-weak-key", sw, protocol).steps)
        assert "2048" in key, (software, protocol)
    chain = " ".join(remedy("cert-untrusted", None, I).steps)
    assert "intermediate" in chain and "fullchain" in chain


def test_openssl_cipher_string_has_no_weak_suite() -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(OPENSSL_CIPHERS)
    names = [c["name"] for c in context.get_ciphers()]
    assert names
    for cipher in context.get_ciphers():
        name = cipher["name"]
        assert not re.search(r"NULL|RC4|DES|EXP|ADH|AECDH|anon|MD5", name), name
        assert cipher.get("kea") != "kx-rsa", name  # static RSA key exchange


def test_gnutls_strings_only_remove_things() -> None:
    assert GNUTLS_VERSIONS.startswith("NORMAL:")
    assert GNUTLS_STRONG.startswith(GNUTLS_VERSIONS)
    assert all(part.startswith("-") for part in GNUTLS_STRONG.split(":")[1:])


# --- the snippets pass the real configuration checkers where installed ---------------------------------


def _test_cert(tmp: Path) -> tuple[Path, Path]:
    key, cert = tmp / "key.pem", tmp / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=mail.example.com"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return key, cert


@pytest.mark.skipif(
    shutil.which("postconf") is None or shutil.which("openssl") is None, reason="needs postconf"
)
def test_postfix_snippets_pass_postconf(tmp_path: Path) -> None:
    key, cert = _test_cert(tmp_path)
    main: dict[str, str] = {}
    master: list[str] = []
    for code in Code:
        text = (remedy(code, "postfix", S).config or "").replace(f"{LE}/privkey.pem", str(key))
        text = text.replace(f"{LE}/fullchain.pem", str(cert))
        target = "main"
        for line in text.splitlines():
            if line.startswith("# /etc/postfix/master.cf"):
                target = "master"
            if line.startswith("#") or not line.strip():
                continue
            if target == "main":
                name, _, value = line.partition("=")
                main[name.strip()] = value.strip()
            elif not master or line not in master:
                master.append(line)
    (tmp_path / "main.cf").write_text(
        "compatibility_level = 3.6\n" + "".join(f"{k} = {v}\n" for k, v in main.items())
    )
    entries = "\n".join(master[:8])  # the submission and submissions entries, once
    (tmp_path / "master.cf").write_text("smtp inet n - y - - smtpd\n" + entries + "\n")
    for args in (["-n"], ["-M"], ["-P"]):
        result = subprocess.run(
            ["postconf", "-c", str(tmp_path), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "warning" not in result.stderr, result.stderr  # e.g. "unused parameter" = unknown name
    services = subprocess.run(
        ["postconf", "-c", str(tmp_path), "-P"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "submission/inet/smtpd_tls_security_level = encrypt" in services
    assert "submissions/inet/smtpd_tls_wrappermode = yes" in services


@pytest.mark.skipif(
    shutil.which("doveconf") is None or shutil.which("openssl") is None, reason="needs doveconf"
)
def test_dovecot_snippets_pass_doveconf(tmp_path: Path) -> None:
    key, cert = _test_cert(tmp_path)
    for protocol in Protocol:
        parts = {remedy(code, "dovecot", protocol).config or "" for code in Code}
        body = "\n".join(sorted(parts)).replace(f"{LE}/privkey.pem", str(key))
        body = body.replace(f"{LE}/fullchain.pem", str(cert))
        conf = tmp_path / f"dovecot-{protocol.value}.conf"
        conf.write_text(f"base_dir = {tmp_path}/run\nprotocols = imap pop3 submission\n" + body)
        result = subprocess.run(
            ["doveconf", "-c", str(conf), "-n"], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        assert "Unknown setting" not in result.stderr and "Error" not in result.stderr, result.stderr
        assert "ssl = required" in result.stdout


def test_every_domain_code_has_concrete_advice() -> None:
    from cleartext.findings import DomainCode
    from cleartext.remediation import domain_remedy

    for code in DomainCode:
        fix = domain_remedy(code)
        assert fix.software == "generic" and fix.steps and fix.references, code
        assert all(step.strip() == step and step for step in fix.steps), code
    assert "_mta-sts.example.com" in (domain_remedy("mta-sts-invalid").config or "")
    assert "TLSA 3 1 1" in (domain_remedy("dane-tlsa-mismatch").config or "")
    assert "<socketType>SSL</socketType>" in (domain_remedy("autoconfig-cleartext-password").config or "")
    with pytest.raises(ValueError):
        domain_remedy("no-tls")
