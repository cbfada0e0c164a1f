"""docs/architecture.md lists every module of the package, one line each: a module added without its
line, or renamed without the doc, fails here rather than leaving the map wrong."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "cleartext"


def test_every_module_has_its_line_in_the_architecture_doc() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    modules = sorted(p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py"))
    assert len(modules) > 100
    missing = [m for m in modules if f"`{m}`" not in doc]
    assert missing == [], f"docs/architecture.md has no line for {missing}"


def test_the_doc_names_no_module_that_is_gone() -> None:
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^\| `([a-z_/]+\.py)`", doc, flags=re.M))
    gone = sorted(m for m in named if not (PACKAGE / m).is_file())
    assert gone == [], f"docs/architecture.md names modules that do not exist: {gone}"
