"""The store commands as a user runs them: `python -m cleartext import|scans|diff|export` on a DuckDB file.

Inputs are JSON Lines built from Record objects (and one file written by a real `cleartext scan` of a
closed loopback port), so no mail server is needed. Bad input is one line on stderr and exit 2, and an
import that fails leaves nothing behind.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from cleartext.record import Record, Status
from cleartext.store import open_store
from tests.conftest import ROOT
from tests.domain_samples import sample_domains
from tests.pg import free_port
from tests.store_contract import make_record, sample_records


def cli(
    *args: str, cwd: Path = ROOT, store_env: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real command, with $CLEARTEXT_STORE under the test's control (unset unless given)."""
    env = {k: v for k, v in os.environ.items() if k != "CLEARTEXT_STORE"}
    env.update({"COLUMNS": "200", "NO_COLOR": "1", "PYTHONPATH": str(ROOT / "src")})
    if store_env is not None:
        env["CLEARTEXT_STORE"] = store_env
    return subprocess.run(
        [sys.executable, "-m", "cleartext", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def write_jsonl(path: Path, records: list[Record]) -> Path:
    path.write_text("".join(r.to_json() + "\n" for r in records), encoding="utf-8")
    return path


def import_ok(path: Path, store: Path) -> str:
    result = cli("import", str(path), "--store", str(store))
    assert result.returncode == 0, result.stderr
    scan_id = result.stdout.strip()
    assert len(scan_id) == len("20261128T081500Z-3f9a")
    return scan_id


def assert_usage_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("cleartext: error: "), result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def test_import_scans_diff_export(tmp_path: Path) -> None:
    store = tmp_path / "results.duckdb"
    before = [
        make_record("192.0.2.1", 143, ("cleartext-login",)),
        make_record("192.0.2.2", 110, ("no-tls",)),
        make_record("192.0.2.3", 25),
    ]
    after = [
        make_record("192.0.2.1", 143, ("cleartext-login",)),
        make_record("192.0.2.2", 110, status=Status.REFUSED),
        make_record("192.0.2.3", 25, ("legacy-tls",)),
    ]
    a = import_ok(write_jsonl(tmp_path / "a.jsonl", before), store)
    b = import_ok(write_jsonl(tmp_path / "b.jsonl", after), store)

    listed = cli("scans", "--store", str(store))
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["id", "started", "finished", "endpoints", "domains", "counts"]
    assert [line.split()[0] for line in lines[1:]] == [a, b]
    assert "3 success" in lines[1] and "2 success, 1 refused" in lines[2]
    infos = [json.loads(line) for line in cli("scans", "--store", str(store), "--json").stdout.splitlines()]
    assert [i["scan_id"] for i in infos] == [a, b] and infos[0]["params"]["source"] == "import"
    assert infos[0]["params"]["file"] == str(tmp_path / "a.jsonl") and infos[1]["endpoints"] == 3

    as_json = cli("diff", a, b, "--store", str(store), "--json")
    assert as_json.returncode == 0, as_json.stderr
    d = json.loads(as_json.stdout)
    assert [(e["address"], e["code"]) for e in d["new"]] == [("192.0.2.3", "legacy-tls")]
    assert [(e["address"], e["code"], e["status"]) for e in d["fixed"]] == [
        ("192.0.2.2", "no-tls", "refused")
    ]
    assert [(e["address"], e["code"]) for e in d["still"]] == [("192.0.2.1", "cleartext-login")]
    assert d["unknown"] == [] and d["a"] == a and d["b"] == b
    text = cli("diff", a, b, "--store", str(store))
    assert text.returncode == 0, text.stderr
    assert f"New in {b} (1)" in text.stdout and "Still open (1)" in text.stdout
    assert "192.0.2.2:110" in text.stdout and "1 new, 1 fixed, 1 still, 0 unknown" in text.stdout

    for fmt in ("parquet", "csv", "jsonl"):
        out = tmp_path / f"b.{fmt}"
        result = cli("export", b, "--format", fmt, "--out", str(out), "--store", str(store))
        assert result.returncode == 0, result.stderr
        assert f"wrote 3 records of scan {b}" in result.stderr
    assert sorted(pq.read_table(tmp_path / "b.parquet").column("address").to_pylist()) == [
        "192.0.2.1",
        "192.0.2.2",
        "192.0.2.3",
    ]
    with (tmp_path / "b.csv").open(newline="") as handle:
        assert {row["status"] for row in csv.DictReader(handle)} == {"success", "refused"}
    exported = sorted((tmp_path / "b.jsonl").read_text().splitlines())
    assert exported == sorted((tmp_path / "b.jsonl").read_text().splitlines())
    assert exported == sorted(r.to_json() for r in after)


def test_import_bad_lines_store_nothing(tmp_path: Path) -> None:
    store = tmp_path / "results.duckdb"
    good = import_ok(write_jsonl(tmp_path / "good.jsonl", sample_records()), store)
    lines = [r.to_json() for r in sample_records()]
    not_record = json.loads(lines[0]) | {"version": 3}
    wrong_port = json.loads(lines[0]) | {"port": "25"}
    cases = {
        "json": ([*lines[:2], "{not json", *lines[2:]], 3),
        "version": ([*lines[:5], json.dumps(not_record)], 6),
        "port": ([lines[0], "", json.dumps(wrong_port)], 3),  # blank lines are skipped, still counted
    }
    for name, (content, bad_line) in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text("\n".join(content) + "\n")
        assert_usage_error(cli("import", str(path), "--store", str(store)), f"{path}:{bad_line}:")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(lines[0].encode() + b"\n\xff\xfe\x00garbage\n")
    assert_usage_error(cli("import", str(binary), "--store", str(store)), f"{binary}:2:")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    assert_usage_error(cli("import", str(empty), "--store", str(store)), "no records")
    assert_usage_error(cli("import", str(tmp_path / "absent.jsonl"), "--store", str(store)), "cannot read")
    infos = [json.loads(line) for line in cli("scans", "--store", str(store), "--json").stdout.splitlines()]
    assert [i["scan_id"] for i in infos] == [good]


def test_import_and_export_domain_records(tmp_path: Path) -> None:
    """`check DOMAIN --json` lines mixed with endpoint records go into the domains table; a jsonl export
    holds them again and imports back to the same rows; a bad domain line names its line, stores nothing."""
    store = tmp_path / "results.duckdb"
    records, domains = sample_records()[:4], sample_domains()
    mixed = tmp_path / "mixed.jsonl"
    order = [*records[:2], domains[0], *records[2:], *domains[1:]]
    mixed.write_text("".join(x.to_json() + "\n" for x in order))
    result = cli("import", str(mixed), "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert "imported 4 records and 3 domain records" in result.stderr
    scan_id = result.stdout.strip()
    exported = tmp_path / "out.jsonl"
    result = cli("export", scan_id, "-f", "jsonl", "-o", str(exported), "--store", str(store))
    assert result.returncode == 0 and "wrote 4 records and 3 domain records" in result.stderr, result.stderr
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert sorted(line["domain"] for line in lines if line.get("kind") == "domain") == sorted(
        d.observation.domain for d in domains
    )
    only_domains = tmp_path / "domains.jsonl"
    only_domains.write_text("".join(d.to_json() + "\n" for d in domains))
    again = import_ok(only_domains, store)
    with open_store(str(store), create=False) as st:
        assert st.domains(again) == st.domains(scan_id) and st.count(again) == 0
        assert (st.scan(again).endpoints, st.scan(again).domains) == (0, 3)
        assert (st.scan(scan_id).endpoints, st.scan(scan_id).domains) == (4, 3)
    scans = cli("scans", "--json", "--store", str(store)).stdout.splitlines()
    listed = {json.loads(x)["scan_id"]: json.loads(x) for x in scans}
    assert listed[again]["domains"] == 3 and listed[again]["endpoints"] == 0
    # diff compares the domain records too: the same three, every finding still open.
    diff = json.loads(cli("diff", scan_id, again, "--json", "--store", str(store)).stdout)
    still = sorted((d.observation.domain, f.code) for d in domains for f in d.findings)
    assert sorted((e["domain"], e["code"]) for e in diff["domains"]["still"]) == still and still
    assert diff["domains"]["new"] == diff["domains"]["fixed"] == diff["domains"]["unknown"] == []
    table = cli("diff", scan_id, again, "--store", str(store))
    assert table.returncode == 0, table.stderr
    assert f"domains: 0 new, 0 fixed, {len(still)} still, 0 unknown" in table.stdout
    assert "\x1b" not in table.stdout and "\\x1b" in table.stdout  # the hostile name, escaped
    bad = domains[0].to_dict() | {"mx": "not a list"}
    broken = tmp_path / "broken.jsonl"
    broken.write_text(records[0].to_json() + "\n" + json.dumps(bad) + "\n")
    assert_usage_error(cli("import", str(broken), "--store", str(store)), f"{broken}:2:", "domain record")
    with open_store(str(store), create=False) as st:
        assert len(st.scans()) == 2


def test_import_from_stdin(tmp_path: Path) -> None:
    store = tmp_path / "results.duckdb"
    records = sample_records()[:3]
    result = cli("import", "-", "--store", str(store), stdin="".join(r.to_json() + "\n" for r in records))
    assert result.returncode == 0, result.stderr
    assert "imported 3 records from -" in result.stderr


def test_import_what_scan_wrote(tmp_path: Path) -> None:
    """A file written by the real `cleartext scan --out` (a closed loopback port: one `refused` record)."""
    out = tmp_path / "scan.jsonl"
    port = free_port()
    scanned = cli(
        "scan", "127.0.0.1", "--allow-reserved", "--ports", f"{port}=smtp", "--max-connections", "1",
        "--connect-timeout", "2", "--out", str(out), "--no-store",
    )  # fmt: skip
    assert scanned.returncode == 0, scanned.stderr
    scan_id = import_ok(out, tmp_path / "s.duckdb")
    (info,) = [
        json.loads(x)
        for x in cli("scans", "--store", str(tmp_path / "s.duckdb"), "--json").stdout.splitlines()
    ]
    assert info["scan_id"] == scan_id and info["counts"] == {"refused": 1}


def test_unknown_scan_and_unusable_store(tmp_path: Path) -> None:
    store = tmp_path / "results.duckdb"
    scan_id = import_ok(write_jsonl(tmp_path / "a.jsonl", sample_records()), store)
    assert_usage_error(cli("diff", scan_id, "20990101T000000Z-0000", "--store", str(store)), "no scan")
    out = tmp_path / "x.csv"
    assert_usage_error(
        cli("export", "nope", "--format", "csv", "--out", str(out), "--store", str(store)), "no scan"
    )
    assert not out.exists()
    not_a_store = tmp_path / "a.jsonl"
    for args in (("scans",), ("import", str(not_a_store))):
        assert_usage_error(cli(*args, "--store", str(not_a_store)), "not a DuckDB database file")
    assert_usage_error(cli("scans", "--store", str(tmp_path / "typo.duckdb")), "no store at")
    assert not (tmp_path / "typo.duckdb").exists()
    assert_usage_error(cli("scans", "--store", "mysql://db/x"), "unknown store URL scheme")
    bad_format = cli("export", scan_id, "--format", "xlsx", "--out", str(out), "--store", str(store))
    assert bad_format.returncode == 2 and not out.exists()


def test_default_store_is_env_then_cwd(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "a.jsonl", sample_records()[:2])
    work = tmp_path / "work"
    work.mkdir()
    result = cli("import", str(source), cwd=work)
    assert result.returncode == 0, result.stderr
    assert (work / "cleartext.duckdb").is_file()
    elsewhere = tmp_path / "env.duckdb"
    result = cli("import", str(source), cwd=work, store_env=str(elsewhere))
    assert result.returncode == 0, result.stderr
    env_scans = cli("scans", "--json", cwd=work, store_env=f"duckdb://{elsewhere}")
    assert [json.loads(x)["scan_id"] for x in env_scans.stdout.splitlines()] == [result.stdout.strip()]
    assert len(cli("scans", "--json", cwd=work).stdout.splitlines()) == 1


def test_latest_names_the_newest_scan_wherever_a_scan_id_is(tmp_path: Path) -> None:
    store = tmp_path / "results.duckdb"
    s = ("--store", str(store))
    assert_usage_error(cli("export", "latest", "-f", "csv", "-o", str(tmp_path / "x.csv"), *s), "no store")
    a = import_ok(write_jsonl(tmp_path / "a.jsonl", sample_records()[:2]), store)
    b = import_ok(write_jsonl(tmp_path / "b.jsonl", sample_records()[2:5]), store)
    # Two imports in one second: their ids need not sort, 'latest' goes by the start time itself.
    assert a != b
    exported = cli("export", "latest", "--format", "jsonl", "--out", str(tmp_path / "latest.jsonl"), *s)
    assert exported.returncode == 0, exported.stderr
    assert f"wrote 3 records of scan {b}" in exported.stderr
    diff = json.loads(cli("diff", a, "latest", "--json", *s).stdout)
    assert (diff["a"], diff["b"]) == (a, b)
    status = cli("status", "latest", "--json", *s)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["scan_id"] == b
    report = cli("report", "--scan", "latest", "--format", "json", *s)
    assert report.returncode == 0, report.stderr
    notify = cli("notify", "--scan", "latest", "--dry-run", str(tmp_path / "eml"), *s)
    assert notify.returncode == 0, notify.stderr
    assert f"scan {b}" in notify.stderr
    # An id that is not 'latest' and not in the store is still an error.
    assert_usage_error(cli("export", "newest", "-f", "csv", "-o", str(tmp_path / "y.csv"), *s), "no scan")
