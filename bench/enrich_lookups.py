#!/usr/bin/env python3
"""Benchmark: attribution lookups per second, per source and merged, against a raw-bisect baseline.

Why: enrichment runs once per scanned address, and an Internet-wide scan yields millions of them; the
goal is >= 200,000 attributions per second on one core. This generates a synthetic dataset of realistic
*size* (iptoasn-sized range files, MMDB databases with 100k networks, five RIR files, an RPSL dump with
nested inetnums) — random synthetic ranges, no real registry data, written to a temporary directory and
deleted afterwards — loads it with the real readers, and measures:

- a baseline: ``bisect_right`` on the very array the iptoasn reader uses, on pre-parsed integers and
  with the same text-to-integer parse the readers do (the floor of any pure-Python range lookup);
- each source on its own (MMDB via the C extension, iptoasn, RIR, RPSL, contacts);
- the merged :class:`Enricher` without a cache (every lookup does all the work), with the LRU cache on
  a scan-shaped workload (each address once per mail port, 7 times), and ``lookup_many``.

Run from the repository root with the product's venv (mmdb-writer comes with the dev extra)::

    .venv/bin/python bench/enrich_lookups.py                 # full size, prints a Markdown section
    .venv/bin/python bench/enrich_lookups.py --scale 0.1     # a quick run
    .venv/bin/python bench/enrich_lookups.py --append bench/RESULTS.md
"""

from __future__ import annotations

import argparse
import gc
import gzip
import platform
import random
import resource
import socket
import sys
import tempfile
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

from mmdb_writer import MMDBWriter
from netaddr import IPNetwork, IPSet

from cleartext.enrich import DEFAULT_CACHE_SIZE, Enricher
from cleartext.enrich.contacts import ContactsReader
from cleartext.enrich.iptoasn import IptoasnReader
from cleartext.enrich.mmdb import MmdbReader
from cleartext.enrich.ranges import parse_address
from cleartext.enrich.rir import RirReader
from cleartext.enrich.rpsl import RpslReader

PORTS_PER_ADDRESS = 7  # a scan record per mail port: 25, 465, 587, 110, 995, 143, 993
RIRS = ("afrinic", "apnic", "arin", "lacnic", "ripencc")
COUNTRIES = ("NL", "DE", "FR", "US", "JP", "BR", "ZA", "AU", "IN", "GB", "SE", "CA", "KE", "AR", "SG")
V6_BASE = 0x2 << 125  # synthetic IPv6 data lives in 2000::/3 (global unicast), like real tables


def v4(value: int) -> str:
    return socket.inet_ntop(socket.AF_INET, value.to_bytes(4, "big"))


def v6(value: int) -> str:
    return socket.inet_ntop(socket.AF_INET6, value.to_bytes(16, "big"))


def cuts(rng: random.Random, count: int, low: int, high: int) -> list[int]:
    """``count`` sorted distinct points in [low, high)."""
    points: set[int] = set()
    while len(points) < count:
        points.add(rng.randrange(low, high))
    return sorted(points)


def write_iptoasn(rng: random.Random, directory: Path, n4: int, n6: int) -> list[Path]:
    """Adjacent ranges with random (non-CIDR) bounds; one in ten is AS 0, "Not routed"."""
    paths = []
    for name, count, low, high, fmt in (
        ("ip2asn-v4.tsv.gz", n4, 1 << 24, 224 << 24, v4),
        ("ip2asn-v6.tsv.gz", n6, V6_BASE, V6_BASE + (1 << 125), v6),
    ):
        points = cuts(rng, count + 1, low, high)
        lines = []
        for start, nxt in pairwise(points):
            asn = 0 if rng.random() < 0.1 else rng.randrange(1, 400_000)
            cc, text = (
                ("None", "Not routed") if asn == 0 else (rng.choice(COUNTRIES), f"AS{asn}-NET Synthetic")
            )
            lines.append(f"{fmt(start)}\t{fmt(nxt - 1)}\t{asn}\t{cc}\t{text}\n")
        path = directory / name
        path.write_bytes(gzip.compress("".join(lines).encode(), compresslevel=1))
        paths.append(path)
    return paths


