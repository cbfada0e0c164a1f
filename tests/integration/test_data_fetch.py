"""`cleartext data fetch` against a real HTTP server on 127.0.0.1 publishing real-format files.

Every source's URL is pointed at the loopback server (a sources.toml, as a user would write for a
mirror); nothing here can reach another host. The files are the enricher tests' real formats: RIR
delegated-extended statistics with their .md5, iptoasn TSV, RIPE/APNIC split and AFRINIC whole RPSL
dumps, MMDB databases raw, gzip'd (DB-IP) and in MaxMind's tar.gz with its .sha256.
"""

from __future__ import annotations

import fcntl
import gzip
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cleartext.enrich.datadir import LOCK, MANIFEST, Manifest
from tests.conftest import run_cli
from tests.data_server import DataServer, data_server, refused_port, silent_listener
from tests.enrich_files import (
    asn_record,
    country_record,
    ipinfo_record,
    rpsl_object,
    write_iptoasn,
    write_mmdb,
    write_rir,
    write_rpsl,
)
from tests.unit.report_samples import sample_records

RIRS = ("arin", "ripencc", "apnic", "lacnic", "afrinic")
RPSL = ("inetnum", "inet6num", "aut-num", "role", "organisation", "irt")
MAXMIND_AUTH = "Basic NDI6bGljZW5jZS1rZXk="  # 42:licence-key
NO_PROXY = {"http_proxy": "", "https_proxy": "", "HTTP_PROXY": "", "HTTPS_PROXY": "", "all_proxy": ""}


def _bytes(path: Path) -> bytes:
    return path.read_bytes()


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def build_files(tmp: Path) -> dict[str, bytes]:
    """Every source's published body, by URL path on the server."""
    tmp.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {}
    blocks = {
        "arin": ("US", "198.51.100.0"),
        "ripencc": ("NL", "192.0.2.0"),
        "apnic": ("JP", "203.0.113.0"),
    }
    for rir in RIRS:
        cc, start = blocks.get(rir, ("ZZ", None))
        records = [(cc, "ipv4", start, 256, "allocated")] if start else []
        records.append(("ZZ", "asn", "64511", 1, "reserved"))
        files[f"/stats/delegated-{rir}-extended-latest"] = _bytes(
            write_rir(tmp / f"delegated-{rir}-extended-latest", rir, records)
        )
    files["/iptoasn/ip2asn-combined.tsv.gz"] = _bytes(
        write_iptoasn(
            tmp / "ip2asn-combined.tsv.gz",
            [
                ("192.0.2.0", "192.0.2.255", 64496, "NL", "EXAMPLE-ONE"),
                ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", 64499, "DE", "EXAMPLE-SIX"),
            ],
            gz=True,
        )
    )
    ripe = {
        "inetnum": [rpsl_object(("inetnum", "192.0.2.0 - 192.0.2.255"), ("org", "ORG-EX1-RIPE"))],
        "inet6num": [rpsl_object(("inet6num", "2001:db8::/32"), ("abuse-c", "AR6-RIPE"))],
        "aut-num": [rpsl_object(("aut-num", "AS64496"), ("abuse-c", "AR1-RIPE"))],
        "role": [
            rpsl_object(("role", "Abuse"), ("nic-hdl", "AR1-RIPE"), ("abuse-mailbox", "abuse@one.example")),
            rpsl_object(("role", "Abuse"), ("nic-hdl", "AR6-RIPE"), ("abuse-mailbox", "abuse@six.example")),
        ],
        "organisation": [rpsl_object(("organisation", "ORG-EX1-RIPE"), ("abuse-c", "AR1-RIPE"))],
        "irt": [rpsl_object(("irt", "IRT-EX"), ("abuse-mailbox", "irt@one.example"))],
    }
    for objects in RPSL:
        files[f"/ripe/ripe.db.{objects}.gz"] = _bytes(
            write_rpsl(tmp / f"ripe.db.{objects}.gz", ripe[objects], gz=True)
        )
        apnic = [rpsl_object(("irt", "IRT-AP"), ("abuse-mailbox", "irt@ap.example"))]
        files[f"/apnic/apnic.db.{objects}.gz"] = _bytes(
            write_rpsl(tmp / f"apnic.db.{objects}.gz", apnic, gz=True)
        )
    files["/afrinic/afrinic.db.gz"] = _bytes(
        write_rpsl(
            tmp / "afrinic.db.gz",
            [
                rpsl_object(
                    ("inetnum", "198.51.100.0 - 198.51.100.255"), ("abuse-mailbox", "af@example.example")
                )
            ],
            gz=True,
        )
    )
    asn_db = _bytes(write_mmdb(tmp / "GeoLite2-ASN.mmdb", {"192.0.2.0/24": asn_record(64496, "GEO-ONE")}))
    country_db = _bytes(
        write_mmdb(
            tmp / "GeoLite2-Country.mmdb",
            {"192.0.2.0/24": country_record("BE", "NL")},
            database_type="GeoLite2-Country",
        )
    )
    for edition, db in (("GeoLite2-ASN", asn_db), ("GeoLite2-Country", country_db)):
        archive = _tar_gz(
            {
                f"{edition}_20250101/COPYRIGHT.txt": b"test data\n",
                f"{edition}_20250101/{edition}.mmdb": db,
            }
        )
        files[f"/maxmind/{edition}.tar.gz"] = archive
        digest = hashlib.sha256(archive).hexdigest()
        files[f"/maxmind/{edition}.tar.gz.sha256"] = f"{digest}  {edition}_20250101.tar.gz\n".encode()
    files["/ipinfo/ipinfo_lite.mmdb"] = _bytes(
        write_mmdb(
            tmp / "ipinfo_lite.mmdb",
            {"203.0.113.0/24": ipinfo_record(64500, "IPINFO-EX", "JP")},
            database_type="ipinfo ipinfo_lite.mmdb",
        )
    )
    month = datetime.now(UTC).strftime("%Y-%m")
    dbip = _bytes(
        write_mmdb(
            tmp / "dbip-country.mmdb",
            {"198.51.100.0/24": country_record("US")},
            database_type="DBIP-Country-Lite",
        )
    )
    files[f"/dbip/dbip-country-lite-{month}.mmdb.gz"] = gzip.compress(dbip)
    dbip_asn = _bytes(write_mmdb(tmp / "dbip-asn.mmdb", {"198.51.100.0/24": asn_record(64501, "DBIP-EX")}))
    files[f"/dbip/dbip-asn-lite-{month}.mmdb.gz"] = gzip.compress(dbip_asn)
    return files


