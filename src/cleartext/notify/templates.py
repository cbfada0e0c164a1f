# ruff: noqa: E501 - template lines are as long as the text they lay out
"""The notification's words: Jinja2 templates (plain text and HTML, English and French) and the French
finding texts.

Why templates kept as strings in a module: they are code reviewed with the code, need no package-data
entry to be installed, and are loaded through a ``DictLoader`` like files would be. HTML templates are
autoescaped (every ``{{ value }}`` is HTML-escaped unless a filter of ours marks it safe after escaping
it itself); the plain-text templates are not, and every value a scanned server sent passes through the
``inert`` filter, which writes control and invisible characters as ``\\xNN`` escapes.

The English finding texts come from :mod:`cleartext.findings` (one source for the whole tool); the
French ones are here. Remediation steps and configuration snippets stay in English in both languages:
they quote configuration files, commands and documentation that exist only in English, and a
translation that drifts from the English advice would be worse than none. The French message says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cleartext.findings import info

__all__ = ["FR_FINDINGS", "TEMPLATES", "WORDS", "finding_text"]

# code -> (title, description, risk)
FR_FINDINGS: Mapping[str, tuple[str, str, str]] = MappingProxyType(
    {
        "cleartext-login": (
            "Mot de passe accepté avant le chiffrement",
            "Avant tout chiffrement, le serveur accepte une authentification\u00a0: quand on lui en demande "
            "une (SASL PLAIN ou LOGIN, POP3 USER), il réclame le mot de passe au lieu de refuser. Que sa liste "
            "de capacités l'annonce ou le cache, les clients configurés sans TLS, ou amenés à s'en passer, "
            "envoient le mot de passe en clair.",
            "Quiconque observe le trafic (Wi-Fi partagé, routeur compromis, opérateur) lit les identifiants "
            "et les mots de passe, puis lit ou envoie du courrier au nom de ces utilisateurs.",
        ),
        "no-tls": (
            "Aucun chiffrement disponible",
            "Le port n'offre aucun moyen de chiffrer la connexion : STARTTLS/STLS n'est ni annoncé ni "
            "accepté quand on le demande.",
            "Chaque message, et chaque mot de passe envoyé sur ce port, traverse le réseau lisible et "
            "modifiable par quiconque se trouve sur le chemin.",
        ),
        "starttls-failed": (
            "TLS proposé mais défaillant",
            "Le serveur propose TLS mais le passage en TLS échoue : STARTTLS est annoncé puis refusé, ou la "
            "négociation TLS échoue (y compris sur les ports TLS implicite).",
            "Les clients abandonnent ou, bien plus souvent, se replient sur l'envoi en clair ; un attaquant "
            "peut provoquer l'échec pour forcer ce repli.",
        ),
        "starttls-not-advertised": (
            "STARTTLS fonctionne mais n'est pas annoncé",
            "Le serveur accepte STARTTLS/STLS si on le lui demande, mais sa liste de capacités ne le dit "
            "pas : les clients et les serveurs expéditeurs ne l'essaient donc jamais.",
            "En pratique le trafic reste en clair comme s'il n'y avait pas de TLS ; souvent un pare-feu ou "
            "un proxy réécrit la liste des capacités, et peut en faire autant du reste du trafic.",
        ),
        "legacy-tls": (
            "Versions SSL/TLS obsolètes acceptées",
            "Le serveur négocie encore SSLv3, TLS 1.0 ou TLS 1.1, dépréciés (RFC 7568, RFC 8996).",
            "Un attaquant actif capable de forcer une version inférieure exploite les faiblesses connues de "
            "ces protocoles (POODLE sur SSLv3, constructions CBC et hachages faibles de TLS 1.0/1.1).",
        ),
        "no-modern-tls": (
            "Ni TLS 1.2 ni TLS 1.3",
            "Le serveur parle TLS, mais seulement des versions antérieures à 1.2, que les clients actuels "
            "refusent ou devraient refuser.",
            "Toute session chiffrée utilise un protocole déprécié ; les clients à jour ne se connectent "
            "plus et les utilisateurs sont poussés vers des réglages non sûrs ou vers le clair.",
        ),
        "weak-cipher": (
            "Suites de chiffrement faibles acceptées",
            "Le serveur accepte des suites cassées ou dépréciées : NULL (sans chiffrement), anonymes, "
            "EXPORT, RC4, DES, 3DES, ou échange de clés RSA statique (sans confidentialité persistante).",
            "Selon la classe : données en clair (NULL), interception triviale (anonymes), récupération de "
            "la clé (EXPORT, DES), du texte clair (RC4, 3DES/Sweet32), ou déchiffrement du trafic "
            "enregistré si la clé du serveur fuit (RSA statique).",
        ),
        "cert-expired": (
            "Certificat expiré",
            "Le certificat du serveur a dépassé sa date d'expiration (notAfter).",
            "Les clients qui vérifient les certificats échouent ; les utilisateurs apprennent à ignorer les "
            "avertissements ou à désactiver la vérification, et acceptent alors aussi le certificat d'un "
            "imposteur.",
        ),
        "cert-not-yet-valid": (
            "Certificat pas encore valide",
            "Le certificat du serveur ne devient valide que dans le futur (notBefore), le plus souvent à "
            "cause d'une horloge mal réglée.",
            "Comme pour un certificat expiré : la vérification échoue et les utilisateurs apprennent à "
            "ignorer les avertissements.",
        ),
        "cert-untrusted": (
            "Certificat non reconnu",
            "La chaîne de certificats ne mène pas à une racine de confiance : certificat auto-signé, émis "
            "par une autorité privée, ou servi sans ses certificats intermédiaires.",
            "Les clients ne distinguent pas le vrai serveur d'un imposteur ; un attaquant présente son "
            "propre certificat, et qui accepte celui-ci accepte le sien.",
        ),
        "cert-hostname-mismatch": (
            "Le certificat ne correspond pas au nom du serveur",
            "Aucun des noms du certificat ne correspond au nom par lequel le serveur a été joint (son MX "
            "ou le nom configuré dans les clients de messagerie).",
            "Les clients qui vérifient refusent la connexion ; les autres ne distinguent pas ce serveur de "
            "n'importe quel autre détenant un certificat valide pour un autre nom.",
        ),
        "cert-weak-key": (
            "Clé de certificat trop courte",
            "La clé publique d'un certificat est trop courte : RSA ou DSA de moins de 2048 bits, ou "
            "courbe elliptique de moins de 224 bits.",
            "Une clé aussi courte se factorise ou se casse avec des moyens abordables ; on peut alors "
            "usurper le serveur et déchiffrer les sessions à échange de clés RSA statique.",
        ),
        "cert-weak-signature": (
            "Certificat signé avec MD5 ou SHA-1",
            "Le certificat du serveur ou un intermédiaire est signé avec MD5 ou SHA-1, fonctions de hachage "
            "pour lesquelles des collisions ont été démontrées.",
            "Une collision à préfixe choisi permet d'obtenir un certificat forgé portant la même "
            "signature ; les clients actuels rejettent ces chaînes.",
        ),
        "starttls-injection": (
            "Des commandes envoyées avant STARTTLS sont exécutées dans TLS",
            "Le serveur garde ce qu'il a lu en clair après la commande STARTTLS et l'exécute une fois TLS "
            "établi (famille de failles CVE-2011-0411). Les RFC 3207, 2595 et 9051 exigent qu'il l'ignore.",
            "Un attaquant sur le chemin ajoute des commandes au STARTTLS du client\u00a0; le serveur les "
            "exécute dans la session chiffrée du client, ce qui peut livrer ses identifiants ou son courrier.",
        ),
        "login-advertised-refused": (
            "Authentification annoncée avant le chiffrement, mais refusée",
            "La liste des capacités propose une authentification avant TLS, mais le serveur la refuse quand "
            "un client la commence\u00a0: aucun mot de passe n'est accepté en clair. La liste trompe les "
            "clients.",
            "Aucun pour le mot de passe\u00a0: le serveur refuse avant tout identifiant. Un client qui croit "
            "la liste peut toutefois envoyer le mot de passe dans la même commande\u00a0: n'annoncez pas ce "
            "que vous refusez.",
        ),
    }
)

# Short words the templates and the composer need in each language.
WORDS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "en": MappingProxyType(
            {
                "critical": "critical",
                "high": "high",
                "medium": "medium",
                "low": "low",
                "info": "info",
                "subject": "[{operator}] {count} mail server endpoint(s) to secure (scan {scan})",
                "abuse-contact": "as their abuse contact",
                "generic": "any server software",
            }
        ),
        "fr": MappingProxyType(
            {
                "critical": "critique",
                "high": "élevée",
                "medium": "moyenne",
                "low": "faible",
                "info": "info",
                "subject": "[{operator}] {count} point(s) d'accès de messagerie à sécuriser (scan {scan})",
                "abuse-contact": "en tant que contact abuse",
                "generic": "tout logiciel",
            }
        ),
    }
)


def finding_text(code: str, lang: str) -> tuple[str, str, str]:
    """(title, description, risk) of a finding code in the language asked (English for unknown ones)."""
    if lang == "fr" and code in FR_FINDINGS:
        return FR_FINDINGS[code]
    entry = info(code)
    return entry.title, entry.description, entry.risk


# --- plain text -----------------------------------------------------------------------------------------

_TEXT_EN = """\
{% if recipient.name %}Hello {{ recipient.name }},{% else %}Hello,{% endif %}