def networks(rng: random.Random, count: int) -> list[tuple[int, int, int]]:
    """``(version, value, prefixlen)`` networks, nine in ten IPv4, supernets first (writer order)."""
    found: set[tuple[int, int, int]] = set()
    while len(found) < count:
        if rng.random() < 0.9:
            plen = rng.choice((12, 16, 18, 20, 22, 23, 24, 24, 24))
            value = rng.randrange(1 << 24, 224 << 24) >> (32 - plen) << (32 - plen)
            found.add((4, value, plen))
        else:
            plen = rng.choice((29, 32, 36, 40, 44, 48))
            value = rng.randrange(V6_BASE, V6_BASE + (1 << 125)) >> (128 - plen) << (128 - plen)
            found.add((6, value, plen))
    return sorted(found, key=lambda n: n[2] + (96 if n[0] == 4 else 0))


def write_mmdb(
    rng: random.Random, path: Path, database_type: str, count: int, record: Callable[[int], dict]
) -> Path:
    writer = MMDBWriter(
        ip_version=6,
        ipv4_compatible=True,
        database_type=database_type,
        languages=["en"],
        description={"en": f"synthetic {database_type}"},
    )
    for i, (version, value, plen) in enumerate(networks(rng, count)):
        network = IPNetwork((value, plen), version=version)
        writer.insert_network(IPSet([network]), record(i))
    writer.to_db_file(str(path))
    return path


def asn_record(i: int) -> dict:
    return {
        "autonomous_system_number": 1 + i % 60_000,
        "autonomous_system_organization": f"Synthetic AS {i % 60_000}",
    }


