"""A self-contained HTML report: the numbers of a scan as charts a person takes in at a glance.

Why self-contained: the report is mailed, attached to tickets and opened offline, often by people
who should not have to trust a CDN or a network. Everything is in one file — inline CSS, SVG charts
drawn here in Python — and the page fetches nothing: its Content-Security-Policy allows no script at
all, no connection, no external image, and only the one stylesheet whose hash it carries.

Why every string is escaped: banners and certificate names were written by the servers we scanned.
They are sanitised in the record, but sanitising is for terminals; here every string, ours included,
goes through :func:`esc` (``html.escape`` with quotes), so nothing in a record can open a tag, close
an attribute or start a script, and the CSP is a second wall should that ever fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
from collections.abc import Sequence

from cleartext import __version__
from cleartext.findings import CATALOGUE, Code, info
from cleartext.report.stats import (
    COUNTRY_SOURCES,
    DOMAIN_COUNT_TITLES,
    NONE,
    UNKNOWN,
    Breakdown,
    DomainStats,
    Stats,
    Tally,
    Trends,
)
from cleartext.software import display_name
from cleartext.text import sanitize

# What the web dashboard draws with too (cleartext.web): the same charts, colours and stylesheet.
__all__ = [
    "CSS",
    "SEVERITY_COLOUR",
    "bar_chart",
    "breakdown_chart",
    "breakdown_label",
    "colour_css",
    "domain_section",
    "finding_chart",
    "render_html",
    "severity_chart",
    "trend_chart",
]

SEVERITY_COLOUR = {
    "critical": "#7f1d1d",
    "high": "#dc2626",
    "medium": "#f59e0b",
    "low": "#0ea5e9",
    "info": "#94a3b8",
    NONE: "#16a34a",
}
EXPOSED = "#dc2626"
SAFE = "#cbd5e1"
TREND_COLOURS = ("#dc2626", "#7c3aed", "#ea580c", "#0284c7", "#16a34a")

CSS = """
:root { --ink:#0f172a; --muted:#64748b; --line:#e2e8f0; --bad:#dc2626; --ok:#16a34a; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink);
       background:#f8fafc; }
header { background:#0f172a; color:#f8fafc; padding:22px 32px; }
header h1 { margin:0 0 4px; font-size:24px; letter-spacing:.2px; }
header p { margin:0; color:#cbd5e1; font-size:14px; }
main { padding:24px 32px 40px; max-width:1400px; }
section { margin:0 0 28px; }
h2 { font-size:18px; margin:0 0 12px; }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(170px, 1fr)); gap:14px; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
.card .value { display:block; font-size:30px; font-weight:700; font-variant-numeric:tabular-nums; }
.card .label { color:var(--muted); font-size:13px; }
.card .share { color:var(--muted); font-size:12px; }
.card.bad .value { color:var(--bad); }
.card.ok .value { color:var(--ok); }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(560px, 1fr)); gap:18px; }
figure { margin:0; background:#fff; border:1px solid var(--line); border-radius:10px; padding:14px 16px; }
figcaption { font-weight:600; margin-bottom:6px; }
figcaption small { color:var(--muted); font-weight:400; }
svg text { font:12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; fill:#334155; }
svg .num { font-variant-numeric:tabular-nums; }
.legend { color:var(--muted); font-size:12px; margin-top:4px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin:0 4px 0 10px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line);
        border-radius:10px; overflow:hidden; font-size:13px; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f1f5f9; font-weight:600; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td code, .banner { font:12px ui-monospace, SFMono-Regular, Menlo, monospace; }
.banner { color:#475569; word-break:break-all; max-width:420px; }
.sev { display:inline-block; padding:1px 8px; border-radius:9px; color:#fff; font-size:12px;
       font-weight:600; }
.codes span { display:inline-block; background:#f1f5f9; border-radius:4px; padding:0 5px;
              margin:1px 2px 1px 0; }
.empty { color:var(--muted); font-style:italic; }
footer { color:var(--muted); font-size:12px; padding:0 32px 24px; }
"""


def colour_css() -> str:
    """Colour classes: the CSP forbids style attributes, so every colour in HTML is a class."""
    rules = [f".sev-{name} {{ background:{colour}; }}" for name, colour in SEVERITY_COLOUR.items()]
    rules += [f".sw-t{i} {{ background:{colour}; }}" for i, colour in enumerate(TREND_COLOURS)]
    rules += [f".sw-exposed {{ background:{EXPOSED}; }}", f".sw-safe {{ background:{SAFE}; }}"]
    return "\n".join(rules)


def esc(value: object) -> str:
    """HTML-escape anything, quotes included, so it is safe in text and in attribute values alike."""
    return html.escape("" if value is None else str(value), quote=True)


def _csp(css: str) -> str:
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return (
        "default-src 'none'; script-src 'none'; connect-src 'none'; img-src 'none'; font-src 'none'; "
        f"style-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'"
    )


def _short(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Widths of 12 px sans-serif glyphs, rounded up from DejaVu Sans (the widest of the fonts the CSS can
# end up with, and the fallback on Linux): what a chart label may take before the SVG cuts it off. An
# SVG cannot measure its text without a script, and the page runs none.
_WIDTHS = {
    **dict.fromkeys("iljIft.,:;|!'()[] -/", 4.5),
    **dict.fromkeys("_rs\"", 6.5),
    **dict.fromkeys("0123456789", 7.7),
    **dict.fromkeys("mwMW@%#&", 12.0),
}


def _char_width(ch: str) -> float:
    width = _WIDTHS.get(ch)
    if width is not None:
        return width
    if not ch.isascii():
        return 12.0
    return 9.0 if ch.isupper() else 7.5


def text_width(text: str) -> float:
    """An upper bound of ``text``'s width at 12 px in the charts' font, in SVG units."""
    return sum(_char_width(ch) for ch in text)


def fit(text: str, width: float) -> str:
    """``text`` cut with an ellipsis at its end to fit ``width``: its start ("AS64500") stays."""
    if text_width(text) <= width:
        return text
    room = width - _char_width("…")
    out = []
    for ch in text:
        room -= _char_width(ch)
        if room < 0:
            break
        out.append(ch)
    return "".join(out).rstrip() + "…"


def _when(iso: str) -> str:
    """An ISO 8601 UTC time as people read it: ``2026-11-28 08:03 UTC`` (the text itself if unparsable)."""
    try:
        moment = dt.datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def _finding_title(code: str) -> str:
    """The catalogue's title of an endpoint or a domain code; the code itself for one it does not know."""
    try:
        return info(code).title
    except ValueError:
        return code


def breakdown_label(dimension: str, key: str, breakdown: Breakdown) -> str:
    """How a chart names a key of a breakdown: ``AS64500 EXAMPLE-NET``, ``port 25``, ``no finding``."""
    if dimension == "asn":
        if key == UNKNOWN:
            return "unknown AS"
        name = breakdown.labels.get(key)
        return f"AS{key} {name}" if name else f"AS{key}"
    if dimension == "software":
        return display_name(key) if key != UNKNOWN else "unidentified"
    if dimension == "tls_version" and key == NONE:
        return "no TLS seen"
    if dimension == "severity" and key == NONE:
        return "no finding"
    if dimension == "port":
        return f"port {key}"
    return key


def bar_chart(
    title: str,
    rows: Sequence[tuple[str, Tally]],
    *,
    note: str = "",
    limit: int = 12,
    colour_of: dict[str, str] | None = None,
    value: str = "split",
) -> str:
    """A horizontal bar chart as inline SVG: per row, exposed endpoints (red) against the rest (grey).

    ``value="exposed"`` draws only the exposed count (used for findings, where every endpoint is exposed),
    with a colour per key when ``colour_of`` names one.
    """
    shown = list(rows[:limit])
    hidden = len(rows) - len(shown)
    label_w, bar_w, num_w, row_h, top = 200, 330, 120, 24, 6
    width = label_w + bar_w + num_w
    height = top + row_h * max(len(shown), 1) + 6
    peak = max((t.endpoints for _, t in shown), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{esc(title)}" width="100%" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    if not shown:
        parts.append(f'<text x="0" y="{top + 14}">no endpoints</text>')
    for i, (label, tally) in enumerate(shown):
        y = top + i * row_h
        full = tally.endpoints if value == "split" else tally.exposed
        w_all = bar_w * full / peak
        w_bad = bar_w * tally.exposed / peak
        colour = (colour_of or {}).get(label, EXPOSED)
        tip = f"{label}: {tally.exposed} exposed of {tally.endpoints} open"
        parts.append(f"<g><title>{esc(tip)}</title>")
        shown_label = esc(fit(label, label_w - 10))
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{shown_label}</text>')
        if value == "split":
            parts.append(
                f'<rect x="{label_w}" y="{y + 4}" width="{w_all:.1f}" height="{row_h - 8}" rx="3" '
                f'fill="{SAFE}"/>'
            )
        parts.append(
            f'<rect class="bar-exposed" x="{label_w}" y="{y + 4}" width="{w_bad:.1f}" height="{row_h - 8}" '
            f'rx="3" fill="{colour}"/>'
        )
        text = (
            f"{tally.exposed:,} / {tally.endpoints:,} ({_pct(tally.exposed, tally.endpoints)})"
            if value == "split"
            else f"{tally.exposed:,}"
        )
        x_num = label_w + max(w_all, w_bad) + 6
        parts.append(f'<text class="num" x="{x_num:.1f}" y="{y + 16}">{esc(text)}</text></g>')
    parts.append("</svg>")
    more = f" · {hidden} more not shown" if hidden else ""
    caption = f"{esc(title)} <small>{esc(note)}{esc(more)}</small>"
    return f"<figure><figcaption>{caption}</figcaption>{''.join(parts)}</figure>"


def breakdown_chart(stats: Stats, dimension: str, title: str, note: str, **kw: object) -> str:
    """The bar chart of one breakdown of ``stats`` (``kw`` as :func:`bar_chart` takes them)."""
    b = stats.breakdown(dimension)
    rows = [(breakdown_label(dimension, key, b), tally) for key, tally in b.ordered()]
    return bar_chart(title, rows, note=note, **kw)  # type: ignore[arg-type]


def finding_chart(stats: Stats) -> str:
    """Endpoints by finding, each bar in the colour of the finding's default severity."""
    colours = {
        code: SEVERITY_COLOUR[CATALOGUE[Code(code)].severity.value]
        for code in stats.breakdown("finding").rows
        if code in {c.value for c in Code}
    }
    return breakdown_chart(
        stats,
        "finding",
        "By finding",
        "endpoints with the finding, coloured by default severity",
        value="exposed",
        colour_of=colours,
    )


def severity_chart(stats: Stats) -> str:
    """Open endpoints by their worst severity: every one counts, so the full count is drawn."""
    sev = stats.breakdown("severity")
    rows = [
        (breakdown_label("severity", key, sev), Tally(t.endpoints, t.endpoints, t.cleartext_login, t.no_tls))
        for key, t in sev.ordered()
    ]
    return bar_chart(
        "By worst severity",
        rows,
        note="open endpoints by their worst finding",
        value="exposed",
        colour_of={breakdown_label("severity", k, sev): c for k, c in SEVERITY_COLOUR.items()},
    )


def trend_chart(trends: Trends, metrics: Sequence[tuple[str, str]]) -> str:
    """Lines across scans, one per metric, as inline SVG with a legend."""
    n = len(trends.scans)
    series = [(name, label, [p.value for p in trends.series.get(name, [])]) for name, label in metrics]
    peak = max((v for _, _, values in series for v in values), default=0) or 1
    # The left margin holds the y-axis numbers, however many digits they have.
    width, height, right, top, bottom = 900, 240, 56, 14, 46
    left = max(56, round(text_width(f"{peak:,}")) + 12)
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / (n - 1) if n > 1 else 0

    def x(i: int) -> float:
        return left + (i * step if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [
        f'<svg class="chart trend" role="img" aria-label="trend across scans" width="100%" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
    ]
    for k in range(5):
        v = round(peak * k / 4)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e2e8f0"/>'
            f'<text class="num" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,}</text>'
        )
    for i, (scan_id, scanned_at) in enumerate(trends.scans):
        label = (scanned_at or "")[:10] or _short(scan_id or f"#{i + 1}", 18)
        name = _short(scan_id or "", 18)
        # The first and last labels are anchored at their point on the side away from the edge: centred
        # there, half of each would fall outside the chart.
        anchor = "middle" if n == 1 else "start" if i == 0 else "end" if i == n - 1 else "middle"
        parts.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 18}" text-anchor="{anchor}">{esc(label)}</text>'
            f'<text x="{x(i):.1f}" y="{height - bottom + 34}" text-anchor="{anchor}" fill="#94a3b8">'
            f"{esc(name)}</text>"
        )
    legend = []
    for j, (_, label, values) in enumerate(series):
        colour = TREND_COLOURS[j % len(TREND_COLOURS)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline class="trend-line" fill="none" stroke="{colour}" stroke-width="2.5" '
            f'points="{points}"/>'
        )
        for i, v in enumerate(values):
            tip = f"{label}: {v:,} ({trends.scans[i][0] or ''} {trends.scans[i][1] or ''})"
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="{colour}">'
                f"<title>{esc(tip)}</title></circle>"
            )
        legend.append(f'<i class="sw-t{j % len(TREND_COLOURS)}"></i>{esc(label)}')
    parts.append("</svg>")
    return (
        f"<figure><figcaption>Across scans <small>{n} scans, oldest first</small></figcaption>"
        f'{"".join(parts)}<div class="legend">{"".join(legend)}</div></figure>'
    )


def _card(metric: str, label: str, value: int, whole: int | None, tone: str = "") -> str:
    share = f'<span class="share">{_pct(value, whole)} of open</span>' if whole is not None else ""
    return (
        f'<div class="card {tone}" data-metric="{esc(metric)}"><span class="value">{value:,}</span>'
        f'<span class="label">{esc(label)}</span> {share}</div>'
    )


def _worst_table(stats: Stats) -> str:
    if not stats.worst:
        return '<p class="empty">No endpoint has a finding.</p>'
    rows = []
    for w in stats.worst:
        level = w.worst if w.worst in SEVERITY_COLOUR else "info"
        codes = "".join(f'<span title="{esc(_finding_title(c))}">{esc(c)}</span>' for c in w.codes)
        where = " ".join(
            part
            for part in (
                esc(w.country or ""),
                esc(f"AS{w.asn}") if w.asn is not None else "",
                esc(_short(w.as_name or "", 24)),
            )
            if part
        )
        host = f"<br><small>{esc(w.hostname)}</small>" if w.hostname else ""
        rows.append(
            "<tr>"
            f'<td><code>{esc(w.address)}</code>{host}</td><td class="num">{w.port}</td>'
            f"<td>{esc(w.protocol)}</td>"
            f'<td><span class="sev sev-{level}">{esc(w.worst)}</span></td>'
            f'<td class="codes">{codes}</td><td>{esc(display_name(w.software) if w.software else "")}</td>'
            f'<td>{where}</td><td class="banner">{esc(_short(w.banner or "", 160))}</td>'
            "</tr>"
        )
    return (
        '<table id="worst"><thead><tr><th>Address</th><th class="num">Port</th><th>Protocol</th>'
        "<th>Worst</th><th>Findings</th><th>Software</th><th>Where</th><th>Banner</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _severity_badge(severity: str) -> str:
    level = severity if severity in SEVERITY_COLOUR else "info"
    return f'<span class="sev sev-{level}">{_clean(severity)}</span>'


def _clean(text: str, limit: int = 120) -> str:
    """Text an imported file may have put anywhere (a domain name, a code): control characters shown as
    escapes (cleartext.text.sanitize), then HTML-escaped."""
    return esc(sanitize(text, limit))


def domain_section(domains: DomainStats) -> str:
    """The domain view's numbers (docs/reports.md): cards, a table per count, the domains with findings.
    Domain names and codes may come from an imported file: sanitised and escaped."""
    cards = "".join(
        (
            _card("domains_checked", "domains checked", domains.checked, None),
            _card(
                "domains_with_findings",
                "with findings",
                domains.with_findings,
                None,
                "bad" if domains.with_findings else "ok",
            ),
            _card("domains_tls_rpt", "TLS-RPT published", domains.tls_rpt, None),
        )
    )
    tables = []
    for name, counts in domains.counts().items():
        title = DOMAIN_COUNT_TITLES[name]
        rows = "".join(
            f'<tr><td title="{_clean(_finding_title(key))}">'
            f"{_severity_badge(key) if name == 'by_severity' else _clean(key)}</td>"
            f'<td class="num">{count:,}</td><td class="num">{_pct(count, domains.checked)}</td></tr>'
            for key, count in counts.items()
        )
        tables.append(
            f'<table class="domain-counts" id="domains-{esc(name)}"><thead><tr><th>{esc(title)}</th>'
            f'<th class="num">Domains</th><th class="num">Share</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>"
        )
    worst = "".join(
        f"<tr><td><code>{_clean(w.domain)}</code></td><td>{_severity_badge(w.worst)}</td>"
        '<td class="codes">'
        + "".join(f'<span title="{_clean(_finding_title(c))}">{_clean(c)}</span>' for c in w.codes)
        + "</td></tr>"
        for w in domains.worst
    )
    listing = (
        '<table id="worst-domains"><thead><tr><th>Domain</th><th>Worst</th><th>Findings</th></tr></thead>'
        f"<tbody>{worst}</tbody></table>"
        if worst
        else '<p class="empty">No domain has a finding.</p>'
    )
    return (
        f'<section id="domains"><h2>Domains</h2><div class="cards">{cards}</div>'
        f'<div class="grid">{"".join(tables)}</div>{listing}</section>'
    )


def _status_table(stats: Stats) -> str:
    rows = "".join(
        f'<tr><td>{esc(status)}</td><td class="num">{count:,}</td>'
        f'<td class="num">{_pct(count, stats.records)}</td></tr>'
        for status, count in sorted(stats.by_status.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    return (
        '<table id="status"><thead><tr><th>Status</th><th class="num">Records</th>'
        f'<th class="num">Share</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def render_html(stats: Stats, trends: Trends | None = None, *, title: str = "cleartext report") -> str:
    """The whole page as one string. Pure: the same statistics give the same bytes."""
    css = CSS.strip() + "\n" + colour_css()
    country_field = COUNTRY_SOURCES.get(stats.country_source, stats.country_source)
    # The scan's name goes with the title, as is: a name derived from a file called scan.jsonl read
    # "scan scan" after a "scan" label.
    heading = f"{title} · {stats.scan_id}" if stats.scan_id else title
    subtitle = " · ".join(
        part
        for part in (
            f"started {_when(stats.scanned_at)}" if stats.scanned_at else "",
            f"{stats.records:,} records",
        )
        if part
    )
    cards = "".join(
        (
            _card("records", "records", stats.records, None),
            _card("open", "open endpoints", stats.open, None),
            _card(
                "exposed",
                "exposed (any finding)",
                stats.exposed,
                stats.open,
                "bad" if stats.exposed else "ok",
            ),
            _card(
                "cleartext_login",
                "password before TLS (cleartext-login)",
                stats.cleartext_login,
                stats.open,
                "bad" if stats.cleartext_login else "ok",
            ),
            _card(
                "no_tls", "no TLS at all (no-tls)", stats.no_tls, stats.open, "bad" if stats.no_tls else "ok"
            ),
        )
    )
    charts = [
        breakdown_chart(stats, "protocol", "By protocol", "exposed / open endpoints"),
        finding_chart(stats),
        severity_chart(stats),
        breakdown_chart(
            stats, "tls_version", "TLS versions accepted", "exposed / open endpoints accepting it"
        ),
        breakdown_chart(stats, "country", "By country", f"{country_field} · exposed / open endpoints"),
        breakdown_chart(stats, "asn", "By autonomous system", "exposed / open endpoints"),
        breakdown_chart(stats, "port", "By port", "exposed / open endpoints"),
        breakdown_chart(stats, "software", "By server software", "exposed / open endpoints"),
    ]
    trend_html = ""
    if trends is not None and len(trends.scans) >= 2:
        trend_html = (
            "<section><h2>Trend</h2>"
            + trend_chart(
                trends,
                [
                    ("exposed", "exposed"),
                    ("cleartext_login", "cleartext-login"),
                    ("no_tls", "no-tls"),
                    ("open", "open endpoints"),
                ],
            )
            + "</section>"
        )
    legend = (
        '<div class="legend"><i class="sw-exposed"></i>exposed (at least one finding)'
        '<i class="sw-safe"></i>open, no finding</div>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(_csp(css))}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(heading)}</title><style>{css}</style></head><body>"
        f"<header><h1>{esc(heading)}</h1><p>{esc(subtitle)}</p></header><main>"
        f'<section><h2>Totals</h2><div class="cards" id="totals">{cards}</div></section>'
        f"{trend_html}"
        f'<section><h2>Where the exposure is</h2>{legend}<div class="grid">{"".join(charts)}</div></section>'
        f"<section><h2>Worst endpoints</h2>{_worst_table(stats)}</section>"
        f"{domain_section(stats.domains) if stats.domains is not None else ''}"
        f"<section><h2>All records by status</h2>{_status_table(stats)}</section>"
        "</main><footer>"
        f"Generated by cleartext {esc(__version__)}. Open endpoints: something accepted the TCP connection. "
        "Exposed: at least one finding. Country: "
        f"{esc(country_field)}. Banners are shown as the servers sent them, escaped."
        "</footer></body></html>\n"
    )
