"""`cleartext check DOMAIN`'s domain view against real servers: DNSSEC-signed zones served by nsd behind a
validating unbound, autoconfig/Autodiscover/MTA-STS files over real HTTPS with a test CA, the lab's mail
servers behind the names. Hostile answers come from servers written to misbehave.

Test domains (``*.example``, in the session's own network namespace only):

- ``good.example`` (signed): SRV implicit TLS only, autoconfig SSL, MTA-STS enforce, TLS-RPT, and
  ``mail.lab.example`` (signed ``lab.example``) with a TLSA record matching the lab certificate: clean.
- ``leaky.example`` (unsigned): autoconfig plain + password-cleartext, Autodiscover SSL off, STARTTLS on
  a server without TLS, SRV preferring IMAP 143 on the lab's plaintext Dovecot, MTA-STS testing with a
  short max_age missing its MX, TLSA without DNSSEC, no TLS-RPT.
- ``broken.example`` (signed): a validated TLSA record that matches nothing served; the MTA-STS policy
  host's certificate is not valid for its name.
- ``bogus.example`` (signed, then its TLSA record changed after signing): validation fails.
- ``hostile.example`` (crafted DNS): CNAME loops, a policy file dripped a byte at a time, an XML bomb,
  malformed XML, an endless body, a redirect.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import ROOT, run_cli
from tests.domain_servers import (
    Authority,
    CraftedDns,
    HttpsSite,
    Reply,
    SignedDns,
    Zone,
    make_ca,
    spki_sha256,
)

pytestmark = pytest.mark.lab

FAST = ["--allow-reserved", "--connect-timeout", "2", "--read-timeout", "3", "--endpoint-timeout", "40"]
WEB = "127.0.0.20"  # HTTPS with certificates from the test CA
WRONG = "127.0.0.21"  # HTTPS whose certificate names someone else
CRAFTED = "127.0.0.32"  # the crafted DNS server

AUTOCONFIG = "/mail/config-v1.1.xml"
WELL_KNOWN = "/.well-known/autoconfig/mail/config-v1.1.xml"
AUTODISCOVER = "/autodiscover/autodiscover.xml"
STS = "/.well-known/mta-sts.txt"


def autoconfig(*servers: tuple[str, str, str, int, str, str]) -> bytes:
    parts = []
    for kind, protocol, host, port, socket_type, auth in servers:
        parts.append(
            f'<{kind} type="{protocol}"><hostname>{host}</hostname><port>{port}</port>'
            f"<socketType>{socket_type}</socketType><authentication>{auth}</authentication>"
            f"<username>%EMAILADDRESS%</username></{kind}>"
        )
    return (
        '<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="x">'
        + "".join(parts)
        + "</emailProvider></clientConfig>"
    ).encode()


def autodiscover(*protocols: tuple[str, str, int, str, str]) -> bytes:
    body = "".join(
        f"<Protocol><Type>{kind}</Type><Server>{host}</Server><Port>{port}</Port><SSL>{ssl}</SSL>"
        f"<SPA>{spa}</SPA><AuthRequired>on</AuthRequired></Protocol>"
        for kind, host, port, ssl, spa in protocols
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        '<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">'
        f"<Account><AccountType>email</AccountType><Action>settings</Action>{body}</Account>"
        "</Response></Autodiscover>"
    ).encode()


BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><clientConfig>&lol9;</clientConfig>"
)


def web_routes() -> dict[tuple[str, str], Reply]:
    return {
        # good.example: implicit TLS everywhere, MTA-STS enforce.
        ("autoconfig.good.example", AUTOCONFIG): Reply(
            autoconfig(
                ("incomingServer", "imap", "mail.lab.example", 993, "SSL", "password-cleartext"),
                ("outgoingServer", "smtp", "mail.lab.example", 465, "SSL", "password-cleartext"),
            ),
            content_type="application/xml",
        ),
        ("mta-sts.good.example", STS): Reply(
            b"version: STSv1\r\nmode: enforce\r\nmx: mail.lab.example\r\nmax_age: 1209600\r\n"
        ),
        # leaky.example: everything that leads a password into clear text.
        ("autoconfig.leaky.example", AUTOCONFIG): Reply(
            autoconfig(
                ("incomingServer", "imap", "imap.%EMAILDOMAIN%", 143, "plain", "password-cleartext"),
                ("outgoingServer", "smtp", "smtp.leaky.example", 587, "STARTTLS", "password-cleartext"),
            ),
            content_type="application/xml",
        ),
        ("autodiscover.leaky.example", AUTODISCOVER): Reply(
            autodiscover(("POP3", "imap.leaky.example", 110, "off", "on")), content_type="text/xml"
        ),
        ("mta-sts.leaky.example", STS): Reply(
            b"version: STSv1\nmode: testing\nmx: mail.lab.example\nmax_age: 3600\n"
        ),
        # hostile.example: every response is an attack on the reader.
        ("mta-sts.hostile.example", STS): Reply(
            b"version: STSv1\nmode: enforce\nmx: mail.lab.example\nmax_age: 86400\n", drip=0.5
        ),
        ("autoconfig.hostile.example", AUTOCONFIG): Reply(BOMB, content_type="application/xml"),
        ("hostile.example", WELL_KNOWN): Reply(
            b"<clientConfig><incomingServer type='imap'><host", status=200
        ),
        ("autodiscover.hostile.example", AUTODISCOVER): Reply(endless=True),
        ("hostile.example", AUTODISCOVER): Reply(
            b"", status=301, headers={"Location": "http://evil.example/\x1b[2J"}
        ),
    }


def zones(lab_spki: str) -> list[Zone]:
    web = f"IN A {WEB}"
    return [
        Zone(
            "lab.example",
            f"mail IN A 127.0.0.4\n_25._tcp.mail IN TLSA 3 1 1 {lab_spki}\n",
            signed=True,
        ),
        Zone(
            "good.example",
            f"""
