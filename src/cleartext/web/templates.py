# ruff: noqa: E501 - HTML and CSS read better unwrapped than broken at 110 columns
"""The dashboard's pages: Jinja2 templates with autoescaping, and the one stylesheet.

Why templates live in a Python module rather than in .html files: the package ships exactly its Python
modules and declared data, and a page that is missing from an installed wheel is a page that fails in
production only. Everything a server sent (banners, capabilities, certificate names, replies) reaches
a template as a plain string and is escaped by Jinja's autoescape; the only markup inserted unescaped
is the SVG of :mod:`cleartext.report.html`'s charts, which escape every string they draw.

The pages contain no script at all (the CSP says ``script-src 'none'``); filters are plain GET forms,
and the stylesheet is a file of our own (``style-src 'self'``), so no inline style is needed either.
"""

from __future__ import annotations

from jinja2 import DictLoader, Environment, StrictUndefined
from markupsafe import Markup, escape

from cleartext.report.html import CSS as REPORT_CSS
from cleartext.report.html import colour_css

EXTRA_CSS = """
nav { background:#0f172a; color:#f8fafc; padding:10px 32px; display:flex; gap:22px; align-items:center;
      flex-wrap:wrap; }
nav a { color:#e2e8f0; text-decoration:none; font-weight:600; }
nav a.here { color:#fff; border-bottom:2px solid #f59e0b; }
nav .who { margin-left:auto; color:#94a3b8; font-size:13px; }
nav form { margin:0; }
nav button { background:none; border:1px solid #475569; color:#e2e8f0; border-radius:6px; padding:3px 10px;
             cursor:pointer; }
header.page { background:#1e293b; }
form.filters { display:flex; flex-wrap:wrap; gap:10px 14px; align-items:flex-end; background:#fff;
               border:1px solid var(--line); border-radius:10px; padding:12px 16px; margin-bottom:16px; }
form.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:3px; }
input, select { font:14px system-ui, sans-serif; padding:5px 8px; border:1px solid #cbd5e1; border-radius:6px;
                background:#fff; color:var(--ink); }
input.narrow { width:90px; }
button.primary { background:#0f172a; color:#fff; border:0; border-radius:6px; padding:7px 16px; font-weight:600;
                 cursor:pointer; }
a.reset { font-size:13px; color:var(--muted); align-self:center; }
.pager { display:flex; gap:16px; align-items:center; margin:12px 0; color:var(--muted); font-size:13px; }
.pager a { color:#1d4ed8; }
td a, p a, li a { color:#1d4ed8; }
.downloads a { display:inline-block; margin:0 10px 6px 0; padding:4px 10px; border:1px solid var(--line);
               border-radius:6px; background:#fff; color:#1d4ed8; text-decoration:none; font-size:13px; }
pre { background:#0f172a; color:#e2e8f0; padding:10px 12px; border-radius:8px; overflow:auto; font-size:12px;
      white-space:pre-wrap; word-break:break-all; }
dl.facts { display:grid; grid-template-columns:max-content 1fr; gap:4px 18px; background:#fff;
           border:1px solid var(--line); border-radius:10px; padding:12px 16px; margin:0; }
dl.facts dt { color:var(--muted); }
dl.facts dd { margin:0; }
.finding { background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 16px; margin-bottom:14px; }
.finding h3 { margin:0 0 6px; font-size:16px; }
.finding ol { margin:6px 0 8px; padding-left:22px; }
.finding small { color:var(--muted); }
.error { background:#fef2f2; border:1px solid #fecaca; color:#991b1b; border-radius:8px; padding:10px 14px;
         margin-bottom:14px; }
.notice { background:#f0f9ff; border:1px solid #bae6fd; border-radius:8px; padding:10px 14px;
          margin-bottom:14px; }
.login { max-width:460px; margin:60px auto; background:#fff; border:1px solid var(--line); border-radius:12px;
         padding:24px 28px; }
.login input { width:100%; margin:8px 0 14px; }
.status-success { color:var(--ok); }
"""

