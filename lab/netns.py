#!/usr/bin/env python3
"""The lab's own network namespace: a loopback of its own, where nothing on the host can clash.

The lab's servers listen on 127.0.0.2-11 ports 25, 110, 143, 465, 587, 993, 995 -- the ports a real mail
host's own Dovecot or Postfix holds on 0.0.0.0. In a network namespace of its own the lab has its own
loopback: the host's daemons neither see it nor are seen by it, and nothing needs to be stopped to make
room. The scanner, the tests and the demo enter the same namespace to reach the lab, so every packet they
send stays on that loopback (the namespace has no other interface).

    python3 lab/netns.py exec NAME -- COMMAND...    run COMMAND inside namespace NAME (made if absent)

Entering is ``setns(2)`` on the calling process only: unlike ``ip netns exec`` it keeps the mount
namespace, so a namespace made from inside is visible (by its /run/netns name) to everyone afterwards.
Standard library only (it runs before the project's venv exists).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
IP = shutil.which("ip", path="/usr/sbin:/usr/bin:/sbin:/bin") or "ip"


class NetnsError(RuntimeError):
    """A one-line reason a namespace could not be made or entered."""


def path(name: str) -> Path:
    return NETNS_DIR / name


def exists(name: str) -> bool:
    try:
        return os.stat(path(name)).st_dev != os.stat(NETNS_DIR).st_dev  # a bind mount of an nsfs inode
    except OSError:
        return False


def _inode(p: str | Path) -> tuple[int, int]:
    st = os.stat(p)
    return st.st_dev, st.st_ino


def inside(name: str) -> bool:
    """This process (its main thread) is in namespace ``name``."""
    try:
        return _inode(path(name)) == _inode("/proc/self/ns/net")
    except OSError:
        return False


def holds(name: str, pid: int) -> bool:
    """Process ``pid`` lives in namespace ``name``."""
    try:
        return _inode(path(name)) == _inode(f"/proc/{pid}/ns/net")
    except OSError:
        return False


def of(pid: int) -> str | None:
    """An identity of the namespace process ``pid`` lives in ("dev:inode"), or None if it is gone."""
    try:
        dev, ino = _inode(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    return f"{dev}:{ino}"


def members(name: str) -> list[int]:
    """Every process in namespace ``name``."""
    try:
        ns = _inode(path(name))
    except OSError:
        return []
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if _inode(f"/proc/{d}/ns/net") == ns:
                    out.append(int(d))
            except OSError:
                continue
    return out


def _ip(*args: str) -> None:
    try:
        res = subprocess.run([IP, *args], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsError(f"ip {' '.join(args)}: {exc}") from None
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise NetnsError(f"ip {' '.join(args)}: {msg[-1] if msg else 'exit ' + str(res.returncode)}")


def ensure(name: str) -> None:
    """Make namespace ``name`` with its loopback up (idempotent). Needs root and iproute2."""
    if not exists(name):
        _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")


def enter(name: str) -> None:
    """Move this process into namespace ``name``: sockets opened from now on, and every thread and child
    started from now on, are in it. Call it before other threads exist (they would stay outside)."""
    if inside(name):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    try:
        fd = os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NetnsError(f"cannot open {path(name)}: {exc.strerror}") from None
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise NetnsError(f"setns({path(name)}): {os.strerror(err)}")
    finally:
        os.close(fd)


def delete(name: str) -> None:
    """Remove the name (the namespace itself lives on while a process is in it)."""
    if exists(name):
        _ip("netns", "delete", name)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "exec" or argv[2] != "--":
        print("usage: netns.py exec NAME -- COMMAND...", file=sys.stderr)
        return 2
    name, cmd = argv[1], argv[3:]
    try:
        ensure(name)
        enter(name)
    except NetnsError as exc:
        print(f"netns: {exc}", file=sys.stderr)
        return 1
    try:
        os.execvp(cmd[0], cmd)
    except OSError as exc:
        print(f"netns: {cmd[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
