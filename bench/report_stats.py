# ruff: noqa: E501  (the generator is one SQL statement; its lines read better unwrapped)
"""Benchmark (not a test): report statistics over 10 million store rows with DuckDB; the goal is < 2 s.

Why generated in DuckDB: ten million records do not fit a Python loop in reasonable time, so the rows are
made by SQL straight into the store's own ``records`` table (created by cleartext.store, so the columns
are exactly the store's), with realistic shares: most mail ports of a range refuse or time out, a fifth
have findings, 1.4 M distinct addresses with 7 ports each. Every ``record`` is a valid record JSON,
small (the real ones are ~2 KiB), because the statistics read it only for the worst endpoints and, when
the table has no ``tls_versions`` column, for the TLS versions.

Measured, each best of ``--repeat`` runs:

1. ``stats_from_duckdb`` on the store as it is (TLS versions read from the JSON record);
2. the same with a ``tls_versions`` list column added (what the store could keep as a typed column);
3. (2) joined with an attribution table (address -> asn, country), as the enrich stage would provide;
4. for scale, the streaming Python path over ``--python-rows`` records, extrapolated to 10 M.

Usage: .venv/bin/python bench/report_stats.py [--rows 10000000] [--repeat 3] [--db PATH [--reuse]]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from cleartext.report.sqlstats import stats_from_duckdb  # noqa: E402
from cleartext.report.stats import compute  # noqa: E402
from cleartext.store import open_store  # noqa: E402

SCAN = "20261128T080000Z-bench"

# Finding patterns (codes, severities, worst) chosen per open endpoint by a hash.
PATTERNS = [
    ([], [], None),
    ([], [], None),
    ([], [], None),
    (["cleartext-login"], ["high"], "high"),
    (["cleartext-login", "no-tls"], ["high", "high"], "high"),
    (["no-tls"], ["medium"], "medium"),
    (["legacy-tls"], ["medium"], "medium"),
    (["legacy-tls", "cert-untrusted"], ["medium", "medium"], "medium"),
    (["cert-expired", "cert-untrusted"], ["medium", "medium"], "medium"),
    (["legacy-tls", "no-modern-tls", "weak-cipher"], ["high", "high", "medium"], "high"),
]


def sql_list(items: list[str]) -> str:
    return "[" + ", ".join(f"'{i}'" for i in items) + "]::VARCHAR[]"


def generate(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Fill ``records`` with ``rows`` rows for scan SCAN (the table exists: the store made it)."""
    codes = (
        "CASE p " + " ".join(f"WHEN {i} THEN {sql_list(c)}" for i, (c, _, _) in enumerate(PATTERNS)) + " END"
    )
    sevs = (
        "CASE p " + " ".join(f"WHEN {i} THEN {sql_list(s)}" for i, (_, s, _) in enumerate(PATTERNS)) + " END"
    )
    worst = (
        "CASE p "
        + " ".join(f"WHEN {i} THEN {repr(w) if w else 'NULL'}" for i, (_, _, w) in enumerate(PATTERNS))
        + " END"
    )
    con.execute(
        f"""
        INSERT INTO records
        WITH base AS (
            SELECT i,
                   CAST(hash(i) >> 1 AS BIGINT) AS h,
                   i // 7 AS host,
                   [25, 587, 465, 110, 995, 143, 993][i % 7 + 1] AS port
            FROM range({rows}) t(i)
        ), shaped AS (
            SELECT *,
                   CASE WHEN h % 100 < 35 THEN 'refused' WHEN h % 100 < 47 THEN 'connect-timeout'
                        WHEN h % 100 < 49 THEN 'not-mail' WHEN h % 100 < 51 THEN 'read-timeout'
                        WHEN h % 100 < 52 THEN 'tls-error' ELSE 'success' END AS status,
                   CASE WHEN port IN (25, 587, 465) THEN 'smtp' WHEN port IN (110, 995) THEN 'pop3'
                        ELSE 'imap' END AS protocol,
                   CASE WHEN port IN (465, 993, 995) THEN 'implicit' ELSE 'starttls' END AS tls_mode,
                   (h >> 8) % {len(PATTERNS)} AS p,
                   (h >> 16) % 10 AS t,
                   ['dovecot', 'postfix', 'exim', 'courier', 'exchange', NULL][(h >> 24) % 6 + 1] AS software,
                   CASE WHEN host % 1000 = 0 THEN '2001:db8:' || printf('%x', host // 65536) || '::'
                        || printf('%x', host % 65536)
                        ELSE '10.' || (host // 65536) % 256 || '.' || (host // 256) % 256 || '.' || host % 256
                   END AS address
            FROM base
        ), judged AS (
            SELECT *,
                   CASE WHEN status IN ('success', 'read-timeout', 'tls-error') THEN {codes} ELSE []::VARCHAR[] END
                       AS codes,
                   CASE WHEN status IN ('success', 'read-timeout', 'tls-error') THEN {sevs} ELSE []::VARCHAR[] END
                       AS sevs,
                   CASE WHEN status IN ('success', 'read-timeout', 'tls-error') THEN {worst} END AS worst,
                   CASE WHEN status <> 'success' OR p = 4 OR p = 5 THEN NULL
                        WHEN t < 6 THEN 'TLSv1.3' WHEN t < 9 THEN 'TLSv1.2' ELSE 'TLSv1' END AS tls_version,
                   TIMESTAMPTZ '2026-11-28 08:00:00+00' + to_microseconds(i) AS started
            FROM shaped
        )
        SELECT '{SCAN}', address, port, protocol, tls_mode, NULL, status, software, tls_version, worst, codes, sevs,
               list_contains(codes, 'cleartext-login'), started, 50.0,
               '{{"version":1,"address":"' || address || '","port":' || port || ',"protocol":"' || protocol
               || '","tls_mode":"' || tls_mode || '","status":"' || status || '","started_at":"'
               || strftime(started, '%Y-%m-%dT%H:%M:%S.%fZ') || '"'
               || CASE WHEN software IS NULL THEN '' ELSE ',"software":"' || software || '"' END
               || ',"greeting":"ready","matrix":'
               || CASE WHEN tls_version IS NULL THEN 'null' ELSE '{{"versions":{{"SSLv3":"rejected","TLSv1.0":"'
                  || CASE WHEN t >= 8 THEN 'accepted' ELSE 'rejected' END
                  || '","TLSv1.1":"rejected","TLSv1.2":"accepted","TLSv1.3":"'
                  || CASE WHEN t < 6 THEN 'accepted' ELSE 'rejected' END || '"}}}}' END
               || ',"tls":' || CASE WHEN tls_version IS NULL THEN 'null'
                  ELSE '{{"version":"' || tls_version || '"}}' END
               || ',"findings":[' || array_to_string(list_transform(list_zip(codes, sevs),
                    lambda x: '{{"code":"' || x[1] || '","severity":"' || x[2] || '","summary":"s","evidence":{{}}}}'),
                  ',') || ']}}'
        FROM judged
        """
    )