def config_for(server: DataServer) -> str:
    """A sources.toml pointing every source at the loopback server."""
    base = server.base
    lines = []

    def source(name: str, url: str, checksum: str | None = None) -> None:
        lines.append(f'[sources.{name}]\nurl = "{url}"\n')
        if checksum is not None:
            lines.append(f'checksum_url = "{checksum}"\n')

    for rir in RIRS:
        url = f"{base}/stats/delegated-{rir}-extended-latest"
        source(f"rir-{rir}", url, f"{url}.md5")
    source("iptoasn", f"{base}/iptoasn/ip2asn-combined.tsv.gz")
    for registry in ("ripe", "apnic"):
        for objects in RPSL:
            source(f"{registry}-{objects}", f"{base}/{registry}/{registry}.db.{objects}.gz")
    source("afrinic-db", f"{base}/afrinic/afrinic.db.gz")
    for name, edition in (("maxmind-asn", "GeoLite2-ASN"), ("maxmind-country", "GeoLite2-Country")):
        source(name, f"{base}/maxmind/{edition}.tar.gz", f"{base}/maxmind/{edition}.tar.gz.sha256")
    source("ipinfo-lite", f"{base}/ipinfo/ipinfo_lite.mmdb")
    source("dbip-asn", f"{base}/dbip/dbip-asn-lite-{{month}}.mmdb.gz")
    source("dbip-country", f"{base}/dbip/dbip-country-lite-{{month}}.mmdb.gz")
    return "".join(lines)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DataServer]:
    with data_server() as srv:
        for path, body in build_files(tmp_path / "published").items():
            if path.endswith(".md5"):
                continue
            if path.startswith("/stats/"):
                srv.publish_md5(path, body)
            elif path.startswith("/maxmind/") and not path.endswith(".sha256"):
                srv.publish(path, body, auth=MAXMIND_AUTH)
            else:
                srv.publish(path, body)
        yield srv


