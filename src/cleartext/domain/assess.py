"""Assess a domain: its observation plus the endpoint records of this check -> findings.

Like cleartext.assess, a tuple of pure rules, one per finding code, each severity move commented with
its reason. The endpoint records come in because a domain's promises are judged against what its servers
did: a TLSA record against the chain port 25 served, an autoconfig "STARTTLS" against the endpoint it
names, an MTA-STS policy against the MX certificates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from cleartext.domain import dane
from cleartext.domain.clientconfig import sends_password, srv_preference
from cleartext.domain.model import DomainObservation, DomainRecord, Outcome, ServedChain, Socket
from cleartext.domain.policy import SHORT_MAX_AGE, uncovered
from cleartext.findings import Code, DomainCode, info
from cleartext.record import Finding, Record, Severity, Status


def _finding(code: DomainCode, evidence: dict[str, Any], severity: Severity | None = None) -> Finding:
    entry = info(code)
    return Finding(
        code=str(code), severity=severity or entry.severity, summary=entry.title, evidence=evidence
    )


def _key(host: str) -> str:
    return host.rstrip(".").lower()


class Endpoints:
    """The endpoint records of this check, by (host name, port)."""

    def __init__(self, records: Sequence[Record]) -> None:
        self._by: dict[tuple[str, int], list[Record]] = {}
        for record in records:
            obs = record.observation
            if obs.hostname:
                self._by.setdefault((_key(obs.hostname), obs.port), []).append(record)

    def get(self, host: str, port: int) -> list[Record]:
        return self._by.get((_key(host), port), [])


def _codes(records: Iterable[Record]) -> set[str]:
    return {f.code for r in records for f in r.findings}


def _tls_broken(records: Sequence[Record]) -> list[str]:
    """What says TLS does not work on these endpoints, or [] (also when nothing was scanned)."""
    found = sorted(_codes(records) & {Code.NO_TLS.value, Code.STARTTLS_FAILED.value})
    found += sorted({r.observation.status.value for r in records if r.observation.status is Status.TLS_ERROR})
    return found


# --- joining the scan in -----------------------------------------------------------------------------


def join(obs: DomainObservation, endpoints: Endpoints) -> None:
    """Fill each MX host's ``served`` chains from its port-25 records, matched against its TLSA RRset."""
    for mx in obs.mx:
        mx.served = []
        for record in endpoints.get(mx.host, 25):
            tls = record.observation.tls
            chain = tls.chain if tls is not None else []
            served = ServedChain(address=record.observation.address, sha256=[c.sha256 for c in chain])
            if chain and mx.tlsa_records:
                verdict, matched = dane.match_chain(mx.tlsa_records, chain)
                served.match = verdict
                served.matched_by = dane.label(matched) if matched else None
            mx.served.append(served)


# --- client configuration ------------------------------------------------------------------------------


