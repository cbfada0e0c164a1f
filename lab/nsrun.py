#!/usr/bin/env python3
"""Run lab servers from unpacked Debian packages inside a private mount namespace.

Courier's binaries insist on paths fixed when they were built: their modules in /usr/lib/courier-authlib,
their configuration in /etc/courier, the authentication daemon's socket in /run/courier/authdaemon. The
packages are never installed (they conflict with Dovecot), only unpacked under /var/cache/cleartext-lab.
This program first moves itself into a new mount namespace (unshare(2), with every mount made private so
nothing propagates back); there, and only there:

* ``/usr`` and ``/etc`` become read-only overlays: the unpacked packages' trees (and the lab's own
  generated /etc) over the system's, so the binaries find everything where they were built to look;
* ``/run`` becomes an empty tmpfs with the directories asked for, and the lab's state directory is
  bound back at its own path (logs, mail homes and certificates stay where labctl reads them).

Nothing of this is visible outside the namespace: the system's /usr, /etc and /run are untouched, and
the namespace disappears with its last process. Then it starts the commands of the spec, each with its
own environment and log, and waits; SIGTERM stops them all (bounded) and exits.

    python3 lab/nsrun.py SPEC.json      (as root; it makes its own mount namespace first)

SPEC: {"overlays": [{"target": "/usr", "lower": [DIR, ...]}], "run_dirs": ["/run/courier/authdaemon"],
"keep": [STATE_DIR], "commands": [{"argv": [...], "env": {...}, "log": FILE, "settle": 0.3}]}.
Standard library only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

MOUNT = "/bin/mount"
STOP_TIMEOUT = 5.0  # seconds the children get after SIGTERM before SIGKILL


CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _unshare_mounts() -> None:
    """A mount namespace of this process's own, whose mounts never propagate to the system's."""
    if LIBC.unshare(CLONE_NEWNS) != 0:
        raise SystemExit(f"nsrun: unshare(CLONE_NEWNS): {os.strerror(ctypes.get_errno())}")
    _mount("--make-rprivate", "/")


def _mount(*args: str) -> None:
    res = subprocess.run([MOUNT, *args], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise SystemExit(f"nsrun: mount {' '.join(args)}: {res.stderr.strip()}")


def _private_mounts(spec: dict) -> None:
    for ov in spec.get("overlays", []):
        target = ov["target"]
        lower = ":".join([*ov["lower"], target])
        name = f"cleartext-lab{target.replace('/', '-')}"
        _mount("-t", "overlay", name, "-o", f"ro,lowerdir={lower}", target)
    keep = [os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in spec.get("keep", [])]
    _mount("-t", "tmpfs", "-o", "mode=0755,size=16m", "cleartext-lab-run", "/run")
    for d in spec.get("run_dirs", []):
        Path(d).mkdir(parents=True, exist_ok=True)
    for path, fd in zip(spec.get("keep", []), keep, strict=True):
        Path(path).mkdir(parents=True, exist_ok=True)
        # mount(2) itself: mount(8) would canonicalize /proc/self/fd/N to the path, now on the tmpfs.
        if LIBC.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND, None) != 0:
            raise SystemExit(f"nsrun: bind {path}: {os.strerror(ctypes.get_errno())}")
        os.close(fd)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: nsrun.py SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(sys.argv[1]).read_text())
    before = os.readlink("/proc/self/ns/mnt")
    _unshare_mounts()
    if os.readlink("/proc/self/ns/mnt") == before:
        raise SystemExit("nsrun: still in the mount namespace it started in; nothing mounted")
    _private_mounts(spec)
    children: list[subprocess.Popen] = []
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for cmd in spec["commands"]:
        with open(cmd["log"], "ab") as log:
            children.append(subprocess.Popen(cmd["argv"], env=cmd.get("env", {}), stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, close_fds=True))
        time.sleep(float(cmd.get("settle", 0)))
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.2)
    for c in children:
        if c.poll() is None:
            c.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for c in children:
        try:
            c.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.kill()
            c.wait(timeout=2)
    return 0 if stopping else 1


if __name__ == "__main__":
    sys.exit(main())
