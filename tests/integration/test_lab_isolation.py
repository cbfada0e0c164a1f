"""The lab touches only what it started: a machine's own Dovecot and Postfix survive it.

A network namespace of the test's own plays "this machine": a Dovecot on 0.0.0.0 (IMAP, POP3) and a
Postfix on 0.0.0.0:25 and 127.0.0.1:587 run there, started the way a distribution runs them. From inside
that namespace, as a user on such a machine would, a second lab (its own instance name) is started, the
demo is run against it, and the lab is stopped. The machine's servers must keep their PIDs and keep
answering. The lab's earlier code stopped any Dovecot or Postfix on a mail port of 0.0.0.0 or 127/8.

The test stops only the processes it recorded starting (and what they started); its namespace goes away
with them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, load_labctl

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces and mail daemons need root"),
]

NETNS_PY = ROOT / "lab" / "netns.py"
PYTHON = sys.executable
DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin") or "/usr/sbin/dovecot"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
SYSTEM_BINDS = {("0.0.0.0", 143), ("0.0.0.0", 110), ("0.0.0.0", 25), ("127.0.0.1", 587)}
GREETING = {143: b"* OK", 110: b"+OK", 25: b"220", 587: b"220"}


def in_ns(ns: str, *cmd: str, env: dict[str, str] | None = None, timeout: float = 120,
          ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(NETNS_PY), "exec", ns, "--", *cmd], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def start_daemon(ns: str, log: Path, *cmd: str) -> None:
    """Run a daemon's start command in ``ns``; its output goes to a file (a daemon keeps a pipe open)."""
    with open(log, "wb") as fh:
        res = subprocess.run([PYTHON, str(NETNS_PY), "exec", ns, "--", *cmd], stdout=fh,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=60)
    assert res.returncode == 0, log.read_text(errors="replace")[-2000:] + " ".join(cmd)


def dovecot_conf(d: Path) -> str:
    return f"""\
base_dir = {d}/base
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap pop3
listen = *
ssl = no
disable_plaintext_auth = no
passdb {{
  driver = static
  args = password=unused
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/home/%n
}}
"""


def postfix_main(d: Path) -> str:
    return f"""\
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
inet_protocols = ipv4
inet_interfaces = all
myhostname = production.example
mydestination =
maillog_file = {d}/postfix.log
maillog_file_prefixes = {d}
alias_maps =
alias_database =
local_recipient_maps =
smtpd_relay_restrictions = reject
"""


POSTFIX_MASTER_CF = """\
smtp      inet  n       -       n       -       -       smtpd
127.0.0.1:587 inet n    -       n       -       -       smtpd
anvil     unix  -       -       n       -       1       anvil
rewrite   unix  -       -       n       -       -       trivial-rewrite
cleanup   unix  n       -       n       -       0       cleanup
postlog   unix-dgram n  -       n       -       1       postlogd
proxymap  unix  -       -       n       -       -       proxymap
"""


def greets(ns: str, address: str, port: int) -> bool:
    code = (f"import socket; s = socket.create_connection(({address!r}, {port}), timeout=5); "
            f"s.settimeout(5); print(s.recv(64)[:4].decode(errors='replace'))")
    res = in_ns(ns, PYTHON, "-c", code, timeout=30)
    return res.returncode == 0 and res.stdout.strip().encode().startswith(GREETING[port][:3])


def assert_untouched(machine: dict[str, Any]) -> None:
    labctl = load_labctl()
    for name, pid in machine["pids"].items():
        same = labctl._alive(pid) and labctl._start_time(pid) == machine["starts"][name]
        assert same, f"the machine's {name} (pid {pid}) was stopped"


@pytest.fixture
def machine() -> Iterator[dict[str, Any]]:
    """A namespace with a 'production' Dovecot and Postfix in it; stopped afterwards by recorded PID."""
    labctl = load_labctl()
    ns = f"ct-host-{secrets.token_hex(3)}"
    root = Path(tempfile.mkdtemp(prefix="cleartext-system-mail-"))
    os.chmod(root, 0o755)
    started: dict[str, int] = {}
    try:
        dv = root / "dovecot"
        for sub in ("base", "state", "home"):
            (dv / sub).mkdir(parents=True)
        (dv / "dovecot.conf").write_text(dovecot_conf(dv))
        start_daemon(ns, root / "dovecot.out", DOVECOT, "-c", str(dv / "dovecot.conf"))
        started["dovecot"] = int((dv / "base" / "master.pid").read_text().split()[0])
        pf = root / "postfix"
        queue = pf / "queue"
        for sub in ("pid", "public", "private", "incoming", "active", "deferred", "defer", "bounce",
                    "trace", "flush", "corrupt", "hold", "saved", "maildrop"):
            (queue / sub).mkdir(parents=True)
            if sub not in ("pid",):
                shutil.chown(queue / sub, "postfix", "postdrop" if sub == "public" else None)
        (pf / "data").mkdir()
        shutil.chown(pf / "data", "postfix")
        (pf / "main.cf").write_text(postfix_main(pf))
        (pf / "master.cf").write_text(POSTFIX_MASTER_CF)
        start_daemon(ns, root / "postfix.out", POSTFIX_MASTER, "-c", str(pf), "-w")
        started["postfix"] = int((queue / "pid" / "master.pid").read_text().split()[0])
        for _ in range(50):
            if all(greets(ns, a, p) for a, p in SYSTEM_BINDS):
                break
            time.sleep(0.2)
        yield {"ns": ns, "pids": started, "starts": {k: labctl._start_time(v) for k, v in started.items()}}
    finally:
        leaders = {pid: labctl._start_time(pid) for pid in started.values()}
        labctl._terminate([*leaders, *labctl._descendants(leaders)])
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def test_a_machines_own_mail_servers_survive_lab_start_demo_and_stop(machine: dict[str, Any]) -> None:
    ns = machine["ns"]
    assert all(greets(ns, a, p) for a, p in SYSTEM_BINDS), "the 'production' servers did not come up"
    instance = {"CLEARTEXT_LAB_INSTANCE": f"ct-iso-{secrets.token_hex(3)}"}
    try:
        res = in_ns(ns, PYTHON, "lab/labctl.py", "start", env=instance)
        assert res.returncode == 0, res.stderr
        assert "network namespace" in res.stdout
        demo = in_ns(ns, PYTHON, "lab/labctl.py", "exec", "--", "bash", "scripts/demo", env=instance,
                     timeout=300)
        assert demo.returncode == 0, demo.stderr[-2000:]
        assert "EXPOSED: passwords can be sent before TLS" in demo.stdout
    finally:
        res = in_ns(ns, PYTHON, "lab/labctl.py", "stop", env=instance)
    assert res.returncode == 0, res.stderr
    assert_untouched(machine)
    assert all(greets(ns, a, p) for a, p in SYSTEM_BINDS)


def test_without_a_namespace_the_lab_names_the_holder_and_stops_nothing(machine: dict[str, Any]) -> None:
    ns = machine["ns"]
    env = {"CLEARTEXT_LAB_INSTANCE": f"ct-iso-{secrets.token_hex(3)}", "CLEARTEXT_LAB_NETNS": "0"}
    res = in_ns(ns, PYTHON, "lab/labctl.py", "start", env=env)
    in_ns(ns, PYTHON, "lab/labctl.py", "stop", env=env)
    assert res.returncode == 1
    assert "is held by pid" in res.stderr and "stops only what it started" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert_untouched(machine)