{% filter wrap %}{{ operator.name }} scanned mail servers on {{ scan.date }} (scan {{ scan.id }}). {{ total }} endpoint(s) \
that you are responsible for ({{ reasons }}) let a password or a message cross the network without \
proper encryption, or have weak TLS. This message lists them, explains each problem, and says how to \
fix it for the server software we identified. No name or password was sent: we read what your servers \
announce to anyone who connects, and started a login that we cancelled before any credential (your \
logs may show it as an aborted authentication from our address).{% endfilter %}

SUMMARY (endpoints by finding and protocol)
{{ "%-34s %6s %6s %6s %6s"|format("finding (severity)", "smtp", "pop3", "imap", "total") }}
{% for row in summary -%}
{{ "%-34s %6d %6d %6d %6d"|format(row.code ~ " (" ~ row.severity ~ ")", row.smtp, row.pop3, row.imap, row.total) }}
{% endfor %}
AFFECTED ENDPOINTS
{% for e in endpoints -%}
- {{ e.address }} port {{ e.port }} ({{ e.service }}{% if e.hostname %}, {{ e.hostname|inert }}{% endif %})\
{% if e.software %}, {{ e.software }}{% endif %}: {{ e.findings|join(", ") }}
{% if e.greeting %}  greeting: {{ e.greeting|inert }}
{% endif %}{% endfor %}
{%- if more and not more_outside %}... and {{ more }} more endpoint(s): all of them are in the attached CSV file(s).
{% elif more %}... and {{ more }} more endpoint(s): {{ more - more_outside }} of them are in the attached CSV \
file(s), the others are named under ATTACHMENTS.
{% endif %}
WHAT EACH FINDING MEANS AND HOW TO FIX IT
{% for f in findings %}
== {{ f.code }}: {{ f.title }} (severity {{ f.severity }})
{{ f.description|wrap }}
{{ ("Risk: " ~ f.risk)|wrap }}
{% for g in f.groups %}
-- Fix for {{ g.software }} ({{ g.protocol }}), on {{ g.endpoints|join(", ") }}{% if g.more %} and {{ g.more }} more{% endif %}:
{% for step in g.steps %}{{ loop.index }}. {{ step|wrap(97, "   ") }}
{% endfor %}{% if g.config %}Configuration:
{{ g.config|indent(4, first=True) }}
{% endif %}{% if g.references %}References: {{ g.references|join("; ") }}
{% endif %}{% endfor %}{% endfor %}
ATTACHMENTS
{% for name in attachments %}- {{ name }}
{% else %}(none)
{% endfor %}{% if attachments %}{% filter wrap %}The CSV files use the Shadowserver report format (IntelMQ reads them as they \
are). Text that came from a server is made inert for spreadsheets (a leading ' before = + - @).{% endfilter %}
{% endif %}{% if outside %}
{% filter wrap %}{% if attachments %}{{ outside|length + outside_more }} of your endpoint(s) are not in these CSV files{% else %}\
No CSV file is attached{% endif %}: the Shadowserver report types hold only endpoints where a mail server \
answered with its greeting (or that accepted SSLv3), and no greeting was read from {% if attachments %}these{% else %}\
yours{% endif %} (their status says how the dialog ended).{% endfilter %}
{% for o in outside %}- {{ o.address }} port {{ o.port }} ({{ o.service }}): status {{ o.status }}
{% endfor %}{% if outside_more %}... and {{ outside_more }} more.
{% endif %}{% endif %}
WHY YOU RECEIVE THIS, AND HOW TO STOP IT
{% filter wrap %}You receive this message because {{ why }}. To stop receiving these messages, reply to \
{{ operator.contact }} with the word "unsubscribe"; you will not be written to again. Questions: \
{{ operator.contact }}.{% endfilter %}

--{{ " " }}
{{ operator.name }} <{{ operator.contact }}>
Message {{ message_id }}, scan {{ scan.id }}
"""

_TEXT_FR = """\
{% if recipient.name %}Bonjour {{ recipient.name }},{% else %}Bonjour,{% endif %}

{% filter wrap %}{{ operator.name }} a analysé des serveurs de messagerie le {{ scan.date }} (scan {{ scan.id }}). \
{{ total }} point(s) d'accès dont vous êtes responsable ({{ reasons }}) laissent passer un mot de passe ou \
un message sans chiffrement suffisant, ou ont un TLS faible. Ce message les énumère, explique chaque \
problème et indique comment le corriger pour le logiciel identifié. Aucun identifiant ni mot de passe n'a \
été envoyé\u00a0: nous lisons ce que vos serveurs annoncent à quiconque s'y connecte, et commençons une \
authentification que nous annulons avant tout identifiant (vos journaux peuvent la montrer comme une \
authentification abandonnée depuis notre adresse).{% endfilter %}

RÉSUMÉ (points d'accès par constat et par protocole)
{{ "%-34s %6s %6s %6s %6s"|format("constat (gravité)", "smtp", "pop3", "imap", "total") }}
{% for row in summary -%}
{{ "%-34s %6d %6d %6d %6d"|format(row.code ~ " (" ~ row.severity ~ ")", row.smtp, row.pop3, row.imap, row.total) }}
{% endfor %}
POINTS D'ACCÈS CONCERNÉS
{% for e in endpoints -%}
- {{ e.address }} port {{ e.port }} ({{ e.service }}{% if e.hostname %}, {{ e.hostname|inert }}{% endif %})\
{% if e.software %}, {{ e.software }}{% endif %}\u00a0: {{ e.findings|join(", ") }}
{% if e.greeting %}  bannière\u00a0: {{ e.greeting|inert }}
{% endif %}{% endfor %}
{%- if more and not more_outside %}... et {{ more }} autre(s) point(s) d'accès\u00a0: tous figurent dans le ou les fichiers CSV joints.
{% elif more %}... et {{ more }} autre(s) point(s) d'accès\u00a0: {{ more - more_outside }} figurent dans le ou les \
fichiers CSV joints, les autres sont nommés sous PIÈCES JOINTES.
{% endif %}
CE QUE SIGNIFIE CHAQUE CONSTAT ET COMMENT LE CORRIGER
{% filter wrap %}Les étapes de correction ci-dessous sont en anglais\u00a0: elles citent des fichiers de configuration, des \
commandes et des documentations qui n'existent qu'en anglais.{% endfilter %}
{% for f in findings %}
== {{ f.code }}\u00a0: {{ f.title }} (gravité {{ f.severity }})
{{ f.description|wrap }}
{{ ("Risque\u00a0: " ~ f.risk)|wrap }}
{% for g in f.groups %}
-- Correction pour {{ g.software }} ({{ g.protocol }}), sur {{ g.endpoints|join(", ") }}{% if g.more %} et {{ g.more }} autre(s){% endif %} :
{% for step in g.steps %}{{ loop.index }}. {{ step|wrap(97, "   ") }}
{% endfor %}{% if g.config %}Configuration :
{{ g.config|indent(4, first=True) }}
{% endif %}{% if g.references %}Références\u00a0: {{ g.references|join("\u00a0; ") }}
{% endif %}{% endfor %}{% endfor %}
PIÈCES JOINTES
{% for name in attachments %}- {{ name }}
{% else %}(aucune)
{% endfor %}{% if attachments %}{% filter wrap %}Les fichiers CSV suivent le format des rapports Shadowserver (IntelMQ les lit \
tels quels). Le texte venu d'un serveur y est neutralisé pour les tableurs (une ' devant = + - @).{% endfilter %}
{% endif %}{% if outside %}
{% filter wrap %}{% if attachments %}{{ outside|length + outside_more }} de vos points d'accès ne figurent pas dans ces \
fichiers CSV{% else %}Aucun fichier CSV n'est joint{% endif %}\u00a0: les types de rapport Shadowserver ne contiennent \
que les points d'accès où un serveur de messagerie a répondu par sa bannière (ou qui ont accepté SSLv3), \
et aucune bannière n'a été lue sur {% if attachments %}ceux-ci{% else %}les vôtres{% endif %} (leur statut dit \
comment le dialogue s'est terminé).{% endfilter %}
{% for o in outside %}- {{ o.address }} port {{ o.port }} ({{ o.service }})\u00a0: statut {{ o.status }}
{% endfor %}{% if outside_more %}... et {{ outside_more }} autre(s).
{% endif %}{% endif %}
POURQUOI VOUS RECEVEZ CE MESSAGE, ET COMMENT NE PLUS LE RECEVOIR
{% filter wrap %}Vous recevez ce message parce que {{ why }}. Pour ne plus recevoir ces messages, répondez à \
{{ operator.contact }} avec le mot «\u00a0unsubscribe\u00a0» (ou «\u00a0désinscription\u00a0»)\u00a0; nous ne vous écrirons plus. \
Questions\u00a0: {{ operator.contact }}.{% endfilter %}

--{{ " " }}
{{ operator.name }} <{{ operator.contact }}>
Message {{ message_id }}, scan {{ scan.id }}
"""

# --- HTML -----------------------------------------------------------------------------------------------

_HTML_BASE = """\
<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<title>{{ subject }}</title>
</head>
<body style="font-family: sans-serif; font-size: 15px; line-height: 1.45; color: #1a1a1a; max-width: 52em;">
{% block body %}{% endblock %}
<hr>
<p style="font-size: 13px; color: #555;">{{ operator.name }} &lt;{{ operator.contact }}&gt;<br>
Message {{ message_id }}, scan {{ scan.id }}</p>
</body>
</html>
"""

_HTML_TABLES = """\
{% macro summary_table(words) %}
<table style="border-collapse: collapse;" cellpadding="4">
<thead><tr style="background: #eee;">
<th style="text-align: left;">{{ words.finding }}</th><th>{{ words.severity }}</th>
<th>smtp</th><th>pop3</th><th>imap</th><th>total</th></tr></thead>
<tbody>
{% for row in summary %}<tr>
<td><code>{{ row.code }}</code> {{ row.title }}</td><td>{{ row.severity }}</td>
<td style="text-align: right;">{{ row.smtp }}</td><td style="text-align: right;">{{ row.pop3 }}</td>
<td style="text-align: right;">{{ row.imap }}</td><td style="text-align: right;"><b>{{ row.total }}</b></td>
</tr>
{% endfor %}</tbody>
</table>
{% endmacro %}
{% macro endpoint_table(words) %}
<table style="border-collapse: collapse;" cellpadding="4">
<thead><tr style="background: #eee;">
<th style="text-align: left;">{{ words.endpoint }}</th><th style="text-align: left;">{{ words.service }}</th>
<th style="text-align: left;">{{ words.software }}</th><th style="text-align: left;">{{ words.findings }}</th></tr></thead>
<tbody>
{% for e in endpoints %}<tr style="border-top: 1px solid #ddd; vertical-align: top;">
<td><code>{{ e.address }}:{{ e.port }}</code>{% if e.hostname %}<br>{{ e.hostname|inert }}{% endif %}</td>
<td>{{ e.service }}</td><td>{{ e.software or "" }}</td>
<td>{{ e.findings|join(", ") }}{% if e.greeting %}<br><small>{{ words.greeting }}: <code>{{ e.greeting|inert }}</code></small>{% endif %}</td>
</tr>
{% endfor %}</tbody>
</table>
{% endmacro %}
{% macro finding_sections(words) %}
{% for f in findings %}
<h3 id="{{ f.code }}"><code>{{ f.code }}</code>: {{ f.title }} ({{ words.severity }} {{ f.severity }})</h3>
<p>{{ f.description }}</p>
<p><b>{{ words.risk }}:</b> {{ f.risk }}</p>
{% for g in f.groups %}
<h4>{{ words.fix_for }} {{ g.software }} ({{ g.protocol }})</h4>
<p><small>{{ g.endpoints|join(", ") }}{% if g.more %} {{ words.and_more|format(g.more) }}{% endif %}</small></p>
<ol>
{% for step in g.steps %}<li>{{ step|code_spans }}</li>
{% endfor %}</ol>
{% if g.config %}<pre style="background: #f4f4f4; padding: 0.6em; overflow-x: auto;">{{ g.config }}</pre>{% endif %}
{% if g.references %}<p><small>{{ words.references }}: {{ g.references|join("; ") }}</small></p>{% endif %}
{% endfor %}
{% endfor %}
{% endmacro %}
"""

_HTML_EN = """\
{% extends "base.html" %}
{% import "tables.html" as t with context %}
{% set words = {"finding": "Finding", "severity": "severity", "endpoint": "Endpoint", "service": "Service",
  "software": "Software", "findings": "Findings", "greeting": "greeting", "risk": "Risk",
  "fix_for": "Fix for", "and_more": "and %d more", "references": "References"} %}
{% block body %}
<p>{% if recipient.name %}Hello {{ recipient.name }},{% else %}Hello,{% endif %}</p>
<p>{{ operator.name }} scanned mail servers on {{ scan.date }} (scan <code>{{ scan.id }}</code>).
<b>{{ total }} endpoint(s)</b> that you are responsible for ({{ reasons }}) let a password or a message
cross the network without proper encryption, or have weak TLS. This message lists them, explains each
problem, and says how to fix it for the server software we identified. No name or password was sent: we
read what your servers announce to anyone who connects, and started a login that we cancelled before any
credential (your logs may show it as an aborted authentication from our address).</p>
<h2>Summary</h2>
{{ t.summary_table(words) }}
<h2>Affected endpoints</h2>
{{ t.endpoint_table(words) }}
{% if more and not more_outside %}<p>… and {{ more }} more endpoint(s): all of them are in the attached CSV file(s).</p>
{% elif more %}<p>… and {{ more }} more endpoint(s): {{ more - more_outside }} of them are in the attached CSV file(s),
the others are named under Attachments.</p>{% endif %}
<h2>What each finding means and how to fix it</h2>
{{ t.finding_sections(words) }}
<h2>Attachments</h2>
<ul>{% for name in attachments %}<li><code>{{ name }}</code></li>{% else %}<li>(none)</li>{% endfor %}</ul>
{% if attachments %}<p>The CSV files use the Shadowserver report format (IntelMQ reads them as they are). Text that came from
a server is made inert for spreadsheets (a leading ' before = + - @).</p>{% endif %}
{% if outside %}<p>{% if attachments %}{{ outside|length + outside_more }} of your endpoint(s) are not in these CSV files{% else %}No
CSV file is attached{% endif %}: the Shadowserver report types hold only endpoints where a mail server answered with
its greeting (or that accepted SSLv3), and no greeting was read from {% if attachments %}these{% else %}yours{% endif %}
(their status says how the dialog ended).</p>
<ul>{% for o in outside %}<li><code>{{ o.address }}:{{ o.port }}</code> ({{ o.service }}): status {{ o.status }}</li>
{% endfor %}{% if outside_more %}<li>… and {{ outside_more }} more</li>{% endif %}</ul>{% endif %}
<h2>Why you receive this, and how to stop it</h2>
<p>You receive this message because {{ why }}. To stop receiving these messages, reply to
<a href="mailto:{{ operator.contact }}?subject=unsubscribe">{{ operator.contact }}</a> with the word
"unsubscribe"; you will not be written to again. Questions: {{ operator.contact }}.</p>
{% endblock %}
"""

_HTML_FR = """\
{% extends "base.html" %}
{% import "tables.html" as t with context %}
{% set words = {"finding": "Constat", "severity": "gravité", "endpoint": "Point d'accès", "service": "Service",
  "software": "Logiciel", "findings": "Constats", "greeting": "bannière", "risk": "Risque",
  "fix_for": "Correction pour", "and_more": "et %d autre(s)", "references": "Références"} %}
{% block body %}
<p>{% if recipient.name %}Bonjour {{ recipient.name }},{% else %}Bonjour,{% endif %}</p>
<p>{{ operator.name }} a analysé des serveurs de messagerie le {{ scan.date }} (scan <code>{{ scan.id }}</code>).
<b>{{ total }} point(s) d'accès</b> dont vous êtes responsable ({{ reasons }}) laissent passer un mot de
passe ou un message sans chiffrement suffisant, ou ont un TLS faible. Ce message les énumère, explique
chaque problème et indique comment le corriger pour le logiciel identifié. Aucun identifiant ni mot de
passe n'a été envoyé\u00a0: nous lisons ce que vos serveurs annoncent à quiconque s'y connecte, et
commençons une authentification que nous annulons avant tout identifiant (vos journaux peuvent la montrer
comme une authentification abandonnée depuis notre adresse).</p>
<h2>Résumé</h2>
{{ t.summary_table(words) }}
<h2>Points d'accès concernés</h2>
{{ t.endpoint_table(words) }}
{% if more and not more_outside %}<p>… et {{ more }} autre(s) point(s) d'accès\u00a0: tous figurent dans le ou les fichiers CSV joints.</p>
{% elif more %}<p>… et {{ more }} autre(s) point(s) d'accès\u00a0: {{ more - more_outside }} figurent dans le ou les fichiers
CSV joints, les autres sont nommés sous Pièces jointes.</p>{% endif %}
<h2>Ce que signifie chaque constat et comment le corriger</h2>
<p><i>Les étapes de correction sont en anglais\u00a0: elles citent des fichiers de configuration, des commandes
et des documentations qui n'existent qu'en anglais.</i></p>
{{ t.finding_sections(words) }}
<h2>Pièces jointes</h2>
<ul>{% for name in attachments %}<li><code>{{ name }}</code></li>{% else %}<li>(aucune)</li>{% endfor %}</ul>
{% if attachments %}<p>Les fichiers CSV suivent le format des rapports Shadowserver (IntelMQ les lit tels quels). Le texte venu
d'un serveur y est neutralisé pour les tableurs (une ' devant = + - @).</p>{% endif %}
{% if outside %}<p>{% if attachments %}{{ outside|length + outside_more }} de vos points d'accès ne figurent pas dans ces fichiers
CSV{% else %}Aucun fichier CSV n'est joint{% endif %}\u00a0: les types de rapport Shadowserver ne contiennent que les points
d'accès où un serveur de messagerie a répondu par sa bannière (ou qui ont accepté SSLv3), et aucune bannière n'a été lue
sur {% if attachments %}ceux-ci{% else %}les vôtres{% endif %} (leur statut dit comment le dialogue s'est terminé).</p>
<ul>{% for o in outside %}<li><code>{{ o.address }}:{{ o.port }}</code> ({{ o.service }})\u00a0: statut {{ o.status }}</li>
{% endfor %}{% if outside_more %}<li>… et {{ outside_more }} autre(s)</li>{% endif %}</ul>{% endif %}
<h2>Pourquoi vous recevez ce message, et comment ne plus le recevoir</h2>
<p>Vous recevez ce message parce que {{ why }}. Pour ne plus recevoir ces messages, répondez à
<a href="mailto:{{ operator.contact }}?subject=unsubscribe">{{ operator.contact }}</a> avec le mot
«\u00a0unsubscribe\u00a0» (ou «\u00a0désinscription\u00a0»)\u00a0; nous ne vous écrirons plus. Questions\u00a0: {{ operator.contact }}.</p>
{% endblock %}
"""

TEMPLATES: Mapping[str, str] = MappingProxyType(
    {
        "en.txt": _TEXT_EN,
        "fr.txt": _TEXT_FR,
        "base.html": _HTML_BASE,
        "tables.html": _HTML_TABLES,
        "en.html": _HTML_EN,
        "fr.html": _HTML_FR,
    }
)