@pytest.fixture
def data_dir(tmp_path: Path, server: DataServer) -> Path:
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "sources.toml").write_text(config_for(server), encoding="utf-8")
    return directory


def fetch(data_dir: Path, *args: str, timeout: float = 120) -> tuple[int, list[dict[str, object]], str]:
    """Run `cleartext data fetch`; its JSON lines (stderr, not a terminal) parsed, and the other lines."""
    done = run_cli("data", "fetch", "--data-dir", str(data_dir), *args, timeout=timeout, env=NO_PROXY)
    lines = [json.loads(line)["data"] for line in done.stderr.splitlines() if line.startswith('{"data"')]
    others = "\n".join(line for line in done.stderr.splitlines() if not line.startswith('{"data"'))
    return done.returncode, lines, others


def by_source(lines: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(line["source"]): line for line in lines}


KEYS = ("--maxmind-account-id", "42", "--maxmind-license-key", "licence-key", "--ipinfo-token", "tok-SECRET")


def test_fetch_everything_then_attribute_from_the_data_dir(data_dir: Path, server: DataServer) -> None:
    code, lines, others = fetch(data_dir, *KEYS)
    assert code == 0, others
    outcomes = by_source(lines)
    defaults = {f"rir-{r}" for r in RIRS} | {f"ripe-{o}" for o in RPSL} | {f"apnic-{o}" for o in RPSL}
    expected = defaults | {"iptoasn", "afrinic-db", "maxmind-asn", "maxmind-country", "ipinfo-lite"}
    assert set(outcomes) == expected  # DB-IP is fetched only when named
    assert all(o["status"] == "updated" for o in outcomes.values())
    manifest = Manifest.load(data_dir)
    assert (data_dir / "GeoLite2-ASN.mmdb").read_bytes()[-20000:].find(b"MaxMind.com") >= 0
    assert manifest.entries["rir-arin"].checksum is not None
    assert manifest.entries["rir-arin"].checksum.startswith("md5:")
    assert manifest.entries["maxmind-asn"].checksum.startswith("sha256:")  # type: ignore[union-attr]
    # The token rode in the query string of the request, and is written nowhere.
    assert any("token=tok-SECRET" in s.path for s in server.requests("/ipinfo/ipinfo_lite.mmdb"))
    assert "tok-SECRET" not in (data_dir / MANIFEST).read_text() and "tok-SECRET" not in others
    assert not [p.name for p in data_dir.iterdir() if p.name.endswith(".part")]

    done = run_cli("attribute", "192.0.2.10", "2001:db8::1", "--data-dir", str(data_dir), "--json")
    assert done.returncode == 0, done.stderr
    four, six = (json.loads(line) for line in done.stdout.splitlines())
    assert (four["asn"], four["as_name"], four["country"]) == (64496, "GEO-ONE", "BE")
    assert (four["registry"], four["registry_country"]) == ("ripencc", "NL")
    assert four["abuse_contacts"] == ["abuse@one.example"]
    assert (six["asn"], six["abuse_contacts"]) == (64499, ["abuse@six.example"])

    # The default data directory ($CLEARTEXT_DATA_DIR) is found without any flag.
    done = run_cli("attribute", "203.0.113.5", "--json", env={"CLEARTEXT_DATA_DIR": str(data_dir)})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["as_name"] == "IPINFO-EX"


