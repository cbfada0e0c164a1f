#!/usr/bin/env python3
"""The scan-engine benchmark: simnet in a namespace of our own, cleartext and its peers against it.

Why one harness for everything: ratios are only honest when every tool meets the same endpoints on the
same machine in the same run. This script makes the network namespace, starts simnet in it, runs

  1. floor      — bench/floor.py, the minimal connect-and-read-greeting loop (the discovery floor);
  2. discovery  — cleartext scan --discover (connect and greeting, TLS first on implicit-TLS ports);
     dialog     — cleartext with --max-connections 1 (the dialog, no TLS matrix): only with --dialog;
  3. full       — cleartext's full assessment (dialog + raw-hello matrix, <= 6 connections);
  4. profile    — the full scan again on a part of the endpoints under py-spy (where the time goes);
  5. peers      — sslyze, testssl.sh and nmap on a small stratified sample, and cleartext on that same
                  sample,

measures each (endpoints/s, connections per endpoint from the records and from simnet's accept
counter, CPU seconds, peak RSS), checks every verdict against simnet's plan, writes
``results.json`` and ``summary.md`` in the output folder, and tears everything down.

Traffic stays inside the namespace (only ``lo`` exists there); every tool run has a time limit after
which it is stopped; the namespace and every process started in it are removed at the end.

    sudo bench/setup && sudo bench/.venv/bin/python bench/run.py            # the default, < 10 min
    bench/.venv/bin/python bench/run.py --endpoints 7000 --skip peers,profile --scanner-args="--rate 5000"
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import json
import math
import os
import platform
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import simnet  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
NAMESPACE = "cleartext-bench"  # --namespace changes it: two benchmarks on one machine need two names
PORTS = tuple(simnet.PORTS)
PORTS_ARG = ",".join(map(str, PORTS))
# Peers' sample: TLS-capable profiles first, so a small sample still spends its time on real work.
# slow-greeting is left out by default: every one of a peer's ~120-580 connections would wait 1-2 s
# for the greeting, one endpoint alone would take the peer minutes.
PEER_PROFILE_ORDER = (
    "starttls-ok",
    "tls10-only",
    "starttls-login-before",
    "plaintext-login",
    "broken-tls",
    "closed",
    "silent",
)
PEER_PORT_ORDER = (25, 465, 143, 993, 110, 995, 587)  # a small sample still meets each protocol and mode


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the namespace and simnet -----------------------------------------------------------------------


def netns(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", *args], capture_output=True, text=True, check=check)


def ns_pids() -> list[int]:
    done = netns("pids", NAMESPACE, check=False)
    return [int(p) for p in done.stdout.split()] if done.returncode == 0 else []


def stop_pids(pids: Iterable[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL what is left: processes of our own namespace, each by its id."""
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; /proc says so.
    with contextlib.suppress(OSError):
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    return False


def namespace_up() -> None:
    """A fresh namespace: leftovers of an earlier run (ours, by name) are stopped and removed first."""
    if NAMESPACE in netns("list").stdout.split():
        stop_pids(ns_pids())
        netns("delete", NAMESPACE)
    netns("add", NAMESPACE)
    netns("exec", NAMESPACE, "ip", "link", "set", "lo", "up")


def namespace_down() -> None:
    if NAMESPACE in netns("list", check=False).stdout.split():
        stop_pids(ns_pids())
        netns("delete", NAMESPACE, check=False)