@ IN MX 10 mail.lab.example.
@ {web}
autoconfig {web}
mta-sts {web}
_mta-sts IN TXT "v=STSv1; id=20260101;"
_smtp._tls IN TXT "v=TLSRPTv1; rua=mailto:tlsrpt@good.example"
_imaps._tcp IN SRV 0 1 993 mail.lab.example.
_submissions._tcp IN SRV 0 1 465 mail.lab.example.
_imap._tcp IN SRV 0 0 0 .
""",
            signed=True,
        ),
        Zone(
            "leaky.example",
            f"""
@ IN MX 10 mx.leaky.example.
mx IN A 127.0.0.4
_25._tcp.mx IN TLSA 3 1 1 {lab_spki}
imap IN A 127.0.0.2
smtp IN A 127.0.0.2
autoconfig {web}
autodiscover {web}
mta-sts {web}
_mta-sts IN TXT "v=STSv1; id=7;"
_imap._tcp IN SRV 0 1 143 imap.leaky.example.
_imaps._tcp IN SRV 10 1 993 imap.leaky.example.
""",
        ),
        Zone("bare.example", "@ IN MX 10 mx.bare.example.\nmx IN A 127.0.0.4\n"),
        Zone(
            "broken.example",
            f"""
@ IN MX 10 mx.broken.example.
mx IN A 127.0.0.4
_25._tcp.mx IN TLSA 3 1 1 {"ab" * 32}
mta-sts IN A {WRONG}
_mta-sts IN TXT "v=STSv1; id=1;"
""",
            signed=True,
        ),
        Zone(
            "bogus.example",
            f"""