def test_report_takes_its_attribution_from_the_data_dir(data_dir: Path, tmp_path: Path) -> None:
    code, _lines, others = fetch(data_dir, "rir", "iptoasn")
    assert code == 0, others
    scan = tmp_path / "scan.jsonl"
    scan.write_text("".join(r.to_json() + "\n" for r in sample_records()), encoding="utf-8")
    plain = run_cli("report", "--from", str(scan), "--format", "json")
    assert plain.returncode == 0 and "EXAMPLE-ONE" not in plain.stdout  # the tests' empty default dir
    done = run_cli("report", "--from", str(scan), "--format", "json", "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    assert "EXAMPLE-ONE" in done.stdout
    done = run_cli(
        "report", "--from", str(scan), "--format", "json", env={"CLEARTEXT_DATA_DIR": str(data_dir)}
    )
    assert done.returncode == 0 and "EXAMPLE-ONE" in done.stdout


def test_a_second_fetch_is_conditional(data_dir: Path, server: DataServer) -> None:
    assert fetch(data_dir, "rir", "iptoasn", "rpsl-ripe", "maxmind", *KEYS)[0] == 0
    before = {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir()}
    server.seen.clear()
    code, lines, others = fetch(data_dir, "rir", "iptoasn", "rpsl-ripe", "maxmind", *KEYS)
    assert code == 0, others
    outcomes = by_source(lines)
    assert {o["status"] for o in outcomes.values()} == {"unchanged"}
    # RIR statistics: the published .md5 matched the file held, so the file itself was not requested.
    assert server.requests("/stats/delegated-arin-extended-latest.md5")
    assert not server.requests("/stats/delegated-arin-extended-latest")
    # Others: a conditional GET answered 304.
    (request,) = server.requests("/iptoasn/ip2asn-combined.tsv.gz")
    assert request.headers["if-none-match"] == server.routes["/iptoasn/ip2asn-combined.tsv.gz"].etag
    assert "if-modified-since" in request.headers
    assert outcomes["iptoasn"]["detail"] == "304 Not Modified"
    after = {p.name: p.stat().st_mtime_ns for p in data_dir.iterdir() if p.name in before}
    data_files = {n for n in before if not n.startswith((".", "cleartext-data", "sources"))}
    assert all(before[n] == after[n] for n in data_files)


def test_if_modified_since_alone_gives_304(data_dir: Path, server: DataServer) -> None:
    server.routes["/iptoasn/ip2asn-combined.tsv.gz"].etag = None
    assert fetch(data_dir, "iptoasn")[0] == 0
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 0 and lines[0]["status"] == "unchanged"
    assert "if-none-match" not in server.requests("/iptoasn/ip2asn-combined.tsv.gz")[-1].headers


def test_a_304_to_a_plain_request_is_a_failure(data_dir: Path, server: DataServer) -> None:
    body = server.routes["/iptoasn/ip2asn-combined.tsv.gz"].body
    server.publish("/iptoasn/ip2asn-combined.tsv.gz", body, mode="always-304")
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 1 and "304 Not Modified to a request that was not conditional" in str(lines[0]["detail"])
    assert not (data_dir / "ip2asn-combined.tsv.gz").exists()


def test_a_changed_file_replaces_the_old_one(data_dir: Path, server: DataServer, tmp_path: Path) -> None:
    assert fetch(data_dir, "iptoasn")[0] == 0
    new = write_iptoasn(tmp_path / "new.tsv", [("192.0.2.0", "192.0.2.255", 64497, "NL", "EXAMPLE-TWO")])
    server.publish("/iptoasn/ip2asn-combined.tsv.gz", new.read_bytes())
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 0 and lines[0]["status"] == "updated"
    assert (data_dir / "ip2asn-combined.tsv.gz").read_bytes() == new.read_bytes()


def test_a_file_changed_by_hand_is_fetched_whole_again(data_dir: Path, server: DataServer) -> None:
    assert fetch(data_dir, "iptoasn")[0] == 0
    (data_dir / "ip2asn-combined.tsv.gz").write_bytes(b"edited")
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 0 and lines[0]["status"] == "updated"
    assert "if-none-match" not in server.requests("/iptoasn/ip2asn-combined.tsv.gz")[-1].headers


def held(data_dir: Path, name: str) -> bytes:
    return (data_dir / name).read_bytes()


def assert_kept(data_dir: Path, name: str, before: bytes) -> None:
    assert held(data_dir, name) == before
    assert not [p.name for p in data_dir.iterdir() if p.name.endswith(".part")]


def test_a_wrong_checksum_keeps_the_file_held(data_dir: Path, server: DataServer, tmp_path: Path) -> None:
    assert fetch(data_dir, "rir-arin")[0] == 0
    before = held(data_dir, "delegated-arin-extended-latest")
    changed = write_rir(tmp_path / "arin", "arin", [("CA", "ipv4", "198.51.100.0", 128, "assigned")])
    server.publish_md5("/stats/delegated-arin-extended-latest", changed.read_bytes(), wrong=True)
    code, lines, others = fetch(data_dir, "rir-arin")
    assert code == 1
    assert lines[0]["status"] == "failed" and "md5 checksum mismatch" in str(lines[0]["detail"])
    assert others.startswith("cleartext: error: rir-arin: ") and len(others.splitlines()) == 1
    assert_kept(data_dir, "delegated-arin-extended-latest", before)


def test_a_truncated_body_keeps_the_file_held(data_dir: Path, server: DataServer) -> None:
    assert fetch(data_dir, "ripe-inetnum")[0] == 0
    before = held(data_dir, "ripe.db.inetnum.gz")
    route = server.routes["/ripe/ripe.db.inetnum.gz"]
    server.publish("/ripe/ripe.db.inetnum.gz", route.body + b"more", mode="truncate")
    code, lines, _ = fetch(data_dir, "ripe-inetnum")
    assert code == 1 and "truncated" in str(lines[0]["detail"])
    assert_kept(data_dir, "ripe.db.inetnum.gz", before)


def test_a_gzip_stream_cut_short_is_refused_even_when_whole_by_http(
    data_dir: Path, server: DataServer
) -> None:
    body = server.routes["/ripe/ripe.db.role.gz"].body
    server.publish("/ripe/ripe.db.role.gz", body[: len(body) - 9], mode="chunked")
    code, lines, _ = fetch(data_dir, "ripe-role")
    assert code == 1 and "not a usable rpsl file" in str(lines[0]["detail"])
    assert not (data_dir / "ripe.db.role.gz").exists()


def test_content_in_the_wrong_format_is_not_installed(data_dir: Path, server: DataServer) -> None:
    assert fetch(data_dir, "iptoasn")[0] == 0
    before = held(data_dir, "ip2asn-combined.tsv.gz")
    server.publish("/iptoasn/ip2asn-combined.tsv.gz", b"<html>maintenance</html>\n")
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 1
    assert "not a usable iptoasn file (line 1): expected 5 tab-separated columns" in str(lines[0]["detail"])
    assert_kept(data_dir, "ip2asn-combined.tsv.gz", before)


def test_a_stalled_server_is_bounded_by_the_timeout(data_dir: Path, server: DataServer) -> None:
    body = server.routes["/iptoasn/ip2asn-combined.tsv.gz"].body
    server.publish("/iptoasn/ip2asn-combined.tsv.gz", body, mode="stall")
    started = time.monotonic()
    code, lines, _ = fetch(data_dir, "iptoasn", "--timeout", "0.5")
    assert code == 1 and time.monotonic() - started < 20
    assert "stalled 0.5 s after" in str(lines[0]["detail"])
    assert not (data_dir / "ip2asn-combined.tsv.gz").exists()


def test_a_trickling_server_is_bounded_by_max_time(data_dir: Path, server: DataServer) -> None:
    server.publish("/stats/delegated-lacnic-extended-latest", b"x" * 400, mode="trickle")  # 20 s at this pace
    started = time.monotonic()
    code, lines, _ = fetch(data_dir, "rir-lacnic", "--timeout", "5", "--max-time", "1")
    assert code == 1 and time.monotonic() - started < 15
    assert "not received within 1 s" in str(lines[0]["detail"])


def test_a_server_that_never_answers(data_dir: Path, server: DataServer) -> None:
    sock, port = silent_listener()
    with sock:
        done = run_cli(
            "data", "fetch", "iptoasn", "--data-dir", str(data_dir), "--timeout", "0.5",
            "--url", f"iptoasn=http://127.0.0.1:{port}/ip2asn-combined.tsv.gz", env=NO_PROXY,
        )  # fmt: skip
    assert done.returncode == 1
    assert "no answer within 0.5 s" in done.stderr


def test_offline_is_one_line_and_keeps_every_file(data_dir: Path, server: DataServer) -> None:
    assert fetch(data_dir, "rir", "iptoasn")[0] == 0
    before = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.suffix != ".toml"}
    dead = f"http://127.0.0.1:{refused_port()}"
    (data_dir / "sources.toml").write_text(config_for(server).replace(server.base, dead), encoding="utf-8")
    done = run_cli("data", "fetch", "rir", "iptoasn", "--data-dir", str(data_dir), "--quiet", env=NO_PROXY)
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        "cleartext: error: cannot reach any source (offline?): iptoasn: cannot reach 127.0.0.1:"
    )
    assert "connection refused" in line and "kept" in line
    after = {p.name: p.read_bytes() for p in data_dir.iterdir() if p.suffix != ".toml"}
    assert after == before