def autoconfig_cleartext_password(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    for config in obs.client_configs:
        for server in config.servers:
            if server.socket is not Socket.PLAIN:
                continue
            # Challenge-response only: the password itself does not cross, the session and mail still do.
            severity = None if sends_password(server) else Severity.MEDIUM
            yield _finding(
                DomainCode.AUTOCONFIG_CLEARTEXT_PASSWORD,
                {
                    "source": server.source,
                    "url": config.http.url,
                    "server": f"{server.hostname}:{server.port}",
                    "protocol": server.protocol,
                    "socket": server.socket.value,
                    "authentication": server.authentication,
                },
                severity,
            )


def autoconfig_tls_not_offered(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    for config in obs.client_configs:
        for server in config.servers:
            if server.socket not in (Socket.STARTTLS, Socket.SSL):
                continue
            broken = _tls_broken(endpoints.get(server.hostname, server.port))
            if broken:
                yield _finding(
                    DomainCode.AUTOCONFIG_TLS_NOT_OFFERED,
                    {
                        "source": server.source,
                        "server": f"{server.hostname}:{server.port}",
                        "socket": server.socket.value,
                        "scan": broken,
                    },
                )


def srv_prefers_plaintext(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    best: dict[str, int | None] = {}
    targets: dict[str, list[tuple[str, int]]] = {}
    for lookup in obs.srv:
        usable = [r for r in lookup.records if r.target != "." and r.port != 0]
        best[lookup.service] = min((r.priority for r in usable), default=None)
        ranked = sorted(usable, key=lambda r: r.priority)
        targets[lookup.service] = [(r.target, r.port) for r in ranked if r.priority == best[lookup.service]]
    for service, twin, why in srv_preference(best):
        preferred = [rec for host, port in targets.get(service, []) for rec in endpoints.get(host, port)]
        exposed = sorted(_codes(preferred) & {Code.CLEARTEXT_LOGIN.value, Code.NO_TLS.value})
        # The preferred plaintext target itself takes passwords in clear: the SRV records lead there.
        severity = Severity.HIGH if exposed else None
        evidence: dict[str, Any] = {
            "service": service,
            "twin": twin,
            "why": why,
            "targets": [f"{h}:{p}" for h, p in targets.get(service, [])],
        }
        if exposed:
            evidence["scan"] = exposed
        yield _finding(DomainCode.SRV_PREFERS_PLAINTEXT, evidence, severity)


# --- sender policy ---------------------------------------------------------------------------------------


def _has_tlsa(obs: DomainObservation) -> bool:
    return any(mx.tlsa_records for mx in obs.mx)


def no_smtp_tls_policy(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts = obs.mta_sts
    if not obs.mx or _has_tlsa(obs):
        return
    if sts.records and any(r.startswith("v=STSv1") for r in sts.records) and sts.mode != "none":
        return  # published (valid or not): mta-sts-invalid / -testing say the rest
    yield _finding(
        DomainCode.NO_SMTP_TLS_POLICY,
        {
            "mta_sts": sts.dns.outcome.value if not sts.records else "record found",
            "mode": sts.mode,
            "mx_hosts": [mx.host for mx in obs.mx],
        },
    )


def mta_sts_invalid(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts = obs.mta_sts
    if not any(r.startswith("v=STSv1") for r in sts.records) or sts.valid:
        return
    policy = sts.policy
    yield _finding(
        DomainCode.MTA_STS_INVALID,
        {
            "record_errors": sts.record_errors,
            "policy_url": policy.url if policy else None,
            "policy_outcome": policy.outcome.value if policy else None,
            "policy_detail": policy.detail if policy else None,
            "policy_errors": sts.policy_errors,
        },
    )


def mta_sts_testing(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts = obs.mta_sts
    if sts.valid and sts.mode == "testing":
        yield _finding(DomainCode.MTA_STS_TESTING, {"mode": sts.mode, "max_age": sts.max_age, "mx": sts.mx})


def mta_sts_mx_mismatch(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts = obs.mta_sts
    if not sts.valid or sts.mode not in ("enforce", "testing") or not obs.mx:
        return
    hosts = [mx.host for mx in obs.mx]
    missing = uncovered(sts.mx, hosts)
    if not missing:
        return
    severity = None
    if sts.mode == "testing":
        severity = Severity.LOW  # senders only report
    elif len(missing) == len(hosts):
        severity = Severity.HIGH  # enforced and no MX acceptable: policy-honouring senders cannot deliver
    yield _finding(
        DomainCode.MTA_STS_MX_MISMATCH, {"mode": sts.mode, "uncovered": missing, "patterns": sts.mx}, severity
    )


def mta_sts_mx_cert_invalid(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts = obs.mta_sts
    if not sts.valid or sts.mode not in ("enforce", "testing"):
        return
    covered = [mx.host for mx in obs.mx if not uncovered(sts.mx, [mx.host])]
    for host in covered:
        for record in endpoints.get(host, 25):
            obs25 = record.observation
            if obs25.status not in (Status.SUCCESS, Status.TLS_ERROR):
                continue  # nothing answered: not a certificate question
            tls = obs25.tls
            problem = None
            if _tls_broken([record]) or tls is None or not tls.chain:
                problem = "no working STARTTLS"
            elif tls.trusted is False:
                problem = f"untrusted chain: {tls.verify_error or 'no path to a trusted root'}"
            elif tls.hostname_match is False:
                problem = f"the certificate does not name {host}"
            if problem is None:
                continue
            # Testing mode: senders report the failure and deliver anyway.
            severity = Severity.LOW if sts.mode == "testing" else None
            yield _finding(
                DomainCode.MTA_STS_MX_CERT_INVALID,
                {"mx": host, "address": obs25.address, "mode": sts.mode, "problem": problem},
                severity,
            )


def mta_sts_short_max_age(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts = obs.mta_sts
    short = sts.max_age is not None and sts.max_age < SHORT_MAX_AGE
    if sts.valid and sts.mode in ("enforce", "testing") and short:
        yield _finding(DomainCode.MTA_STS_SHORT_MAX_AGE, {"max_age": sts.max_age, "mode": sts.mode})


def tls_rpt_missing(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    sts_published = any(r.startswith("v=STSv1") for r in obs.mta_sts.records)
    if not (sts_published or _has_tlsa(obs)):
        return
    rpt = obs.tls_rpt
    if rpt.rua:  # one usable address is enough for senders to report (errors may list ignored ones)
        return
    yield _finding(DomainCode.TLS_RPT_MISSING, {"records": rpt.records, "errors": rpt.errors})


def dane_rules(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    for mx in obs.mx:
        if not mx.tlsa_records or mx.tlsa is None:
            continue
        tlsa = [dane.label(r) for r in mx.tlsa_records]
        if not mx.tlsa.authenticated:
            yield _finding(DomainCode.DANE_TLSA_INSECURE, {"mx": mx.host, "tlsa": tlsa})
            continue
        verdicts = {s.match for s in mx.served if s.match is not None}
        if dane.UNUSABLE in verdicts or (
            not verdicts and dane.match_chain(mx.tlsa_records, [])[0] == dane.UNUSABLE
        ):
            yield _finding(DomainCode.DANE_TLSA_UNUSABLE, {"mx": mx.host, "tlsa": tlsa})
            continue
        if dane.MISMATCH in verdicts:
            served = [
                f"{s.address} {s.sha256[0] if s.sha256 else '-'}"
                for s in mx.served
                if s.match == dane.MISMATCH
            ]
            usable = [dane.label(r) for r in mx.tlsa_records if r.usage in dane.USABLE]
            yield _finding(DomainCode.DANE_TLSA_MISMATCH, {"mx": mx.host, "tlsa": usable, "served": served})


def dnssec_bogus(obs: DomainObservation, endpoints: Endpoints) -> Iterable[Finding]:
    names: list[str] = []
    if obs.mx_dns.outcome is Outcome.BOGUS:
        names.append(f"{obs.domain} MX")
    names += [f"{s.name} SRV" for s in obs.srv if s.dns.outcome is Outcome.BOGUS]
    if obs.mta_sts.dns.outcome is Outcome.BOGUS:
        names.append(f"_mta-sts.{obs.domain} TXT")
    if obs.tls_rpt.dns.outcome is Outcome.BOGUS:
        names.append(f"_smtp._tls.{obs.domain} TXT")
    names += [f"_25._tcp.{mx.host} TLSA" for mx in obs.mx if mx.tlsa and mx.tlsa.outcome is Outcome.BOGUS]
    if names:
        yield _finding(DomainCode.DNSSEC_BOGUS, {"names": names})


RULES: tuple[Callable[[DomainObservation, Endpoints], Iterable[Finding]], ...] = (
    autoconfig_cleartext_password,
    autoconfig_tls_not_offered,
    srv_prefers_plaintext,
    dnssec_bogus,
    dane_rules,
    no_smtp_tls_policy,
    mta_sts_invalid,
    mta_sts_mx_mismatch,
    mta_sts_mx_cert_invalid,
    mta_sts_testing,
    mta_sts_short_max_age,
    tls_rpt_missing,
)


def assess_domain(obs: DomainObservation, records: Sequence[Record]) -> DomainRecord:
    """Join the endpoint records in, apply every rule; findings worst first, in rule order."""
    endpoints = Endpoints(records)
    join(obs, endpoints)
    findings = [f for rule in RULES for f in rule(obs, endpoints)]
    findings.sort(key=lambda f: -f.severity.rank)
    return DomainRecord(obs, findings)


__all__ = ["RULES", "assess_domain", "join"]