@ IN MX 10 mx.bogus.example.
mx IN A 127.0.0.4
_25._tcp.mx IN TLSA 3 1 1 {lab_spki}
""",
            signed=True,
            # The TLSA record changed after signing: its RRSIG no longer verifies.
            tamper=lambda text: text.replace(lab_spki.upper(), "CD" * 32).replace(lab_spki, "cd" * 32),
        ),
    ]


HOSTILE_DNS = {
    ("hostile.example.", "MX"): ["hostile.example. 60 IN MX 10 mail.lab.example."],
    ("hostile.example.", "A"): [f"hostile.example. 60 IN A {WEB}"],
    ("mail.lab.example.", "A"): ["mail.lab.example. 60 IN A 127.0.0.4"],
    ("autoconfig.hostile.example.", "A"): [f"autoconfig.hostile.example. 60 IN A {WEB}"],
    ("autodiscover.hostile.example.", "A"): [f"autodiscover.hostile.example. 60 IN A {WEB}"],
    ("mta-sts.hostile.example.", "A"): [f"mta-sts.hostile.example. 60 IN A {WEB}"],
    ("_mta-sts.hostile.example.", "TXT"): ['_mta-sts.hostile.example. 60 IN TXT "v=STSv1; id=9;"'],
    # A CNAME loop, answered in full in one reply.
    ("_smtp._tls.hostile.example.", "TXT"): [
        "_smtp._tls.hostile.example. 60 IN CNAME loop.hostile.example.",
        "loop.hostile.example. 60 IN CNAME _smtp._tls.hostile.example.",
    ],
    # A chain of 20 CNAMEs.
    ("_imaps._tcp.hostile.example.", "SRV"): [
        f"{'_imaps._tcp' if i == 0 else f'c{i}'}.hostile.example. 60 IN CNAME c{i + 1}.hostile.example."
        for i in range(20)
    ],
}


@pytest.fixture(scope="module")
def world(lab: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The CA, the web sites, the signed DNS and the crafted DNS, for the whole module."""
    directory = tmp_path_factory.mktemp("domain-view")
    ca: Authority = make_ca(directory)
    names = [
        f"{prefix}{domain}"
        for domain in ("good.example", "leaky.example", "hostile.example")
        for prefix in ("", "autoconfig.", "autodiscover.", "mta-sts.")
    ]
    cert, key = ca.issue("web", names)
    wrong_cert, wrong_key = ca.issue("wrong", ["someone-else.example"])
    lab_spki = spki_sha256(Path(lab["ca_file"]).parent / "mail.pem")
    dns_dir = directory / "dns"
    dns_dir.mkdir()
    with (
        HttpsSite(WEB, cert, key, web_routes()) as site,
        HttpsSite(
            WRONG, wrong_cert, wrong_key, {("mta-sts.broken.example", STS): Reply(b"version: STSv1\n")}
        ),
        SignedDns(dns_dir, zones(lab_spki)) as signed,
        CraftedDns(CRAFTED, HOSTILE_DNS) as crafted,
    ):
        yield {
            "site": site,
            "dns": signed.nameserver,
            "crafted": crafted.nameserver,
            "ca": ["--ca-file", str(ca.pem), "--ca-file", lab["ca_file"]],
            "lab_spki": lab_spki,
        }


def check(world: dict[str, Any], domain: str, *extra: str, dns: str | None = None) -> tuple[int, str, str]:
    result = run_cli("check", domain, "--nameserver", dns or world["dns"], *world["ca"], *FAST, *extra)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr


def domain_json(world: dict[str, Any], domain: str, dns: str | None = None) -> dict[str, Any]:
    code, out, err = check(world, domain, "--json", dns=dns)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    domains = [line for line in lines if line.get("kind") == "domain"]
    assert len(domains) == 1, out + err
    schema = json.loads((ROOT / "src" / "cleartext" / "schema" / "domain.schema.json").read_text())
    jsonschema.validate(domains[0], schema)
    record_schema = json.loads((ROOT / "src" / "cleartext" / "schema" / "record.schema.json").read_text())
    for line in lines:
        if "kind" not in line:
            jsonschema.validate(line, record_schema)
    domains[0]["_endpoints"] = [line for line in lines if "kind" not in line]
    domains[0]["_exit"] = code
    return domains[0]


