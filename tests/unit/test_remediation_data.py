"""The remediation data files: each one loads, every entry it declares renders for every protocol its
software serves, every name it uses exists, everything it defines is used, and the package ships it.

test_remediation.py judges what the advice says; test_remediation_golden.py pins its exact text. This
file is about the files themselves, so that a typo in a data file fails here, naming the file and the
entry, rather than in front of a mail admin.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cleartext.findings import Code, DomainCode
from cleartext.record import Protocol
from cleartext.remediation import GENERIC, SPECIFIC, remedy
from cleartext.remediation.data import ANY, Book, book, names, parse
from cleartext.remediation.render import FIELD, Scope, Site, site_values
from cleartext.software import Software, serves

ROOT = Path(__file__).resolve().parents[2]
COMMON = book("common")
SOFTWARE_FILES = [GENERIC, *(sw.value for sw in SPECIFIC)]
SITES = [Site(), Site("mx.example.org", ((25, False), (465, True))), Site("192.0.2.1", ((993, True),))]
# Names render.py reads from common.toml itself, and the exported cipher strings.
READ_BY_CODE = {"starttls_port", "implicit_port", "starttls", "openssl_ciphers", "gnutls_versions"}


def served(name: str) -> list[Protocol]:
    return [p for p in Protocol if name == GENERIC or serves(name, p)]


def templates(data: Book) -> Iterator[str]:
    """Every string of a file that is rendered (fragments, sentences, steps, snippets) or names one."""
    yield from data.text.values()
    for fragments in data.protocols.values():
        yield from fragments.values()
    yield from data.site.values()
    if data.identified:
        yield data.identified
    for tables in data.entries.values():
        for fields in tables.values():
            yield from fields.get("steps", [])
            yield fields.get("config", "")
            yield from ("{{" + ref + "}}" for ref in fields.get("refs", []))


def used(*books: Book) -> set[str]:
    return {name for data in books for text in templates(data) for name in FIELD.findall(text)}


def defined(data: Book) -> set[str]:
    own = set(data.text) | set(data.references)
    return own.union(*(set(fragments) for fragments in data.protocols.values()))


def test_the_package_has_a_file_for_each_software_with_advice() -> None:
    assert set(names()) == {"common", "domain", *SOFTWARE_FILES}
    assert all(isinstance(sw, Software) for sw in SPECIFIC)


def test_package_data_ships_every_data_file() -> None:
    """An installed wheel holds only what pyproject.toml declares: a data file it misses fails in
    production only."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["cleartext"]
    for name in names():
        path = f"remediation/{name}.toml"
        assert any(fnmatch.fnmatch(path, pattern) for pattern in patterns), path


@pytest.mark.parametrize("name", SOFTWARE_FILES)
def test_every_entry_of_a_software_file_renders(name: str) -> None:
    data = book(name)
    assert data.label
    unknown = data.entries.keys() - {code.value for code in Code} - {ANY}
    assert not unknown, f"{name}.toml names codes that do not exist: {sorted(unknown)}"
    for key, tables in data.entries.items():
        extra = {p for p in tables if p is not None} - set(served(name))
        assert not extra, f"{name}.toml [{key}]: protocols {name} does not serve: {extra}"
        for protocol in served(name):
            entry = data.entry(key, protocol)
            assert entry is not None and entry.steps and entry.refs, f"{name}.toml [{key}] on {protocol}"
            for site in SITES:
                scope = Scope([data, COMMON], protocol, {})
                scope.values.update(site_values(COMMON, scope, site))
                steps, config, refs = scope.entry(entry)
                for text in (*steps, config or "", *refs):
                    assert "{{" not in text, f"{name}.toml [{key}]: a field that is no name: {text[:80]}"


@pytest.mark.parametrize("name", SOFTWARE_FILES)
def test_every_code_has_an_entry_and_each_entry_is_used(name: str) -> None:
    data = book(name)
    shared = set(COMMON.entries)
    assert not shared & data.entries.keys(), "a software file repeats an entry common.toml shares"
    for protocol in served(name):
        missing = [
            code
            for code in Code
            if code not in shared and data.entry(code, protocol) is None and data.entry(ANY, protocol) is None
        ]
        assert not missing, f"{name}.toml has no advice for {missing} on {protocol}"
    if ANY in data.entries:
        assert any(code not in shared and code not in data.entries for code in Code), "[any] is never used"


def test_shared_entries_render_with_every_software_file() -> None:
    assert set(COMMON.entries) <= {code.value for code in Code}
    for name in SOFTWARE_FILES:
        for code in COMMON.entries:
            for protocol in served(name):
                entry = COMMON.entry(code, protocol)
                assert entry is not None
                scope = Scope([book(name), COMMON], protocol, {})
                scope.values.update(site_values(COMMON, scope, Site()))
                assert all("{{" not in text for text in scope.entry(entry)[0])


def test_every_domain_entry_renders() -> None:
    data = book("domain")
    assert set(data.entries) == {code.value for code in DomainCode}
    for code in DomainCode:
        entry = data.entry(code, None)
        assert entry is not None
        steps, config, refs = Scope([data, COMMON], None, {}).entry(entry)
        assert steps and refs and all("{{" not in text for text in (*steps, config or "", *refs))


@pytest.mark.parametrize("name", [*SOFTWARE_FILES, "domain"])
def test_everything_a_file_defines_is_used(name: str) -> None:
    """A fragment or reference nobody names is dead text; one named like a computed value would never
    be seen. A software file may define a fragment that common.toml's own text uses (deploy_hook)."""
    data = book(name)
    unused = defined(data) - used(data, COMMON)
    assert not unused, f"{name}.toml defines what nothing uses: {sorted(unused)}"
    assert not defined(data) & set(site_values(COMMON, Scope([COMMON], Protocol.SMTP, {}), Site()))


def test_everything_common_defines_is_used() -> None:
    everything = used(*(book(name) for name in names()))
    unused = defined(COMMON) - everything - READ_BY_CODE
    assert not unused, f"common.toml defines what nothing uses: {sorted(unused)}"
    assert set(COMMON.software) == {sw.value for sw in SPECIFIC}


def test_site_values_are_text_never_templates() -> None:
    """The host comes from the user (or a DNS answer): it is inserted as it is, never expanded."""
    fix = remedy("no-tls", "postfix", Protocol.SMTP, host="{{acme}}", ports=[(25, False)])
    assert "-connect {{acme}}:25" in fix.steps[-1]


def test_a_file_of_the_wrong_shape_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match=r"x\.toml \[no-tls\]: unknown key 'step'"):
        parse("x", '[no-tls]\nstep = ["a"]\n')
    with pytest.raises(ValueError, match=r"x\.toml \[text\]\.apply"):
        parse("x", "[text]\napply = [1]\n")
    with pytest.raises(ValueError, match=r"x\.toml \[no-tls\]: steps"):
        parse("x", '[no-tls]\nsteps = "one step"\n')
    with pytest.raises(ValueError, match=r"x\.toml: unknown top-level keys \['labell'\]"):
        parse("x", 'labell = "X"\n')


def test_an_unknown_field_or_a_loop_is_an_error() -> None:
    data = parse("x", '[text]\na = "{{b}}"\nb = "{{a}}"\n')
    with pytest.raises(KeyError, match=r"unknown field \{\{nothing\}\} for smtp \(looked in x\.toml\)"):
        Scope([data], Protocol.SMTP, {}).render("see {{nothing}}")
    with pytest.raises(ValueError, match="a loop"):
        Scope([data], Protocol.SMTP, {}).render("{{a}}")