CSS = REPORT_CSS.strip() + "\n" + colour_css() + "\n" + EXTRA_CSS.strip() + "\n"

_BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{% block title %}cleartext{% endblock %} · cleartext</title>
<link rel="stylesheet" href="/static/app.css">
<link rel="icon" href="/static/icon.svg" type="image/svg+xml">
</head><body>
{% if scope %}
<nav>
  <a href="/" class="{{ 'here' if page == 'overview' else '' }}">Overview</a>
  <a href="/endpoints" class="{{ 'here' if page == 'endpoints' else '' }}">Endpoints</a>
  <a href="/self-check" class="{{ 'here' if page == 'self-check' else '' }}">Self-check</a>
  <a href="/openapi.json">API</a>
  <span class="who" id="who">{{ who }}</span>
  <form method="post" action="/logout"><input type="hidden" name="csrf" value="{{ csrf }}">
    <button type="submit">Log out</button></form>
</nav>
{% endif %}
<header class="page"><h1>{% block heading %}cleartext{% endblock %}</h1><p>{% block sub %}{% endblock %}</p></header>
<main>{% block main %}{% endblock %}</main>
<footer>cleartext {{ version }} · read-only dashboard. Server-sent text is shown as sent, escaped.
Country: {{ country_field }}.</footer>
</body></html>
"""

_LOGIN = """{% extends "base.html" %}
{% block title %}Log in{% endblock %}
{% block heading %}cleartext{% endblock %}
{% block sub %}Mail servers that let a password or mail cross the network in clear{% endblock %}
{% block main %}
<div class="login">
  <h2>Log in with an API token</h2>
  {% if error %}<div class="error" id="error">{{ error }}</div>{% endif %}
  <form method="post" action="/login">
    <label for="token">Token</label>
    <input type="password" id="token" name="token" autocomplete="off" required>
    <button class="primary" type="submit">Log in</button>
  </form>
  <p><small>Tokens are made by the operator with <code>cleartext token create</code>.</small></p>
</div>
{% endblock %}
"""

_SCAN_PICKER = """
<form class="filters" method="get" action="{{ action }}">
  <label>Scan
    <select name="scan" id="scan">
    {% for s in scans|reverse %}
      <option value="{{ s.scan_id }}" {{ 'selected' if s.scan_id == scan_id else '' }}>
        {{ s.scan_id }} · {{ s.endpoints }} endpoints</option>
    {% endfor %}
    </select></label>
  <button class="primary" type="submit">Show</button>
</form>
"""

_OVERVIEW = (
    """{% extends "base.html" %}
{% block title %}Overview{% endblock %}
{% block heading %}Overview{% endblock %}
{% block sub %}{% if stats %}scan {{ scan_id }} · {{ "{:,}".format(stats.records) }} records{% if stats.scanned_at %}
 · started {{ stats.scanned_at[:16].replace("T", " ") }} UTC{% endif %}{% else %}no scan yet{% endif %}{% endblock %}
{% block main %}
{% if not stats %}
<p class="empty">The store has no scan{{ '' if admin else ' with endpoints in your networks' }} yet.</p>
{% else %}
{% set action = "/" %}"""
    + _SCAN_PICKER
    + """
