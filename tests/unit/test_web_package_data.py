"""The dashboard's templates, stylesheet and icon are package files: an installed wheel must carry them.

A page missing from the wheel fails in production only (the tests run from the source tree), so one test
builds the wheel, offline, from a copy of the source tree, and looks inside; the others check that every
template the code renders or a template imports is one of them, and that the package finds each.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from cleartext.web.templating import STATIC, TEMPLATES, environment

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "cleartext" / "web"


def referenced_templates() -> set[str]:
    """The template names in the pages' code and in the templates' extends/import/include."""
    names = set(re.findall(r'"([a-z-]+\.html)"', (WEB / "routes" / "pages.py").read_text(encoding="utf-8")))
    for path in (WEB / "templates").glob("*.html"):
        text = path.read_text(encoding="utf-8")
        names |= set(re.findall(r'{%-?\s*(?:extends|from|import|include)\s+"([^"]+)"', text))
    return names


def test_every_template_referenced_is_listed_and_every_file_is_referenced() -> None:
    on_disk = {p.name for p in (WEB / "templates").iterdir()}
    assert referenced_templates() == set(TEMPLATES) == on_disk


def test_the_package_finds_every_template_and_static_file() -> None:
    package = resources.files("cleartext.web")
    for name in TEMPLATES:
        assert package.joinpath("templates", name).is_file(), name
    for name in STATIC:
        assert package.joinpath("static", name).is_file(), name
    env = environment()
    for name in TEMPLATES:
        env.get_template(name)  # parses, with its parents and imports


def test_a_wheel_built_offline_carries_the_templates_and_static_files(tmp_path: Path) -> None:
    import setuptools

    if int(setuptools.__version__.split(".")[0]) < 77:
        missing = f"setuptools {setuptools.__version__} cannot build this project (the dev extra has >= 77)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    # A copy, since building writes build/ and an .egg-info beside the sources.
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    out = tmp_path / "dist"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "--disable-pip-version-check",
            "-w",
            str(out),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("cleartext-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        for folder, names in (("templates", TEMPLATES), ("static", STATIC)):
            for name in names:
                member = f"cleartext/web/{folder}/{name}"
                assert member in shipped, f"{member} is not in {wheel.name}"
                assert archive.read(member) == (WEB / folder / name).read_bytes()
