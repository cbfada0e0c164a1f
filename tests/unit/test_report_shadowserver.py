"""Shadowserver-schema CSV: the published headers in order, value conventions, file names, owner split,
formula neutralisation, IPv6 twins, and every row passing IntelMQ's conversions for its report type."""

from __future__ import annotations

import csv
import datetime as dt
import ipaddress
import json
import re
from pathlib import Path

import pytest

from cleartext.enrich.model import Attribution
from cleartext.record import Protocol, Status
from cleartext.report import shadowserver_schema as schema
from cleartext.report.shadowserver import (
    DEFAULT_SEVERITY,
    REPORT_TYPES,
    banner,
    file_name,
    neutralise,
    owner_of,
    parse_name,
    report_types,
    write_reports,
)
from tests.scripts import load_script
from tests.unit.report_samples import (
    HOSTILE_CN,
    observation,
    random_attribution,
    random_records,
    sample_pairs,
)

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "shadowserver"
DATA = ROOT / "src" / "cleartext" / "schema" / "shadowserver-mail.json"
FILE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-([a-z0-9_]+)-([A-Za-z0-9_]+)\.csv$")
# IntelMQ's own: intelmq/bots/parsers/shadowserver/parser.py takes a file only when its name matches this,
# and its first group is the report type. A name that does not match is rejected whole, every row with it.
INTELMQ_FILE_NAME = re.compile(r"^(?:\d{4}-\d{2}-\d{2}-)?(\w+)(-\w+)*\.csv$")
WANTED = [
    f"{prefix}{base}"
    for base in (
        "imap",
        "imap_vulnerable",
        "pop3",
        "pop3_vulnerable",
        "smtp",
        "smtp_vulnerable",
        "ssl_poodle",
    )
    for prefix in ("scan_", "scan6_")
]


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


@pytest.fixture
def written(tmp_path: Path) -> dict[str, list[dict[str, str]]]:
    """The sample scan written split by AS; rows by report type."""
    files = write_reports(sample_pairs(), tmp_path, "asn")
    by_type: dict[str, list[dict[str, str]]] = {}
    for path in files:
        header, rows = read(path)
        match = FILE_NAME.match(path.name)
        assert match, path.name
        assert header == list(schema.COLUMNS[match.group(2)])
        by_type.setdefault(match.group(2), []).extend(rows)
    return by_type


# -- the schema ----------------------------------------------------------------------------------------


def test_every_wanted_report_type_is_known() -> None:
    assert sorted(REPORT_TYPES) == sorted(WANTED)
    assert set(DEFAULT_SEVERITY) == set(WANTED)


@pytest.mark.skipif(not SHARED.is_dir(), reason="the Shadowserver schema snapshot (../shared) is not here")
def test_columns_equal_the_published_schema() -> None:
    published = json.loads((SHARED / "reports-mail.json").read_text())
    intelmq = json.loads((SHARED / "intelmq-mail.json").read_text())
    for report_type in WANTED:
        assert schema.COLUMNS[report_type] == tuple(published[report_type]["fields"]), report_type
        assert schema.FEED_NAMES[report_type] == intelmq[report_type]["feed_name"]
        assert (
            schema.IDENTIFIERS[report_type]
            == intelmq[report_type]["constant_fields"]["classification.identifier"]
        )
        required = tuple((f[1], f[2] if len(f) > 2 else "") for f in intelmq[report_type]["required_fields"])
        assert schema.REQUIRED[report_type] == required
        converted = tuple(
            (f[1], f[2])
            for f in intelmq[report_type]["optional_fields"]
            if len(f) > 2 and f[2] != "validate_to_none"
        )
        assert schema.CONVERSIONS[report_type] == converted


@pytest.mark.skipif(not SHARED.is_dir(), reason="the Shadowserver schema snapshot (../shared) is not here")
def test_the_committed_schema_data_is_what_the_generator_builds() -> None:
    generator = load_script("gen-shadowserver-schema")
    assert generator.OUT == DATA
    assert DATA.read_text(encoding="utf-8") == generator.generate(SHARED), (
        "src/cleartext/schema/shadowserver-mail.json is out of date: run scripts/gen-shadowserver-schema"
    )