<section><h2>Totals</h2><div class="cards" id="totals">
{% for metric, label, value, share, tone in cards %}
  <div class="card {{ tone }}" data-metric="{{ metric }}"><span class="value">{{ "{:,}".format(value) }}</span>
  <span class="label">{{ label }}</span>{% if share %} <span class="share">{{ share }} of open</span>{% endif %}</div>
{% endfor %}
</div></section>
{% if trend %}<section><h2>Trend</h2>{{ trend }}</section>{% endif %}
<section><h2>Where the exposure is</h2>
<div class="legend"><i class="sw-exposed"></i>exposed (at least one finding)<i class="sw-safe"></i>open, no finding</div>
<div class="grid" id="charts">{% for chart in charts %}{{ chart }}{% endfor %}</div></section>
<section><h2>Downloads</h2><p class="downloads" id="downloads">
{% for label, href in downloads %}<a href="{{ href }}">{{ label }}</a>{% endfor %}</p></section>
<section><h2>Worst endpoints</h2>
{% if stats.worst %}
<table id="worst"><thead><tr><th>Address</th><th class="num">Port</th><th>Protocol</th><th>Worst</th>
<th>Findings</th><th>Software</th><th>Where</th><th>Banner</th></tr></thead><tbody>
{% for w in stats.worst %}
<tr><td><a href="{{ endpoint_href(scan_id, w.address, w.port) }}"><code>{{ w.address }}</code></a>
{% if w.hostname %}<br><small>{{ w.hostname }}</small>{% endif %}</td>
<td class="num">{{ w.port }}</td><td>{{ w.protocol }}</td>
<td><span class="sev sev-{{ sev_class(w.worst) }}">{{ w.worst }}</span></td>
<td class="codes">{% for c in w.codes %}<span>{{ c }}</span>{% endfor %}</td>
<td>{{ software_name(w.software) if w.software else "" }}</td>
<td>{{ w.country or "" }} {% if w.asn is not none %}AS{{ w.asn }}{% endif %} {{ (w.as_name or "")[:24] }}</td>
<td class="banner">{{ (w.banner or "")[:160] }}</td></tr>
{% endfor %}
</tbody></table>
{% else %}<p class="empty">No endpoint has a finding.</p>{% endif %}
</section>
{% endif %}
{% endblock %}
"""
)

_ENDPOINTS = """{% extends "base.html" %}
{% block title %}Endpoints{% endblock %}
{% block heading %}Endpoints{% endblock %}
{% block sub %}{% if scan_id %}scan {{ scan_id }} · {{ "{:,}".format(page_.total) }} endpoints match{% endif %}{% endblock %}
{% block main %}
{% if error %}<div class="error" id="error">{{ error }}</div>{% endif %}
{% if not scan_id %}<p class="empty">No scan yet.</p>{% else %}
<form class="filters" method="get" action="/endpoints" id="filters">
  <label>Scan<select name="scan">{% for s in scans|reverse %}
    <option value="{{ s.scan_id }}" {{ 'selected' if s.scan_id == scan_id else '' }}>{{ s.scan_id }}</option>
  {% endfor %}</select></label>
  <label>Protocol<select name="protocol" id="f-protocol"><option value="">any</option>
    {% for p in protocols %}<option {{ 'selected' if q.protocol == p else '' }}>{{ p }}</option>{% endfor %}</select></label>
  <label>Port<input class="narrow" name="port" id="f-port" value="{{ q.port or '' }}" inputmode="numeric"></label>
  <label>Status<select name="status" id="f-status"><option value="">any</option>
    {% for s in statuses %}<option {{ 'selected' if q.status == s else '' }}>{{ s }}</option>{% endfor %}</select></label>
  <label>Finding<select name="code" id="f-code"><option value="">any</option>
    {% for c in codes %}<option {{ 'selected' if q.code == c else '' }}>{{ c }}</option>{% endfor %}</select></label>
  <label>Worst severity<select name="severity" id="f-severity"><option value="">any</option>
    {% for s in severities %}<option {{ 'selected' if q.severity == s else '' }}>{{ s }}</option>{% endfor %}</select></label>
  <label>Country<input class="narrow" name="country" id="f-country" value="{{ q.country or '' }}" maxlength="2"></label>
  <label>AS<input class="narrow" name="asn" id="f-asn" value="{{ q.asn or '' }}"></label>
  <label>Address or CIDR<input name="address" id="f-address" value="{{ q.address or '' }}"></label>
  <label>Sort<select name="sort"><option value="severity">worst first</option>
    <option value="address" {{ 'selected' if sort == 'address' else '' }}>by address</option></select></label>
  <button class="primary" type="submit">Filter</button>
  <a class="reset" href="/endpoints?scan={{ scan_id|urlencode }}">reset</a>