def city_record(i: int) -> dict:
    cc, reg = COUNTRIES[i % len(COUNTRIES)], COUNTRIES[(i // 7) % len(COUNTRIES)]
    names = {
        lang: f"Country {cc} ({lang})" for lang in ("de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN")
    }
    return {
        "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
        "country": {"geoname_id": 1000 + i % 250, "iso_code": cc, "names": names},
        "registered_country": {"geoname_id": 2000 + i % 250, "iso_code": reg, "names": {"en": reg}},
        "location": {"latitude": 52.0 + (i % 100) / 100, "longitude": 5.0, "accuracy_radius": 100},
    }


def write_rir(rng: random.Random, directory: Path, per_rir: int) -> list[Path]:
    """Five delegated-extended files; IPv4 blocks by address count (often not a power of two)."""
    paths = []
    span = (224 << 24) - (1 << 24)
    for index, rir in enumerate(RIRS):
        low = (1 << 24) + span * index // len(RIRS)
        high = (1 << 24) + span * (index + 1) // len(RIRS)
        points = cuts(rng, per_rir, low, high)
        lines = [f"2|{rir}|20250101|{per_rir}|19830705|20250101|+0000", f"{rir}|*|ipv4|*|{per_rir}|summary"]
        for start, nxt in pairwise(points):
            count = max(1, (nxt - start) * rng.choice((1, 1, 1, 3)) // 4)
            status = rng.choice(("allocated", "assigned", "assigned", "available", "reserved"))
            cc = rng.choice(COUNTRIES) if status in ("allocated", "assigned") else "ZZ"
            lines.append(f"{rir}|{cc}|ipv4|{v4(start)}|{count}|20100101|{status}|opaque-{start:x}")
        for _ in range(per_rir // 5):
            plen = rng.choice((29, 32, 48))
            value = rng.randrange(V6_BASE, V6_BASE + (1 << 125)) >> (128 - plen) << (128 - plen)
            lines.append(f"{rir}|{rng.choice(COUNTRIES)}|ipv6|{v6(value)}|{plen}|20100101|allocated|x")
        path = directory / f"delegated-{rir}-extended-latest"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def write_rpsl(rng: random.Random, directory: Path, allocations: int) -> list[Path]:
    """A RIPE-style dump: allocations (org → abuse-c), assignments nested in them, roles, orgs, aut-nums."""
    orgs = max(1, allocations // 5)
    out = ["# synthetic RPSL dump\n\n"]
    for i in range(orgs):
        out.append(
            f"role:           Abuse {i}\nnic-hdl:        AR{i}-SYN\nabuse-mailbox:  abuse@org{i}.example\n\n"
        )
        out.append(f"organisation:   ORG-S{i}-SYN\norg-name:       Org {i}\nabuse-c:        AR{i}-SYN\n\n")
    for i in range(orgs // 2):
        out.append(f"aut-num:        AS{1 + i}\nas-name:        SYN-{i}\norg:            ORG-S{i}-SYN\n\n")
    points = cuts(rng, allocations + 1, 1 << 24, 224 << 24)
    for i, (start, nxt) in enumerate(pairwise(points)):
        end = start + max(0, (nxt - start) // 2)
        out.append(
            f"inetnum:        {v4(start)} - {v4(end)}\nnetname:        ALLOC-{i}\n"
            f"org:            ORG-S{rng.randrange(orgs)}-SYN\nstatus:         ALLOCATED PA\n\n"
        )
        if end - start > 16:
            sub = start + (end - start) // 4
            role = f"abuse-c:        AR{rng.randrange(orgs)}-SYN\n" if i % 2 else ""
            out.append(
                f"inetnum:        {v4(sub)} - {v4(sub + (end - start) // 4)}\nnetname:        ASSIGN-{i}\n"
                f"{role}status:         ASSIGNED PA\n\n"
            )
    path = directory / "ripe.db.gz"
    path.write_bytes(gzip.compress("".join(out).encode(), compresslevel=1))
    return [path]


def write_contacts(rng: random.Random, directory: Path, rows: int) -> list[Path]:
    lines = ["kind,key,contact,country"]
    for i in range(rows):
        plen = rng.choice((16, 20, 24))
        value = rng.randrange(1 << 24, 224 << 24) >> (32 - plen) << (32 - plen)
        lines.append(f"cidr,{v4(value)}/{plen},noc@c{i}.example,")
    lines.extend(f"asn,AS{1 + i * 7},abuse@a{i}.example," for i in range(rows // 2))
    lines.extend(f"country,{cc},cert@{cc.lower()}.example," for cc in COUNTRIES)
    path = directory / "contacts.csv"
    path.write_text("\n".join(lines) + "\n")
    return [path]


def generate(directory: Path, sizes: dict[str, int], seed: int) -> dict[str, list[Path]]:
    """Write the whole synthetic dataset; returns the files by kind, as Enricher.from_paths takes them."""
    rng = random.Random(seed)
    mmdb = sizes["mmdb_networks"]
    return {
        "iptoasn": write_iptoasn(rng, directory, sizes["iptoasn_v4"], sizes["iptoasn_v6"]),
        "mmdb": [
            write_mmdb(rng, directory / "GeoLite2-ASN.mmdb", "GeoLite2-ASN", mmdb, asn_record),
            write_mmdb(rng, directory / "GeoLite2-City.mmdb", "GeoLite2-City", mmdb, city_record),
        ],
        "rir": write_rir(rng, directory, sizes["rir_per_registry"]),
        "rpsl": write_rpsl(rng, directory, sizes["rpsl_allocations"]),
        "contacts": write_contacts(rng, directory, sizes["contact_rows"]),
    }


def rate(label: str, count: int, run: Callable[[], object], repeat: int = 3) -> tuple[str, float]:
    """Best of ``repeat`` runs, in operations per second of this process's CPU time.

    CPU time rather than wall time: on a shared machine, time spent descheduled is not the code's.
    """
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    per_second = count / best
    print(f"  {label:<58} {per_second:>12,.0f} /s", file=sys.stderr)
    return label, per_second


def rss_mib() -> float:
    """Current resident memory (not the peak: generating the dataset is not what we measure)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


def timed(label: str, load: Callable[[], object]) -> tuple[object, float]:
    started = time.perf_counter()
    result = load()
    elapsed = time.perf_counter() - started
    print(f"  load {label:<53} {elapsed:>10.2f} s", file=sys.stderr)
    return result, elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="dataset size factor (1.0 = full)")
    parser.add_argument("--queries", type=int, default=200_000, help="distinct addresses looked up")
    parser.add_argument("--seed", type=int, default=20250101)
    parser.add_argument("--append", type=Path, help="append the Markdown section to this file")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed + 1)  # the queries; the dataset has its own generator
    scale = args.scale
    sizes = {
        "iptoasn_v4": int(500_000 * scale),
        "iptoasn_v6": int(100_000 * scale),
        "mmdb_networks": int(100_000 * scale),
        "rir_per_registry": int(40_000 * scale),
        "rpsl_allocations": int(150_000 * scale),
        "contact_rows": 2_000,
    }

    with tempfile.TemporaryDirectory(prefix="cleartext-bench-enrich-") as tmp:
        directory = Path(tmp)
        print(f"writing the synthetic dataset in {directory} ...", file=sys.stderr)
        started = time.perf_counter()
        # In a child process, so that this one's memory afterwards is the readers' alone.
        with ProcessPoolExecutor(max_workers=1) as pool:
            files = pool.submit(generate, directory, sizes, args.seed).result()
        print(f"  written in {time.perf_counter() - started:.1f} s", file=sys.stderr)

        print("loading ...", file=sys.stderr)
        gc.collect()
        rss_before = rss_mib()
        loads: dict[str, float] = {}
        iptoasn, loads["iptoasn"] = timed(
            "iptoasn (2 files)", lambda: IptoasnReader.from_paths(files["iptoasn"])
        )
        rir, loads["rir"] = timed("RIR (5 files)", lambda: RirReader.from_paths(files["rir"]))
        rpsl, loads["rpsl"] = timed("RPSL", lambda: RpslReader.from_paths(files["rpsl"]))
        contacts, loads["contacts"] = timed("contacts", lambda: ContactsReader.from_paths(files["contacts"]))
        mmdb_asn = MmdbReader(files["mmdb"][0])
        mmdb_city = MmdbReader(files["mmdb"][1])
        assert isinstance(iptoasn, IptoasnReader) and isinstance(rir, RirReader)
        assert isinstance(rpsl, RpslReader) and isinstance(contacts, ContactsReader)
        gc.collect()
        loaded_mib = rss_mib() - rss_before

        # Queries: nine in ten IPv4 over the unicast space, one in ten IPv6 in 2000::/3.
        addresses = [
            v4(rng.randrange(1 << 24, 224 << 24))
            if rng.random() < 0.9
            else v6(rng.randrange(V6_BASE, 1 << 128))
            for _ in range(args.queries)
        ]
        parsed = [parse_address(a) for a in addresses]
        v4_texts = [a for a, (version, _) in zip(addresses, parsed, strict=True) if version == 4]
        v4_values = [value for version, value in parsed if version == 4]
        starts = iptoasn.tables[4]._seg_starts
        n = len(addresses)

        print(f"lookups ({n:,} distinct addresses, best of 3):", file=sys.stderr)
        results = [
            rate(
                "baseline: bisect_right on iptoasn's array, parsed ints",
                len(v4_values),
                lambda: [bisect_right(starts, x) for x in v4_values],
            ),
            rate(
                "baseline: inet_pton + int.from_bytes + bisect_right",
                len(v4_texts),
                lambda: [
                    bisect_right(starts, int.from_bytes(socket.inet_pton(socket.AF_INET, a), "big"))
                    for a in v4_texts
                ],
            ),
            rate("parse_address (text -> family, integer)", n, lambda: [parse_address(a) for a in addresses]),
            rate("iptoasn match", n, lambda: [iptoasn.match(v, x) for v, x in parsed]),
            rate("RIR match", n, lambda: [rir.match(v, x) for v, x in parsed]),
            rate("RPSL match", n, lambda: [rpsl.match(v, x) for v, x in parsed]),
            rate("contacts match", n, lambda: [contacts.match(v, x) for v, x in parsed]),
            rate(
                "MMDB ASN lookup (C extension)" if mmdb_asn.extension else "MMDB ASN lookup (pure Python)",
                n,
                lambda: [mmdb_asn.lookup(a, v) for a, (v, _) in zip(addresses, parsed, strict=True)],
            ),
            rate(
                "MMDB City lookup (C extension)" if mmdb_city.extension else "MMDB City lookup (pure Python)",
                n,
                lambda: [mmdb_city.lookup(a, v) for a, (v, _) in zip(addresses, parsed, strict=True)],
            ),
        ]
        mmdb_asn.close()
        mmdb_city.close()

        def merged(**only: Any) -> tuple[Enricher, Enricher]:
            return (Enricher.from_paths(**only, cache_size=0), Enricher.from_paths(**only))

        nocache, cached = merged(**files)
        asn_only_nocache, _ = merged(mmdb=files["mmdb"][:1], iptoasn=files["iptoasn"])
        scan_shaped = [a for a in addresses for _ in range(PORTS_PER_ADDRESS)]

        def cold_cached() -> None:
            cached.cache_clear()
            for a in scan_shaped:
                cached.lookup(a)

        hot = addresses[:DEFAULT_CACHE_SIZE]  # what fits in the cache: every lookup is a hit

        def warm_cached() -> None:
            for a in hot:
                cached.lookup(a)

        results += [
            rate(
                "Enricher ASN only (MMDB ASN + iptoasn), no cache",
                n,
                lambda: [asn_only_nocache.lookup(a) for a in addresses],
            ),
            rate("Enricher all sources, no cache", n, lambda: [nocache.lookup(a) for a in addresses]),
            rate("Enricher all sources, cache, scan-shaped (x7 per address)", len(scan_shaped), cold_cached),
            rate("Enricher all sources, cache, all hits", len(hot), warm_cached),
            rate(
                "Enricher all sources, lookup_many, no cache, scan-shaped",
                len(scan_shaped),
                lambda: nocache.lookup_many(scan_shaped),
            ),
        ]
        nocache.close()
        cached.close()
        asn_only_nocache.close()

    section = markdown(args, sizes, loads, loaded_mib, results, n)
    print(section)
    if args.append is not None:
        with args.append.open("a", encoding="utf-8") as handle:
            handle.write(section)
    return 0


def markdown(
    args: argparse.Namespace,
    sizes: dict[str, int],
    loads: dict[str, float],
    loaded_mib: float,
    results: list[tuple[str, float]],
    queries: int,
) -> str:
    command = "`.venv/bin/python bench/enrich_lookups.py" + (
        f" --scale {args.scale}" if args.scale != 1 else ""
    )
    command += f" --queries {args.queries}`" if args.queries != 200_000 else "`"
    lines = [
        "",
        "## Attribution lookups",
        "",
        f"Run {time.strftime('%Y-%m-%d')} on {platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, one core; reproduce with {command} from the repository root.",
        "",
        "Synthetic dataset (random ranges, no real registry data): "
        f"iptoasn {sizes['iptoasn_v4']:,} IPv4 + {sizes['iptoasn_v6']:,} IPv6 ranges; "
        f"two MMDB databases (ASN, City-shaped records) of {sizes['mmdb_networks']:,} networks each; "
        f"5 RIR files of {sizes['rir_per_registry']:,} IPv4 blocks (+ IPv6); "
        f"RPSL dump with {sizes['rpsl_allocations']:,} allocations and nested assignments; "
        f"contacts CSV of {sizes['contact_rows']:,} cidr rows. "
        f"{queries:,} distinct query addresses (90% IPv4). Best of 3 runs, per second of process CPU time.",
        "",
        "| what | lookups/s |",
        "|---|---:|",
        *(f"| {label} | {per_second:,.0f} |" for label, per_second in results),
        "",
        "Load times: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items())
        + f"; resident memory added by loading all readers {loaded_mib:,.0f} MiB "
        "(MMDB files are memory-mapped, not counted).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
