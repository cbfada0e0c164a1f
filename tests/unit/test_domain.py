"""The domain view's sans-IO parts: SRV, autoconfig and Autodiscover XML, MTA-STS and TLS-RPT records and
policies, TLSA matching, the rules, and the domain record's JSON form."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from cleartext.domain import dane
from cleartext.domain.assess import assess_domain
from cleartext.domain.check import extra_endpoints
from cleartext.domain.clientconfig import (
    parse_autoconfig,
    parse_autodiscover,
    sends_password,
    srv_preference,
)
from cleartext.domain.model import (
    ClientConfig,
    ClientServer,
    DnsResult,
    DomainObservation,
    HttpResult,
    MtaSts,
    MxHost,
    Outcome,
    Socket,
    SrvLookup,
    SrvRecord,
    Tlsa,
    TlsRpt,
    domain_record_from_dict,
)
from cleartext.domain.policy import (
    mx_matches,
    parse_sts_policy,
    parse_sts_records,
    parse_tlsrpt_records,
    uncovered,
)
from cleartext.record import (
    Certificate,
    Finding,
    Observation,
    PlainPhase,
    Protocol,
    Record,
    Severity,
    TLSMode,
    TLSPhase,
)
from cleartext.targets import PortSpec

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "src/cleartext/schema/domain.schema.json").read_text()
)


def config(*servers: str) -> bytes:
    return (
        '<clientConfig version="1.1"><emailProvider>' + "".join(servers) + "</emailProvider></clientConfig>"
    ).encode()


def server(kind: str, protocol: str, host: str, port: str, socket: str, *auth: str) -> str:
    auths = "".join(f"<authentication>{a}</authentication>" for a in auth)
    return (
        f'<{kind} type="{protocol}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket}</socketType>{auths}</{kind}>"
    )


# --- autoconfig ------------------------------------------------------------------------------------------


def test_autoconfig_servers_sockets_and_placeholders() -> None:
    servers, errors = parse_autoconfig(
        config(
            server("incomingServer", "imap", "imap.%EMAILDOMAIN%", "143", "plain", "password-cleartext"),
            server("incomingServer", "pop3", "POP.Example.COM.", "995", "SSL", "password-encrypted"),
            server(
                "outgoingServer",
                "smtp",
                "smtp.example.com",
                "587",
                "STARTTLS",
                "OAuth2",
                "password-cleartext",
            ),
            server("incomingServer", "exchange", "ews.example.com", "443", "SSL"),
        ),
        "example.com",
    )
    assert errors == []
    assert [(s.protocol, s.hostname, s.port, s.socket) for s in servers] == [
        ("imap", "imap.example.com", 143, Socket.PLAIN),
        ("pop3", "pop.example.com", 995, Socket.SSL),
        ("smtp", "smtp.example.com", 587, Socket.STARTTLS),
    ]
    assert servers[2].authentication == ["oauth2", "password-cleartext"]


@pytest.mark.parametrize(
    "document",
    [
        # billion laughs
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><clientConfig>&b;'
        b"</clientConfig>",
        # an external entity
        b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><clientConfig>&x;'
        b"</clientConfig>",
        # a bare DTD
        b'<!DOCTYPE clientConfig SYSTEM "http://evil.example/x.dtd"><clientConfig/>',
    ],
)
def test_autoconfig_refuses_dtds_and_entities(document: bytes) -> None:
    servers, errors = parse_autoconfig(document, "example.com")
    assert servers == [] and errors[0].startswith("refused:")


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (b"<clientConfig><incomingServer", "malformed XML"),
        (b"<html><body>hello</body></html>", "not an autoconfig document"),
        (
            config(server("incomingServer", "imap", "a b", "143", "SSL")),
            "imap server without a usable hostname",
        ),
        (config(server("incomingServer", "imap", "imap.x", "99999", "SSL")), "imap server without"),
        (config(), "no IMAP, POP3 or SMTP server"),
        (b"\xff\xfe\x00<", "malformed XML"),
    ],
)
def test_autoconfig_bad_documents_become_one_line_errors(document: bytes, error: str) -> None:
    servers, errors = parse_autoconfig(document, "example.com")
    assert servers == [] and errors and errors[0].startswith(error)
    assert all("\n" not in e for e in errors)


def test_autoconfig_keeps_a_bounded_number_of_servers() -> None:
    many = config(*(server("incomingServer", "imap", f"h{i}.example", "993", "SSL") for i in range(500)))
    servers, _ = parse_autoconfig(many, "example.com")
    assert len(servers) == 32


# --- Autodiscover ----------------------------------------------------------------------------------------


def autodiscover(*protocols: str, extra: str = "") -> bytes:
    return (
        '<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">'
        '<Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">'
        f"<Account>{extra}{''.join(protocols)}</Account></Response></Autodiscover>"
    ).encode()


def test_autodiscover_protocols() -> None:
    servers, errors = parse_autodiscover(
        autodiscover(
            "<Protocol><Type>IMAP</Type><Server>imap.x.example</Server><Port>993</Port><SSL>on</SSL></Protocol>",
            "<Protocol><Type>POP3</Type><Server>pop.x.example</Server><Port>110</Port><SSL>off</SSL>"
            "<SPA>on</SPA></Protocol>",
            "<Protocol><Type>SMTP</Type><Server>smtp.x.example</Server><Port>587</Port>"
            "<Encryption>TLS</Encryption></Protocol>",
            "<Protocol><Type>SMTP</Type><Server>smtp.x.example</Server><Port>25</Port>"
            "<Encryption>None</Encryption></Protocol>",
            "<Protocol><Type>EXCH</Type><Server>ex.x.example</Server></Protocol>",
        ),
        "x.example",
    )
    assert errors == []
    assert [(s.protocol, s.port, s.socket, s.authentication) for s in servers] == [
        ("imap", 993, Socket.SSL, ["password-cleartext"]),
        ("pop3", 110, Socket.PLAIN, ["spa"]),
        ("smtp", 587, Socket.STARTTLS, ["password-cleartext"]),
        ("smtp", 25, Socket.PLAIN, ["password-cleartext"]),
    ]


def test_autodiscover_errors_and_redirects_are_reported_not_followed() -> None:
    _, errors = parse_autodiscover(
        autodiscover(extra="<Action>redirectUrl</Action><RedirectUrl>https://evil.example/</RedirectUrl>"),
        "x.example",
    )
    assert errors == ["Autodiscover redirect (not followed)"]
    body = (
        b"<Autodiscover><Response><Error><ErrorCode>600</ErrorCode><Message>Invalid\xe2\x80\xae</Message></Error>"
    )
    _, errors = parse_autodiscover(body + b"</Response></Autodiscover>", "x.example")
    assert errors == ["Autodiscover error: Invalid\\u202e"]


def test_sends_password() -> None:
    def srv(*auth: str) -> ClientServer:
        return ClientServer("autoconfig", "imap", "h", 143, Socket.PLAIN, list(auth))

    assert sends_password(srv())
    assert sends_password(srv("password-cleartext"))
    assert sends_password(srv("oauth2"))
    assert sends_password(srv("something-new"))
    assert not sends_password(srv("password-encrypted"))
    assert not sends_password(srv("NTLM", "GSSAPI"))
    assert not sends_password(srv("client-IP-address"))
    assert sends_password(srv("password-encrypted", "password-cleartext"))


# --- SRV -------------------------------------------------------------------------------------------------


def test_srv_preference() -> None:
    assert srv_preference({"imap": 0, "imaps": 0, "submission": 10, "submissions": 0}) == []
    assert srv_preference({"imap": 0, "imaps": 10}) == [
        ("imap", "imaps", "priority 0 is preferred over the implicit-TLS service's 10")
    ]
    assert srv_preference({"pop3": 5, "pop3s": None})[0][:2] == ("pop3", "pop3s")
    assert srv_preference({"submission": None, "submissions": None}) == []


# --- MTA-STS and TLS-RPT ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("records", "id_", "error"),
    [
        (["v=STSv1; id=20160831085700Z;"], "20160831085700Z", None),
        (["v=STSv1;id=abc"], "abc", None),
        (["spf1 nonsense", "v=STSv1; id=1;"], "1", None),
        (["v=STSv1; id=1;", "v=STSv1; id=2;"], None, "2 records begin with v=STSv1"),
        (["v=STSv1;"], None, "the record needs one id"),
        (["v=STSv1; id=this-has-dashes;"], None, "the record needs one id"),
        (["v=STSv1; id=" + "a" * 33], None, "the record needs one id"),
        (["v=STSv1 id=1"], None, "malformed record"),
        (["not a policy"], None, "no record begins with v=STSv1"),
        ([], None, None),
    ],
)
def test_sts_records(records: list[str], id_: str | None, error: str | None) -> None:
    parsed = parse_sts_records(records)
    assert parsed.id == id_
    assert parsed.errors[0].startswith(error) if error else parsed.errors == []


def test_sts_policy_valid_with_crlf_and_unknown_keys() -> None:
    policy = parse_sts_policy(
        b"version: STSv1\r\nmode: enforce\r\nmx: MX1.example.com.\r\nmx: *.mail.example.com\r\n"
        b"max_age: 604800\r\nextension: ignored\r\n"
    )
    assert policy.errors == []
    assert (policy.version, policy.mode, policy.max_age) == ("STSv1", "enforce", 604800)
    assert policy.mx == ["mx1.example.com", "*.mail.example.com"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"mode: enforce\nmx: a\nmax_age: 1\n", "no version line"),
        (b"version: STSv1\nmode: enforcing\nmx: a\nmax_age: 1\n", "mode 'enforcing'"),
        (b"version: STSv1\nmode: enforce\nmax_age: 1\n", "mode enforce without any mx line"),
        (b"version: STSv1\nmode: enforce\nmx: a\nmax_age: 31557601\n", "max_age 31557601 exceeds"),
        (b"version: STSv1\nmode: enforce\nmx: a\n", "no max_age line"),
        (b"version: STSv1\nmode: enforce\nmx: a\nmax_age: soon\n", "max_age 'soon'"),
        (b"version: STSv1\nmode: enforce\nmode: none\nmx: a\nmax_age: 1\n", "mode appears 2 times"),
        (b"\xff\xfe", "the policy is not UTF-8"),
        (b"<html>oops</html>", "line 1 is not"),
    ],
)
def test_sts_policy_errors(body: bytes, error: str) -> None:
    assert any(e.startswith(error) for e in parse_sts_policy(body).errors)


def test_sts_policy_mode_none_needs_no_mx() -> None:
    assert parse_sts_policy(b"version: STSv1\nmode: none\nmax_age: 86400\n").errors == []


@pytest.mark.parametrize(
    ("pattern", "host", "matches"),
    [
        ("mx1.example.com", "mx1.example.com", True),
        ("MX1.example.com.", "mx1.EXAMPLE.com", True),
        ("*.example.com", "mx1.example.com", True),
        ("*.example.com", "a.b.example.com", False),  # one label only
        ("*.example.com", "example.com", False),
        ("mx1.example.com", "mx2.example.com", False),
        ("", "mx1.example.com", False),
    ],
)
def test_mx_patterns(pattern: str, host: str, matches: bool) -> None:
    assert mx_matches(pattern, host) is matches


def test_uncovered() -> None:
    assert uncovered(["*.example.com"], ["a.example.com", "b.other.com"]) == ["b.other.com"]


@pytest.mark.parametrize(
    ("records", "rua", "error"),
    [
        (["v=TLSRPTv1; rua=mailto:r@example.com"], ["mailto:r@example.com"], None),
        (["v=TLSRPTv1;rua=mailto:a@x,https://r.example/x"], ["mailto:a@x", "https://r.example/x"], None),
        (["v=TLSRPTv1; rua=ftp://x"], [], "rua names no mailto"),
        (["v=TLSRPTv1;"], [], "the record needs exactly one rua"),
        (["v=TLSRPTv1; rua=mailto:a@x", "v=TLSRPTv1; rua=mailto:b@x"], [], "2 records"),
        (["v=STSv1; id=1"], [], "no record begins with v=TLSRPTv1"),
    ],
)
def test_tlsrpt(records: list[str], rua: list[str], error: str | None) -> None:
    parsed = parse_tlsrpt_records(records)
    assert parsed.rua == rua
    assert parsed.errors[0].startswith(error) if error else parsed.errors == []


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_parsers_never_raise_on_bytes(data: bytes) -> None:
    parse_autoconfig(data, "example.com")
    parse_autodiscover(data, "example.com")
    parse_sts_policy(data)
    text = data.decode("utf-8", "replace")
    parse_sts_records([text, "v=STSv1;" + text])
    parse_tlsrpt_records(["v=TLSRPTv1;" + text])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<clientConfig>",
                "<incomingServer type='imap'>",
                "<hostname>",
                "x.y",
                "</hostname>",
                "<port>",
                "993",
                "</port>",
                "</incomingServer>",
                "<socketType>",
                "plain",
                "</socketType>",
                "</clientConfig>",
                "&amp;",
                "<!--",
                "-->",
                "<![CDATA[",
                "]]>",
            ]
        ),
        max_size=40,
    )
)
def test_autoconfig_never_raises_on_xml_like_input(parts: list[str]) -> None:
    servers, errors = parse_autoconfig("".join(parts).encode(), "example.com")
    assert servers or errors


# --- DANE ------------------------------------------------------------------------------------------------


def cert(sha: str, spki: str | None) -> Certificate:
    return Certificate(sha, "CN=x", "CN=ca", "", "", "ec", 256, "ecdsa-with-SHA256", [], False, spki)


LEAF, ISSUER = cert("11" * 32, "22" * 32), cert("33" * 32, "44" * 32)


@pytest.mark.parametrize(
    ("records", "verdict"),
    [
        ([Tlsa(3, 1, 1, "22" * 32)], dane.MATCH),
        ([Tlsa(3, 0, 1, "11" * 32)], dane.MATCH),
        ([Tlsa(2, 1, 1, "44" * 32)], dane.MATCH),
        ([Tlsa(2, 1, 1, "22" * 32)], dane.MISMATCH),  # DANE-TA never matches the leaf
        ([Tlsa(3, 1, 1, "44" * 32)], dane.MISMATCH),  # DANE-EE matches only the leaf
        ([Tlsa(3, 1, 1, "ab" * 32), Tlsa(3, 1, 1, "22" * 32)], dane.MATCH),  # a key roll: one of two
        ([Tlsa(1, 1, 1, "22" * 32), Tlsa(0, 0, 1, "33" * 32)], dane.UNUSABLE),
        ([Tlsa(3, 1, 2, "ab" * 64)], dane.UNVERIFIABLE),
        ([Tlsa(3, 1, 2, "ab" * 64), Tlsa(3, 1, 1, "ab" * 32)], dane.MISMATCH),
        ([Tlsa(3, 7, 1, "22" * 32)], dane.UNUSABLE),
    ],
)
def test_tlsa_matching(records: list[Tlsa], verdict: str) -> None:
    assert dane.match_chain(records, [LEAF, ISSUER])[0] == verdict


def test_tlsa_against_a_record_without_the_key_hash_is_unverifiable() -> None:
    assert dane.match_chain([Tlsa(3, 1, 1, "22" * 32)], [cert("11" * 32, None)])[0] == dane.UNVERIFIABLE


def test_describe_keeps_the_spki_hash(tmp_path: Path) -> None:
    from cleartext.tls.certs import describe
    from tests.domain_servers import make_ca

    ca = make_ca(tmp_path)
    pem, _ = ca.issue("x", ["x.example"])
    loaded = x509.load_pem_x509_certificate(pem.read_bytes())
    spki = loaded.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    facts = describe(loaded.public_bytes(serialization.Encoding.DER))
    assert facts.spki_sha256 == hashlib.sha256(spki).hexdigest()
    assert describe(b"not a certificate").spki_sha256 is None


# --- rules ----------------------------------------------------------------------------------------------


def found() -> DnsResult:
    return DnsResult(Outcome.FOUND, None, True)


def endpoint(host: str, port: int, *codes: str, trusted: bool = True, name_ok: bool = True) -> Record:
    obs = Observation(
        "192.0.2.1", port, Protocol.SMTP if port in (25, 587, 465) else Protocol.IMAP, TLSMode.STARTTLS, host
    )
    obs.plain = PlainPhase(capabilities=["x"])
    obs.tls = TLSPhase(version="TLSv1.3", chain=[LEAF, ISSUER], trusted=trusted, hostname_match=name_ok)
    return Record(obs, [Finding(c, Severity.HIGH, c) for c in codes])


def policy(mode: str, mx: list[str], max_age: int = 1209600) -> MtaSts:
    return MtaSts(
        dns=found(),
        records=["v=STSv1; id=1;"],
        id="1",
        policy=HttpResult("https://mta-sts.x.example/.well-known/mta-sts.txt", Outcome.FOUND),
        version="STSv1",
        mode=mode,
        mx=mx,
        max_age=max_age,
    )


def domain(**kwargs: Any) -> DomainObservation:
    obs = DomainObservation(domain="x.example", mx_dns=found(), mx=[MxHost("mx1.x.example", 10)])
    for key, value in kwargs.items():
        setattr(obs, key, value)
    return obs


def codes_of(obs: DomainObservation, records: list[Record] | None = None) -> dict[str, Severity]:
    return {f.code: f.severity for f in assess_domain(obs, records or []).findings}


def test_nothing_published_is_no_policy() -> None:
    assert codes_of(domain()) == {"no-smtp-tls-policy": Severity.MEDIUM}


def test_no_mx_means_no_sender_policy_verdict() -> None:
    assert "no-smtp-tls-policy" not in codes_of(domain(mx=[]))


def test_enforced_policy_with_trusted_covered_mx_and_reporting_is_clean() -> None:
    obs = domain(
        mta_sts=policy("enforce", ["*.x.example"]),
        tls_rpt=TlsRpt(found(), ["v=TLSRPTv1; rua=mailto:r@x"], ["mailto:r@x"]),
    )
    assert codes_of(obs, [endpoint("mx1.x.example", 25)]) == {}


@pytest.mark.parametrize(
    ("mode", "patterns", "severity"),
    [("enforce", ["other.example"], Severity.HIGH), ("testing", ["other.example"], Severity.LOW)],
)
def test_mx_mismatch_severity(mode: str, patterns: list[str], severity: Severity) -> None:
    assert codes_of(domain(mta_sts=policy(mode, patterns)))["mta-sts-mx-mismatch"] is severity


def test_mx_mismatch_medium_when_some_mx_are_covered() -> None:
    obs = domain(mta_sts=policy("enforce", ["mx1.x.example"]))
    obs.mx.append(MxHost("mx2.x.example", 20))
    assert codes_of(obs)["mta-sts-mx-mismatch"] is Severity.MEDIUM


def test_mx_certificate_under_policy() -> None:
    untrusted = [endpoint("mx1.x.example", 25, trusted=False)]
    assert (
        codes_of(domain(mta_sts=policy("enforce", ["mx1.x.example"])), untrusted)["mta-sts-mx-cert-invalid"]
        is Severity.HIGH
    )
    assert (
        codes_of(domain(mta_sts=policy("testing", ["mx1.x.example"])), untrusted)["mta-sts-mx-cert-invalid"]
        is Severity.LOW
    )
    no_tls = [endpoint("mx1.x.example", 25, "no-tls")]
    finding = next(
        f
        for f in assess_domain(domain(mta_sts=policy("enforce", ["mx1.x.example"])), no_tls).findings
        if f.code == "mta-sts-mx-cert-invalid"
    )
    assert finding.evidence["problem"] == "no working STARTTLS"


def test_testing_and_short_max_age() -> None:
    found_codes = codes_of(domain(mta_sts=policy("testing", ["mx1.x.example"], max_age=600)))
    assert found_codes["mta-sts-testing"] is Severity.LOW
    assert found_codes["mta-sts-short-max-age"] is Severity.LOW
    assert found_codes["tls-rpt-missing"] is Severity.LOW


def test_mode_none_is_no_policy() -> None:
    assert "no-smtp-tls-policy" in codes_of(domain(mta_sts=policy("none", [])))


def test_unfetchable_policy_is_invalid() -> None:
    sts = policy("enforce", ["mx1.x.example"])
    sts.policy = HttpResult(
        "https://mta-sts.x.example/.well-known/mta-sts.txt", Outcome.TLS_ERROR, "bad cert"
    )
    sts.mode = None
    found_codes = codes_of(domain(mta_sts=sts))
    assert "mta-sts-invalid" in found_codes and "no-smtp-tls-policy" not in found_codes


def test_dane_rules() -> None:
    def with_tlsa(data: str, authenticated: bool = True, usage: int = 3) -> DomainObservation:
        mx = MxHost(
            "mx1.x.example", 10, DnsResult(Outcome.FOUND, None, authenticated), [Tlsa(usage, 1, 1, data)]
        )
        return domain(mx=[mx], tls_rpt=TlsRpt(found(), [], ["mailto:r@x"]))

    served = [endpoint("mx1.x.example", 25)]
    assert codes_of(with_tlsa("22" * 32), served) == {}
    assert codes_of(with_tlsa("ab" * 32), served) == {"dane-tlsa-mismatch": Severity.HIGH}
    assert codes_of(with_tlsa("ab" * 32, authenticated=False), served) == {
        "dane-tlsa-insecure": Severity.MEDIUM
    }
    assert codes_of(with_tlsa("22" * 32, usage=1), served) == {"dane-tlsa-unusable": Severity.LOW}
    # No port-25 certificate to compare with: no mismatch claimed.
    assert codes_of(with_tlsa("ab" * 32), []) == {}


def test_bogus_answers_are_named() -> None:
    mx = MxHost("mx1.x.example", 10, DnsResult(Outcome.BOGUS, "validation failed"))
    record = assess_domain(domain(mx=[mx]), [])
    bogus = next(f for f in record.findings if f.code == "dnssec-bogus")
    assert bogus.evidence == {"names": ["_25._tcp.mx1.x.example TLSA"]}
    assert record.findings[0].code == "dnssec-bogus", "worst first"


def test_client_configuration_rules() -> None:
    autoconf = ClientConfig(
        "autoconfig",
        HttpResult("https://autoconfig.x.example/mail/config-v1.1.xml", Outcome.FOUND),
        [
            ClientServer("autoconfig", "imap", "imap.x.example", 143, Socket.PLAIN, ["password-encrypted"]),
            ClientServer(
                "autoconfig", "smtp", "smtp.x.example", 587, Socket.STARTTLS, ["password-cleartext"]
            ),
            ClientServer("autoconfig", "imap", "imap.x.example", 993, Socket.SSL, ["password-cleartext"]),
        ],
    )
    srv = [
        SrvLookup("imap", "_imap._tcp.x.example", found(), [SrvRecord(0, 1, 143, "imap.x.example")]),
        SrvLookup("imaps", "_imaps._tcp.x.example", found(), [SrvRecord(0, 0, 0, ".")]),
    ]
    obs = domain(client_configs=[autoconf], srv=srv)
    records = [endpoint("smtp.x.example", 587, "starttls-failed"), endpoint("imap.x.example", 993)]
    found_codes = codes_of(obs, records)
    assert found_codes["autoconfig-cleartext-password"] is Severity.MEDIUM  # challenge-response only
    assert found_codes["autoconfig-tls-not-offered"] is Severity.MEDIUM
    assert found_codes["srv-prefers-plaintext"] is Severity.LOW  # 143 itself was not seen leaking
    leaking = [*records, endpoint("imap.x.example", 143, "cleartext-login")]
    assert codes_of(obs, leaking)["srv-prefers-plaintext"] is Severity.HIGH


def test_advertised_endpoints_beyond_the_mx_scan() -> None:
    obs = domain(
        srv=[
            SrvLookup(
                "submissions", "_submissions._tcp.x.example", found(), [SrvRecord(0, 1, 465, "mx1.x.example")]
            )
        ],
        client_configs=[
            ClientConfig(
                "autoconfig",
                HttpResult("u", Outcome.FOUND),
                [ClientServer("autoconfig", "imap", "imap.x.example", 10143, Socket.STARTTLS, [])],
            )
        ],
    )
    extras = extra_endpoints(obs, ["mx1.x.example"], [PortSpec(465, Protocol.SMTP, TLSMode.IMPLICIT)])
    assert [(e.host, e.ports, e.title) for e in extras] == [
        (
            "imap.x.example",
            [PortSpec(10143, Protocol.IMAP, TLSMode.STARTTLS)],
            "imap.x.example (named by autoconfig)",
        )
    ]


# --- the record ------------------------------------------------------------------------------------------


def test_domain_record_json_round_trip_and_schema() -> None:
    obs = domain(
        mta_sts=policy("testing", ["mx1.x.example"]),
        srv=[SrvLookup("imaps", "_imaps._tcp.x.example", found(), [SrvRecord(0, 1, 993, "imap.x.example")])],
        client_configs=[
            ClientConfig(
                "autodiscover",
                HttpResult("https://x.example/autodiscover/autodiscover.xml", Outcome.TOO_LARGE, "big", 200),
                errors=["x"],
            )
        ],
    )
    obs.mx[0].tlsa = found()
    obs.mx[0].tlsa_records = [Tlsa(3, 1, 1, "22" * 32)]
    record = assess_domain(obs, [endpoint("mx1.x.example", 25)])
    line = record.to_json()
    assert line.startswith('{"kind":"domain","version":1,')
    data = json.loads(line)
    jsonschema.validate(data, SCHEMA)
    again = domain_record_from_dict(data)
    assert again.to_json() == line
    assert again.observation.mx[0].served[0].match == "match"
    with pytest.raises(ValueError, match="not a cleartext domain record"):
        domain_record_from_dict({"version": 1, "address": "192.0.2.1"})
    with pytest.raises(ValueError, match="malformed domain record"):
        domain_record_from_dict({"kind": "domain", "version": 1, "domain": "x"})