</form>
<table id="endpoints"><thead><tr><th>Address</th><th class="num">Port</th><th>Protocol</th><th>Status</th>
<th>Worst</th><th>Findings</th><th>TLS</th><th>Software</th><th>AS</th><th>Country</th></tr></thead><tbody>
{% for e in page_.items %}
<tr data-address="{{ e.address }}" data-port="{{ e.port }}">
<td><a href="{{ endpoint_href(e.scan_id, e.address, e.port) }}"><code>{{ e.address }}</code></a>
{% if e.hostname %}<br><small>{{ e.hostname }}</small>{% endif %}</td>
<td class="num">{{ e.port }}</td><td>{{ e.protocol }}</td><td>{{ e.status }}</td>
<td>{% if e.worst_severity %}<span class="sev sev-{{ sev_class(e.worst_severity) }}">{{ e.worst_severity }}</span>{% endif %}</td>
<td class="codes">{% for c in e.finding_codes %}<span>{{ c }}</span>{% endfor %}</td>
<td>{{ e.tls_version or "" }}</td><td>{{ software_name(e.software) if e.software else "" }}</td>
<td>{% if e.asn is not none %}AS{{ e.asn }} {{ (e.as_name or "")[:20] }}{% endif %}</td>
<td>{{ (e.country if country_source == 'geo' else e.registry_country) or "" }}</td></tr>
{% else %}<tr><td colspan="10" class="empty">No endpoint matches.</td></tr>{% endfor %}
</tbody></table>
<div class="pager" id="pager"><span>{% if page_.total %}{{ page_.offset + 1 }}–{{ page_.offset + page_.items|length }}
 of {{ "{:,}".format(page_.total) }}{% else %}0 of 0{% endif %}</span>
{% if prev_href %}<a href="{{ prev_href }}" id="prev">← previous</a>{% endif %}
{% if next_href %}<a href="{{ next_href }}" id="next">next →</a>{% endif %}</div>
<p class="downloads">Download these endpoints:
{% for label, href in downloads %}<a href="{{ href }}">{{ label }}</a>{% endfor %}</p>
{% endif %}
{% endblock %}
"""

_RECORD = """
{% macro record_view(record, remedies, show_address=True) %}
{% set o = record.observation %}
<dl class="facts">
  {% if show_address %}<dt>Endpoint</dt><dd><code>{{ o.address }}</code> port {{ o.port }}
    ({{ o.protocol.value }}, {{ o.tls_mode.value }})</dd>{% endif %}
  <dt>Status</dt><dd class="status-{{ o.status.value }}">{{ o.status.value }}{% if o.status_detail %}:
    {{ o.status_detail }}{% endif %}</dd>
  {% if o.hostname %}<dt>Host name</dt><dd>{{ o.hostname }}</dd>{% endif %}
  <dt>Software</dt><dd>{{ software_name(o.software) if o.software else "not identified" }}</dd>
  <dt>Greeting</dt><dd class="banner greeting">{{ o.greeting or "" }}</dd>
  {% if o.plain %}
  <dt>Before TLS</dt><dd>capabilities: <span class="banner">{{ (o.plain.capabilities or [])|join(" · ") }}</span><br>
    STARTTLS advertised: {{ "yes" if o.plain.starttls_advertised else "no" }};
    reply: <span class="banner">{{ o.plain.starttls_reply or "" }}</span>
    {% if o.plain.starttls_injection %}<br>command pipelined after STARTTLS:
    {{ {"answered": "answered inside TLS (vulnerable)", "ignored": "discarded", "closed": "connection closed",
        "skipped": "not sent (this software closes on it)"}.get(o.plain.starttls_injection, o.plain.starttls_injection) }}{% endif %}</dd>
  {% endif %}
  {% if record.login %}{% set lv = record.login %}
  <dt>Login before TLS</dt><dd class="login-verdict">{% if lv.exposed %}<b>a password can be sent in clear</b>{% elif lv.exposed is false %}refused before TLS{% else %}cannot tell{% endif %}
    — {{ {"probed-accepted": "the server asked for the password when a login was started",
          "probed-refused": "every login started was refused before any credential",
          "advertised": "from the capability list (the login probe could not settle it)",
          "not-advertised": "from the capability list (the login probe could not settle it)",
          "inferred": "no capability list: USER/PASS assumed"}.get(lv.basis, lv.basis) }}{% if lv.exposed and lv.advertised is false %}, although it does not advertise a login{% endif %}
    {% for p in o.plain.login_probes %}<br><code>{{ p.command }}</code>: <span class="banner">{{ p.reply }}</span>
    ({{ p.outcome }}{% if p.cancel_reply %}; cancelled with *: <span class="banner">{{ p.cancel_reply }}</span>{% endif %}){% endfor %}</dd>
  {% endif %}
  {% if o.tls %}
  <dt>TLS</dt><dd>{{ o.tls.version or "no handshake" }} {{ o.tls.cipher or "" }}{% if o.tls.error %} — {{ o.tls.error }}{% endif %}
    {% if o.tls.trusted is not none %}<br>chain trusted: {{ "yes" if o.tls.trusted else "no" }}
    {% if o.tls.verify_error %}({{ o.tls.verify_error }}){% endif %}{% endif %}
    {% if o.tls.hostname_checked %}<br>name {{ o.tls.hostname_checked }} on certificate:
    {{ "yes" if o.tls.hostname_match else "no" }}{% endif %}</dd>
  {% for c in o.tls.chain %}
  <dt>Certificate {{ loop.index }}</dt><dd><span class="banner">{{ c.subject }}</span><br>
    issuer <span class="banner">{{ c.issuer }}</span><br>
    valid {{ c.not_before[:10] }} to {{ c.not_after[:10] }} · {{ c.key_type }} {{ c.key_bits }} bits ·
    {{ c.signature_algorithm }}{% if c.dns_names %}<br>names: {{ c.dns_names|join(", ") }}{% endif %}
    <br><small>SHA-256 {{ c.sha256 }}</small></dd>
  {% endfor %}
  {% endif %}
  {% if o.matrix %}
  <dt>Versions</dt><dd>{% for v, state in o.matrix.versions.items() %}{{ v }}: {{ state }}{{ "; " if not loop.last }}{% endfor %}</dd>
  {% if o.matrix.weak_classes %}<dt>Weak ciphers</dt><dd>{% for v, state in o.matrix.weak_classes.items() %}{{ v }}:
    {{ state }}{{ "; " if not loop.last }}{% endfor %}</dd>{% endif %}
  {% endif %}
