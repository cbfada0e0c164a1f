"""Every Remedy the public API returns, pinned: the same text for every finding × protocol × software × site.

Why: the remediation text reaches mail admins through `check`, notification e-mails, the web API and
docs/findings.md. A change to how the advice is stored or rendered must not change a word of it unless
someone meant to; this test fails on any difference, for any software, protocol or host checked.

The pinned file (tests/data/remediation-golden.json) holds one digest per software and finding, over all
protocols and a set of sites (no host, a name with the standard ports, an IPv4 or IPv6 address, a name
without ports, non-standard ports): the full text of all of them is about 5 MB. To see what changed, dump
the full text at two revisions and diff them; after an intended change to the advice, update the file:

    .venv/bin/python -m tests.unit.test_remediation_golden --dump /tmp/remedies-after.json
    .venv/bin/python -m tests.unit.test_remediation_golden --update
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cleartext.findings import Code, DomainCode
from cleartext.record import Protocol
from cleartext.remediation import Remedy, domain_remedy, remedy
from cleartext.software import Software

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "remediation-golden.json"

# What callers pass as the software: every product, nothing, an unknown name, another spelling.
SOFTWARE: dict[str, str | None] = {
    "(none)": None,
    "(empty)": "",
    "frobnicator": "frobnicator",
    "DOVECOT": "DOVECOT",
    **{sw.value: sw.value for sw in Software},
}

_STANDARD = {
    Protocol.SMTP: ((25, False), (587, False), (465, True)),
    Protocol.IMAP: ((143, False), (993, True)),
    Protocol.POP3: ((110, False), (995, True)),
}

Ports = tuple[tuple[int, bool], ...]

# Where the advice is for: (host, ports) per protocol. Every branch of the site-dependent commands.
SITES: dict[str, Callable[[Protocol], tuple[str | None, Ports]]] = {
    "anywhere": lambda p: (None, ()),
    "name-standard": lambda p: ("Mail.Example.ORG.", _STANDARD[p]),
    "name-only": lambda p: ("mx.example.net", ()),
    "ipv4-implicit": lambda p: ("192.0.2.25", (_STANDARD[p][-1],)),
    "ipv6-plain": lambda p: ("2001:db8::25", (_STANDARD[p][0],)),
    "name-nonstandard": lambda p: (
        "mail.example.com",
        ((2525, False), (10025, False), (10465, True), (12345, True)),
    ),
    "ports-only": lambda p: (None, ((2525, False),)),
}


def _plain(fix: Remedy) -> dict[str, Any]:
    return {
        "software": fix.software,
        "steps": list(fix.steps),
        "config": fix.config,
        "references": list(fix.references),
    }


def full() -> dict[str, Any]:
    """Every remedy in full: software key -> code -> "protocol site" -> remedy; domain codes apart."""
    out: dict[str, Any] = {}
    for key, software in SOFTWARE.items():
        by_code = out.setdefault(key, {})
        for code in Code:
            cases = by_code.setdefault(code.value, {})
            for protocol in Protocol:
                for site, where in SITES.items():
                    host, ports = where(protocol)
                    fix = remedy(code, software, protocol, host=host, ports=ports)
                    cases[f"{protocol.value} {site}"] = _plain(fix)
    out["(domain)"] = {code.value: _plain(domain_remedy(code)) for code in DomainCode}
    return out


def _digest(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def digests() -> dict[str, dict[str, str]]:
    """One digest per software key and code, over every protocol and site."""
    return {key: {code: _digest(cases) for code, cases in by_code.items()} for key, by_code in full().items()}


def test_every_remedy_renders_as_pinned() -> None:
    pinned = json.loads(GOLDEN.read_text(encoding="utf-8"))
    current = digests()
    changed = sorted(
        f"{key} {code}"
        for key in pinned.keys() | current.keys()
        for code in pinned.get(key, {}).keys() | current.get(key, {}).keys()
        if pinned.get(key, {}).get(code) != current.get(key, {}).get(code)
    )
    assert not changed, (
        f"remediation text changed for {len(changed)} software/finding pairs, e.g. {changed[:10]}; "
        "diff the --dump of this module at both revisions, and --update if the change is meant"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--update", action="store_true", help=f"rewrite {GOLDEN.name} from the current code")
    group.add_argument("--dump", type=Path, metavar="FILE", help="write every remedy in full to FILE")
    args = parser.parse_args(argv)
    if args.update:
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(json.dumps(digests(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    else:
        args.dump.write_text(json.dumps(full(), indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