def test_the_report_code_reads_the_schema_data_unchanged() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))["report_types"]
    assert list(schema.COLUMNS) == list(data) == list(REPORT_TYPES)
    for report_type, entry in data.items():
        assert schema.COLUMNS[report_type] == tuple(entry["columns"])
        assert schema.FEED_NAMES[report_type] == entry["feed_name"]
        assert schema.IDENTIFIERS[report_type] == entry["identifier"]
        assert schema.REQUIRED[report_type] == tuple(map(tuple, entry["required"]))
        assert schema.CONVERSIONS[report_type] == tuple(map(tuple, entry["conversions"]))
    assert len(schema.COLUMNS["scan_smtp"]) == 68 and schema.COLUMNS["scan_smtp"][:3] == (
        "timestamp",
        "severity",
        "ip",
    )


# -- which report each endpoint goes to ------------------------------------------------------------------


def test_endpoints_go_to_the_right_reports(written: dict[str, list[dict[str, str]]]) -> None:
    placed = {rt: sorted((r["ip"], r["port"]) for r in rows) for rt, rows in written.items()}
    assert placed == {
        "scan_imap": [("192.0.2.10", "143"), ("203.0.113.66", "143")],
        "scan_imap_vulnerable": [("192.0.2.10", "143"), ("203.0.113.66", "143")],
        "scan_pop3": [("192.0.2.10", "110")],
        "scan_pop3_vulnerable": [("192.0.2.10", "110")],
        # no-tls on port 25 is medium: accessible, not vulnerable.
        "scan_smtp": [("198.51.100.7", "25"), ("198.51.100.7", "587")],
        # IPv6 goes to the scan6 twins; SSLv3 makes a POODLE row.
        "scan6_imap": [("2001:db8::25", "993")],
        "scan6_imap_vulnerable": [("2001:db8::25", "993")],
        "scan6_ssl_poodle": [("2001:db8::25", "993")],
    }


def test_silent_and_not_mail_endpoints_are_in_no_report() -> None:
    for status in (Status.REFUSED, Status.CONNECT_TIMEOUT, Status.BLOCKLISTED, Status.NOT_MAIL):
        from cleartext.record import Record

        record = Record(observation("192.0.2.1", 143, Protocol.IMAP, status=status, greeting="SSH-2.0-x"))
        assert report_types(record) == []


# -- value conventions --------------------------------------------------------------------------------


def test_value_conventions(written: dict[str, list[dict[str, str]]]) -> None:
    (imap,) = [r for r in written["scan_imap"] if r["ip"] == "192.0.2.10"]
    assert imap["timestamp"] == "2026-11-28 08:03:13"
    assert imap["severity"] == "low"
    assert imap["protocol"] == "tcp"
    assert imap["hostname"] == "mail.example.org"
    assert imap["tag"] == "imap;cleartext-login"
    assert (imap["asn"], imap["geo"]) == ("64500", "DE")
    assert imap["banner"] == "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready."
    assert imap["handshake"] == "TLSv1.3" and imap["cipher_suite"] == "TLS_AES_256_GCM_SHA384"
    assert imap["cert_issue_date"] == "2026-01-01 00:00:00"
    assert imap["cert_expiration_date"] == "2027-01-31 12:00:00"
    assert (imap["cert_expired"], imap["cert_valid"], imap["self_signed"]) == ("N", "Y", "N")
    assert imap["cert_length"] == "2048" and imap["key_algorithm"] == "rsaEncryption"
    assert imap["sha256_fingerprint"] == ":".join(["3F"] * 32)
    assert imap["subject_common_name"] == "mail.example.org"
    assert imap["subject_organization_name"] == "Example, Inc."
    assert imap["subject_country"] == "DE"
    assert imap["subject_email_address"] == "postmaster@example.org"
    assert imap["issuer_common_name"] == "Example CA R1"
    assert imap["issuer_organization_name"] == "Example Trust"
    assert imap["sslv3_supported"] == "N"
    # What we do not know is empty, never a guess.
    for column in ("region", "city", "naics", "sector", "md5_fingerprint", "sha1_fingerprint", "jarm"):
        assert imap[column] == ""
    assert written["scan_imap_vulnerable"][0]["severity"] == "medium"

    (pop3,) = written["scan_pop3"]
    assert pop3["tag"] == "pop3;cleartext-login;no-tls"
    assert pop3["handshake"] == "" and pop3["cert_expired"] == "" and pop3["sslv3_supported"] == ""

    smtp = {r["port"]: r for r in written["scan_smtp"]}
    assert smtp["25"]["severity"] == "info"
    assert smtp["587"]["auth_tls_response"] == "220 2.0.0 Ready to start TLS"
    assert smtp["587"]["tlsv13_support"] == "Y" and smtp["587"]["tlsv13_cipher"] == "TLS_AES_256_GCM_SHA384"
    assert smtp["587"]["freak_vulnerable"] == "N"
    assert smtp["25"]["freak_vulnerable"] == ""  # never probed

    (poodle,) = written["scan6_ssl_poodle"]
    assert poodle["ssl_poodle"] == "Y" and poodle["severity"] == "medium"
    assert poodle["tag"].startswith("ssl-poodle;imaps;legacy-tls")
    assert (poodle["cert_expired"], poodle["self_signed"], poodle["browser_trusted"]) == ("Y", "Y", "N")
    assert poodle["browser_error"] == "self-signed certificate"
    assert poodle["cert_length"] == "1024" and poodle["handshake"] == "TLSv1.2"
    assert poodle["tlsv13_support"] == "N"