</dl>
<h2>Findings</h2>
{% for f in record.findings %}
{% set r = remedies[loop.index0] %}
<div class="finding" data-code="{{ f.code }}">
  <h3><span class="sev sev-{{ sev_class(f.severity.value) }}">{{ f.severity.value }}</span>
    <code>{{ f.code }}</code> {{ title(f.code) }}</h3>
  <p>{{ f.summary }}</p>
  {% if r %}
  <p><strong>How to fix it</strong> <small>(advice for {{ r.software }})</small></p>
  <ol>{% for step in r.steps %}<li>{{ step|code_spans }}</li>{% endfor %}</ol>
  {% if r.config %}<pre>{{ r.config }}</pre>{% endif %}
  {% if r.references %}<small>References: {{ r.references|join("; ") }}</small>{% endif %}
  {% endif %}
</div>
{% else %}<p class="empty">No finding.</p>{% endfor %}
{% endmacro %}
"""

_ENDPOINT = """{% extends "base.html" %}
{% from "record.html" import record_view %}
{% block title %}{{ row.address }} port {{ row.port }}{% endblock %}
{% block heading %}{{ row.address }} port {{ row.port }}{% endblock %}
{% block sub %}scan {{ row.scan_id }} · {{ row.protocol }} · {{ row.status }}{% if row.asn is not none %}
 · AS{{ row.asn }} {{ row.as_name or "" }}{% endif %}{% if row.country %} · {{ row.country }}{% endif %}{% endblock %}
{% block main %}
<section>{{ record_view(record, remedies) }}</section>
<section><h2>Across scans</h2>
<table id="history"><thead><tr><th>Scan</th><th>Status</th><th>Worst</th><th>Findings</th><th>TLS</th></tr></thead><tbody>
{% for h in history %}<tr><td><a href="{{ endpoint_href(h.scan_id, h.address, h.port) }}">{{ h.scan_id }}</a></td>
<td>{{ h.status }}</td><td>{{ h.worst_severity or "" }}</td>
<td class="codes">{% for c in h.finding_codes %}<span>{{ c }}</span>{% endfor %}</td><td>{{ h.tls_version or "" }}</td></tr>
{% endfor %}</tbody></table></section>
<p class="downloads"><a href="{{ api_href }}">this endpoint as JSON</a></p>
{% endblock %}
"""

_SELFCHECK = """{% extends "base.html" %}
{% from "record.html" import record_view %}
{% block title %}Self-check{% endblock %}
{% block heading %}Self-check{% endblock %}
{% block sub %}Check one of your own mail hosts now{% endblock %}
{% block main %}
<div class="notice">Enter a host name or an address in your networks{{ " (" ~ owner_specs|join(", ") ~ ")" if owner_specs else "" }}. Every mail port is checked, without ever sending a password;
{{ per_window }} checks per {{ window_min }} minutes.</div>
{% if error %}<div class="error" id="error">{{ error }}</div>{% endif %}
<form class="filters" method="post" action="/self-check" id="self-check">
  <input type="hidden" name="csrf" value="{{ csrf }}">
  <label>Host<input name="host" id="host" value="{{ host or '' }}" required></label>
  <button class="primary" type="submit">Check</button>
