# ruff: noqa: E501  (the generator is one SQL statement; its lines read better unwrapped)
"""Benchmark (not a test): report statistics over 10 million store rows with DuckDB; the goal is < 2 s.

Why generated in DuckDB: ten million records do not fit a Python loop in reasonable time, so the rows are
made by SQL straight into the store's own ``records`` table (created by cleartext.store, so the columns
are exactly the store's, ``tls_versions`` included), with realistic shares: most mail ports of a range
refuse or time out, two thirds of the open ones have findings, 1.43 M distinct addresses with 7 ports each.
Every ``record`` is a valid record JSON, small (the real ones are ~2 KiB): the statistics read whole
records only for the worst endpoints and the earliest one.

Measured through the store (cleartext.store.open_store), each best of ``--repeat`` runs:

1. ``cleartext report --scan`` without attribution files: ``stats_from_store`` over the scan;
2. the same with an attribution table joined (address -> asn, as_name, countries), as the report's
   loaded lookup and the web's ``web_addresses`` are;
3. loading a lookup for every open address of the scan (``attributed_scan``), with a dict standing in
   for the Enricher (whose own cost is in bench/enrich_lookups.py);
4. the web dashboard: ``WebData.stats`` for an admin and for an owner of two ASes, each on a new WebData
   (no cache), its ``web_addresses`` filled beforehand by SQL;
5. for scale, the streaming Python path over ``--python-rows`` records, extrapolated to 10 M;
6. with ``--postgres N``: (1) and (2) on PostgreSQL, on a throwaway server of our own (tests/pg.py)
   holding the first N rows of the scan, copied from the DuckDB store.

Usage: .venv/bin/python bench/report_stats.py [--rows 10000000] [--repeat 3] [--db PATH [--reuse]]
                                              [--postgres ROWS]
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
from typing import Any

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from cleartext.enrich.model import Attribution  # noqa: E402
from cleartext.report.sqlstats import Rows, attributed_scan, scan_rows, stats_from_store  # noqa: E402
from cleartext.report.stats import Stats, compute  # noqa: E402
from cleartext.store import Store, open_store  # noqa: E402
from cleartext.web.data import Scope, WebData  # noqa: E402
from cleartext.web.tokens import parse_owner  # noqa: E402

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
        SELECT '{SCAN}', address, port, protocol, tls_mode, NULL, status, software, tls_version,
               CASE WHEN tls_version IS NULL THEN []::VARCHAR[]
                    ELSE (CASE WHEN t >= 8 THEN ['TLSv1.0'] ELSE []::VARCHAR[] END) || ['TLSv1.2']
                         || (CASE WHEN t < 6 THEN ['TLSv1.3'] ELSE []::VARCHAR[] END) END,
               worst, codes, sevs,
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


def timed(
    label: str, repeat: int, run: Callable[[Any], object], setup: Callable[[], Any] = lambda: None
) -> None:
    """Best and median wall time of ``repeat`` runs, and the process CPU time of the best (all threads):
    on a shared machine the CPU time says what the work costs, the wall time what this run waited.
    ``setup`` runs before each run, untimed, and gives it its argument."""
    runs = []
    for _ in range(repeat):
        argument = setup()
        wall, cpu = time.perf_counter(), time.process_time()
        run(argument)
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    best = min(runs)
    load = os.getloadavg()[0]
    print(
        f"{label:<52} wall best {best[0]:6.2f} s (median {statistics.median(w for w, _ in runs):6.2f} s), "
        f"CPU {best[1]:6.2f} s, load {load:.1f}",
        flush=True,
    )


def fill_web_addresses(store: Store) -> None:
    """The web's attribution cache as WebData keeps it without data files (fingerprint "none"), filled from
    the attribution table by SQL: 1.43 M lookups and inserts are the first request's cost, not the
    statistics'. ``addr_key`` stays empty: the owner measured here owns by AS, not by network."""
    WebData(store)  # creates web_addresses
    store.execute("DELETE FROM web_addresses")
    store.execute(
        "INSERT INTO web_addresses SELECT 'none', address, CASE WHEN strpos(address, ':') > 0 THEN 6 ELSE 4 END, "
        "'', asn, as_name, country, registry_country, NULL FROM attribution"
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
    parser.add_argument("--postgres", type=int, default=0, metavar="ROWS", help="measure PostgreSQL too")
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
        open_store(str(path)).close()
        con = duckdb.connect(str(path))
        con.execute("SET enable_progress_bar = false")
        start = time.perf_counter()
        con.execute("DELETE FROM records WHERE scan_id = ?", [SCAN])
        con.execute(
            "INSERT INTO scans (scan_id, started_at, params) VALUES (?, TIMESTAMPTZ '2026-11-28 08:00:00+00', "
            "'{}') ON CONFLICT DO NOTHING",
            [SCAN],
        )
        generate(con, args.rows)
        add_attribution(con)
        con.execute("CHECKPOINT")
        con.close()
        print(f"generated {args.rows:,} rows in {time.perf_counter() - start:.1f} s")
    store = open_store(str(path), create=False)
    count = store.count(SCAN)
    print(f"{count:,} rows of scan {SCAN} ({path.stat().st_size / 2**20:,.0f} MiB file)")
    if not reuse:
        fill_web_addresses(store)

    result: list[Stats] = []

    def keep(stats: Stats) -> None:
        result[:] = [stats]

    timed(
        "1. report --scan, no attribution",
        args.repeat,
        lambda _: keep(stats_from_store(store, scan_rows(SCAN))),
    )
    joined = Rows(
        "FROM records r LEFT JOIN attribution a ON a.address = r.address WHERE r.scan_id = ?", (SCAN,), True
    )
    timed("2. with an attribution table joined", args.repeat, lambda _: keep(stats_from_store(store, joined)))
    s = result[0]
    print(
        f"   records {s.records:,}  open {s.open:,}  exposed {s.exposed:,}  cleartext-login "
        f"{s.cleartext_login:,}  no-tls {s.no_tls:,}  ASes {len(s.breakdown('asn').rows)}  worst {len(s.worst)}"
    )
    known = {
        address: Attribution(asn=asn, as_name=name, country=geo, registry_country=reg)
        for address, asn, name, geo, reg in store.query("SELECT * FROM attribution")
    }

    def load(_: Any) -> None:
        with attributed_scan(store, SCAN, known.__getitem__):
            pass

    timed(f"3. load a lookup of {len(known):,} addresses", 1, load)
    # The web: the first request for a scan checks that each of its addresses is in web_addresses (an
    # anti-join over the scan), once per WebData; then statistics per scope, each on a new WebData (the
    # statistics are cached per WebData) whose check has run.
    timed("4. web, first request's attribution check", 1, lambda _: WebData(store).scan_infos())

    def checked() -> WebData:
        data = WebData(store)
        data.scan_infos()
        return data

    owner = Scope(admin=False, owner=parse_owner(["AS64500", "AS64501"]))
    for label, scope in (("4. web, admin", Scope(admin=True)), ("4. web, owner of 2 ASes", owner)):
        timed(label, args.repeat, lambda data, scope=scope: keep(data.stats(scope, SCAN)), checked)
        print(f"   records {result[0].records:,}  open {result[0].open:,}  worst {len(result[0].worst)}")

    # The streaming path, for scale: the same kind of rows read back as Record objects.
    import json

    from cleartext.record import record_from_dict

    sample = [
        r[0]
        for r in store.query(
            f"SELECT CAST(record AS TEXT) FROM records WHERE scan_id = ? LIMIT {args.python_rows}", [SCAN]
        )
    ]
    start = time.perf_counter()
    empty = Attribution()
    compute((record_from_dict(json.loads(text)), empty) for text in sample)
    took = time.perf_counter() - start
    print(
        f"5. streaming Python path: {len(sample):,} records in {took:.2f} s "
        f"= {len(sample) / took:,.0f} records/s -> {args.rows / (len(sample) / took):,.0f} s for {args.rows:,}"
    )
    if args.postgres:
        on_postgres(store, args.postgres, args.repeat)
    store.close()
    if tmp is not None:
        tmp.cleanup()


def on_postgres(source: Store, rows: int, repeat: int) -> None:
    """(1) and (2) on a PostgreSQL server of our own, holding the first ``rows`` rows of the scan."""
    import datetime as dt

    import psycopg
    from tests.pg import postgres_server

    from cleartext.store.schema import COLUMNS

    names = ", ".join(COLUMNS)
    select = ", ".join("CAST(record AS TEXT) AS record" if c == "record" else c for c in COLUMNS)
    with postgres_server() as server:
        url = server.create_database()
        start = time.perf_counter()
        with open_store(url) as pg:
            pg.execute(
                "INSERT INTO scans (scan_id, started_at, params) VALUES (?, ?, ?)",
                (SCAN, dt.datetime(2026, 11, 28, 8, tzinfo=dt.UTC), "{}"),
            )
        with psycopg.connect(url) as conn, conn.cursor() as cur:
            with cur.copy(f"COPY records ({names}) FROM STDIN") as copy:
                sql = f"SELECT {select} FROM records WHERE scan_id = ? LIMIT {rows}"
                for batch in source.stream(sql, (SCAN,), 20_000):
                    for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                        copy.write_row(row)
            cur.execute(
                "CREATE TABLE attribution (address TEXT, asn BIGINT, as_name TEXT, country TEXT, "
                "registry_country TEXT)"
            )
            with cur.copy("COPY attribution FROM STDIN") as copy:
                for row in source.query("SELECT * FROM attribution"):
                    copy.write_row(row)
            # Only the copied rows' addresses, as the report's lookup table and the web's cache hold.
            cur.execute(
                "DELETE FROM attribution a WHERE NOT EXISTS (SELECT 1 FROM records r WHERE r.address = a.address)"
            )
            cur.execute("ANALYZE")
        print(f"6. PostgreSQL: copied {rows:,} rows in {time.perf_counter() - start:.1f} s", flush=True)
        joined = Rows(
            "FROM records r LEFT JOIN attribution a ON a.address = r.address WHERE r.scan_id = ?",
            (SCAN,),
            True,
        )
        # The grouping spills to disk under PostgreSQL's default work_mem (4 MB); 64 MB keeps it in memory.
        for work_mem in ("4MB", "64MB"):
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"ALTER DATABASE {url.rsplit('/', 1)[1]} SET work_mem = '{work_mem}'")
            with open_store(url, create=False) as pg:
                label = f"6. PostgreSQL, {rows:,} rows, work_mem {work_mem}"
                timed(f"{label}, no attribution", repeat, lambda _: stats_from_store(pg, scan_rows(SCAN)))
                timed(f"{label}, attribution joined", repeat, lambda _: stats_from_store(pg, joined))


if __name__ == "__main__":
    main()