def test_banner_lines_join_with_a_bar() -> None:
    assert banner("220-mx\\x0a220 ready") == "220-mx|220 ready"
    # An escaped backslash followed by "x0a" is text, not a line break.
    assert banner("a\\\\x0ab") == "a\\\\x0ab"
    assert banner(None) == ""


def test_parse_name_handles_escapes_and_der_values() -> None:
    assert parse_name("CN=a\\\\,b,O=c\\\\+d,C=DE") == {
        "common_name": "a,b",
        "organization_name": "c+d",
        "country": "DE",
    }
    # Sanitiser escapes stay visible text; multi-valued RDNs and repeated attributes: first wins.
    assert parse_name("CN=x\\x00y+OU=one,OU=two")["common_name"] == "x\\x00y"
    assert parse_name("OU=one,OU=two")["organization_unit_name"] == "one"
    assert parse_name("2.5.4.4=#0c03466f6f,2.5.4.42=#0c03426172")["surname"] == "Foo"
    assert parse_name("(unparseable certificate)") == {}


# -- file names and owners ----------------------------------------------------------------------------


def test_file_names_and_owner_split(tmp_path: Path) -> None:
    pairs = sample_pairs()
    by_asn = {p.name for p in write_reports(pairs, tmp_path / "asn", "asn")}
    assert "2026-11-28-scan_imap-AS64500.csv" in by_asn
    assert "2026-11-28-scan_imap-AS64503.csv" in by_asn
    assert "2026-11-28-scan6_ssl_poodle-AS64502.csv" in by_asn
    by_cidr = {p.name for p in write_reports(pairs, tmp_path / "cidr", "cidr")}
    assert "2026-11-28-scan_imap-192_0_2_0_25.csv" in by_cidr
    assert "2026-11-28-scan6_imap-2001_db8___32.csv" in by_cidr
    by_country = {p.name for p in write_reports(pairs, tmp_path / "cc", "country")}
    assert "2026-11-28-scan_smtp-FR.csv" in by_country
    by_registry = {
        p.name for p in write_reports(pairs, tmp_path / "rc", "country", country_source="registry")
    }
    assert "2026-11-28-scan_imap-DE.csv" in by_registry
    for name in by_asn | by_cidr | by_country:
        match = FILE_NAME.match(name)
        assert match and match.group(2) in REPORT_TYPES, name
        # IntelMQ takes the report type as the text between the date and the next '-'.
        assert name[11:].split("-", 1)[0] == match.group(2)
    unknown = {p.name for p in write_reports(((r, Attribution()) for r, _ in pairs), tmp_path / "u", "asn")}
    assert all(name.endswith("-unknown.csv") for name in unknown)
    assert owner_of(Attribution(asn=1), "asn") == "AS1"
    with pytest.raises(ValueError):
        owner_of(Attribution(), "region")  # type: ignore[arg-type]
    traversal = file_name("2026-01-02", "scan_imap", "../../etc/passwd")
    assert traversal == "2026-01-02-scan_imap-______etc_passwd.csv"