def test_a_download_larger_than_allowed_is_refused(data_dir: Path) -> None:
    config = data_dir / "sources.toml"
    config.write_text(
        config.read_text().replace("[sources.iptoasn]\n", "[sources.iptoasn]\nmax_bytes = 64\n")
    )
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 1 and "bytes announced, more than the 64 allowed" in str(lines[0]["detail"])


def test_maxmind_credentials_are_sent_but_never_on_a_redirect(data_dir: Path, server: DataServer) -> None:
    archive = server.routes["/maxmind/GeoLite2-ASN.tar.gz"].body
    server.publish("/storage/GeoLite2-ASN.tar.gz", archive)
    server.publish(
        "/maxmind/GeoLite2-ASN.tar.gz",
        b"",
        mode="redirect",
        location=f"{server.base}/storage/GeoLite2-ASN.tar.gz",
    )
    code, _lines, others = fetch(data_dir, "maxmind-asn", *KEYS)
    assert code == 0, others
    assert server.requests("/maxmind/GeoLite2-ASN.tar.gz")[0].headers["authorization"] == MAXMIND_AUTH
    assert "authorization" not in server.requests("/storage/GeoLite2-ASN.tar.gz")[0].headers
    # Without the credentials, a source that needs them fails, named.
    code, _lines, others = fetch(data_dir, "maxmind-country")
    assert code == 1 and "needs --maxmind-account-id and --maxmind-license-key" in others


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("file:///etc/passwd", "Redirection to url 'file:///etc/passwd' is not allowed"),
        (
            "ftp://127.0.0.1/ip2asn-combined.tsv.gz",
            "redirect to ftp://127.0.0.1/ip2asn-combined.tsv.gz refused",
        ),
    ],
)
def test_a_redirect_off_http_is_refused(
    data_dir: Path, server: DataServer, location: str, message: str
) -> None:
    server.publish("/iptoasn/ip2asn-combined.tsv.gz", b"", mode="redirect", location=location)
    code, lines, _ = fetch(data_dir, "iptoasn")
    assert code == 1 and message in str(lines[0]["detail"])
    assert not (data_dir / "ip2asn-combined.tsv.gz").exists()