def in_ns(argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", NAMESPACE, *argv]


# --pin: which CPUs simnet and the tools may run on (None: anywhere). Set once in main().
PINNING: dict[str, str] = {}


def pinned(role: str, argv: list[str]) -> list[str]:
    """``argv`` under taskset when --pin gave ``role`` ("simnet" or "tool") its own CPUs; the exec
    chain (taskset, ip netns exec, the tool) keeps one pid, so wait4() still measures the tool."""
    cpus = PINNING.get(role)
    return ["taskset", "-c", cpus, *argv] if cpus else argv


@dataclass
class Simnet:
    proc: subprocess.Popen[str]
    info: dict[str, object]

    @property
    def controls(self) -> list[Path]:
        return [Path(str(p)) for p in self.info["controls"]]  # type: ignore[union-attr]

    def stats(self) -> dict[str, object]:
        stats = simnet.control_query(self.controls, "stats")
        stats["nft"] = nft_counters()
        stats["listen_drops"] = listen_drops()
        return stats

    def endpoints(self) -> dict[str, int]:
        return simnet.control_query(self.controls, "endpoints")  # type: ignore[return-value]

    def reset(self) -> None:
        simnet.control_query(self.controls, "reset")


def listen_drops() -> int:
    """SYNs or handshakes the namespace's kernel dropped because a listen queue was full
    (TcpExtListenOverflows + TcpExtListenDrops): non-zero means simnet, not the tool, lost connections."""
    done = subprocess.run(in_ns(["nstat", "-az"]), capture_output=True, text=True)
    total = 0
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("TcpExtListenOverflows", "TcpExtListenDrops"):
            total += int(parts[1])
    return total


def nft_counters() -> dict[str, int]:
    done = subprocess.run(
        in_ns([sys.executable, str(BENCH / "simnet.py"), "nft"]), capture_output=True, text=True
    )
    try:
        return json.loads(done.stdout) if done.returncode == 0 else {}
    except json.JSONDecodeError:
        return {}


def start_simnet(args: argparse.Namespace, out: Path) -> Simnet:
    argv = [
        sys.executable,
        str(BENCH / "simnet.py"),
        "serve",
        "--network",
        args.network,
        "--mix",
        args.mix,
        "--seed",
        str(args.seed),
        "--dir",
        str(out / "simnet"),
        "--workers",
        str(args.simnet_workers),
        "--max-runtime",
        str(args.max_runtime),
    ]
    proc = subprocess.Popen(
        pinned("simnet", in_ns(argv)),
        stdout=subprocess.PIPE,
        stderr=open(out / "simnet.log", "w"),  # noqa: SIM115  (simnet writes to it until the end)
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # simnet prints one JSON line once every port listens
    if not line:
        raise SystemExit(f"simnet did not start; see {out / 'simnet.log'}")
    return Simnet(proc, json.loads(line))


# --- measuring one tool run -------------------------------------------------------------------------


@dataclass
class Run:
    """One tool run: wall time, the tool's own CPU and memory, and what simnet saw meanwhile."""

    name: str
    endpoints: int
    wall_s: float = 0.0
    cpu_s: float = 0.0
    sys_cpu_s: float = 0.0  # of cpu_s, in the kernel (on loopback that includes TCP for both ends)
    peak_rss_mb: float = 0.0
    peak_tree_rss_mb: float = 0.0  # the largest sum over the whole process tree, sampled every 0.5 s
    timed_out: bool = False
    exit_codes: list[int] = field(default_factory=list)
    runqueue_wait_s: float = 0.0
    loadavg: tuple[float, float] = (0.0, 0.0)
    simnet_accepts: int = 0
    kernel_refused: int = 0
    listen_drops: int = 0
    simnet_cpu_s: float = 0.0
    simnet_max_accepts_per_endpoint: int = 0
    simnet_accepts_hist: dict[str, int] = field(default_factory=dict)  # accepts per endpoint -> endpoints
    conn_per_endpoint_records: float | None = None
    conn_max_records: int | None = None
    mean_endpoint_ms: float | None = None
    accuracy: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.endpoints / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def per_cpu_s(self) -> float:
        """Endpoints per CPU second of the tool: its capacity, whatever else shares the cores."""
        return self.endpoints / self.cpu_s if self.cpu_s > 0 else 0.0

    @property
    def conn_per_endpoint_server(self) -> float:
        return (self.simnet_accepts + self.kernel_refused) / self.endpoints if self.endpoints else 0.0

    def as_json(self) -> dict[str, object]:
        data = asdict(self)
        data["endpoints_per_s"] = round(self.rate, 2)
        data["endpoints_per_cpu_s"] = round(self.per_cpu_s, 2)
        data["conn_per_endpoint_server"] = round(self.conn_per_endpoint_server, 3)
        return data


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (a scan with --workers is several)."""
    total = 0
    todo, seen = [pid], set()
    for _ in range(10_000):  # bounded: a process tree here has a handful of members
        if not todo:
            break
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return total


def measure(
    name: str,
    net: Simnet,
    commands: list[list[str]],
    endpoints: int,
    *,
    time_limit: float,
    parallel: int = 0,
    stdout: Callable[[int], Path] | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """Run the commands (``parallel`` at once; 0 = all at once) inside the namespace and measure them.

    CPU and peak RSS come from wait4()'s rusage of each command, which covers its whole process tree
    (testssl.sh's openssl children included); ``ip netns exec`` execs the tool, so the pid is the tool's.
    """
    net.reset()
    before = net.stats()
    run = Run(name, endpoints)
    queue = list(enumerate(commands))
    running: dict[int, subprocess.Popen[bytes]] = {}
    sinks = []
    limit = parallel or len(commands)
    waited: dict[int, float] = {}  # pid -> seconds spent runnable but waiting for a CPU (schedstat)
    polled = 0.0
    load_start = os.getloadavg()[0]
    start = time.monotonic()
    deadline = start + time_limit
    while queue or running:
        while queue and len(running) < limit:
            i, argv = queue.pop(0)
            sink = open(stdout(i), "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115
            if stdout:
                sinks.append(sink)
            proc = subprocess.Popen(
                pinned("tool", in_ns(argv)), stdout=sink, stderr=subprocess.DEVNULL, env=env
            )
            running[proc.pid] = proc  # reaped by wait4 below, which also gives its rusage
        if time.monotonic() - polled > 0.5:
            polled = time.monotonic()
            tree_kb = 0
            for child in running:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    waited[child] = int(Path(f"/proc/{child}/schedstat").read_text().split()[1]) / 1e9
                tree_kb += tree_rss_kb(child)
            run.peak_tree_rss_mb = max(run.peak_tree_rss_mb, tree_kb / 1024)
        pid, status, usage = os.wait4(-1, os.WNOHANG)
        if pid == 0:
            if time.monotonic() > deadline and not run.timed_out:
                run.timed_out = True
                run.notes.append(f"stopped at the {time_limit:g} s limit; {len(queue)} commands not started")
                run.endpoints -= len(queue) * endpoints // max(1, len(commands))
                queue.clear()
                stop_pids(list(running))
            time.sleep(0.02)
            continue
        if pid not in running:
            continue  # not one of this run's (simnet's own children are not ours to reap here)
        code = os.waitstatus_to_exitcode(status)
        running.pop(pid).returncode = code  # so Popen never waits for a pid that is gone
        run.exit_codes.append(code)
        run.cpu_s += usage.ru_utime + usage.ru_stime
        run.sys_cpu_s += usage.ru_stime
        run.peak_rss_mb = max(run.peak_rss_mb, usage.ru_maxrss / 1024)
    run.wall_s = time.monotonic() - start
    run.runqueue_wait_s = round(sum(waited.values()), 2)
    run.loadavg = (load_start, os.getloadavg()[0])
    for sink in sinks:
        sink.close()  # type: ignore[union-attr]
    after = net.stats()
    run.simnet_accepts = int(after["accepts"])  # reset at the start of the run
    run.simnet_max_accepts_per_endpoint = int(after["max_accepts_per_endpoint"])
    run.simnet_accepts_hist = dict(after.get("accepts_per_endpoint_hist") or {})  # type: ignore[call-overload]
    run.simnet_cpu_s = float(after["cpu_s"]) - float(before["cpu_s"])
    run.listen_drops = int(after["listen_drops"]) - int(before["listen_drops"])  # type: ignore[call-overload]
    if run.listen_drops:
        run.notes.append(f"{run.listen_drops} connections dropped by full listen queues (simnet too slow)")
    nft_before, nft_after = before.get("nft") or {}, after.get("nft") or {}
    run.kernel_refused = sum(
        int(nft_after.get(k, 0)) - int(nft_before.get(k, 0))
        for k in ("closed", "no_tls")  # type: ignore[union-attr]
    )
    return run


# --- checking verdicts -----------------------------------------------------------------------------


def record_versions(record: dict[str, object]) -> frozenset[str] | None:
    matrix = record.get("matrix")
    if not isinstance(matrix, dict):
        return None
    return frozenset(v for v, st in matrix.get("versions", {}).items() if st == "accepted")


def check_cleartext(path: Path, plan: simnet.Plan, kernel_rst: bool, *, mode: str) -> dict[str, object]:
    """Share of records whose verdict is the one simnet's plan deserves, per profile, with examples."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: dict[str, list[dict[str, object]]] = defaultdict(list)
    conns: list[int] = []
    totals: list[float] = []
    for line in path.open():
        record = json.loads(line)
        profile = plan.profile(record["address"])
        want = simnet.expected(profile, record["port"], kernel_rst=kernel_rst)
        codes = frozenset(f["code"] for f in record.get("findings", []))
        conns.append(int(record.get("connections", 0)))
        totals.append(float(record.get("timings_ms", {}).get("total", 0.0)))
        login = "cleartext-login" in codes
        ok_status = record["status"] == want.status
        ok_login = login == bool(want.login_before_tls)
        if mode == "discovery":
            # Greeting only: STARTTLS is never tried, so a broken STARTTLS stack greets like any other;
            # on implicit-TLS ports the handshake comes first and its facts are judged.
            implicit = simnet.PORTS[record["port"]][1]
            want_status = "success" if want.status == "tls-error" and not implicit else want.status
            ok_status = record["status"] == want_status
            want_codes = want.findings - {"cleartext-login", "no-tls"} if implicit else frozenset()
            ok_login = not login  # discovery makes no login claim; any claim would be wrong
            ok = ok_status and codes == want_codes
        elif mode == "full":
            versions = record_versions(record)
            ok_versions = want.tls_versions is None or versions == want.tls_versions
            ok = ok_status and codes == want.findings and ok_versions
        else:
            # One connection: no matrix, so only the dialog's verdicts are judged.
            dialog = want.findings & {"cleartext-login", "no-tls", "starttls-failed"}
            ok = ok_status and codes & {"cleartext-login", "no-tls", "starttls-failed"} == dialog
        c = per[profile]
        c["n"] += 1
        c["ok"] += ok
        c["status_ok"] += ok_status
        c["login_ok"] += ok_login
        if not ok and len(wrong[profile]) < 3:
            wrong[profile].append(
                {
                    "endpoint": f"{record['address']}:{record['port']}",
                    "status": record["status"],
                    "detail": record.get("status_detail"),
                    "findings": sorted(codes),
                    "versions": sorted(record_versions(record) or []),
                    "connections": record.get("connections"),
                    "expected": want.as_json(),
                }
            )
    n = sum(c["n"] for c in per.values())
    return {
        "records": n,
        "verdict_ok": sum(c["ok"] for c in per.values()) / n if n else 0.0,
        "login_verdict_ok": sum(c["login_ok"] for c in per.values()) / n if n else 0.0,
        "per_profile": {p: dict(c) for p, c in sorted(per.items())},
        "wrong_examples": dict(wrong),
        "conn_mean": sum(conns) / n if n else 0.0,
        "conn_max": max(conns, default=0),
        "conn_hist": dict(sorted(Counter(conns).items())),
        "mean_endpoint_ms": sum(totals) / n if n else 0.0,
    }


def check_floor(summary: dict[str, object], addresses: list[str], plan: simnet.Plan) -> dict[str, object]:
    """The floor says only "answers or not": compare its success count with the endpoints that greet."""
    greeters = 0
    for address in addresses:
        profile = plan.profile(address)
        for port in PORTS:
            implicit = simnet.PORTS[port][1]
            tls_only_fails = profile in ("plaintext-login", "broken-tls")  # on implicit ports: no greeting
            if profile in simnet.LIVE and not (implicit and tls_only_fails):
                greeters += 1
    got = int(summary.get("status", {}).get("success", 0))  # type: ignore[union-attr]
    return {"greeting_endpoints_expected": greeters, "greeting_endpoints_found": got}


def versions_ok(want: simnet.Expected, got: frozenset[str] | None) -> bool:
    return (want.tls_versions or frozenset()) == (got or frozenset())


def check_versions(
    name: str, found: dict[str, frozenset[str] | None], plan: simnet.Plan, kernel_rst: bool
) -> dict[str, object]:
    """For a peer: does its list of accepted TLS versions match the plan, endpoint by endpoint."""
    per: dict[str, Counter[str]] = defaultdict(Counter)
    wrong: list[dict[str, object]] = []
    for endpoint, got in found.items():
        address, port = endpoint.rsplit(":", 1)
        profile = plan.profile(address)
        want = simnet.expected(profile, int(port), kernel_rst=kernel_rst)
        ok = versions_ok(want, got)
        per[profile]["n"] += 1
        per[profile]["ok"] += ok
        if not ok and len(wrong) < 8:
            wrong.append(
                {
                    "endpoint": endpoint,
                    "profile": profile,
                    "got": sorted(got or []),
                    "expected": sorted(want.tls_versions or []),
                }
            )
    n = sum(c["n"] for c in per.values())
    return {
        "tool": name,
        "endpoints_judged": n,
        "tls_versions_ok": sum(c["ok"] for c in per.values()) / n if n else 0.0,
        "per_profile": {p: dict(c) for p, c in sorted(per.items())},
        "wrong_examples": wrong,
    }


# --- peers: commands and parsers -------------------------------------------------------------------


def sslyze_versions(path: Path) -> dict[str, frozenset[str] | None]:
    data = json.loads(path.read_text())
    names = {
        "ssl_2_0_cipher_suites": "SSLv2",
        "ssl_3_0_cipher_suites": "SSLv3",
        "tls_1_0_cipher_suites": "TLSv1.0",
        "tls_1_1_cipher_suites": "TLSv1.1",
        "tls_1_2_cipher_suites": "TLSv1.2",
        "tls_1_3_cipher_suites": "TLSv1.3",
    }
    out: dict[str, frozenset[str] | None] = {}
    for server in data.get("server_scan_results", []):
        loc = server["server_location"]
        key = f"{loc['ip_address']}:{loc['port']}"
        result = server.get("scan_result") or {}
        accepted = set()
        for attr, label in names.items():
            res = (result.get(attr) or {}).get("result") or {}
            if res.get("accepted_cipher_suites"):
                accepted.add(label)
        out[key] = frozenset(accepted) or None
    return out


def testssl_versions(path: Path) -> frozenset[str] | None:
    try:
        data = json.loads(path.read_text() or "[]")
    except json.JSONDecodeError:
        return None
    labels = {
        "SSLv2": "SSLv2",
        "SSLv3": "SSLv3",
        "TLS1": "TLSv1.0",
        "TLS1_1": "TLSv1.1",
        "TLS1_2": "TLSv1.2",
        "TLS1_3": "TLSv1.3",
    }
    accepted = {
        labels[item["id"]]
        for item in data
        if item.get("id") in labels
        and "offered" in str(item.get("finding", ""))
        and "not offered" not in str(item.get("finding", ""))
    }
    return frozenset(accepted) or None


def nmap_results(path: Path) -> tuple[dict[str, frozenset[str] | None], dict[str, str]]:
    """Versions per endpoint from ssl-enum-ciphers; and what the capability scripts printed."""
    versions: dict[str, frozenset[str] | None] = {}
    capabilities: dict[str, str] = {}
    root = ET.parse(path).getroot()
    for host in root.iter("host"):
        address = host.find("address").get("addr")  # type: ignore[union-attr]
        for port in host.iter("port"):
            key = f"{address}:{port.get('portid')}"
            state = port.find("state")
            if state is None or state.get("state") != "open":
                versions[key] = None
                continue
            found: set[str] = set()
            for script in port.iter("script"):
                if script.get("id") == "ssl-enum-ciphers":
                    for table in script.findall("table"):
                        label = table.get("key", "")
                        found.add({"TLSv1.0": "TLSv1.0"}.get(label, label))
                else:
                    capabilities[key] = (script.get("output") or "").strip()
            versions[key] = frozenset(found) or None
    return versions, capabilities


def stratified_addresses(plan: simnet.Plan, count: int, profiles: Sequence[str]) -> list[str]:
    """``count`` addresses, round-robin over ``profiles`` (lowest addresses first): every behaviour
    is represented even in a sample of a handful."""
    pools: dict[str, list[str]] = {p: [] for p in profiles}
    for address in plan.addresses():
        profile = plan.profile(address)
        if profile in pools and len(pools[profile]) < count:
            pools[profile].append(address)
        if all(len(v) >= count for v in pools.values()):
            break
    chosen: list[str] = []
    for i in range(count):
        for profile in profiles:
            pool = [a for a in pools[profile] if a not in chosen]
            if len(chosen) < count and pool and len(pools[profile]) > i:
                chosen.append(pool[0])
    return chosen[:count]


# --- the scanner and its profile -------------------------------------------------------------------


def cleartext_argv(
    targets: Path, out: Path, ca: str, args: argparse.Namespace, *extra: str, ports: str = PORTS_ARG
) -> list[str]:
    return [
        str(ROOT / ".venv" / "bin" / "cleartext"),
        "scan",
        f"@{targets}",
        "--allow-reserved",
        "--ports",
        ports,
        "--ca-file",
        ca,
        "--out",
        str(out),
        "--concurrency",
        str(args.concurrency),
        "--connect-timeout",
        str(args.timeout),
        "--read-timeout",
        str(args.timeout),
        *store_args(out, args.scanner_args),
        *extra,
        *shlex.split(args.scanner_args),
    ]


def store_args(out: Path, scanner_args: str) -> list[str]:
    """A store of the run's own beside its records: the scan writes one by default (./cleartext.duckdb),
    which is part of the cost measured, and must not land in the shared one of the work tree."""
    if "--store" in scanner_args or "--no-store" in scanner_args:
        return []
    store = out.with_suffix(".duckdb")
    for path in store.parent.glob(store.name + "*"):
        path.unlink()
    return ["--store", str(store)]


def scan_runs(
    name: str,
    net: Simnet,
    targets: Path,
    out: Path,
    ca: str,
    args: argparse.Namespace,
    endpoints: int,
    *extra: str,
    time_limit: float,
    ports: str = PORTS_ARG,
    env: dict[str, str] | None = None,
) -> tuple[Run, list[Path]]:
    """cleartext, as ``--scanner-procs`` processes with one shard each (``--shard i/N``)."""
    procs = args.scanner_procs
    outs = [out.with_suffix(f".{i}.jsonl") for i in range(procs)]
    for path in outs:
        path.unlink(missing_ok=True)
        for side in path.parent.glob(path.name + ".*"):  # the scanner's resume state beside --out
            side.unlink()
    commands = [
        cleartext_argv(
            targets,
            outs[i],
            ca,
            args,
            *extra,
            *(["--shard", f"{i}/{procs}", "--seed", str(args.seed)] if procs > 1 else []),
            ports=ports,
        )
        for i in range(procs)
    ]
    return measure(name, net, commands, endpoints, time_limit=time_limit, env=env), outs


def concat(paths: list[Path], into: Path) -> Path:
    with into.open("w") as sink:
        for path in paths:
            if path.exists():
                sink.write(path.read_text())
    return into


def summarise_pyspy(raw: Path, top: int = 20) -> dict[str, object]:
    """Collapsed stacks -> top functions by own time and by inclusive time (share of samples)."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    files: Counter[str] = Counter()
    total = 0
    for line in raw.open():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            incl[frame] += n
        for module in {_module(f) for f in frames}:
            files[module] += n
    pct = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "own": [(f, pct(c)) for f, c in own.most_common(top)],
        "inclusive": [(f, pct(c)) for f, c in incl.most_common(top + 15)],
        "modules": [(f, pct(c)) for f, c in files.most_common(top)],
    }


def _short(frame: str) -> str:
    """'probe (cleartext/probe.py:412)' -> 'probe (cleartext/probe.py)': lines split one function."""
    name, _, where = frame.partition(" (")
    path = where.rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
    return f"{name} ({path})"


def _module(frame: str) -> str:
    return _short(frame).rpartition(" (")[2].rstrip(")")


# --- the benchmark -------------------------------------------------------------------------------------


def machine_facts() -> dict[str, object]:
    mem_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
        "commit": commit + (" (src/ has uncommitted changes)" if dirty else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def tool_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "missing"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0][:80] if text else "?"


def bench(args: argparse.Namespace) -> dict[str, object]:
    out = Path(args.out or BENCH / "out" / time.strftime("%Y%m%d-%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # whatever a tool writes beside itself lands here, not in the work tree
    plan = simnet.Plan(ipaddress.IPv4Network(args.network), simnet.parse_mix(args.mix), args.seed)
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, object] = {"machine": machine_facts(), "args": vars(args), "runs": {}, "out": str(out)}
    runs: dict[str, object] = results["runs"]  # type: ignore[assignment]
    log(f"output in {out}")

    n_addresses = math.ceil(args.endpoints / len(PORTS))
    addresses = [a for _, a in zip(range(n_addresses), plan.addresses(), strict=False)]
    endpoints = len(addresses) * len(PORTS)
    targets = out / "targets.txt"
    targets.write_text("\n".join(addresses) + "\n")

    namespace_up()
    net = start_simnet(args, out)
    ca = str(net.info["ca"])
    kernel_rst = bool(net.info["kernel_rst"])
    results["simnet"] = {
        "kernel_rst": kernel_rst,
        "manifest": net.info["manifest"],
        "profiles_in_targets": dict(Counter(plan.profile(a) for a in addresses)),
    }
    try:
        if "floor" not in skip:
            log(f"floor: {endpoints} endpoints")
            floor_out = out / "floor.json"
            run = measure(
                "minimal loop (floor.py)",
                net,
                [
                    [
                        sys.executable,
                        str(BENCH / "floor.py"),
                        "--targets",
                        str(targets),
                        "--concurrency",
                        str(args.concurrency),
                        "--timeout",
                        str(args.timeout),
                        "--seed",
                        str(args.seed),
                    ]
                ],
                endpoints,
                time_limit=args.time_limit,
                stdout=lambda _: floor_out,
            )
            summary = json.loads(floor_out.read_text() or "{}")
            run.accuracy = {**check_floor(summary, addresses, plan), "status": summary.get("status")}
            runs["floor"] = run.as_json()
            log(f"  {run.rate:.0f} endpoints/s, {run.cpu_s:.1f} CPU s")

        def scan_and_check(
            key: str, mode: str, name: str, *extra: str, env: dict[str, str] | None = None
        ) -> Run:
            """One cleartext run over all the endpoints, its records checked against the plan."""
            log(f"{key}: cleartext on {endpoints} endpoints")
            run, outs = scan_runs(
                name,
                net,
                targets,
                out / f"{key}.jsonl",
                ca,
                args,
                endpoints,
                *extra,
                time_limit=args.time_limit,
                env=env,
            )
            records = concat(outs, out / f"{key}.jsonl")
            check = check_cleartext(records, plan, kernel_rst, mode=mode)
            run.accuracy = {
                k: check[k]
                for k in ("records", "verdict_ok", "login_verdict_ok", "per_profile", "wrong_examples")
            }
            run.conn_per_endpoint_records = round(float(check["conn_mean"]), 3)
            run.conn_max_records = int(check["conn_max"])  # type: ignore[arg-type]
            run.mean_endpoint_ms = round(float(check["mean_endpoint_ms"]), 1)
            run.notes.append(f"connections histogram (records): {check['conn_hist']}")
            if int(check["records"]) < endpoints:  # type: ignore[arg-type]
                run.notes.append(f"only {check['records']} of {endpoints} records written")
            runs[key] = run.as_json()
            log(
                f"  {run.rate:.0f} endpoints/s, {run.per_cpu_s:.0f} per CPU s, {run.cpu_s:.1f} CPU s, "
                f"peak {run.peak_rss_mb:.0f} MB, verdicts {100 * float(check['verdict_ok']):.1f} % right, "
                f"max {run.simnet_max_accepts_per_endpoint} accepts per endpoint (server side)"
            )
            return run

        modes = [("discovery", ["--discover"]), ("full", [])]
        if args.dialog:
            modes.insert(1, ("dialog", ["--max-connections", "1"]))
        for key, extra in modes:
            if key not in skip:
                scan_and_check(key, key, f"cleartext {key}", *extra)

        if args.variants:
            # Interleaved A/B: the full scan with each variant's code (PYTHONPATH=its src folder, the
            # same venv), repeated; the order reverses every repetition (A B, B A, ...) so that a load
            # that drifts during the session weighs on both alike.
            variants = parse_variants(args.variants)
            labels = list(variants)
            for rep in range(args.repeat):
                for label in labels if rep % 2 == 0 else labels[::-1]:
                    env = {**os.environ, "PYTHONPATH": variants[label]} if variants[label] else None
                    scan_and_check(f"ab-{label}-{rep}", "full", f"cleartext full [{label}] #{rep}", env=env)
            results["ab"] = ab_summary(runs, labels, args.repeat)
            results["ab_records"] = ab_compare(out, labels, args.repeat)

        if "profile" not in skip and shutil.which(str(BENCH / ".venv" / "bin" / "py-spy")):
            n = max(len(PORTS), args.endpoints // args.profile_fraction)
            sub = out / "profile-targets.txt"
            sub.write_text("\n".join(addresses[: math.ceil(n / len(PORTS))]) + "\n")
            raw = out / "pyspy.txt"
            log(f"profile: py-spy on cleartext full, {n} endpoints")
            argv = [
                str(BENCH / ".venv" / "bin" / "py-spy"),
                "record",
                "--format",
                "raw",
                "--rate",
                "250",
                "--output",
                str(raw),
                "--nonblocking",
                "--",
                *cleartext_argv(sub, out / "profile.jsonl", ca, args),
            ]
            (out / "profile.jsonl").unlink(missing_ok=True)
            measure("py-spy", net, [argv], n, time_limit=args.time_limit)
            if raw.exists():
                results["profile"] = summarise_pyspy(raw)

        if "peers" not in skip:
            results["peers"] = peers(args, net, plan, kernel_rst, ca, out, runs)
    finally:
        stop_pids([net.proc.pid])
        namespace_down()
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    return results


def peers(
    args: argparse.Namespace,
    net: Simnet,
    plan: simnet.Plan,
    kernel_rst: bool,
    ca: str,
    out: Path,
    runs: dict[str, object],
) -> dict[str, object]:
    """sslyze, testssl.sh, nmap — each on its own stratified sample, and cleartext on that same sample."""
    profiles = [p for p in PEER_PROFILE_ORDER if plan.mix.get(p, 0) > 0]
    if args.peer_slow:
        profiles.append("slow-greeting")
    sizes = dict(item.split("=") for item in args.peer_sample.split(","))
    verdicts: dict[str, object] = {}
    for tool in ("sslyze", "testssl", "nmap"):
        if tool not in sizes or int(sizes[tool]) <= 0:
            continue
        # Whole addresses (x 7 ports); under 7 endpoints, one address and that many ports, chosen to
        # cover the protocols and both TLS modes first. cleartext then scans exactly the same endpoints.
        wanted = int(sizes[tool])
        addresses = stratified_addresses(plan, math.ceil(wanted / len(PORTS)), profiles)
        ports = PEER_PORT_ORDER[:wanted] if wanted < len(PORTS) and tool != "nmap" else PORTS
        endpoints = [f"{a}:{p}" for a in addresses for p in ports]
        folder = out / f"peer-{tool}"
        folder.mkdir(exist_ok=True)
        targets = folder / "targets.txt"
        targets.write_text("\n".join(addresses) + "\n")
        log(f"{tool}: {len(endpoints)} endpoints ({len(addresses)} addresses)")

        # cleartext on exactly this sample, for a ratio in the same conditions.
        run, outs = scan_runs(
            f"cleartext full (sample for {tool})",
            net,
            targets,
            folder / "cleartext.jsonl",
            ca,
            args,
            len(endpoints),
            time_limit=args.time_limit,
            ports=",".join(map(str, ports)),
        )
        records = concat(outs, folder / "cleartext.jsonl")
        check = check_cleartext(records, plan, kernel_rst, mode="full")
        found_ct = {
            f"{r['address']}:{r['port']}": record_versions(r) for r in map(json.loads, records.open())
        }
        run.accuracy = {
            "verdict_ok": check["verdict_ok"],
            "login_verdict_ok": check["login_verdict_ok"],
            **check_versions("cleartext", found_ct, plan, kernel_rst),
            "wrong_verdicts": check["wrong_examples"],
        }
        run.conn_per_endpoint_records = round(float(check["conn_mean"]), 3)
        run.conn_max_records = int(check["conn_max"])  # type: ignore[arg-type]
        runs[f"cleartext-sample-{tool}"] = run.as_json()

        if tool == "sslyze":
            json_out = folder / "sslyze.json"
            argv = [
                str(BENCH / ".venv" / "bin" / "sslyze"),
                "--starttls",
                "auto",
                "--json_out",
                str(json_out),
                *endpoints,
            ]
            run = measure("sslyze", net, [argv], len(endpoints), time_limit=args.peer_time_limit)
            found = sslyze_versions(json_out) if json_out.exists() else {}
            run.notes.append("default scan commands (certinfo, all versions' suites, robot, heartbleed, ...)")
        elif tool == "testssl":
            commands = []
            for i, endpoint in enumerate(endpoints):
                port = int(endpoint.rsplit(":", 1)[1])
                proto, implicit = simnet.PORTS[port]
                starttls = [] if implicit else ["--starttls", proto]
                commands.append(
                    [
                        shutil.which("testssl") or "testssl.sh",
                        *starttls,
                        "--jsonfile",
                        str(folder / f"testssl-{i}.json"),
                        "--warnings",
                        "off",
                        "--quiet",
                        "--color",
                        "0",
                        "--ip",
                        "one",
                        "--connect-timeout",
                        str(int(args.timeout) + 2),
                        "--openssl-timeout",
                        str(int(args.timeout) + 2),
                        *shlex.split(args.testssl_args),
                        endpoint,
                    ]
                )
            for path in folder.glob("testssl-*.json"):
                path.unlink()
            run = measure(
                "testssl.sh",
                net,
                commands,
                len(endpoints),
                time_limit=args.peer_time_limit,
                parallel=args.testssl_parallel,
            )
            found = {
                e: testssl_versions(folder / f"testssl-{i}.json")
                for i, e in enumerate(endpoints)
                if (folder / f"testssl-{i}.json").exists()
            }
            run.notes.append(
                f"one testssl.sh per endpoint, {args.testssl_parallel} at once; args: "
                f"{args.testssl_args or '(default: full run)'}"
            )
        else:
            xml_out = folder / "nmap.xml"
            argv = [
                "nmap",
                "-n",
                "-Pn",
                "-sT",
                "-p",
                PORTS_ARG,
                "--script",
                "ssl-enum-ciphers,smtp-commands,imap-capabilities,pop3-capabilities",
                "-oX",
                str(xml_out),
                "-iL",
                str(targets),
            ]
            run = measure("nmap", net, [argv], len(endpoints), time_limit=args.peer_time_limit)
            found, caps = nmap_results(xml_out) if xml_out.exists() else ({}, {})
            (folder / "nmap-capabilities.json").write_text(json.dumps(caps, indent=1))
            run.notes.append("-sT, ssl-enum-ciphers + smtp-commands/imap-capabilities/pop3-capabilities")
        found = {e: found.get(e) for e in endpoints}
        run.accuracy = check_versions(tool, found, plan, kernel_rst)
        runs[tool] = run.as_json()
        verdicts[tool] = run.accuracy
        log(
            f"  {tool}: {run.rate:.2f} endpoints/s, {run.conn_per_endpoint_server:.0f} conn/endpoint, "
            f"versions {100 * float(run.accuracy['tls_versions_ok']):.0f} % right"
        )  # type: ignore[arg-type]
    return verdicts


def parse_variants(text: str) -> dict[str, str]:
    """'before=/tmp/ct-before/src,after=' -> {label: src folder}; an empty folder is the work tree's code."""
    variants: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        label, sep, src = item.partition("=")
        if not sep or not label or label in variants:
            raise SystemExit(f"--variants: want LABEL=SRC_FOLDER, each label once; got {item!r}")
        if src and not (Path(src) / "cleartext" / "__init__.py").exists():
            raise SystemExit(f"--variants: {src} holds no cleartext package")
        variants[label] = str(Path(src).resolve()) if src else ""
    if len(variants) < 2:
        raise SystemExit("--variants needs at least two variants")
    return variants


def _spread(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }


def ab_summary(runs: dict[str, object], labels: list[str], repeat: int) -> dict[str, object]:
    """Per variant: median and range of the rates, CPU per endpoint, connections, verdicts."""
    out: dict[str, object] = {}
    for label in labels:
        mine = [runs[f"ab-{label}-{rep}"] for rep in range(repeat) if f"ab-{label}-{rep}" in runs]
        rs: list[dict[str, Any]] = mine  # type: ignore[assignment]
        out[label] = {
            "runs": len(rs),
            "endpoints_per_s": _spread([float(r["endpoints_per_s"]) for r in rs]),
            "endpoints_per_cpu_s": _spread([float(r["endpoints_per_cpu_s"]) for r in rs]),
            "cpu_ms_per_endpoint": _spread([1000 * float(r["cpu_s"]) / int(r["endpoints"]) for r in rs]),
            "sys_cpu_s": _spread([float(r["sys_cpu_s"]) for r in rs]),
            "simnet_cpu_s": _spread([float(r["simnet_cpu_s"]) for r in rs]),
            "conn_per_endpoint_records": _spread([float(r["conn_per_endpoint_records"] or 0) for r in rs]),
            "conn_per_endpoint_server": _spread([float(r["conn_per_endpoint_server"]) for r in rs]),
            "max_accepts_per_endpoint": max(int(r["simnet_max_accepts_per_endpoint"]) for r in rs),
            "verdict_ok": min(float(r["accuracy"]["verdict_ok"]) for r in rs),
            "login_verdict_ok": min(float(r["accuracy"]["login_verdict_ok"]) for r in rs),
            "peak_rss_mb": _spread([float(r["peak_rss_mb"]) for r in rs]),
            "loadavg": [r["loadavg"] for r in rs],
        }
    return out


def verdict_fields(record: dict[str, Any]) -> tuple[object, ...]:
    """What a record concludes, without what varies by run (times, byte counts, order): status, the
    finding codes, the login verdict, software, the handshake's version, suite and chain with its
    trust, the matrix, and the dialog's STARTTLS answers."""
    tls = record.get("tls") or {}
    plain = record.get("plain") or {}
    matrix = record.get("matrix") or {}
    return (
        record.get("status"),
        tuple(sorted(f["code"] for f in record.get("findings") or [])),
        json.dumps(record.get("login"), sort_keys=True),
        record.get("software"),
        record.get("greeting"),
        tls.get("version"),
        tls.get("cipher"),
        tuple(c.get("sha256") for c in tls.get("chain") or []),
        tls.get("trusted"),
        tls.get("verify_error"),
        json.dumps(tls.get("capabilities")),
        json.dumps(
            [matrix.get("versions"), matrix.get("weak_classes"), matrix.get("weak_suites")], sort_keys=True
        ),
        plain.get("starttls_accepted"),
        plain.get("starttls_injection"),
        json.dumps(plain.get("login_probes"), sort_keys=True),
    )


def ab_compare(out: Path, labels: list[str], repeat: int) -> dict[str, object]:
    """Every A/B run's records against the first variant's first run, endpoint by endpoint, in the
    verdict fields (:func:`verdict_fields`): the accuracy check between code variants, beside each run's
    check against the plan. The first variant's own later runs give the run-to-run noise (slow-greeting
    endpoints near the timeout)."""

    def load(path: Path) -> dict[tuple[str, int], tuple[object, ...]]:
        found: dict[tuple[str, int], tuple[object, ...]] = {}
        if path.exists():
            with path.open() as lines:
                for line in lines:
                    record = json.loads(line)
                    if "address" in record and "port" in record:
                        found[(record["address"], int(record["port"]))] = verdict_fields(record)
        return found

    reference = load(out / f"ab-{labels[0]}-0.jsonl")
    compared: dict[str, object] = {"reference": f"{labels[0]} #0", "endpoints": len(reference)}
    for label in labels:
        for rep in range(repeat):
            if label == labels[0] and rep == 0:
                continue
            other = load(out / f"ab-{label}-{rep}.jsonl")
            differ = [key for key in reference.keys() | other.keys() if reference.get(key) != other.get(key)]
            compared[f"{label} #{rep}"] = {
                "differ": len(differ),
                "examples": [
                    {"endpoint": f"{a}:{p}", "reference": reference.get((a, p)), "this": other.get((a, p))}
                    for a, p in sorted(differ)[:3]
                ],
            }
    return compared


def ab_markdown(ab: dict[str, dict[str, Any]]) -> list[str]:
    labels = list(ab)
    lines = [
        "",
        "A/B (median, [min–max] over the repetitions):",
        "",
        "| variant | runs | endpoints/s | endpoints per CPU s | CPU ms per endpoint | simnet CPU s | "
        "conn/endpoint (records / server) | max accepts per endpoint | verdicts right (worst run) | "
        "peak RSS MB | load (start–end) |",
        "|---|---:|---|---|---|---|---|---:|---|---|---|",
    ]

    def cell(d: dict[str, float], fmt: str = ".0f") -> str:
        return f"{d['median']:{fmt}} [{d['min']:{fmt}}–{d['max']:{fmt}}]"

    for label, a in ab.items():
        loads = ", ".join("–".join(f"{x:.1f}" for x in pair) for pair in a["loadavg"])
        lines.append(
            f"| {label} | {a['runs']} | {cell(a['endpoints_per_s'])} | {cell(a['endpoints_per_cpu_s'])} | "
            f"{cell(a['cpu_ms_per_endpoint'], '.3f')} | {cell(a['simnet_cpu_s'], '.1f')} | "
            f"{a['conn_per_endpoint_records']['median']:.2f} / "
            f"{a['conn_per_endpoint_server']['median']:.2f} | "
            f"{a['max_accepts_per_endpoint']} | {100 * a['verdict_ok']:.1f} % (login "
            f"{100 * a['login_verdict_ok']:.1f} %) | {cell(a['peak_rss_mb'])} | {loads} |"
        )
    first = ab[labels[0]]
    for label in labels[1:]:
        other = ab[label]
        lines.append(
            f"- {label} vs {labels[0]}: endpoints per CPU s "
            f"{other['endpoints_per_cpu_s']['median'] / first['endpoints_per_cpu_s']['median']:.3f}×, "
            f"endpoints/s {other['endpoints_per_s']['median'] / first['endpoints_per_s']['median']:.3f}× "
            "(ratio of medians)"
        )
    return lines


# --- the report ------------------------------------------------------------------------------------------


def markdown(results: dict[str, object]) -> str:
    """The results table and the ratios, ready to paste under "## Scan engine" in RESULTS.md."""
    runs: dict[str, dict[str, object]] = results["runs"]  # type: ignore[assignment]
    lines = [
        "| run | endpoints | wall s | endpoints/s | endpoints per CPU s | conn/endpoint (records) | "
        "conn/endpoint (server) | max conn | CPU s (tool) | of it kernel | waited for CPU s | "
        "CPU s (simnet) | peak RSS MB (largest process) | peak RSS MB (all processes) | load | "
        "verdicts right |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in runs.values():
        acc = r.get("accuracy") or {}
        if "verdict_ok" in acc:
            verdict = (
                f"{100 * float(acc['verdict_ok']):.1f} % (login {100 * float(acc['login_verdict_ok']):.1f} %)"
            )
            if "tls_versions_ok" in acc:
                verdict += f"; versions {100 * float(acc['tls_versions_ok']):.0f} %"
        elif "tls_versions_ok" in acc:
            verdict = f"versions {100 * float(acc['tls_versions_ok']):.0f} %; login: cannot say"
        elif "greeting_endpoints_found" in acc:
            verdict = f"{acc['greeting_endpoints_found']} of {acc['greeting_endpoints_expected']} greeters"
        else:
            verdict = "–"
        rec = r.get("conn_per_endpoint_records")
        lines.append(
            f"| {r['name']}{' (stopped at limit)' if r.get('timed_out') else ''} | {r['endpoints']} | "
            f"{float(r['wall_s']):.1f} | {float(r['endpoints_per_s']):.1f} | "
            f"{float(r.get('endpoints_per_cpu_s', 0)):.1f} | {'–' if rec is None else f'{float(rec):.2f}'} | "
            f"{float(r['conn_per_endpoint_server']):.2f} | "
            f"{r.get('conn_max_records') or r.get('simnet_max_accepts_per_endpoint')} | "
            f"{float(r['cpu_s']):.1f} | {float(r.get('sys_cpu_s', 0)):.1f} | "
            f"{float(r.get('runqueue_wait_s', 0)):.1f} | "
            f"{float(r['simnet_cpu_s']):.1f} | {float(r['peak_rss_mb']):.0f} | "
            f"{float(r.get('peak_tree_rss_mb') or 0):.0f} | "
            f"{'–'.join(f'{x:.1f}' for x in r.get('loadavg') or ())} | {verdict} |"
        )
    lines.append("")

    def ratio(a: str, b: str, what: str = "endpoints_per_s") -> str | None:
        if a in runs and b in runs and float(runs[b][what]) > 0:
            return f"{float(runs[a][what]) / float(runs[b][what]):.1f}×"
        return None

    for text, a, b in (
        ("cleartext full vs discovery-only (speed)", "full", "discovery"),
        ("cleartext full vs dialog-only (speed)", "full", "dialog"),
        ("cleartext discovery vs minimal loop (speed)", "discovery", "floor"),
    ):
        if (value := ratio(a, b)) is not None:
            lines.append(f"- {text}: {value}")
    if "discovery" in runs and "floor" in runs:
        lines.append(
            f"- minimal loop vs cleartext discovery (how far from the floor): {ratio('floor', 'discovery')}"
        )
    for tool in ("sslyze", "testssl", "nmap"):
        key = f"cleartext-sample-{tool}"
        if tool in runs and key in runs:
            same = ratio(key, tool)
            cpu_t = float(runs[tool]["cpu_s"]) / max(1, int(runs[tool]["endpoints"]))
            # cleartext's CPU per endpoint from the large run: on a sample, interpreter start-up and
            # imports (~1 CPU s) would swamp it.
            big_run = runs.get("full", runs[key])
            cpu_c = float(big_run["cpu_s"]) / max(1, int(big_run["endpoints"]))
            big = (
                f"{float(runs['full']['endpoints_per_s']) / float(runs[tool]['endpoints_per_s']):.0f}×"
                if "full" in runs and float(runs[tool]["endpoints_per_s"]) > 0
                else "–"
            )
            lines.append(
                f"- cleartext vs {tool}: {same} on the same {runs[tool]['endpoints']} endpoints; "
                f"{big} comparing the large full run's rate; "
                f"CPU per endpoint {1000 * cpu_t:.0f} ms vs {1000 * cpu_c:.1f} ms "
                f"({cpu_t / cpu_c if cpu_c else 0:.0f}× less); "
                f"connections per endpoint {float(runs[tool]['conn_per_endpoint_server']):.1f} vs "
                f"{float(runs[key]['conn_per_endpoint_server']):.1f}"
            )
    if isinstance(results.get("ab"), dict):
        lines += ab_markdown(results["ab"])  # type: ignore[arg-type]
        same = results.get("ab_records")
        if isinstance(same, dict):
            counts = ", ".join(
                f"{key}: {value['differ']}" for key, value in same.items() if isinstance(value, dict)
            )
            lines.append(
                f"- records whose verdict fields differ from {same['reference']} "
                f"({same['endpoints']} endpoints): {counts}"
            )
    profile = results.get("profile")
    if isinstance(profile, dict):
        lines += ["", f"py-spy, {profile['samples']} samples — own time (top 15):", ""]
        lines += [f"  {pct:5.1f} %  {name}" for name, pct in profile["own"][:15]]
        lines += ["", "inclusive (top 25):", ""]
        lines += [f"  {pct:5.1f} %  {name}" for name, pct in profile["inclusive"][:25]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--network", default="127.77.0.0/16")
    parser.add_argument(
        "--mix", default="lab", help=f"simnet mix: NAME=SHARE,... or one of {list(simnet.MIXES)}"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--endpoints", type=int, default=14000, help="endpoints for floor/discovery/full")
    parser.add_argument("--concurrency", type=int, default=1000, help="for the floor and cleartext alike")
    parser.add_argument("--timeout", type=float, default=3.0, help="connect and read timeout, every tool")
    parser.add_argument(
        "--scanner-args",
        default="",
        help="extra cleartext scan flags; write --scanner-args='--rate 5000' (with =)",
    )
    parser.add_argument("--scanner-procs", type=int, default=1, help="cleartext processes (--shard i/N)")
    parser.add_argument("--simnet-workers", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=150.0, help="seconds per cleartext/floor run")
    parser.add_argument("--peer-time-limit", type=float, default=180.0, help="seconds per peer run")
    parser.add_argument(
        "--peer-sample",
        default="sslyze=35,testssl=2,nmap=35",
        help="endpoints per peer (addresses stratified over the profiles, x 7 ports)",
    )
    parser.add_argument("--peer-slow", action="store_true", help="include slow-greeting in peer samples")
    parser.add_argument("--testssl-args", default="", help="e.g. '-p -s -S' (default: testssl's full run)")
    parser.add_argument("--testssl-parallel", type=int, default=4)
    parser.add_argument("--profile-fraction", type=int, default=4, help="py-spy run on endpoints / this")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="simnet on the last CPU, the tools on the others: the tools' rate on cores of their own, as "
        "on a scanner whose servers are elsewhere",
    )
    parser.add_argument("--dialog", action="store_true", help="also the dialog alone (--max-connections 1)")
    parser.add_argument(
        "--variants",
        default="",
        help="A/B of cleartext's code: LABEL=SRC,LABEL=SRC (SRC: a src folder put on PYTHONPATH, with the "
        "same venv; empty: the work tree's); the full scan runs --repeat times per variant, interleaved",
    )
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per variant with --variants")
    parser.add_argument(
        "--namespace", default="cleartext-bench", help="the network namespace the benchmark makes"
    )
    parser.add_argument("--skip", default="", help="comma list of: floor,discovery,full,profile,peers")
    parser.add_argument("--max-runtime", type=float, default=1200.0, help="simnet stops by itself after this")
    parser.add_argument("--out", default="", help="output folder (default bench/out/DATE)")
    parser.add_argument("--report", default="", help="only print the summary of an earlier results.json")
    args = parser.parse_args(argv)
    global NAMESPACE
    NAMESPACE = args.namespace
    if args.report:
        print(markdown(json.loads(Path(args.report).read_text())))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("run.py needs root (ip netns, nft)")
    if not (ROOT / ".venv" / "bin" / "cleartext").exists():
        raise SystemExit("no .venv/bin/cleartext: run bench/setup (or make install) first")
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least two CPUs")
        PINNING.update(simnet=str(cpus[-1]), tool=",".join(map(str, cpus[:-1])))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the tools we start
    started = time.monotonic()
    results = bench(args)
    summary = markdown(results)
    out = Path(str(results["out"]))
    (out / "summary.md").write_text(summary)
    print(summary)
    log(f"done in {time.monotonic() - started:.0f} s; {out / 'results.json'}, {out / 'summary.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
