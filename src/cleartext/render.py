"""Render: the mail admin's view of `cleartext check` — a verdict per port, a grade, and how to fix it.

Everything a server sent reaches the terminal as rich ``Text`` (never parsed as markup) after
cleartext.text.sanitize has escaped control characters, so a banner cannot move the cursor, recolour the
screen or forge a line of our output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from cleartext.assess import Grade, grade
from cleartext.findings import Code
from cleartext.record import Finding, Protocol, Record, Severity, Status, TLSMode
from cleartext.remediation import GENERIC, remedy
from cleartext.software import display_name
from cleartext.text import sanitize
from cleartext.tls.certs import plain_reason

_GRADE_STYLE = {"A": "bold green", "B": "green", "C": "yellow", "D": "bold red", "F": "bold white on red"}
FULL_HINT = "cleartext check --full"

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


# A few words per finding for the verdict column; the three that expose logins or mail have their own line.
_SHORT = {
    Code.STARTTLS_INJECTION.value: "STARTTLS injection",
    Code.STARTTLS_NOT_ADVERTISED.value: "STARTTLS not advertised",
    Code.LEGACY_TLS.value: "old TLS versions",
    Code.NO_MODERN_TLS.value: "no TLS 1.2 or 1.3",
    Code.WEAK_CIPHER.value: "weak ciphers",
    Code.CERT_EXPIRED.value: "certificate expired",
    Code.CERT_NOT_YET_VALID.value: "certificate not yet valid",
    Code.CERT_UNTRUSTED.value: "certificate not trusted",
    Code.CERT_HOSTNAME_MISMATCH.value: "name not on certificate",
    Code.CERT_WEAK_KEY.value: "weak key",
    Code.CERT_WEAK_SIGNATURE.value: "SHA-1/MD5 signature",
    Code.LOGIN_ADVERTISED_REFUSED.value: "login advertised but refused",
}


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
        return ", ".join(dict.fromkeys(_short(f) for f in record.findings))
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


def _short(finding: Finding) -> str:
    if finding.code == Code.CERT_UNTRUSTED.value and finding.evidence.get("self_signed") is True:
        return "self-signed certificate"
    return _SHORT.get(finding.code, finding.summary)


def _grade_text(letter: Grade | None) -> Text:
    if letter is None:
        return Text("–", style="dim")
    return Text(f" {letter.value} ", style=_GRADE_STYLE[letter.value])


def render_check(
    console: Console, target: str, hosts: Sequence[tuple[str, Sequence[Record]]], *, full: bool = False
) -> None:
    """Print the check report: a verdict table per host, what was found on which ports, and the fixes
    once per software and finding, with commands for the host checked. ``full`` prints instead every
    finding of every port with its evidence and its whole advice."""
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
                Text(display_name(obs.software) if obs.software else ""),
            )
        console.print(table)
    if any(r.findings for r in all_records):
        for host, records in hosts:
            if full:
                for record in records:
                    for finding in record.findings:
                        console.print(_finding_panel(host, record, finding))
            elif any(r.findings for r in records):
                _print_found(console, host, records)
                _print_fixes(console, host, records)
        if not full:
            console.print(Text(f"Every finding on every port, with its evidence: {FULL_HINT}", style="dim"))
        return
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


def _order(code: str) -> int:
    """The catalogue's order of finding codes (the worst exposures first), for findings of one severity."""
    codes = [c.value for c in Code]
    return codes.index(code) if code in codes else len(codes)


def _ports_text(records: Sequence[Record]) -> str:
    return ", ".join(f"{r.observation.port} {service_name(r)}" for r in records)


def _print_found(console: Console, host: str, records: Sequence[Record]) -> None:
    """One line per finding and detail, with the ports it was seen on (worst first)."""
    groups: dict[tuple[str, str], tuple[Finding, list[Record]]] = {}
    for record in records:
        for finding in record.findings:
            key = (finding.code, finding_detail(finding))
            worst, seen = groups.setdefault(key, (finding, []))
            if finding.severity.rank > worst.severity.rank:
                groups[key] = (finding, seen)
            seen.append(record)
    console.print()
    console.print(Text.assemble("What was found on ", (sanitize(host), "bold")))
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1), expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", no_wrap=True)
    table.add_column("what", ratio=1)
    for (code, detail), (finding, seen) in sorted(
        groups.items(), key=lambda g: (-g[1][0].severity.rank, _order(g[0][0]))
    ):
        what = Text(finding.summary + (f": {detail}" if detail else ""))
        what.append(f"  [{_ports_text(seen)}]", style="dim")
        table.add_row(
            Text(f" {finding.severity.value.upper()} ", style=_SEVERITY_STYLE[finding.severity]),
            Text(code, style="bold"),
            what,
        )
    console.print(table)


