"""`cleartext report --scan ID`: the store as the record source, the same numbers as from JSON Lines."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

FAST = ["--allow-reserved", "--connect-timeout", "1", "--read-timeout", "1", "--no-progress"]


def test_report_from_the_store_equals_report_from_the_file(tmp_path: Path) -> None:
    store, out = tmp_path / "s.duckdb", tmp_path / "scan.jsonl"
    scan = run_cli(
        "scan", "127.0.9.0/29", "--ports", "25,993", "--store", str(store), "--out", str(out), *FAST
    )
    assert scan.returncode == 0, scan.stderr
    from_store = run_cli("report", "--scan", "latest", "--store", str(store), "--format", "json")
    from_file = run_cli("report", "--from", str(out), "--format", "json")
    assert from_store.returncode == 0 and from_file.returncode == 0, from_store.stderr + from_file.stderr
    a, b = json.loads(from_store.stdout), json.loads(from_file.stdout)
    assert a["totals"] == b["totals"] and a["by_status"] == b["by_status"]
    assert a["totals"]["records"] == 16 and a["by_status"] == {"refused": 16}
    assert a["scan_id"].startswith("20")  # named after the store's scan id


def test_report_source_errors_are_one_line(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"
    run_cli("scan", "127.0.9.0/30", "--ports", "25", "--store", str(store), *FAST)
    unknown = run_cli("report", "--scan", "20990101T000000Z-0000", "--store", str(store))
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    both = run_cli("report", "--scan", "latest", "--from", "x.jsonl", "--store", str(store))
    assert both.returncode == 2 and "one of the two" in both.stderr
    neither = run_cli("report")
    assert neither.returncode == 2
    missing = run_cli("report", "--scan", "latest", "--store", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 2 and missing.stderr.startswith("cleartext: error:")
