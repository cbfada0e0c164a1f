#!/usr/bin/env python3
"""The two-stage pipeline against `scan --discover` alone, on the same range, in the same run.

Two network namespaces of our own, joined by a veth pair on the RFC 2544 benchmarking range: the scanner's
side (198.18.0.1/24) and simnet's (bench/simnet.py), which answers for every address of a /20 of
198.18.0.0/15 routed to its loopback, with the chosen mix (default `internet`: 60 % filtered, 38 % closed,
1 % silent, 1 % live). Then, in turn:

1. ``cleartext scan PREFIX --discover``: a TCP connect to every endpoint, a greeting where one answers;
2. ``zmap`` (one run per mail port, SYN only) finds the open ports, then ``cleartext scan --endpoints
   LIST --discover`` reads the greetings of exactly those.

Both are timed (wall and CPU, zmap's included), and the answering endpoints they find are compared: the
pipeline must find what the connect scan finds. No packet leaves the two namespaces; both are removed at
the end, with simnet, also after an error.

    bench/.venv/bin/python bench/pipeline.py                     # /20, internet mix, 4,096 slots
    bench/.venv/bin/python bench/pipeline.py --prefix 198.18.32.0/19 --rate 50000
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NETNS = ROOT / "lab" / "netns.py"
SIMNET = ROOT / "bench" / "simnet.py"
CLEARTEXT = ROOT / ".venv" / "bin" / "cleartext"
PORTS = (25, 465, 587, 110, 995, 143, 993)
SCANNER = "198.18.0.1"


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30).stdout


def in_ns(ns: str, argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(NETNS), "exec", ns, "--", *argv], text=True, **kw)  # type: ignore[call-overload,no-any-return]


def child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def answering(path: Path) -> set[tuple[str, int]]:
    out = set()
    for line in path.read_text().splitlines():
        if line.startswith('{"version"'):
            record = json.loads(line)
            if record["status"] not in ("refused", "connect-timeout", "unreachable"):
                out.add((record["address"], record["port"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prefix", default="198.18.16.0/20")
    parser.add_argument("--mix", default="internet")
    parser.add_argument("--rate", type=int, default=20000, help="zmap packets per second")
    parser.add_argument("--concurrency", type=int, default=4096)
    parser.add_argument("--timeout", type=float, default=3.0, help="cleartext connect and read timeout")
    parser.add_argument("--out", default="", help="output folder (default: a temporary one)")
    args = parser.parse_args()
    prefix = ipaddress.IPv4Network(args.prefix)
    if not prefix.subnet_of(ipaddress.IPv4Network("198.18.0.0/15")) or prefix.overlaps(
        ipaddress.IPv4Network("198.18.0.0/24")
    ):
        print("pipeline: --prefix must lie in 198.18.0.0/15, outside 198.18.0.0/24", file=sys.stderr)
        return 2
    for tool in ("zmap", "nft"):
        if shutil.which(tool) is None:
            print(f"pipeline: {tool} not found (scripts/install-system-deps, bench/setup)", file=sys.stderr)
            return 2
    out = Path(args.out or tempfile.mkdtemp(prefix="cleartext-pipeline-"))
    out.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(2)
    a, b, va, vb = f"ct-pipe-a-{tag}", f"ct-pipe-b-{tag}", f"ct-pa{tag}", f"ct-pb{tag}"
    simnet: subprocess.Popen[str] | None = None
    with (out / "simnet.log").open("w") as simlog:
        try:
            for ns in (a, b):
                ip("netns", "add", ns)
                ip("-n", ns, "link", "set", "lo", "up")
            ip("link", "add", va, "type", "veth", "peer", "name", vb)
            ip("link", "set", va, "netns", a)
            ip("link", "set", vb, "netns", b)
            ip("-n", a, "addr", "add", f"{SCANNER}/24", "dev", va)
            ip("-n", b, "addr", "add", "198.18.0.254/24", "dev", vb)
            ip("-n", a, "link", "set", va, "up")
            ip("-n", b, "link", "set", vb, "up")
            ip("-n", a, "route", "add", str(prefix), "via", "198.18.0.254")
            ip("-n", b, "route", "add", "local", str(prefix), "dev", "lo")
            mac = ip("-n", b, "-o", "link", "show", vb).split("link/ether")[1].split()[0]
            simdir = out / "simnet"
            simnet = subprocess.Popen(
                [
                    sys.executable,
                    str(NETNS),
                    "exec",
                    b,
                    "--",
                    sys.executable,
                    str(SIMNET),
                    "serve",
                    "--network",
                    str(prefix),
                    "--mix",
                    args.mix,
                    "--dir",
                    str(simdir),
                    "--veth",
                    "--max-runtime",
                    "1200",
                ],
                stdout=simlog,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            for _ in range(300):  # simnet writes its manifest once it listens (at most 30 s)
                if (simdir / "manifest.json").exists():
                    break
                if simnet.poll() is not None:
                    raise SystemExit(f"simnet exited: {(out / 'simnet.log').read_text()[-500:]}")
                time.sleep(0.1)
            time.sleep(1.0)
            endpoints = prefix.num_addresses * len(PORTS)
            common = [
                "--allow-reserved",
                "--connect-timeout",
                str(args.timeout),
                "--read-timeout",
                str(args.timeout),
                "--concurrency",
                str(args.concurrency),
                "--no-store",
                "--no-progress",
                "--discover",
                "--max-connections",
                "1",
            ]
            results: dict[str, dict[str, float]] = {}

            # 1. discovery by TCP connect, every endpoint
            cpu, t0 = child_cpu(), time.monotonic()
            done = in_ns(
                a,
                [str(CLEARTEXT), "scan", str(prefix), "--out", str(out / "connect.jsonl"), *common],
                capture_output=True,
                timeout=3600,
            )
            assert done.returncode == 0, done.stderr[-1000:]
            results["scan --discover"] = {"wall_s": time.monotonic() - t0, "cpu_s": child_cpu() - cpu}

            # 2. zmap per port, then cleartext on exactly the open endpoints
            empty = out / "optout.txt"
            empty.write_text("# nobody opted out\n")
            listing = out / "open.csv"
            cpu, t0 = child_cpu(), time.monotonic()
            with listing.open("w") as sink:
                for n, port in enumerate(PORTS):
                    zmap = in_ns(
                        a,
                        [
                            "zmap",
                            "-p",
                            str(port),
                            str(prefix),
                            "-i",
                            va,
                            "-S",
                            SCANNER,
                            "-G",
                            mac,
                            "-r",
                            str(args.rate),
                            "-P",
                            "2",
                            "-c",
                            "1",
                            "-q",
                            "-b",
                            str(empty),
                            "--output-fields=saddr,sport",
                            "-o",
                            "-",
                        ],
                        capture_output=True,
                        timeout=600,
                    )
                    assert zmap.returncode == 0, zmap.stderr[-1000:]
                    lines = zmap.stdout.splitlines()
                    sink.write("\n".join(lines if n == 0 else lines[1:]) + "\n")  # one header
            syn_s = time.monotonic() - t0
            done = in_ns(
                a,
                [
                    str(CLEARTEXT),
                    "scan",
                    "--endpoints",
                    str(listing),
                    "--out",
                    str(out / "pipeline.jsonl"),
                    *common,
                ],
                capture_output=True,
                timeout=3600,
            )
            assert done.returncode == 0, done.stderr[-1000:]
            results["zmap + scan --endpoints --discover"] = {
                "wall_s": time.monotonic() - t0,
                "cpu_s": child_cpu() - cpu,
                "zmap_wall_s": syn_s,
            }
            found_connect, found_pipe = answering(out / "connect.jsonl"), answering(out / "pipeline.jsonl")
            for row in results.values():
                row["endpoints_per_s"] = endpoints / row["wall_s"]
            summary = {
                "prefix": str(prefix),
                "mix": args.mix,
                "endpoints": endpoints,
                "zmap_rate": args.rate,
                "concurrency": args.concurrency,
                "timeout": args.timeout,
                "load": os.getloadavg(),
                "answering_connect": len(found_connect),
                "answering_pipeline": len(found_pipe),
                "missed_by_pipeline": len(found_connect - found_pipe),
                "extra_in_pipeline": len(found_pipe - found_connect),
                "runs": results,
            }
            (out / "results.json").write_text(json.dumps(summary, indent=1))
            print(
                f"{endpoints:,} endpoints ({prefix} x {len(PORTS)} ports, mix {args.mix}); "
                f"load {summary['load']}"
            )
            print("| run | wall s | endpoints/s | CPU s (tool) |")
            print("|---|---:|---:|---:|")
            for name, row in results.items():
                print(
                    f"| {name} | {row['wall_s']:.1f} | {row['endpoints_per_s']:,.0f} | {row['cpu_s']:.1f} |"
                )
            print(
                f"answering endpoints: connect scan {len(found_connect)}, pipeline {len(found_pipe)} "
                f"(missed {summary['missed_by_pipeline']}, extra {summary['extra_in_pipeline']}); "
                f"output in {out}"
            )
            return 0
        finally:
            if simnet is not None:  # the one process this script started in the namespace
                simnet.terminate()
                try:
                    simnet.wait(15)
                except subprocess.TimeoutExpired:
                    simnet.kill()
            for ns in (a, b):
                subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


if __name__ == "__main__":
    sys.exit(main())