def _print_fixes(console: Console, host: str, records: Sequence[Record]) -> None:
    """The advice once per software and finding, for the ports it was seen on; a step or a snippet
    already given for that software is not repeated."""
    # (advice label, software) -> code -> protocol -> records
    plan: dict[tuple[str, str | None], dict[str, dict[Protocol, list[Record]]]] = {}
    worst: dict[str, int] = {}
    for record in records:
        obs = record.observation
        for finding in record.findings:
            label = remedy(finding.code, obs.software, obs.protocol).software
            by_code = plan.setdefault((label, obs.software), {})
            by_code.setdefault(finding.code, {}).setdefault(obs.protocol, []).append(record)
            worst[finding.code] = max(worst.get(finding.code, -1), finding.severity.rank)
    for (label, software), by_code in plan.items():
        every = {id(r): r for by_protocol in by_code.values() for rs in by_protocol.values() for r in rs}
        ports = _ports_text([r for r in records if id(r) in every])
        if label != GENERIC:
            who = label
        elif software:
            who = f"{display_name(software)}, generic advice"
        else:
            who = "software not identified, generic advice"
        console.print()
        console.print(Text.assemble("How to fix it: ", (who, "bold"), f" on {sanitize(host)} ({ports})"))
        said: set[str] = set()
        for code in sorted(by_code, key=lambda c: (-worst[c], _order(c))):
            steps: list[str] = []
            configs: list[str] = []
            for protocol, seen in by_code[code].items():
                where = [(r.observation.port, r.observation.tls_mode is TLSMode.IMPLICIT) for r in seen]
                fix = remedy(code, software, protocol, host=host, ports=where)
                for step in fix.steps:
                    if _step_kind(step) not in said and _step_kind(step) not in map(_step_kind, steps):
                        steps.append(step)
                if fix.config and fix.config not in said and fix.config not in configs:
                    configs.append(fix.config)
            title = next(f.summary for r in records for f in r.findings if f.code == code)
            console.print(Text.assemble("  ", (code, "bold"), f" ({title})"))
            grid = Table.grid(padding=(0, 1))
            grid.add_column(justify="right", width=4, no_wrap=True)
            grid.add_column(ratio=1)
            for number, step in enumerate(steps, 1):
                grid.add_row(Text(f"{number}."), Text(_as_above(step, said)))
            for config in configs:
                for line in config.splitlines():
                    grid.add_row(Text(""), Text(line, style="cyan", overflow="fold"))
            if not steps and not configs:
                grid.add_row(Text(""), Text("the steps above fix it too", style="dim"))
            console.print(grid)
            said.update(_step_kind(step) for step in steps)
            said.update(steps)
            said.update(configs)


_CERT_CHECK = "Look at what the server really serves:"


def _step_kind(step: str) -> str:
    """What makes two steps the same advice: their text, except that one look at the certificate served
    is enough for one software (its ports serve the same certificate)."""
    return _CERT_CHECK if step.startswith(_CERT_CHECK) else step


def _as_above(step: str, said: set[str]) -> str:
    """A step that repeats a long step given above (advice shared by several findings, such as how to get
    a certificate) names it by its first words instead of repeating it."""
    for earlier in said:
        if len(earlier) >= 80 and earlier != step and earlier in step:
            head = re.split(r"[;:.(]", earlier, maxsplit=1)[0].strip()
            step = step.replace(earlier, f"{head} (as above).")
    return step