</form>
{% if result %}
<section id="result"><h2>{{ result.host }}{% if result.addresses != [result.host] %} ({{ result.addresses|join(", ") }}){% endif %}</h2>
<table id="verdicts"><thead><tr><th>Address</th><th class="num">Port</th><th>Protocol</th><th>Status</th><th>Worst</th>
<th>Findings</th></tr></thead><tbody>
{% for r in result.records %}<tr><td><code>{{ r.observation.address }}</code></td><td class="num">{{ r.observation.port }}</td>
<td>{{ r.observation.protocol.value }}</td><td>{{ r.observation.status.value }}</td>
<td>{% if r.worst %}<span class="sev sev-{{ sev_class(r.worst.value) }}">{{ r.worst.value }}</span>{% endif %}</td>
<td class="codes">{% for f in r.findings %}<span>{{ f.code }}</span>{% endfor %}</td></tr>{% endfor %}
</tbody></table>
{% for r in result.records %}{% if r.findings %}
<section><h2>Port {{ r.observation.port }} ({{ r.observation.protocol.value }})</h2>
{{ record_view(r, remedies[loop.index0], show_address=True) }}</section>
{% endif %}{% endfor %}
</section>
{% endif %}
{% endblock %}
"""

_ERROR = """{% extends "base.html" %}
{% block title %}{{ status }}{% endblock %}
{% block heading %}{{ status }}{% endblock %}
{% block main %}<div class="error" id="error">{{ message }}</div><p><a href="/">Back to the overview</a></p>{% endblock %}
"""

TEMPLATES = {
    "base.html": _BASE,
    "login.html": _LOGIN,
    "overview.html": _OVERVIEW,
    "endpoints.html": _ENDPOINTS,
    "record.html": _RECORD,
    "endpoint.html": _ENDPOINT,
    "self-check.html": _SELFCHECK,
    "error.html": _ERROR,
}


def code_spans(text: str) -> Markup:
    """Remediation steps write commands and settings in `backticks`: show them as <code>, escaped."""
    parts = str(text).split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: show the text as it is
        return Markup(escape(text))
    return Markup("").join(
        Markup("<code>{}</code>").format(part) if index % 2 else escape(part) for index, part in enumerate(parts)
    )


def environment() -> Environment:
    """Autoescape on for every template (they are all HTML); undefined names are errors, not blanks."""
    env = Environment(
        loader=DictLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["code_spans"] = code_spans
    return env