def test_an_archive_member_climbing_out_is_refused(
    data_dir: Path, server: DataServer, tmp_path: Path
) -> None:
    db = write_mmdb(tmp_path / "x.mmdb", {"192.0.2.0/24": asn_record(64496, "X")}).read_bytes()
    archive = _tar_gz({"../../escaped.mmdb": db})
    server.publish("/maxmind/GeoLite2-ASN.tar.gz", archive, auth=MAXMIND_AUTH)
    digest = hashlib.sha256(archive).hexdigest()
    server.publish("/maxmind/GeoLite2-ASN.tar.gz.sha256", f"{digest}  x.tar.gz\n".encode())
    code, lines, _ = fetch(data_dir, "maxmind-asn", *KEYS)
    assert code == 1 and "unsafe path" in str(lines[0]["detail"])
    assert not (tmp_path / "escaped.mmdb").exists() and not (data_dir.parent / "escaped.mmdb").exists()


def test_dbip_falls_back_to_last_month_early_in_a_month(data_dir: Path, server: DataServer) -> None:
    now = datetime.now(UTC)
    this = now.strftime("%Y-%m")
    last = (now.replace(day=1) - (now.replace(day=2) - now.replace(day=1))).strftime("%Y-%m")
    route = server.routes.pop(f"/dbip/dbip-asn-lite-{this}.mmdb.gz")
    server.routes[f"/dbip/dbip-asn-lite-{last}.mmdb.gz"] = route
    code, _lines, others = fetch(data_dir, "dbip")
    assert code == 0, others
    assert [s.path for s in server.seen if "asn" in s.path] == [
        f"/dbip/dbip-asn-lite-{this}.mmdb.gz",
        f"/dbip/dbip-asn-lite-{last}.mmdb.gz",
    ]
    done = run_cli("attribute", "198.51.100.7", "--data-dir", str(data_dir), "--json")
    assert json.loads(done.stdout)["as_name"] == "DBIP-EX" and json.loads(done.stdout)["country"] == "US"