def add_typed_versions(con: duckdb.DuckDBPyConnection) -> None:
    """What the store could keep: the accepted TLS versions as a list column, in a copy ``records_typed``.

    Made once from the JSON record (a CREATE TABLE AS: DuckDB rewrites a list column slowly in an UPDATE).
    """
    versions = ", ".join(
        f"CASE WHEN json_extract_string(record, '$.matrix.versions.\"{v}\"') = 'accepted' "
        f"OR (CASE WHEN tls_version = 'TLSv1' THEN 'TLSv1.0' ELSE tls_version END) = '{v}' THEN '{v}' END"
        for v in ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    )
    con.execute(
        f"CREATE OR REPLACE TABLE records_typed AS SELECT *, list_distinct([{versions}]) AS tls_versions FROM records"
    )


def add_attribution(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE OR REPLACE TABLE attribution AS
        SELECT address,
               64496 + hash(address) % 16 AS asn,
               'AS-' || (hash(address) % 16) AS as_name,
               ['DE', 'FR', 'NL', 'US', 'BR', 'JP', NULL][CAST(hash(address) % 7 AS BIGINT) + 1] AS country,
               ['DE', 'FR', 'NL', 'US', 'BR', 'JP', 'AT'][CAST(hash(address) % 7 AS BIGINT) + 1] AS registry_country
        FROM (SELECT DISTINCT address FROM records)
        """
    )


def timed(label: str, repeat: int, run: Callable[[], object]) -> None:
    """Best and median wall time of ``repeat`` runs, and the process CPU time of the best (all threads):
    on a shared machine the CPU time says what the work costs, the wall time what this run waited."""
    runs = []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    best = min(runs)
    load = os.getloadavg()[0]
    print(
        f"{label:<52} wall best {best[0]:6.2f} s (median {statistics.median(w for w, _ in runs):6.2f} s), "
        f"CPU {best[1]:6.2f} s, load {load:.1f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="DuckDB file to build (default: a temporary file, removed after)")
    parser.add_argument("--python-rows", type=int, default=100_000)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --db: measure a database an earlier run built (no generation)",
    )
    args = parser.parse_args()

    tmp = None
    if args.db:
        path = Path(args.db)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="cleartext-bench-")
        path = Path(tmp.name) / "store.duckdb"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}"
    )
    reuse = args.reuse and args.db and path.exists()
    if not reuse:
        store = open_store(str(path))
        store.close()
    con = duckdb.connect(str(path))
    con.execute("SET enable_progress_bar = false")
    start = time.perf_counter()
    if not reuse:
        con.execute("DELETE FROM records WHERE scan_id = ?", [SCAN])
        generate(con, args.rows)
        con.execute("CHECKPOINT")
    count = con.execute("SELECT count(*) FROM records WHERE scan_id = ?", [SCAN]).fetchone()[0]
    print(
        f"{'reused' if reuse else 'generated'} {count:,} rows in {time.perf_counter() - start:.1f} s "
        f"({path.stat().st_size / 2**20:,.0f} MiB file)"
    )

    timed(
        "1. store as is (TLS versions from the JSON record)",
        1,  # informational, and slow: once
        lambda: stats_from_duckdb(con, SCAN),
    )
    start = time.perf_counter()
    if not reuse:
        add_typed_versions(con)
        add_attribution(con)
        con.execute("CHECKPOINT")
    if not reuse:
        print(f"(added tls_versions column and attribution table in {time.perf_counter() - start:.1f} s)")
    timed(
        "2. with a tls_versions column",
        args.repeat,
        lambda: stats_from_duckdb(con, SCAN, table="records_typed"),
    )
    stats = None

    def with_attr() -> object:
        nonlocal stats
        stats = stats_from_duckdb(con, SCAN, attributions="attribution", table="records_typed")
        return stats

    timed("3. with tls_versions and an attribution table", args.repeat, with_attr)
    assert stats is not None
    print(
        f"   records {stats.records:,}  open {stats.open:,}  exposed {stats.exposed:,}  "
        f"cleartext-login {stats.cleartext_login:,}  no-tls {stats.no_tls:,}"
    )

    # The streaming path, for scale: the same kind of rows read back as Record objects.
    import json

    from cleartext.enrich.model import Attribution
    from cleartext.record import record_from_dict

    sample = [
        r[0]
        for r in con.execute(
            f"SELECT record FROM records WHERE scan_id = ? LIMIT {args.python_rows}", [SCAN]
        ).fetchall()
    ]
    start = time.perf_counter()
    empty = Attribution()
    compute((record_from_dict(json.loads(text)), empty) for text in sample)
    took = time.perf_counter() - start
    print(
        f"4. streaming Python path: {len(sample):,} records in {took:.2f} s "
        f"= {len(sample) / took:,.0f} records/s -> {args.rows / (len(sample) / took):,.0f} s for {args.rows:,}"
    )
    con.close()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
