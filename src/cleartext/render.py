"""Render: the mail admin's view of `cleartext check` — a verdict per port, a grade, and how to fix it.

Everything a server sent reaches the terminal as rich ``Text`` (never parsed as markup) after
cleartext.text.sanitize has escaped control characters, so a banner cannot move the cursor, recolour the
screen or forge a line of our output.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cleartext.assess import Grade, grade
from cleartext.findings import Code
from cleartext.record import Record, Severity, Status, TLSMode
from cleartext.remediation import remedy
from cleartext.text import sanitize

_GRADE_STYLE = {"A": "bold green", "B": "green", "C": "yellow", "D": "bold red", "F": "bold white on red"}
_SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
_STATUS_TEXT = {
    Status.REFUSED: "closed (connection refused)",
    Status.CONNECT_TIMEOUT: "no answer (filtered or down)",
    Status.UNREACHABLE: "unreachable",
    Status.READ_TIMEOUT: "went silent mid-dialog",
    Status.CLOSED: "closed the connection mid-dialog",
    Status.NOT_MAIL: "something answers, but not a mail server",
    Status.REFUSED_BY_POLICY: "refuses our session (policy)",
    Status.TLS_ERROR: "TLS handshake failed",
    Status.PROTOCOL_ERROR: "broken protocol replies",
    Status.BLOCKLISTED: "not scanned (reserved range)",
    Status.ERROR: "local error",
}


def service_name(record: Record) -> str:
    obs = record.observation
    name = obs.protocol.value
    if obs.tls_mode is TLSMode.IMPLICIT:
        name += "s"
    elif obs.protocol.value == "smtp" and obs.port == 587:
        name = "submission"
    return name


def verdict(record: Record) -> str:
    """One line a mail admin understands at a glance."""
    obs = record.observation
    codes = {f.code for f in record.findings}
    if Code.CLEARTEXT_LOGIN.value in codes:
        return "EXPOSED: passwords can be sent before TLS" + _login_basis(record)
    if Code.NO_TLS.value in codes:
        return "NO TLS: logins and mail cross the network in clear"
    if Code.STARTTLS_FAILED.value in codes:
        return "TLS BROKEN: offered but does not work"
    if record.findings:
        more = len(record.findings) - 1
        return record.findings[0].summary + (f" (+{more} more)" if more else "")
    if obs.status is Status.SUCCESS:
        if obs.depth == "discovery":  # greeting only: saying "OK" would claim a login check we skipped
            tls = f", {obs.tls.version}" if obs.tls is not None and obs.tls.version else ""
            return f"ANSWERS{tls} (discovery only: login not checked)"
        if obs.tls is not None and obs.tls.version:
            return f"OK: {obs.tls.version}, login only after TLS"
        return "OK"
    return _STATUS_TEXT.get(obs.status, obs.status.value)


def _login_basis(record: Record) -> str:
    """What an EXPOSED verdict rests on, in a few words: the first thing a mail admin asks."""
    login = record.login
    if login is None:
        return ""
    where = " on an implicit-TLS port" if record.observation.tls_mode is TLSMode.IMPLICIT else ""
    if login.basis == "probed-accepted":
        hidden = ", although it does not advertise a login" if login.advertised is False else ""
        return f" (it asked for the password{where}{hidden})"
    if login.basis == "inferred":
        return " (no CAPA: USER/PASS assumed)"
    return " (advertised)"


def _grade_text(letter: Grade | None) -> Text:
    if letter is None:
        return Text("–", style="dim")
    return Text(f" {letter.value} ", style=_GRADE_STYLE[letter.value])


def render_check(console: Console, target: str, hosts: Sequence[tuple[str, Sequence[Record]]]) -> None:
    """Print the check report: a table per host, then every finding with its fix."""
    all_records = [r for _, records in hosts for r in records]
    overall = grade(all_records)
    head = Text.assemble(
        "cleartext check ", (sanitize(target), "bold"), "   overall grade ", _grade_text(overall)
    )
    console.print(head)
    for host, records in hosts:
        table = Table(title=Text(sanitize(host), style="bold"), title_justify="left", expand=False)
        for column in ("address", "port", "service", "grade", "verdict", "software"):
            table.add_column(column)
        for record in records:
            obs = record.observation
            letter = grade([record])
            table.add_row(
                Text(obs.address),
                Text(str(obs.port)),
                Text(service_name(record)),
                _grade_text(letter),
                Text(verdict(record)),
                Text(obs.software or ""),
            )
        console.print(table)
    findings_shown = 0
    for _host, records in hosts:
        for record in records:
            for finding in record.findings:
                findings_shown += 1
                console.print(_finding_panel(record, finding))
    if not findings_shown:
        answered = [r for r in all_records if r.observation.status is Status.SUCCESS]
        if answered:
            console.print(
                Text(
                    "No findings: every port that answered requires TLS before login, speaks "
                    "modern TLS and shows a sound certificate.",
                    style="green",
                )
            )
        else:
            console.print(Text("No mail port answered.", style="yellow"))


def _evidence_lines(evidence: dict[str, object]) -> list[str]:
    lines = []
    for key, value in evidence.items():
        if value in (None, [], ""):
            continue
        if key == "probes" and isinstance(value, list):
            lines.extend(_probe_lines(value))
            continue
        if isinstance(value, list):
            shown = ", ".join(sanitize(str(v), 200) for v in value[:12])
            if len(value) > 12:
                shown += f", … ({len(value)} in all)"
        elif isinstance(value, dict):
            shown = ", ".join(
                f"{sanitize(str(k), 40)}={sanitize(str(v), 60)}" for k, v in list(value.items())[:12]
            )
        else:
            shown = sanitize(str(value), 300)
        lines.append(f"{key.replace('_', ' ')}: {shown}")
    return lines


def _probe_lines(probes: list[object]) -> list[str]:
    """The login probe as a mail admin would read it in a transcript: what we sent, what came back."""
    out = []
    for probe in probes[:6]:
        if not isinstance(probe, dict):
            continue
        line = (f"sent {sanitize(str(probe.get('command')), 40)}: the server answered "
                f"{sanitize(str(probe.get('reply')), 120)!s} ({probe.get('outcome')}, {probe.get('reason')})")
        if probe.get("cancel_reply"):
            line += f"; cancelled with *: {sanitize(str(probe['cancel_reply']), 80)}"
        out.append(line)
    return out


def _finding_panel(record: Record, finding: object) -> Panel:
    from cleartext.record import Finding

    assert isinstance(finding, Finding)
    obs = record.observation
    fix = remedy(finding.code, obs.software, obs.protocol)
    body: list[Text] = [Text(finding.summary, style="bold")]
    for line in _evidence_lines(finding.evidence):
        body.append(Text("  " + line, style="dim"))
    body.append(Text(f"How to fix ({fix.software}):", style="bold"))
    for number, step in enumerate(fix.steps, 1):
        body.append(Text(f"  {number}. {step}"))
    if fix.config:
        body.append(Text("  configuration:", style="bold"))
        for line in fix.config.splitlines():
            body.append(Text("    " + line, style="cyan"))
    title = Text.assemble(
        (f" {finding.severity.value.upper()} ", _SEVERITY_STYLE[finding.severity]),
        " ",
        (finding.code, "bold"),
        f"  {obs.address}:{obs.port} ({service_name(record)})",
    )
    return Panel(Group(*body), title=title, title_align="left", expand=True)


def render_table(console: Console, records: Sequence[Record], title: str = "") -> None:
    """A compact verdict table of many endpoints (what `cleartext show` prints)."""
    table = Table(title=title or None, title_justify="left")
    for column in ("endpoint", "host", "service", "status", "grade"):
        table.add_column(column, no_wrap=True)
    table.add_column("verdict", ratio=2)
    table.add_column("findings", ratio=2, overflow="fold")
    for record in records:
        obs = record.observation
        table.add_row(
            Text(f"{obs.address}:{obs.port}"),
            Text(sanitize(obs.hostname or "", 60)),
            Text(service_name(record)),
            Text(obs.status.value),
            _grade_text(grade([record])),
            Text(verdict(record)),
            Text(", ".join(f.code for f in record.findings)),
        )
    console.print(table)