@pytest.mark.parametrize(
    ("split_by", "country_source"),
    [("asn", "geo"), ("cidr", "geo"), ("country", "geo"), ("country", "registry")],
)
def test_every_file_name_passes_intelmqs_pattern(tmp_path: Path, split_by: str, country_source: str) -> None:
    """Every split's file names are taken by IntelMQ's Shadowserver parser, with the right report type."""
    pairs = sample_pairs()
    hostile = [
        (r, Attribution(asn=64999, network=network, country=cc, registry_country=cc))
        for (r, _), network, cc in zip(
            pairs[:4],
            ("2001:db8::/32", "198.51.100.128/25", "../x", "a b/c"),
            ("D.", "X/", "é1", ""),
            strict=True,
        )
    ]
    unattributed = [(r, Attribution()) for r, _ in pairs[:3]]
    names = [
        p.name
        for p in write_reports(
            [*pairs, *hostile, *unattributed],
            tmp_path,
            split_by,  # type: ignore[arg-type]
            country_source=country_source,
        )
    ]
    assert names
    for name in names:
        match = INTELMQ_FILE_NAME.match(name)
        assert match, f"IntelMQ rejects {name}"
        assert match.group(1) in REPORT_TYPES, name
        assert name.isascii(), name
    for owner in ("192.0.2.0/24", "2001:db8::/32", "..", "", "é", "a-b"):
        assert INTELMQ_FILE_NAME.match(file_name("2026-01-02", "scan_imap", owner)), owner


def test_a_second_run_replaces_files_and_many_owners_stay_within_open_file_limits(tmp_path: Path) -> None:
    records = random_records(500, seed=3)
    # Spread over many owners: one AS per address.
    pairs = [(r, Attribution(asn=64000 + i)) for i, r in enumerate(records)]
    first = write_reports(pairs, tmp_path, "asn")
    assert len(first) > 64  # more files than may be open at once
    again = write_reports(pairs, tmp_path, "asn")
    assert again == first
    for path, rows in again.items():
        assert len(read(path)[1]) == rows


# -- hostile content ------------------------------------------------------------------------------------


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_starts_are_neutralised(start: str) -> None:
    assert neutralise(f"{start}cmd") == f"'{start}cmd"
    assert neutralise(f"a{start}") == f"a{start}"
    assert neutralise("") == ""


def test_hostile_certificate_and_as_cells_are_inert(written: dict[str, list[dict[str, str]]]) -> None:
    (evil,) = [r for r in written["scan_imap"] if r["ip"] == "203.0.113.66"]
    assert evil["subject_common_name"] == "'" + HOSTILE_CN
    assert evil["issuer_common_name"] == "<i>CA</i>"  # CSV is not HTML: markup stays as text
    assert evil["banner"].startswith("* OK <script>")
    for rows in written.values():
        for row in rows:
            for value in row.values():
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), value


# -- what IntelMQ's Shadowserver parser requires --------------------------------------------------------


def intelmq_convert(conversion: str, value: str) -> object:
    """The conversions of IntelMQ's Shadowserver parser (intelmq/bots/parsers/shadowserver/_config.py),
    strict: a value they would silently drop or mangle fails here."""
    if conversion == "add_UTC_to_timestamp":
        return dt.datetime.strptime(value + " UTC", "%Y-%m-%d %H:%M:%S UTC")
    if conversion == "validate_ip":
        assert value and value != "0.0.0.0" and "/" not in value
        return ipaddress.ip_address(value)
    if conversion == "convert_int":
        return int(value) if value else None
    if conversion == "invalidate_zero":
        assert value == "" or int(value) != 0
        return int(value) if value else None
    if conversion == "convert_bool":
        assert value in ("", "Y", "N"), value
        return {"Y": True, "N": False}.get(value)
    if conversion == "convert_date":
        assert value == ""  # http_date: we have no HTTP answer
        return None
    if conversion == "extract_cve_from_tag":
        return re.findall(r"cve-\d{4}-\d+", value.lower())
    raise AssertionError(f"unknown conversion {conversion}")


def test_every_row_passes_intelmq_conversions(tmp_path: Path) -> None:
    records = random_records(400, seed=5)
    pairs = [(r, random_attribution(r.observation.address)) for r in records] + sample_pairs()
    files = write_reports(pairs, tmp_path, "country")
    seen: set[str] = set()
    for path in files:
        report_type = FILE_NAME.match(path.name).group(2)  # type: ignore[union-attr]
        seen.add(report_type)
        header, rows = read(path)
        for column, _ in schema.REQUIRED[report_type]:
            assert column in header
        for row in rows:
            for column, conversion in schema.REQUIRED[report_type]:
                assert row[column], (report_type, column)
                intelmq_convert(conversion, row[column])
            for column, conversion in schema.CONVERSIONS[report_type]:
                intelmq_convert(conversion, row[column])
            assert row["severity"] in ("critical", "high", "medium", "low", "info")
            ip = ipaddress.ip_address(row["ip"])
            assert report_type.startswith("scan6_") == (ip.version == 6)
    assert {"scan_imap", "scan_pop3_vulnerable", "scan_smtp", "scan6_smtp", "scan_ssl_poodle"} <= seen