def finding_detail(finding: Finding) -> str:
    """The one fact that makes a finding concrete (the versions, the classes, the date, the reason), in
    words; the empty string when its title says it all. Server-sent text is sanitized and bounded."""
    ev = finding.evidence

    def words(value: object, limit: int = 8) -> str:
        items = value if isinstance(value, list) else [value]
        shown = [sanitize(str(v), 60) for v in items[:limit] if v not in (None, "")]
        return ", ".join(shown) + (f", … ({len(items)} in all)" if len(items) > limit else "")

    match finding.code:
        case Code.CLEARTEXT_LOGIN.value:
            how = words(ev.get("accepted") or ev.get("offered") or [])
            notes = [
                *(["not advertised, accepted all the same"] if ev.get("hidden") else []),
                *(["inferred: the server has no capability list"] if ev.get("inferred") else []),
            ]
            return how + (f" ({'; '.join(notes)})" if notes else "")
        case Code.LEGACY_TLS.value:
            return words(ev.get("versions", []))
        case Code.NO_MODERN_TLS.value:
            return "accepted: " + words(ev.get("accepted", [])) if ev.get("accepted") else ""
        case Code.WEAK_CIPHER.value:
            return words(ev.get("classes", []))
        case Code.CERT_EXPIRED.value:
            subject = sanitize(str(ev.get("subject", "")), 120)
            return f"on {sanitize(str(ev.get('not_after', '')), 20)[:10]} ({subject})"
        case Code.CERT_NOT_YET_VALID.value:
            return f"until {sanitize(str(ev.get('not_before', '')), 20)[:10]}"
        case Code.CERT_UNTRUSTED.value:
            return plain_reason(sanitize(str(ev.get("error") or ""), 400))
        case Code.CERT_HOSTNAME_MISMATCH.value:
            names = words(ev.get("dns_names") or [], 5) or "no name at all"
            return f"{sanitize(str(ev.get('hostname', '')), 120)} is not among {names}"
        case Code.CERT_WEAK_KEY.value | Code.CERT_WEAK_SIGNATURE.value:
            certs = ev.get("certificates") or []
            return words([_certificate_words(c) for c in certs if isinstance(c, dict)], 3)
        case Code.STARTTLS_FAILED.value:
            return sanitize(str(ev.get("error") or ev.get("reply") or ""), 160)
        case Code.STARTTLS_INJECTION.value:
            return f"{sanitize(str(ev.get('injected', '')), 40)} was answered inside TLS"
        case Code.LOGIN_ADVERTISED_REFUSED.value:
            return "offered " + words(ev.get("offered") or []) if ev.get("offered") else ""
    return ""


def _certificate_words(cert: dict[str, Any]) -> str:
    """A certificate of weak-key or weak-signature evidence: what is weak, and whose."""
    subject = sanitize(str(cert.get("subject", "")), 120)
    if "key_bits" in cert:
        kind = sanitize(str(cert.get("key_type", "")), 10).upper()
        return f"{kind} {sanitize(str(cert.get('key_bits')), 10)} bits ({subject})"
    return f"{sanitize(str(cert.get('signature_algorithm', '')), 60)} ({subject})"


def _evidence_lines(evidence: dict[str, object]) -> list[str]:
    """Evidence as lines of words: yes/no for booleans, key: value for nested records; no Python literals."""
    lines = []
    for key, value in evidence.items():
        if value in (None, [], "", {}):
            continue
        if key == "probes" and isinstance(value, list):
            lines.extend(_probe_lines(value))
            continue
        lines.append(f"{key.replace('_', ' ')}: {_evidence_value(value)}")
    return lines


def _evidence_value(value: object, depth: int = 0) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        parts = [
            f"{sanitize(str(k), 40).replace('_', ' ')} {_evidence_value(v, depth + 1)}"
            for k, v in list(value.items())[:12]
            if v not in (None, "", [], {})
        ]
        return ", ".join(parts)
    if isinstance(value, list):
        sep = "; " if any(isinstance(v, dict) for v in value) else ", "
        shown = sep.join(_evidence_value(v, depth + 1) for v in value[:12])
        return shown + (f"{sep}… ({len(value)} in all)" if len(value) > 12 else "")
    return sanitize(str(value), 300 if depth == 0 else 120)


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


def _finding_panel(host: str, record: Record, finding: Finding) -> Panel:
    obs = record.observation
    fix = remedy(
        finding.code,
        obs.software,
        obs.protocol,
        host=host,
        ports=[(obs.port, obs.tls_mode is TLSMode.IMPLICIT)],
    )
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
