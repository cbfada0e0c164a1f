"""The domain view in the terminal: what the domain tells mail clients and senders, then each finding with
its fix. Printed by `cleartext check DOMAIN` after the servers' verdicts.

As in cleartext.render, everything that came from the network is shown as rich ``Text`` (never parsed as
markup), passed through cleartext.text.sanitize once more.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cleartext.domain import dane
from cleartext.domain.model import DnsResult, DomainObservation, DomainRecord, HttpResult, Outcome
from cleartext.record import Finding, Severity
from cleartext.remediation import domain_remedy
from cleartext.text import sanitize

# The check view's colours (cleartext.render sits above this package in the pipeline's layers).
_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}


def _t(value: object, limit: int = 200) -> Text:
    return Text(sanitize(str(value), limit))


def _dns_text(result: DnsResult | None) -> str:
    if result is None:
        return "not asked"
    text = result.outcome.value
    if result.outcome is Outcome.FOUND:
        text += ", DNSSEC-validated" if result.authenticated else ", not DNSSEC-validated"
    elif result.detail and result.outcome is not Outcome.ABSENT:
        text += f": {result.detail}"
    return text


def _http_text(result: HttpResult) -> str:
    if result.outcome is Outcome.FOUND:
        return f"found ({result.bytes} bytes)"
    return result.outcome.value + (f": {result.detail}" if result.detail else "")


def _clients_table(obs: DomainObservation) -> Table:
    table = Table(title=Text("What mail clients are told", style="bold"), title_justify="left")
    for column in ("source", "service", "server", "socket", "authentication", "lookup"):
        table.add_column(column, overflow="fold")
    for lookup in obs.srv:
        usable = [r for r in lookup.records if r.target != "."]
        if lookup.records and not usable:
            table.add_row(_t("SRV"), _t(lookup.service), _t("."), _t(""), _t(""), _t("marked not offered"))
        elif not lookup.records:
            table.add_row(_t("SRV"), _t(lookup.service), _t("–"), _t(""), _t(""), _t(_dns_text(lookup.dns)))
        for rec in usable[:4]:
            socket = "ssl" if lookup.service.endswith("s") else "starttls"
            table.add_row(
                _t("SRV"),
                _t(lookup.service),
                _t(f"{rec.target}:{rec.port} (priority {rec.priority})"),
                _t(socket),
                _t(""),
                _t(_dns_text(lookup.dns)),
            )
    for config in obs.client_configs:
        if not config.servers:
            why = _http_text(config.http)
            if config.errors:
                why += "; " + "; ".join(config.errors[:2])
            table.add_row(_t(config.source), _t(""), _t(config.http.url, 120), _t(""), _t(""), _t(why, 300))
        for server in config.servers[:12]:
            table.add_row(
                _t(config.source),
                _t(server.protocol),
                _t(f"{server.hostname}:{server.port}"),
                Text(server.socket.value, style="bold red" if server.socket.value == "plain" else ""),
                _t(", ".join(server.authentication)),
                _t(config.http.url, 120),
            )
    return table


def _senders_table(obs: DomainObservation) -> Table:
    table = Table(title=Text("What sending servers are told", style="bold"), title_justify="left")
    table.add_column("policy")
    table.add_column("state", overflow="fold")
    sts = obs.mta_sts
    if not sts.records:
        table.add_row(_t("MTA-STS"), _t(f"no _mta-sts record ({_dns_text(sts.dns)})"))
    else:
        state = f"record id={sts.id}" if sts.id else "record: " + "; ".join(sts.record_errors)
        if sts.policy is not None:
            state += f"; policy {_http_text(sts.policy)}"
        if sts.mode:
            state += f"; mode {sts.mode}, max_age {sts.max_age}, mx {', '.join(sts.mx[:6])}"
        if sts.policy_errors:
            state += "; errors: " + "; ".join(sts.policy_errors[:3])
        table.add_row(_t("MTA-STS"), _t(state, 600))
    rpt = obs.tls_rpt
    rpt_state = ", ".join(rpt.rua) if rpt.rua else f"none ({'; '.join(rpt.errors) or _dns_text(rpt.dns)})"
    table.add_row(_t("TLS-RPT"), _t(rpt_state, 400))
    for mx in obs.mx:
        if not mx.tlsa_records:
            table.add_row(_t(f"DANE {mx.host}"), _t(f"no TLSA ({_dns_text(mx.tlsa)})"))
            continue
        records = ", ".join(dane.label(r) for r in mx.tlsa_records[:4])
        served = "; ".join(f"{s.address}: {s.match or 'no certificate'}" for s in mx.served) or "not scanned"
        table.add_row(_t(f"DANE {mx.host}"), _t(f"{records} ({_dns_text(mx.tlsa)}); served {served}", 600))
    if obs.mx_dns.outcome is not Outcome.FOUND:
        table.add_row(_t("MX"), _t(_dns_text(obs.mx_dns)))
    return table


def _evidence_lines(evidence: dict[str, object]) -> list[str]:
    lines = []
    for key, value in evidence.items():
        if value in (None, [], ""):
            continue
        shown = ", ".join(str(v) for v in value[:12]) if isinstance(value, list) else str(value)
        lines.append(f"{key.replace('_', ' ')}: {sanitize(shown, 400)}")
    return lines


def _finding_panel(domain: str, finding: Finding) -> Panel:
    fix = domain_remedy(finding.code)
    body: list[Text] = [Text(finding.summary, style="bold")]
    body += [Text("  " + line, style="dim") for line in _evidence_lines(finding.evidence)]
    body.append(Text("How to fix:", style="bold"))
    body += [Text(f"  {number}. {step}") for number, step in enumerate(fix.steps, 1)]
    if fix.config:
        body.append(Text("  example:", style="bold"))
        body += [Text("    " + line, style="cyan") for line in fix.config.splitlines()]
    title = Text.assemble(
        (f" {finding.severity.value.upper()} ", _SEVERITY_STYLE[finding.severity]),
        " ",
        (finding.code, "bold"),
        f"  {sanitize(domain, 120)}",
    )
    return Panel(Group(*body), title=title, title_align="left", expand=True)


def render_domain(console: Console, record: DomainRecord) -> None:
    """The domain view: two tables, then each domain finding with its fix."""
    obs = record.observation
    console.print(Text.assemble("\nDomain view ", (sanitize(obs.domain, 120), "bold")))
    console.print(_clients_table(obs))
    console.print(_senders_table(obs))
    for finding in record.findings:
        console.print(_finding_panel(obs.domain, finding))
    if not record.findings:
        console.print(
            Text(
                "No domain findings: what the domain publishes leads clients and senders to TLS.",
                style="green",
            )
        )


def render_domain_table(console: Console, records: list[DomainRecord]) -> None:
    """One row per domain finding (what `cleartext show` prints after the endpoints)."""
    table = Table(title=Text("Domains", style="bold"), title_justify="left")
    for column in ("domain", "severity", "code", "finding"):
        table.add_column(column, overflow="fold")
    for record in records:
        domain = _t(record.observation.domain, 120)
        if not record.findings:
            table.add_row(domain, _t(""), _t(""), Text("no domain findings", style="green"))
        for finding in record.findings:
            table.add_row(
                domain,
                Text(finding.severity.value, style=_SEVERITY_STYLE[finding.severity]),
                _t(finding.code),
                _t(finding.summary),
            )
    console.print(table)
