"""Domain records built by hand for the store, report and web tests: three domains with what their typed
columns must survive — a DANE mismatch, a clean domain, and a name and evidence a hostile file could hold
(an import takes any string where a domain name belongs).
"""

from __future__ import annotations

from cleartext.domain.model import (
    DnsResult,
    DomainObservation,
    DomainRecord,
    HttpResult,
    MtaSts,
    MxHost,
    Outcome,
    ServedChain,
    Tlsa,
    TlsRpt,
)
from cleartext.findings import info
from cleartext.record import Finding

HOSTILE_DOMAIN = '=HYPERLINK("x")<script>alert(1)</script>\x1b[31m.example'


def finding(code: str, **evidence: object) -> Finding:
    entry = info(code)
    return Finding(code=code, severity=entry.severity, summary=entry.title, evidence=dict(evidence))


def _found() -> DnsResult:
    return DnsResult(Outcome.FOUND, None, True)


def _tlsa() -> list[Tlsa]:
    return [Tlsa(3, 1, 1, "ab" * 32)]


def sample_domains() -> list[DomainRecord]:
    """example.org: no MTA-STS, no TLS-RPT, a DANE mismatch on one of two MX hosts; clean.example: an
    enforced policy, reporting and matching DANE; the hostile one: an odd name, text in evidence."""
    broken = DomainObservation(
        domain="example.org",
        checked_at="2026-11-28T08:00:00Z",
        mx_dns=_found(),
        mx=[
            MxHost(
                "mx1.example.org",
                10,
                _found(),
                _tlsa(),
                [ServedChain("192.0.2.25", ["cd" * 32], "mismatch")],
            ),
            MxHost("mx2.example.org", 20, DnsResult(Outcome.ABSENT)),
        ],
    )
    clean = DomainObservation(
        domain="clean.example",
        checked_at="2026-11-28T08:00:01Z",
        mx_dns=_found(),
        mx=[
            MxHost(
                "mx.clean.example", 10, _found(), _tlsa(), [ServedChain("192.0.2.26", ["ab" * 32], "match")]
            )
        ],
        mta_sts=MtaSts(
            dns=_found(),
            records=["v=STSv1; id=20261128;"],
            id="20261128",
            policy=HttpResult("https://mta-sts.clean.example/.well-known/mta-sts.txt", Outcome.FOUND),
            version="STSv1",
            mode="enforce",
            mx=["mx.clean.example"],
            max_age=604800,
        ),
        tls_rpt=TlsRpt(_found(), ["v=TLSRPTv1; rua=mailto:tls@clean.example"], ["mailto:tls@clean.example"]),
    )
    hostile = DomainObservation(domain=HOSTILE_DOMAIN, checked_at="", mx_dns=_found())
    return [
        DomainRecord(
            broken,
            [
                finding("dane-tlsa-mismatch", host="mx1.example.org", address="192.0.2.25"),
                finding("no-smtp-tls-policy"),
                finding("tls-rpt-missing"),
            ],
        ),
        DomainRecord(clean, []),
        DomainRecord(hostile, [finding("no-smtp-tls-policy", note="<img src=x onerror=alert(1)> =1+1")]),
    ]