def codes(record: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for finding in record["findings"]:
        out.setdefault(finding["code"], []).append(finding)
    return out


def test_good_domain_is_clean_with_dane_validated_and_matching(world: dict[str, Any]) -> None:
    code, out, err = check(world, "good.example")
    assert code == 0, out + err
    assert "Domain view good.example" in out
    assert "No domain findings" in out and "No findings" in out
    record = domain_json(world, "good.example")
    assert record["findings"] == []
    mx = record["mx"][0]
    assert mx["host"] == "mail.lab.example"
    assert mx["tlsa"]["authenticated"] is True, "unbound validated the signed zone: AD bit"
    assert {s["match"] for s in mx["served"]} == {"match"}
    assert mx["served"][0]["matched_by"].startswith("3 1 1 ")
    assert record["mta_sts"]["mode"] == "enforce" and record["mta_sts"]["id"] == "20260101"
    assert record["tls_rpt"]["rua"] == ["mailto:tlsrpt@good.example"]
    srv = {s["service"]: s for s in record["srv"]}
    assert srv["imap"]["records"][0]["target"] == "." and srv["imaps"]["dns"]["authenticated"] is True
    configs = [c for c in record["client_configs"] if c["servers"]]
    assert configs[0]["servers"][0] == {
        "source": "autoconfig",
        "protocol": "imap",
        "hostname": "mail.lab.example",
        "port": 993,
        "socket": "ssl",
        "authentication": ["password-cleartext"],
    }
    # The policy was fetched from the policy host, and the autoconfig file with the address asked for.
    assert ("GET", "mta-sts.good.example", STS) in world["site"].requests


def test_leaky_domain_leads_passwords_into_clear_text(world: dict[str, Any]) -> None:
    record = domain_json(world, "leaky.example")
    found = codes(record)
    assert record["_exit"] == 1
    plain = found["autoconfig-cleartext-password"]
    by_source = {f["evidence"]["source"]: f for f in plain}
    assert by_source["autoconfig"]["severity"] == "high"
    assert by_source["autoconfig"]["evidence"]["server"] == "imap.leaky.example:143"
    # Autodiscover with SPA: a challenge-response password, but the session and mail in clear.
    assert by_source["autodiscover"]["severity"] == "medium"
    assert by_source["autodiscover"]["evidence"]["server"] == "imap.leaky.example:110"
    # STARTTLS named on a server (the lab's plaintext Postfix on :587) that has no TLS.
    (not_offered,) = found["autoconfig-tls-not-offered"]
    assert not_offered["evidence"]["server"] == "smtp.leaky.example:587"
    assert "no-tls" in not_offered["evidence"]["scan"]
    # SRV: _imap priority 0 before _imaps priority 10, and the preferred target takes passwords in clear.
    (srv,) = found["srv-prefers-plaintext"]
    assert srv["severity"] == "high" and "cleartext-login" in srv["evidence"]["scan"]
    assert srv["evidence"]["targets"] == ["imap.leaky.example:143"]
    assert found["mta-sts-testing"][0]["severity"] == "low"
    assert found["mta-sts-short-max-age"][0]["evidence"]["max_age"] == 3600
    (mismatch,) = found["mta-sts-mx-mismatch"]
    assert mismatch["evidence"]["uncovered"] == ["mx.leaky.example"] and mismatch["severity"] == "low"
    (insecure,) = found["dane-tlsa-insecure"]
    assert insecure["evidence"]["mx"] == "mx.leaky.example"
    assert "tls-rpt-missing" in found
    assert "no-smtp-tls-policy" not in found  # it publishes both, however badly
    # The advertised servers were probed like any other endpoint, although no MX points to them.
    probed = {(e["hostname"], e["port"]) for e in record["_endpoints"]}
    assert {("imap.leaky.example", 143), ("imap.leaky.example", 110), ("smtp.leaky.example", 587)} <= probed


def test_leaky_domain_in_the_terminal(world: dict[str, Any]) -> None:
    code, out, _ = check(world, "leaky.example")
    assert code == 1
    assert "imap.leaky.example (named by srv, autodiscover)" in out or "imap.leaky.example (named by" in out
    assert "What mail clients are told" in out and "What sending servers are told" in out
    assert "HIGH  autoconfig-cleartext-password" in out
    assert "Client configuration sends passwords in clear" in out
    assert "socketType SSL" in out  # the fix
    assert out.index("overall grade") < out.index("Domain view leaky.example"), "servers first, then domain"


def test_broken_domain_tlsa_mismatch_and_policy_host_certificate(world: dict[str, Any]) -> None:
    record = domain_json(world, "broken.example")
    found = codes(record)
    (mismatch,) = found["dane-tlsa-mismatch"]
    assert mismatch["severity"] == "high"
    assert mismatch["evidence"]["mx"] == "mx.broken.example"
    assert mismatch["evidence"]["tlsa"] == ["3 1 1 abababababababab…"]
    assert mismatch["evidence"]["served"][0].startswith("127.0.0.4 ")
    assert record["mx"][0]["tlsa"]["authenticated"] is True
    (invalid,) = found["mta-sts-invalid"]
    assert invalid["evidence"]["policy_outcome"] == "tls-error"
    assert "mta-sts.broken.example" in invalid["evidence"]["policy_detail"]
    assert "tls-rpt-missing" in found


def test_bogus_signature_is_reported_not_trusted(world: dict[str, Any]) -> None:
    record = domain_json(world, "bogus.example")
    found = codes(record)
    assert found["dnssec-bogus"][0]["evidence"]["names"] == ["_25._tcp.mx.bogus.example TLSA"]
    assert found["dnssec-bogus"][0]["severity"] == "high"
    assert record["mx"][0]["tlsa"]["outcome"] == "bogus" and record["mx"][0]["tlsa_records"] == []
    assert "dane-tlsa-mismatch" not in found


def test_hostile_domain_is_bounded_and_explained(world: dict[str, Any]) -> None:
    started = time.monotonic()
    record = domain_json(world, "hostile.example", dns=world["crafted"])
    assert time.monotonic() - started < 90
    assert record["tls_rpt"]["dns"]["outcome"] == "loop"
    srv = {s["service"]: s for s in record["srv"]}
    assert srv["imaps"]["dns"]["outcome"] == "loop"
    sts = record["mta_sts"]
    assert sts["policy"]["outcome"] == "timeout", sts  # a byte every 0.5 s never beats the 3 s bound
    assert "mta-sts-invalid" in codes(record)
    configs = {(c["source"], c["http"]["url"].split("/")[2]): c for c in record["client_configs"]}
    bomb = configs[("autoconfig", "autoconfig.hostile.example")]
    assert bomb["http"]["outcome"] == "found" and bomb["servers"] == []
    assert any("DTDs and entities are not accepted" in e for e in bomb["errors"])
    malformed = configs[("autoconfig", "hostile.example")]
    assert any(e.startswith("malformed XML") for e in malformed["errors"])
    endless = configs[("autodiscover", "autodiscover.hostile.example")]
    assert endless["http"]["outcome"] == "too-large" and endless["http"]["bytes"] == 256 * 1024
    redirect = configs[("autodiscover", "hostile.example")]
    assert redirect["http"]["outcome"] == "http-error" and redirect["http"]["http_status"] == 301
    assert "\x1b" not in json.dumps(record) and "\\u001b" not in json.dumps(record)
    # The terminal view of the same: no escape sequence reaches it.
    code, out, _ = check(world, "hostile.example", dns=world["crafted"])
    assert code == 1 and "\x1b" not in out
    assert re.search(r"MTA-STS .*timeout", out)


def test_no_domain_skips_the_view(world: dict[str, Any]) -> None:
    code, out, _ = check(world, "good.example", "--no-domain")
    assert code == 0 and "Domain view" not in out


def test_web_hosts_in_reserved_space_are_not_fetched_unless_allowed(world: dict[str, Any]) -> None:
    """A hostile domain must not make the scanner fetch from its own network: without --allow-reserved,
    the policy host at 127.0.0.20 is refused (and the MX at 127.0.0.4 too, with the usual one-line error)."""
    args = [a for a in FAST if a != "--allow-reserved"]
    result = run_cli("check", "good.example", "--nameserver", world["dns"], *world["ca"], *args)
    assert result.returncode == 2
    assert result.stderr.startswith("cleartext: error: mail.lab.example resolves to 127.0.0.4")


def test_a_domain_that_publishes_nothing_for_senders(world: dict[str, Any]) -> None:
    """An MX with neither MTA-STS for its domain nor a TLSA record of its own: nothing makes senders
    insist on TLS. (mail.lab.example has a TLSA record: a domain whose MX it is has DANE.)"""
    code, out, _ = check(world, "bare.example")
    assert code == 1
    assert "MEDIUM  no-smtp-tls-policy" in out and "No MTA-STS or DANE for incoming mail" in out
    record = domain_json(world, "bare.example")
    assert [f["code"] for f in record["findings"]] == ["no-smtp-tls-policy"]
    assert record["findings"][0]["evidence"]["mx_hosts"] == ["mx.bare.example"]


def test_show_and_report_read_check_output_with_its_domain_line(
    world: dict[str, Any], tmp_path: Path
) -> None:
    code, out, _ = check(world, "broken.example", "--json")
    assert code == 1
    path = tmp_path / "check.jsonl"
    path.write_text(out)
    shown = run_cli("show", str(path))
    assert shown.returncode == 0, shown.stderr
    assert "Domains" in shown.stdout and "dane-tlsa-mismatch" in shown.stdout
    assert "127.0.0.4:25" in shown.stdout
    report = run_cli("report", "--from", str(path))
    assert report.returncode == 0, report.stderr
