"""`cleartext report` as a user runs it: each format from a JSON Lines file; bad input: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.enrich_files import write_iptoasn
from tests.unit.report_samples import sample_records


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    path = tmp_path / "scan.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in sample_records()), encoding="utf-8")
    return path


def test_table_json_and_shadowserver(scan: Path, tmp_path: Path) -> None:
    iptoasn = write_iptoasn(
        tmp_path / "ip2asn.tsv", [("192.0.2.0", "192.0.2.255", 64500, "DE", "EXAMPLE-NET [bold]x[/bold]")]
    )
    table = run_cli("report", "--from", str(scan), "--iptoasn", str(iptoasn))
    assert table.returncode == 0, table.stderr
    assert "cleartext-login" in table.stdout and "EXAMPLE-NET" in table.stdout
    assert "[bold]x[/bold]" in table.stdout  # server-side or file text is never console markup

    done = run_cli("report", "--from", str(scan), "--format", "json", "--country-source", "registry")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["totals"]["exposed"] == 5 and data["country_source"] == "registry"

    out = tmp_path / "csv"
    done = run_cli(
        "report", "--from", str(scan), "-f", "shadowserver", "--out", str(out), "--split-by", "cidr"
    )
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "2026-11-28-scan_imap-unknown.csv" in names and "2026-11-28-scan6_ssl_poodle-unknown.csv" in names
    assert all(line.split("\t")[0].endswith(".csv") for line in done.stdout.splitlines())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "unknown format 'xml'"),
        (["--split-by", "region"], "unknown --split-by 'region'"),
        (["--country-source", "gps"], "unknown --country-source 'gps'"),
        (["--format", "shadowserver"], "needs --out DIRECTORY"),
        (["--previous", "/nonexistent/stats.json"], "cannot read /nonexistent/stats.json"),
        (["--iptoasn", "/nonexistent/ip2asn.tsv"], "/nonexistent/ip2asn.tsv"),
    ],
)
def test_bad_options_are_one_line_exit_2(scan: Path, args: list[str], message: str) -> None:
    done = run_cli("report", "--from", str(scan), *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_bad_input_files(tmp_path: Path, scan: Path) -> None:
    missing = run_cli("report", "--from", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text(scan.read_text().splitlines()[0] + "\n{not json\n", encoding="utf-8")
    done = run_cli("report", "--from", str(bad), "--format", "json")
    assert done.returncode == 2 and f"{bad}:2:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"version": 99}\n', encoding="utf-8")
    done = run_cli("report", "--from", str(wrong))
    assert done.returncode == 2 and f"{wrong}:1: not a cleartext record" in done.stderr
    stats = tmp_path / "stats.json"
    stats.write_text("[]", encoding="utf-8")
    done = run_cli("report", "--from", str(scan), "--previous", str(stats))
    assert done.returncode == 2 and "not a cleartext report statistics file" in done.stderr


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("port", "abc", "port 'abc' is not a TCP port"),
        ("port", 99999, "port 99999 is not a TCP port"),
        ("address", "not-an-ip", "address 'not-an-ip' is not an IP address"),
    ],
)
@pytest.mark.parametrize("output", ["json", "shadowserver"])
def test_records_are_checked_as_import_checks_them(
    scan: Path, tmp_path: Path, field: str, value: object, message: str, output: str
) -> None:
    """A record `cleartext import` refuses is refused here too, by file and line, and nothing is written."""
    lines = scan.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[2])
    bad[field] = value
    lines[2] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    args = ["--out", str(out / "r.json")] if output == "json" else ["--out", str(out)]
    if output == "json":
        out.mkdir()
    done = run_cli("report", "--from", str(path), "--format", output, *args)
    assert done.returncode == 2, done.stdout
    assert done.stderr.strip() == f"cleartext: error: {path}:3: {message}"
    assert list(out.iterdir()) == []
    imported = run_cli("import", str(path), "--store", str(tmp_path / "s.duckdb"))
    assert imported.returncode == 2 and f"{path}:3: {message}" in imported.stderr


def test_a_failed_shadowserver_run_leaves_no_partial_files(scan: Path, tmp_path: Path) -> None:
    """Truncated input: exit 2, no CSV of this run in --out, the files of an earlier run as they were."""
    out = tmp_path / "csv"
    first = run_cli("report", "--from", str(scan), "-f", "shadowserver", "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert before
    text = scan.read_text(encoding="utf-8")
    lines = text.splitlines()
    changed = [json.loads(line) for line in lines]
    for record in changed:  # another day: this run's files would have names of their own
        record["started_at"] = "2026-12-01T00:00:00+00:00"
    truncated = tmp_path / "truncated.jsonl"
    body = "".join(json.dumps(r) + "\n" for r in changed)
    truncated.write_text(body[: len(body) - 40], encoding="utf-8")
    done = run_cli("report", "--from", str(truncated), "-f", "shadowserver", "--out", str(out))
    assert done.returncode == 2 and f"{truncated}:{len(lines)}:" in done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
