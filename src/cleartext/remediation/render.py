"""Fill the data files' templates: ``{{name}}`` fields, and the commands for the host and ports checked.

Why a template syntax of our own, and so small: the snippets are Postfix, Exim, PowerShell and registry
files, full of ``{``, ``$`` and ``%``; ``{{name}}`` (lower-case letters, digits, ``_``) appears in none of
them, and nothing else is special. A name is looked up in the values the renderer computed (the
commands for the site), then in each data file of the scope in turn (the software's, then common.toml):
a protocol's own fragment first, then ``[text]``, then ``[references]``. Fragments may use fields
themselves, looked up the same way from the top, so a software file changes a shared sentence by
defining one of its fields (``deploy_hook``). Values computed from the site (the host typed by the user)
are inserted as they are, never read as templates. An unknown name or a loop raises: a data file that
does not render is a bug, and the tests render every entry of every file.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cleartext.record import Protocol
from cleartext.remediation.data import Book, Entry

FIELD = re.compile(r"\{\{([a-z0-9_]+)\}\}")
_DEPTH = 8  # fragments within fragments: two or three levels are used; eight is a loop

PLACEHOLDER = "mail.example.com"
"""The host name advice uses when it is not for a host in particular (the documentation)."""


@dataclass(frozen=True, slots=True)
class Site:
    """Where advice is for: the host being checked and the ports a finding was seen on, with whether each
    starts with TLS. The default (no host, no ports) is the documentation's: commands name
    mail.example.com and the protocol's standard ports."""

    host: str | None = None
    ports: tuple[tuple[int, bool], ...] = ()  # (port, implicit TLS)

    @property
    def connect(self) -> str:
        """What a command connects to: the host (an IPv6 address in brackets), or the placeholder."""
        if not self.host:
            return PLACEHOLDER
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def sni(self) -> str | None:
        """The name for -servername: the host when it is a name, None for an address."""
        if not self.host:
            return PLACEHOLDER
        return None if is_address(self.host) else self.host


def is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


Value = str | Callable[[], str]
"""A value the renderer computed, or how to compute it when a template names it (the site's commands)."""


class Scope:
    """What the templates of one remedy may name: computed values, then the fragments of ``books``."""

    def __init__(self, books: Sequence[Book], protocol: Protocol | None, values: Mapping[str, Value]) -> None:
        self.books = books
        self.protocol = protocol
        self.values = dict(values)

    def render(self, template: str, depth: int = 0) -> str:
        if depth > _DEPTH:
            raise ValueError(f"fragments nest deeper than {_DEPTH}: a loop? ({template[:60]!r})")

        def field(match: re.Match[str]) -> str:
            name = match[1]
            if name in self.values:
                value = self.values[name]
                return value if isinstance(value, str) else value()
            for book in self.books:
                fragment = book.fragment(name, self.protocol)
                if fragment is not None:
                    return self.render(fragment, depth + 1)
            where = f" for {self.protocol.value}" if self.protocol else ""
            books = ", ".join(f"{b.name}.toml" for b in self.books)
            raise KeyError(f"unknown field {{{{{name}}}}}{where} (looked in {books})")

        return FIELD.sub(field, template)

    def entry(self, entry: Entry) -> tuple[list[str], str | None, list[str]]:
        """Steps, snippet (ending with one line break) and references of ``entry``, rendered."""
        config = self.render(entry.config).strip("\n") + "\n" if entry.config else None
        refs = [self.render("{{" + name + "}}") for name in entry.refs]
        return [self.render(step) for step in entry.steps], config, refs


def site_values(common: Book, scope: Scope, site: Site) -> dict[str, Value]:
    """The sentences with commands for ``site`` (common.toml's ``[site]``), made when a template names
    them: ``{{s_client}}`` (and ``_tls1_1``, ``_tls1_2``: the same with that version forced),
    ``{{cert_check}}``, ``{{cipher_list}}`` and ``{{plain_capabilities}}``. With the finding's ports the
    commands use them (at most three openssl commands); without, a sentence's ``*_standard`` form names
    the protocol's standard ports."""
    sni = f" -servername {site.sni}" if site.sni else ""

    def port(name: str) -> int:
        return int(scope.render("{{" + name + "}}"))

    def openssl(port: int, implicit: bool, flag: str = "") -> str:
        starttls = "" if implicit else " -starttls " + scope.render("{{starttls}}")
        return f"openssl s_client{flag} -connect {site.connect}:{port}{starttls}{sni}"

    def say(key: str, **values: str) -> str:
        sentence = common.site.get(key if site.ports else f"{key}_standard", common.site[key])
        return Scope(scope.books, scope.protocol, {"host": site.connect, **values}).render(sentence)

    def s_client(flag: str = "") -> str:
        return say(
            "s_client",
            commands=" and ".join(f"`{openssl(p, tls, flag)}`" for p, tls in site.ports[:3]),
            starttls_command=openssl(port("starttls_port"), False, flag),
            implicit_command=openssl(port("implicit_port"), True, flag),
        )

    def cert_check() -> str:
        # The certificate a client really gets: on an implicit-TLS port of the finding if it has one.
        ports = site.ports or ((port("implicit_port"), True),)
        return say("cert_check", command=openssl(*next((p for p in ports if p[1]), ports[0])))

    def plain_capabilities() -> str:
        # The capabilities before TLS: on the finding's first port without implicit TLS.
        plain = [p for p, implicit in site.ports if not implicit] or [p for p, _ in site.ports]
        return say("plain_capabilities", port=str(plain[0] if plain else port("starttls_port")))

    return {
        "s_client": s_client,
        "s_client_tls1_1": lambda: s_client(" -tls1_1"),
        "s_client_tls1_2": lambda: s_client(" -tls1_2"),
        "cert_check": cert_check,
        "cipher_list": lambda: say("cipher_list", ports=",".join(str(p) for p, _ in site.ports)),
        "plain_capabilities": plain_capabilities,
    }
