"""The CLI package's structure: what `cleartext version` and `--help` load, and the constants it keeps
beside the modules it must not import at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

from cleartext.cli import _options, data
from cleartext.enrich import fetch
from cleartext.targets import DEFAULT_PORTS

# What a command may import only when it runs: the scanner, the store and its drivers, the web stack,
# DNS, the TLS and certificate code, the enricher, rich's console.
HEAVY = (
    "cleartext.scan",
    "cleartext.store",
    "cleartext.probe",
    "cleartext.web",
    "cleartext.enrich",
    "cleartext.notify",
    "cleartext.report",
    "cleartext.domain",
    "duckdb",
    "psycopg",
    "pyarrow",
    "fastapi",
    "dns",
    "cryptography",
    "rich.console",
    "asyncio",
)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.splitlines()[-1]
    return set(json.loads(out))


def test_importing_the_cli_loads_no_command_s_machinery() -> None:
    loaded = _modules_after("import cleartext.cli")
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == [], heavy


def test_version_and_help_load_no_command_s_machinery() -> None:
    for argv in (["version"], ["--help"], ["scan", "--help"]):
        code = (
            "import sys\nfrom cleartext.cli import app\n"
            f"try:\n    app({argv!r}, standalone_mode=False)\nexcept SystemExit:\n    pass"
        )
        loaded = _modules_after(code)
        heavy = sorted(m for m in loaded if m.startswith("cleartext.") and not m.startswith("cleartext.cli"))
        assert set(heavy) <= {"cleartext.errors"}, (argv, heavy)


def test_constants_kept_beside_the_modules_not_imported_agree_with_them() -> None:
    assert ",".join(map(str, DEFAULT_PORTS)) == _options.DEFAULT_PORTS_TEXT
    assert (data.DEFAULT_TIMEOUT, data.DEFAULT_MAX_TIME) == (fetch.DEFAULT_TIMEOUT, fetch.DEFAULT_MAX_TIME)


def test_each_shared_option_is_declared_once() -> None:
    """No command module declares a flag that _options declares: each shared option has one declaration."""
    import ast
    from pathlib import Path

    package = Path(_options.__file__).parent
    shared = {
        flag
        for node in ast.walk(ast.parse(Path(_options.__file__).read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("--")
        for flag in [node.value]
    }
    assert {"--store", "--mmdb", "--iptoasn", "--rir", "--rpsl", "--contacts", "--data-dir"} <= shared
    assert {"--country-source", "--ca-file", "--resolve", "--json", "--scan"} <= shared
    for path in sorted(package.glob("*.py")):
        if path.name == "_options.py":
            continue
        declared = {
            node.value
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in shared
        }
        assert not declared, f"{path.name} declares {sorted(declared)} again"