def test_an_mmdb_from_a_url_of_your_own(data_dir: Path, server: DataServer) -> None:
    month = datetime.now(UTC).strftime("%Y-%m")
    url = f"{server.base}/dbip/dbip-asn-lite-{month}.mmdb.gz"
    code, lines, others = fetch(data_dir, "iptoasn", "--mmdb-url", url)
    assert code == 0, others
    assert by_source(lines)[f"mmdb-dbip-asn-lite-{month}"]["status"] == "updated"
    assert (data_dir / f"dbip-asn-lite-{month}.mmdb").read_bytes()[:4] != b"\x1f\x8b\x08\x00"  # unpacked
    done = run_cli("attribute", "198.51.100.7", "--data-dir", str(data_dir), "--json")
    assert json.loads(done.stdout)["as_name"] == "DBIP-EX"


def test_another_fetch_on_the_same_directory_is_refused(data_dir: Path) -> None:
    fd = os.open(data_dir / LOCK, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, _lines, others = fetch(data_dir, "iptoasn")
    finally:
        os.close(fd)
    assert code == 2 and "another `cleartext data fetch` is writing into" in others


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch"], "unknown source 'nosuch'"),
        (["--url", "iptoasn=ftp://127.0.0.1/x"], "expected an http:// or https:// URL"),
        (["--url", "nosuch=http://127.0.0.1/x"], "unknown source 'nosuch'"),
        (["--mmdb-url", "http://127.0.0.1/"], "cannot name a file after"),
        (["--ca-file", "/nonexistent.pem"], "cannot read CA file /nonexistent.pem"),
    ],
)
def test_bad_usage_is_one_line_exit_2(data_dir: Path, args: list[str], message: str) -> None:
    code, lines, others = fetch(data_dir, *args)
    assert code == 2 and not lines
    assert others.startswith("cleartext: error: ") and message in others and len(others.splitlines()) == 1


def test_a_bad_sources_file_is_one_line_exit_2(data_dir: Path) -> None:
    (data_dir / "sources.toml").write_text(
        '[sources.mine]\nkind = "mmdb"\nfile = "../x.mmdb"\nurl = "http://127.0.0.1/x"\n'
    )
    code, _lines, others = fetch(data_dir)
    assert code == 2 and "file must be a plain file name" in others


def test_status_says_what_is_held(data_dir: Path) -> None:
    empty = run_cli("data", "status", "--data-dir", str(data_dir))
    assert empty.returncode == 1 and "no attribution data" in empty.stdout
    assert fetch(data_dir, "rir", "iptoasn")[0] == 0
    done = run_cli("data", "status", "--data-dir", str(data_dir), "--json")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["source"] for r in rows} == {f"rir-{r}" for r in RIRS} | {"iptoasn"}
    assert {r["state"] for r in rows} == {"ok"}
    (data_dir / "ip2asn-combined.tsv.gz").write_bytes(b"edited by hand")
    done = run_cli("data", "status", "--data-dir", str(data_dir), "--json")
    states = {json.loads(line)["source"]: json.loads(line)["state"] for line in done.stdout.splitlines()}
    assert done.returncode == 1 and states["iptoasn"] == "changed"


def test_an_empty_data_dir_named_is_an_error(tmp_path: Path) -> None:
    done = run_cli("attribute", "192.0.2.1", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    hint = f"run `cleartext data fetch --data-dir {tmp_path}`"
    assert done.stderr.strip() == f"cleartext: error: no attribution data in {tmp_path}: {hint}"
