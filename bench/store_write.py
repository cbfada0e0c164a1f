#!/usr/bin/env python3
"""How fast records go into the store through StoreSink, the way `cleartext scan` will write them.

    .venv/bin/python bench/store_write.py                      # 1,000,000 records into a temporary DuckDB
    .venv/bin/python bench/store_write.py --records 200000 --postgres   # a throwaway local PostgreSQL

Records are synthetic but shaped like a real Internet scan's: most endpoints refused or silent (small
records), a share of full dialogs with TLS, a certificate, a matrix and findings (about 2.5 KB of JSON
each). Building the records is the engine's work, so it is timed apart: the number that matters is the
time spent inside the sink (serialising, columnar batching, inserting) including the final close().
Not a test: nothing here asserts; it prints what it measured.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.store_contract (the record builder) and tests.pg (a local cluster)
sys.path.insert(0, str(ROOT / "src"))

from tests.store_contract import make_record  # noqa: E402

from cleartext.record import Record, Status  # noqa: E402
from cleartext.store import StoreSink, open_store  # noqa: E402

FULL_SHARE = 0.3  # endpoints with a full dialog; the rest refused or timed out


def templates() -> list[Record]:
    full = [
        make_record("192.0.2.1", 143, ("cleartext-login",)),
        make_record("192.0.2.1", 993, ("legacy-tls", "weak-cipher")),
        make_record("192.0.2.1", 25, ()),
    ]
    small = [
        make_record("192.0.2.1", 110, status=Status.REFUSED),
        make_record("192.0.2.1", 587, status=Status.CONNECT_TIMEOUT),
    ]
    per_ten = round(FULL_SHARE * 10)
    return [full[i % len(full)] for i in range(per_ten)] + [
        small[i % len(small)] for i in range(10 - per_ten)
    ]


def synthetic(count: int) -> Iterator[Record]:
    """`count` distinct endpoints (10.x.y.z, one port each), sharing the templates' nested parts."""
    shapes = templates()
    for i in range(count):
        shape = shapes[i % len(shapes)]
        address = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
        observation = dataclasses.replace(
            shape.observation, address=address, port=shape.observation.port + (i >> 24)
        )
        yield Record(observation=observation, findings=shape.findings)


def measure(url: str, count: int, batch_size: int) -> dict[str, float]:
    store = open_store(url)
    scan_id = store.begin_scan({"bench": "store_write", "records": count})
    sink = StoreSink(store, scan_id, batch_size=batch_size, max_delay=2.0, new=True)  # as a scan's sink
    in_sink = 0.0
    cpu_started = time.process_time()
    started = time.perf_counter()
    for record in synthetic(count):
        t = time.perf_counter()
        sink(record)
        in_sink += time.perf_counter() - t
    t = time.perf_counter()
    sink.close()
    store.finish_scan(scan_id)
    in_sink += time.perf_counter() - t
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    stored = store.count(scan_id)
    store.close()
    assert stored == count, (stored, count)
    return {"wall": wall, "sink": in_sink, "cpu": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=2000)  # StoreSink's default, as a scan
    parser.add_argument("--postgres", action="store_true", help="write to a throwaway local PostgreSQL")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cleartext-bench-"))
    try:
        if args.postgres:
            from tests.pg import postgres_server

            with postgres_server() as server:
                url = server.create_database()
                result = measure(url, args.records, args.batch_size)
            where = "PostgreSQL (local cluster, fsync off)"
            size = ""
        else:
            path = workdir / "bench.duckdb"
            result = measure(str(path), args.records, args.batch_size)
            where = "DuckDB"
            size = f", file {os.path.getsize(path) / 2**20:.0f} MiB"
        print(
            f"{args.records} records into {where} through StoreSink (batch {args.batch_size}): "
            f"{result['sink']:.1f} s in the sink, {args.records / result['sink']:,.0f} records/s "
            f"({result['wall']:.1f} s wall with record generation, "
            f"{args.records / result['wall']:,.0f} records/s; process CPU {result['cpu']:.1f} s){size}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
