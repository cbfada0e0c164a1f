#!/usr/bin/env python3
"""Start, stop and describe the lab: real mail servers on a loopback of their own, for cleartext's tests
and demo.

    python3 lab/labctl.py start|stop|status|manifest|path
    python3 lab/labctl.py exec -- COMMAND...     run COMMAND where the lab is reachable

Standard library only (it runs before the project's venv exists).

**Isolation.** The lab runs in a network namespace of its own (lab/netns.py), named after this clone, so a
mail server already on this machine -- a production Postfix on 0.0.0.0:25 -- and the lab never meet: both
bind port 25, on different loopbacks. Whatever talks to the lab (the tests, the demo, ``exec``) enters
that namespace. Without namespaces (not root, no iproute2, a container without CAP_SYS_ADMIN, or
``CLEARTEXT_LAB_NETNS=0``) the lab binds the host's 127.0.0.2-11 and fails with the holder's name if a port
is taken. Either way the lab **signals only processes it recorded when it started them** (the ledger
``pids.json``): never a system service, never a process found by its name or port.

**State.** Certificates, configurations, logs, pid files, sockets and mail homes go to
``/run/cleartext-lab/<instance>/`` (root-owned, world-traversable): Dovecot's and Postfix's unprivileged
processes must reach them, and a clone may sit under a 0700 directory such as /root. ``lab/run`` is a
symlink to it, for people. ``CLEARTEXT_LAB_INSTANCE`` names a second, independent lab for the same clone.

The lab is six Dovecot instances (one per profile, each with its own config file), one Postfix
instance (its own config directory, one ``smtpd`` service per address:port), one Exim daemon and Courier's
IMAP and POP3 (unpacked Debian packages, Courier in a mount namespace of its own: lab/nsrun.py), two
``openssl s_server`` processes and lab/hostile.py. Every endpoint's manifest entry says what a real login
does before TLS (``plaintext_login``) and whether the capabilities offer one (``advertised``). Servers listen
on 127.0.0.2 .. 127.0.0.11 only, never on 127.0.0.1: clients
connect from 127.0.0.1 (the kernel's source address for 127/8 destinations), so Dovecot does not treat
them as "secured" (it does when the client address equals the server address). See lab/README.md.

Importable: ``start()``, ``stop()``, ``status()``, ``manifest()``, ``enter()`` and ``ENDPOINTS``.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import grp
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB_DIR))
try:
    import netns
finally:
    sys.path.remove(str(LAB_DIR))

# One lab per clone (or per CLEARTEXT_LAB_INSTANCE): its namespace, state directory and lock.
INSTANCE = os.environ.get("CLEARTEXT_LAB_INSTANCE") or (
    "cleartext-lab-" + hashlib.sha256(str(LAB_DIR).encode()).hexdigest()[:8])
STATE_ROOT = Path("/run/cleartext-lab")
RUN = STATE_ROOT / INSTANCE
RUN_LINK = LAB_DIR / "run"  # for people: lab/run -> RUN (the default instance only)
CERTS = RUN / "certs"
CA_FILE = CERTS / "ca.pem"
MANIFEST_FILE = RUN / "manifest.json"
FINGERPRINT_FILE = RUN / "labctl.sha256"
LEDGER_FILE = RUN / "pids.json"
LOCK_FILE = STATE_ROOT / f"{INSTANCE}.lock"
NETNS = INSTANCE

CLIENT_ADDRESS = "127.0.0.1"  # where clients connect from; no server listens here
MAIL_HOSTNAME = "mail.lab.example"
LEGACY_HOSTNAME = "legacy.lab.example"
# The dummy credentials every Dovecot passdb accepts (any user name, this password).
LOGIN_USER = "labuser"
LOGIN_PASSWORD = "lab-password"

START_TIMEOUT = 30.0  # seconds for every endpoint to greet after the servers were started
STOP_TIMEOUT = 10.0  # seconds for a server to exit after SIGTERM, before SIGKILL
MAIL_PORTS = (25, 110, 143, 465, 587, 993, 995)

DOVECOT = shutil.which("dovecot", path="/usr/sbin:/usr/bin:/sbin:/bin") or "/usr/sbin/dovecot"
POSTFIX_MASTER = "/usr/lib/postfix/sbin/master"
OPENSSL = shutil.which("openssl", path="/usr/bin:/bin:/usr/local/bin") or "openssl"

# Cipher choices. STRONG is used where a profile must produce no TLS finding: ECDHE key exchange with
# AEAD ciphers only (TLS 1.3 suites are configured separately and are all strong).
STRONG_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
LEGACY_CIPHERS = "ALL:@SECLEVEL=0"  # TLS 1.0/1.1, 3DES, static RSA (and anonymous) are all accepted


# Ground truth for the scanner's login verdict: what a real login with the lab account does.
ACCEPTED, REFUSED, NONE = "accepted", "refused", "none"


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    protocol: str  # smtp | pop3 | imap
    # starttls: a plain connection, STARTTLS offered or not. implicit: the port starts with a TLS
    # handshake. plaintext: an implicit-TLS port (465/993/995) whose server speaks in clear.
    tls: str
    server: str  # dovecot | postfix | openssl | exim | courier
    profile: str
    hostname: str | None  # the name the served certificate is for; None when no TLS at all
    description: str
    # What a real login with the lab account does before any TLS (tests/integration/test_lab_logins.py
    # checks it with LOGIN + AUTHENTICATE PLAIN, USER/PASS + AUTH PLAIN, AUTH PLAIN):
    #   accepted -- the password is taken in clear; refused -- a login exists but is refused before TLS;
    #   none -- no login at all before TLS (no AUTH on an MX port, no plaintext phase on implicit TLS).
    plaintext_login: str = NONE
    # Whether the capabilities before TLS offer a login: IMAP without LOGINDISABLED or with an AUTH=
    # mechanism, POP3 CAPA with USER or a SASL mechanism, SMTP EHLO with AUTH and a mechanism. False
    # where there is no plaintext phase.
    advertised: bool = False
    tls_login: str = NONE  # the same login after STARTTLS or on implicit TLS: accepted | none

    @property
    def name(self) -> str:
        return f"{self.profile}/{self.server}/{self.protocol}@{self.address}:{self.port}"

    def as_dict(self) -> dict:
        return {
            "address": self.address,
            "port": self.port,
            "protocol": self.protocol,
            "tls": self.tls,
            "server": self.server,
            "profile": self.profile,
            "hostname": self.hostname,
            "description": self.description,
            "plaintext_login": self.plaintext_login,
            "advertised": self.advertised,
            "tls_login": self.tls_login,
        }


@dataclass(frozen=True)
class DovecotProfile:
    name: str
    address: str
    ssl: str  # no | yes | required
    disable_plaintext_auth: bool
    cert: str | None  # "mail" | "legacy" | None
    min_protocol: str
    ciphers: str
    summary: str
    # A fixed pre-login CAPABILITY (Dovecot's imap_capability); Dovecot still appends STARTTLS,
    # LOGINDISABLED and the AUTH= mechanisms it allows.
    imap_capability: str = ""
    # ssl = no, and the 993/995 listeners speak plaintext (an admin who set their ports and forgot TLS);
    # 143 and 110 are not served.
    plaintext_on_tls_ports: bool = False

    def plaintext_ok(self) -> bool:
        """Dovecot takes a password before TLS (client_check_plaintext_auth, login-common)."""
        return not self.disable_plaintext_auth and self.ssl != "required"

    def advertised(self, protocol: str) -> bool:
        """What Dovecot's pre-TLS capabilities say: POP3 lists USER whenever disable_plaintext_auth is
        no, even when ssl = required refuses it; IMAP shows LOGINDISABLED and no mechanism unless login
        works, but a fixed imap_capability may name AUTH= mechanisms anyway."""
        if protocol == "pop3":
            return not self.disable_plaintext_auth
        return self.plaintext_ok() or "AUTH=" in self.imap_capability


# A pre-login capability copied from what Dovecot shows after login: it names AUTH= mechanisms that
# ssl = required refuses before TLS.
COPIED_IMAP_CAPABILITY = "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN"

DOVECOT_PROFILES = (
    DovecotProfile(
        "plaintext", "127.0.0.2", "no", False, None, "TLSv1.2", STRONG_CIPHERS,
        "no TLS at all; plaintext LOGIN/USER/AUTH PLAIN allowed",
    ),
    DovecotProfile(
        "starttls-optional", "127.0.0.3", "yes", False, "mail", "TLSv1.2", STRONG_CIPHERS,
        "good TLS, but login is allowed before STARTTLS",
    ),
    DovecotProfile(
        "tls-required", "127.0.0.4", "required", True, "mail", "TLSv1.2", STRONG_CIPHERS,
        "TLS required before login (LOGINDISABLED / no USER before STARTTLS); should yield no finding",
    ),
    DovecotProfile(
        "legacy", "127.0.0.5", "yes", True, "legacy", "TLSv1", LEGACY_CIPHERS,
        "expired self-signed 1024-bit SHA-1 certificate, TLS 1.0+, weak ciphers (3DES, static RSA, anon)",
    ),
    DovecotProfile(
        "refused-login", "127.0.0.10", "required", False, "mail", "TLSv1.2", STRONG_CIPHERS,
        "ssl = required with disable_plaintext_auth = no and a fixed imap_capability: POP3 lists USER and "
        "IMAP names AUTH=PLAIN before TLS, and both refuse any login until TLS",
        imap_capability=COPIED_IMAP_CAPABILITY,
    ),
    DovecotProfile(
        "plaintext-on-tls-port", "127.0.0.11", "no", False, None, "TLSv1.2", STRONG_CIPHERS,
        "imaps/pop3s listeners on 993/995 with ssl = no: IMAP and POP3 in clear on the implicit-TLS ports",
        plaintext_on_tls_ports=True,
    ),
)
SASL_PROFILE = "plaintext"  # the Dovecot instance whose auth socket Postfix uses for SMTP AUTH


@dataclass(frozen=True)
class SmtpService:
    address: str
    port: int
    profile: str
    level: str  # none | may | encrypt
    wrapper: bool
    sasl: bool
    auth_only: bool
    cert: str | None
    protocols: str
    ciphers: str
    summary: str
    # smtpd_sasl_exceptions_networks = the client's address: EHLO never shows AUTH to it, yet AUTH works.
    exceptions: bool = False

    def plaintext_login(self) -> str:
        """Postfix answers AUTH before TLS with 503 "authentication not enabled" unless SASL is on and
        smtpd_tls_auth_only is off (smtpd.c auth_cmd); smtpd_sasl_exceptions_networks only hides it."""
        if not self.sasl or self.wrapper:
            return NONE
        return REFUSED if self.auth_only else ACCEPTED


SMTP_SERVICES = (
    SmtpService("127.0.0.2", 25, "plaintext", "none", False, False, False, None, "", "",
                "no STARTTLS, no AUTH"),
    SmtpService("127.0.0.2", 587, "plaintext", "none", False, True, False, None, "", "",
                "no STARTTLS; AUTH PLAIN LOGIN offered in clear"),
    SmtpService("127.0.0.3", 25, "starttls-optional", "may", False, True, False, "mail", ">=TLSv1.2",
                STRONG_CIPHERS, "STARTTLS offered, AUTH offered before STARTTLS"),
    SmtpService("127.0.0.3", 587, "starttls-optional", "may", False, True, False, "mail", ">=TLSv1.2",
                STRONG_CIPHERS, "STARTTLS offered, AUTH offered before STARTTLS"),
    SmtpService("127.0.0.4", 25, "tls-required", "may", False, False, False, "mail", ">=TLSv1.2",
                STRONG_CIPHERS, "opportunistic STARTTLS (MX style), no AUTH"),
    SmtpService("127.0.0.4", 587, "tls-required", "encrypt", False, True, True, "mail", ">=TLSv1.2",
                STRONG_CIPHERS, "STARTTLS required; AUTH only after STARTTLS"),
    SmtpService("127.0.0.4", 465, "tls-required", "encrypt", True, True, True, "mail", ">=TLSv1.2",
                STRONG_CIPHERS, "implicit TLS (submissions), AUTH inside TLS"),
    SmtpService("127.0.0.5", 25, "legacy", "may", False, False, False, "legacy", ">=TLSv1",
                LEGACY_CIPHERS, "STARTTLS with TLS 1.0+, weak ciphers, expired 1024-bit cert; no AUTH"),
    SmtpService("127.0.0.5", 465, "legacy", "encrypt", True, True, True, "legacy", ">=TLSv1",
                LEGACY_CIPHERS, "implicit TLS 1.0+, weak ciphers, expired 1024-bit cert; AUTH inside TLS"),
    SmtpService("127.0.0.8", 587, "hidden-login", "may", False, True, False, "mail", ">=TLSv1.2",
                STRONG_CIPHERS, "smtpd_sasl_exceptions_networks covers the client: no AUTH in EHLO, before "
                "or after STARTTLS, yet AUTH PLAIN succeeds in clear", exceptions=True),
    SmtpService("127.0.0.11", 465, "plaintext-on-tls-port", "none", False, True, False, None, "", "",
                "port 465 without smtpd_tls_wrappermode: a 220 greeting and AUTH PLAIN LOGIN in clear"),
)


@dataclass(frozen=True)
class EximService:
    """One address:port of the lab's Exim (exim4-daemon-light, unpacked; one daemon for all of them)."""

    address: str
    port: int
    profile: str
    mode: str  # hidden: AUTH shown only under TLS, accepted anyway | refused: shown, denied in clear
    summary: str


EXIM_SERVICES = (
    EximService("127.0.0.8", 25, "hidden-login", "hidden",
                "auth_advertise_hosts empty before TLS, and `control = allow_auth_unadvertised` in the HELO "
                "ACL: no AUTH in EHLO, yet AUTH PLAIN succeeds in clear"),
    EximService("127.0.0.9", 587, "refused-login", "refused",
                "AUTH PLAIN LOGIN advertised before TLS; acl_smtp_auth denies it unless encrypted (538)"),
)


@dataclass(frozen=True)
class CourierService:
    """One address:port of the lab's Courier (courier-imap / courier-pop, unpacked, run by lab/nsrun.py in a
    mount namespace of its own). ``env`` are the /etc/courier/imapd or pop3d settings that differ from
    Debian's defaults."""

    address: str
    port: int
    protocol: str  # imap | pop3
    profile: str
    env: tuple[tuple[str, str], ...]
    plaintext_login: str
    advertised: bool
    summary: str


# Debian's default IMAP_CAPABILITY (/etc/courier/imapd): no AUTH= before TLS, AUTH=PLAIN after.
COURIER_IMAP_CAPABILITY = ("IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES "
                           "SORT QUOTA IDLE")

COURIER_SERVICES = (
    CourierService("127.0.0.8", 143, "imap", "hidden-login",
                   (("IMAP_CAPABILITY", COURIER_IMAP_CAPABILITY + " LOGINDISABLED"),
                    ("IMAP_TLS_REQUIRED", "0")),
                   ACCEPTED, False,
                   "IMAP_CAPABILITY names LOGINDISABLED (and no AUTH=) while IMAP_TLS_REQUIRED=0: LOGIN and "
                   "AUTHENTICATE PLAIN succeed in clear"),
    CourierService("127.0.0.9", 143, "imap", "refused-login",
                   (("IMAP_CAPABILITY", COURIER_IMAP_CAPABILITY + " AUTH=PLAIN"), ("IMAP_TLS_REQUIRED", "1")),
                   REFUSED, True,
                   "IMAP_CAPABILITY names AUTH=PLAIN while IMAP_TLS_REQUIRED=1: LOGINDISABLED and AUTH=PLAIN "
                   "both shown, every login refused until STARTTLS (NO STARTTLS required)"),
    CourierService("127.0.0.9", 110, "pop3", "refused-login",
                   (("POP3AUTH", "PLAIN LOGIN"), ("POP3AUTH_TLS", "PLAIN LOGIN"), ("POP3_TLS_REQUIRED", "1")),
                   REFUSED, True,
                   "POP3_TLS_REQUIRED=1: CAPA still lists USER and SASL PLAIN LOGIN, and USER and AUTH get "
                   "-ERR TLS required to log in"),
)


@dataclass(frozen=True)
class SServer:
    name: str
    address: str
    port: int
    protocol: str
    args: tuple[str, ...]  # protocol/cipher options for openssl s_server
    summary: str


SSERVERS = (
    SServer("tls10-only-993", "127.0.0.6", 993, "imap",
            ("-no_tls1_2", "-no_tls1_3", "-cipher", "ECDHE+AES:@SECLEVEL=0"),
            "TLS 1.0 and 1.1 only (ECDHE-RSA-AES-CBC suites); TLS layer only, no IMAP after the handshake"),
    SServer("tls10-only-995", "127.0.0.6", 995, "pop3",
            # Anonymous suites, and NULL encryption with ECDHE (not NULL-SHA256 & co.: those are also
            # static RSA, a third weak class this port is not meant to show).
            ("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256:aNULL:ECDHE-RSA-NULL-SHA:@SECLEVEL=0"),
            "TLS 1.2 only; accepts anonymous (ADH/AECDH) and NULL-encryption (ECDHE-RSA-NULL-SHA, "
            "AECDH-NULL-SHA) suites besides one ECDHE-RSA-AES128-GCM suite; TLS layer only, no POP3 "
            "after the handshake"),
)


IMPLICIT_TLS_PORTS = (465, 993, 995)


def _build_endpoints() -> tuple[Endpoint, ...]:
    eps: list[Endpoint] = []
    host_of = {"mail": MAIL_HOSTNAME, "legacy": LEGACY_HOSTNAME, None: None}
    for p in DOVECOT_PROFILES:
        tls_login = NONE if p.ssl == "no" else ACCEPTED
        for proto, plain_port, tls_port in (("imap", 143, 993), ("pop3", 110, 995)):
            plain = (ACCEPTED if p.plaintext_ok() else REFUSED), p.advertised(proto), tls_login
            if p.plaintext_on_tls_ports:
                eps.append(Endpoint(p.address, tls_port, proto, "plaintext", "dovecot", p.name, None,
                                    p.summary, *plain))
                continue
            eps.append(Endpoint(p.address, plain_port, proto, "starttls", "dovecot", p.name,
                                host_of[p.cert], p.summary, *plain))
            if p.ssl != "no":
                eps.append(Endpoint(p.address, tls_port, proto, "implicit", "dovecot", p.name,
                                    host_of[p.cert], p.summary, NONE, False, ACCEPTED))
    for s in SMTP_SERVICES:
        tls = "implicit" if s.wrapper else "plaintext" if s.port in IMPLICIT_TLS_PORTS else "starttls"
        advertised = s.plaintext_login() == ACCEPTED and not s.exceptions
        tls_login = ACCEPTED if s.sasl and s.level != "none" else NONE
        eps.append(Endpoint(s.address, s.port, "smtp", tls, "postfix", s.profile, host_of[s.cert], s.summary,
                            s.plaintext_login(), advertised, tls_login))
    for x in EXIM_SERVICES:
        hidden = x.mode == "hidden"
        eps.append(Endpoint(x.address, x.port, "smtp", "starttls", "exim", x.profile, MAIL_HOSTNAME,
                            x.summary, ACCEPTED if hidden else REFUSED, not hidden, ACCEPTED))
    for c in COURIER_SERVICES:
        eps.append(Endpoint(c.address, c.port, c.protocol, "starttls", "courier", c.profile, MAIL_HOSTNAME,
                            c.summary, c.plaintext_login, c.advertised, ACCEPTED))
    for o in SSERVERS:
        eps.append(Endpoint(o.address, o.port, o.protocol, "implicit", "openssl", "tls10-only",
                            MAIL_HOSTNAME, o.summary))
    return tuple(sorted(eps, key=lambda e: (tuple(int(x) for x in e.address.split(".")), e.port)))


ENDPOINTS = _build_endpoints()


class LabError(RuntimeError):
    """A one-line reason the lab could not be started."""


# --------------------------------------------------------------------------------------------------
# small helpers


def _run(cmd: list[str], timeout: float = 30.0, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                         **kw)
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise LabError(f"{' '.join(cmd[:3])} failed: {msg[-1] if msg else 'exit ' + str(res.returncode)}")
    return res


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return f"(no log at {path})"
    return " | ".join(text[-lines:]) if text else f"(empty log {path})"


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _ids(user: str) -> tuple[int, int]:
    pw = pwd.getpwnam(user)
    return pw.pw_uid, pw.pw_gid


def _mkdir(path: Path, mode: int = 0o755, owner: str | None = None, group_gid: int | None = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        uid, gid = _ids(owner)
        os.chown(path, uid, gid if group_gid is None else group_gid)
    return path


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.chmod(tmp, mode)
    tmp.replace(path)


def _fingerprint() -> str:
    return hashlib.sha256(Path(__file__).read_bytes() + HOSTILE_SCRIPT.read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------------------
# where the lab lives: its own network namespace, or the host's loopback


def _netns_wanted() -> str:
    """auto (default: a namespace when one can be made), on (must), off (the host's loopback)."""
    v = os.environ.get("CLEARTEXT_LAB_NETNS", "").strip().lower()
    return {"0": "off", "no": "off", "off": "off", "false": "off",
            "1": "on", "yes": "on", "on": "on", "true": "on"}.get(v, "auto")


_MODE: str | None = None  # "netns" or "host", decided once per process


def _mode() -> str:
    global _MODE
    if _MODE is None:
        wanted = _netns_wanted()
        if wanted == "off":
            _MODE = "host"
        else:
            try:
                if os.geteuid() != 0:
                    raise netns.NetnsError("network namespaces need root")
                netns.ensure(NETNS)
                _MODE = "netns"
            except netns.NetnsError as exc:
                if wanted == "on":
                    raise LabError(f"no network namespace for the lab: {exc}") from None
                print(f"labctl: no network namespace ({exc}); the lab uses this host's loopback "
                      "and stops nothing it did not start", file=sys.stderr)
                _MODE = "host"
    return _MODE


def enter() -> str:
    """Put this process where the lab is reachable: into the lab's namespace (made if need be), or
    nowhere in host mode. Returns the mode. Call it before starting threads: they would stay outside."""
    if _mode() == "netns":
        try:
            netns.enter(NETNS)
        except netns.NetnsError as exc:
            raise LabError(str(exc)) from None
    return _MODE or "host"


# --------------------------------------------------------------------------------------------------
# processes: the ledger of what the lab started, the only processes it ever signals


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, session, ..., starttime (19), ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _alive(pid: int) -> bool:
    f = _stat_fields(pid)
    return bool(f) and f[0] != "Z"  # a zombie is not alive for our purposes


def _start_time(pid: int) -> int | None:
    f = _stat_fields(pid)
    return int(f[19]) if len(f) > 19 else None


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _ledger() -> list[dict]:
    try:
        entries = json.loads(LEDGER_FILE.read_text())
    except (OSError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("pid"), int)]


def _record(name: str, pid: int | None) -> None:
    """Write down a process the lab just started: its pid and its start time (which tells it from a later
    process that reuses the pid) and the namespace it runs in."""
    if not pid:
        raise LabError(f"{name}: no pid to record (it did not start)")
    entries = [e for e in _ledger() if e.get("name") != name]
    entries.append({"name": name, "pid": pid, "start": _start_time(pid), "netns": netns.of(pid)})
    _write(LEDGER_FILE, json.dumps(entries, indent=1) + "\n")


def _is_recorded(entry: dict) -> bool:
    """The ledger's process still runs: same pid, same start time, same namespace."""
    pid = entry["pid"]
    if not (_alive(pid) and _start_time(pid) == entry.get("start")):
        return False
    return netns.of(pid) == entry.get("netns")


def _recorded_pids() -> dict[str, int]:
    """name -> pid of every process in the ledger that still runs."""
    return {e["name"]: e["pid"] for e in _ledger() if _is_recorded(e)}


def _descendants(leaders: dict[int, int | None]) -> list[int]:
    """Processes in the sessions our recorded leaders started (Dovecot and Postfix masters, s_server and
    hostile.py each lead a session of their own), started no earlier than their leader: a master's login,
    auth and smtpd children, which a master killed by SIGKILL would leave behind."""
    out = []
    for pid in _all_pids():
        f = _stat_fields(pid)
        if len(f) > 19 and pid != os.getpid():
            sid, start = int(f[3]), int(f[19])
            if sid in leaders and sid != pid and start >= (leaders[sid] or 0):
                out.append(pid)
    return out


def _terminate(pids: list[int], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the processes, wait (bounded) for them to exit, then SIGKILL what is left."""
    pids = [p for p in set(pids) if p > 1 and p != os.getpid() and _alive(p)]
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if pids:
            time.sleep(0.05)
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive(p)]
        if pids:
            time.sleep(0.05)


def _listeners() -> dict[int, list[tuple[str, int]]]:
    """inode -> [(address, port)] for every listening TCP socket (IPv4 and IPv6) of this namespace."""
    out: dict[int, list[tuple[str, int]]] = {}
    for fname, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(fname).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 10 or parts[3] != "0A":
                continue
            addr_hex, port_hex = parts[1].split(":")
            if v6:
                raw = bytes.fromhex(addr_hex)
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, raw)
            else:
                addr = socket.inet_ntoa(bytes.fromhex(addr_hex)[::-1])
            out.setdefault(int(parts[9]), []).append((addr, int(port_hex, 16)))
    return out


def _port_holders(ports: tuple[int, ...]) -> dict[int, list[tuple[str, int]]]:
    """pid -> [(address, port)] of this namespace's listening sockets on the given ports. Read-only: it
    names who holds a port (for an error message or a test), it never leads to a signal."""
    socks = {inode: [(a.removeprefix("::ffff:"), p) for a, p in binds if p in ports]
             for inode, binds in _listeners().items()}
    socks = {inode: b for inode, b in socks.items() if b}
    holders: dict[int, list[tuple[str, int]]] = {}
    for pid in _all_pids():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError, ValueError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and int(link[8:-1]) in socks:
                    holders.setdefault(pid, []).extend(socks[int(link[8:-1])])
    return holders


_WILDCARDS = ("0.0.0.0", "::")


def _check_ports_free() -> None:
    """Host mode: fail, naming the holder, if a lab address:port is taken; never stop anything."""
    lab_binds = {(e.address, e.port) for e in ENDPOINTS} | {
        (HOSTILE_ADDRESS, p.port) for p in _hostile_profiles()}
    ports = tuple(sorted({p for _, p in lab_binds}))
    for pid, binds in _port_holders(ports).items():
        for a, p in binds:
            if (a, p) in lab_binds or (a in _WILDCARDS and any(p == q for _, q in lab_binds)):
                cmd = " ".join(_cmdline(pid).split())[:80]
                raise LabError(f"{a}:{p} is held by pid {pid} ({cmd}); the lab stops only what it started. "
                               "Run it in a network namespace of its own (as root, with iproute2), or "
                               "free that port")


# --------------------------------------------------------------------------------------------------
# certificates


CA_CNF = """\
[ ca ]
default_ca = lab_ca
[ lab_ca ]
database = {db}
new_certs_dir = {dir}
serial = {serial}
policy = lab_policy
unique_subject = no
email_in_dn = no
[ lab_policy ]
commonName = supplied
[ legacy_ext ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:{legacy}
"""


def _cert_ok(cert: Path, key: Path, seconds: int = 86400) -> bool:
    if not (cert.exists() and key.exists()):
        return False
    res = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-noout", "-checkend", str(seconds)],
                         capture_output=True, stdin=subprocess.DEVNULL, timeout=10)
    return res.returncode == 0


def _make_certificates() -> None:
    """The lab CA, mail.lab.example (CA-signed, valid) and legacy.lab.example (self-signed, expired)."""
    _mkdir(CERTS, 0o755)
    ca_key, ca, mail_key, mail = CERTS / "ca.key", CA_FILE, CERTS / "mail.key", CERTS / "mail.pem"
    fresh_ca = False
    if not _cert_ok(ca, ca_key, 30 * 86400):
        _run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "3650",
              "-keyout", str(ca_key), "-out", str(ca), "-subj", "/O=cleartext lab/CN=cleartext lab CA",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign",
              "-addext", "subjectKeyIdentifier=hash"])
        fresh_ca = True
    if fresh_ca or not _cert_ok(mail, mail_key, 7 * 86400):
        csr = CERTS / "mail.csr"
        ext = CERTS / "mail.ext"
        _write(ext, "basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    f"subjectAltName=DNS:{MAIL_HOSTNAME}\n"
                    "authorityKeyIdentifier=keyid\n"
                    "subjectKeyIdentifier=hash\n")
        _run([OPENSSL, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(mail_key),
              "-out", str(csr), "-subj", f"/O=cleartext lab/CN={MAIL_HOSTNAME}"])
        _run([OPENSSL, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
              "-set_serial", str(int(time.time() * 1000)), "-days", "397", "-sha256",
              "-extfile", str(ext), "-out", str(mail)])
    legacy, legacy_key = CERTS / "legacy.pem", CERTS / "legacy.key"
    if not (legacy.exists() and legacy_key.exists()):
        _make_legacy_cert(legacy, legacy_key)
    dh = CERTS / "dh.pem"
    if not dh.exists():
        res = _run([OPENSSL, "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt", "group:ffdhe2048"])
        _write(dh, res.stdout)
    for k in (ca_key, mail_key, legacy_key):
        os.chmod(k, 0o600)


def _make_legacy_cert(cert: Path, key: Path) -> None:
    """Self-signed, 1024-bit RSA, SHA-1, notAfter yesterday: `openssl ca` takes explicit dates."""
    work = CERTS / "legacy-ca"
    shutil.rmtree(work, ignore_errors=True)
    _mkdir(work, 0o700)
    (work / "index.txt").write_text("")
    (work / "serial").write_text("1001\n")
    cnf = work / "ca.cnf"
    _write(cnf, CA_CNF.format(db=work / "index.txt", dir=work, serial=work / "serial",
                              legacy=LEGACY_HOSTNAME))
    csr = work / "legacy.csr"
    _run([OPENSSL, "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", str(key), "-out", str(csr),
          "-subj", f"/O=cleartext lab/CN={LEGACY_HOSTNAME}"])
    now = _dt.datetime.now(_dt.UTC)
    fmt = "%Y%m%d%H%M%SZ"
    start, end = (now - _dt.timedelta(days=400)).strftime(fmt), (now - _dt.timedelta(days=1)).strftime(fmt)
    # SHA-1 first; should some OpenSSL refuse it, SHA-256 (the certificate is still expired and weak).
    for md in ("sha1", "sha256"):
        res = subprocess.run([OPENSSL, "ca", "-batch", "-config", str(cnf), "-selfsign", "-keyfile", str(key),
                              "-in", str(csr), "-startdate", start, "-enddate", end, "-md", md,
                              "-extensions", "legacy_ext", "-notext", "-out", str(cert)],
                             capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        if res.returncode == 0:
            break
    else:
        raise LabError(f"openssl ca could not make the legacy certificate: {res.stderr.strip()[-200:]}")


# --------------------------------------------------------------------------------------------------
# Dovecot


def _dovecot_dir(name: str) -> Path:
    return RUN / "dovecot" / name


def _dovecot_conf(p: DovecotProfile) -> str:
    d = _dovecot_dir(p.name)
    lines = [
        "# Generated by lab/labctl.py -- edit labctl.py, not this file.",
        f"instance_name = cleartext-lab-{p.name}",
        f"base_dir = {d / 'base'}",
        f"state_dir = {d / 'state'}",
        f"log_path = {d / 'dovecot.log'}",
        f"info_log_path = {d / 'dovecot.log'}",
        f"debug_log_path = {d / 'dovecot.log'}",
        "protocols = imap pop3",
        f"listen = {p.address}",
        "shutdown_clients = yes",
        "login_trusted_networks =",
        f"login_greeting = Dovecot ready (cleartext lab: {p.name}).",
        f"ssl = {p.ssl}",
    ]
    if p.cert:
        lines += [
            f"ssl_cert = <{CERTS / (p.cert + '.pem')}",
            f"ssl_key = <{CERTS / (p.cert + '.key')}",
            f"ssl_dh = <{CERTS / 'dh.pem'}",
            f"ssl_min_protocol = {p.min_protocol}",
            f"ssl_cipher_list = {p.ciphers}",
            "ssl_prefer_server_ciphers = yes",
        ]
    if p.imap_capability:
        lines.append(f"imap_capability = {p.imap_capability}")
    # Ports: 143/110 in clear (STARTTLS when ssl != no), 993/995 with TLS -- or, for a profile that puts
    # plaintext on the implicit-TLS ports, 993/995 with the listener's ssl = no and no 143/110.
    plain_imap, plain_pop3 = (0, 0) if p.plaintext_on_tls_ports else (143, 110)
    tls_imap, tls_pop3 = (993, 995) if p.ssl != "no" or p.plaintext_on_tls_ports else (0, 0)
    tls_flag = "no" if p.plaintext_on_tls_ports else "yes"
    lines += [
        f"disable_plaintext_auth = {'yes' if p.disable_plaintext_auth else 'no'}",
        "auth_mechanisms = plain login",
        "auth_verbose = yes",
        "passdb {",
        "  driver = static",
        f"  args = password={LOGIN_PASSWORD}",
        "}",
        "userdb {",
        "  driver = static",
        f"  args = uid=nobody gid=nogroup home={d / 'home'}/%n",
        "}",
        "mail_location = maildir:~/Maildir",
        "service imap-login {",
        f"  inet_listener imap {{\n    address = {p.address}\n    port = {plain_imap}\n  }}",
        f"  inet_listener imaps {{\n    address = {p.address}\n    port = {tls_imap}\n"
        f"    ssl = {tls_flag}\n  }}",
        "}",
        "service pop3-login {",
        f"  inet_listener pop3 {{\n    address = {p.address}\n    port = {plain_pop3}\n  }}",
        f"  inet_listener pop3s {{\n    address = {p.address}\n    port = {tls_pop3}\n"
        f"    ssl = {tls_flag}\n  }}",
        "}",
    ]
    if p.name == SASL_PROFILE:
        lines += [
            "service auth {",
            "  unix_listener auth-userdb {\n    mode = 0600\n  }",
            f"  unix_listener {_sasl_socket()} {{\n    mode = 0660\n    user = postfix\n"
            "    group = postfix\n  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def _sasl_socket() -> Path:
    return _dovecot_dir(SASL_PROFILE) / "base" / "auth-postfix"


def _start_dovecot(p: DovecotProfile) -> None:
    d = _dovecot_dir(p.name)
    _mkdir(d)
    for sub in ("base", "state"):
        _mkdir(d / sub)
    nobody_uid, nogroup_gid = _ids("nobody")
    home = _mkdir(d / "home", 0o755)
    os.chown(home, nobody_uid, nogroup_gid)
    conf = d / "dovecot.conf"
    _write(conf, _dovecot_conf(p))
    # Dovecot daemonizes once its config is checked and its listeners are bound.
    # Its output goes to a file, not a pipe: the daemon would hold a pipe open.
    out = d / "start.out"
    with open(out, "wb") as fh:
        res = subprocess.run([DOVECOT, "-c", str(conf)], stdout=fh, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, timeout=30)
    if res.returncode != 0:
        err = out.read_text(errors="replace").strip().splitlines()
        why = err[-1] if err else f"exit {res.returncode}"
        raise LabError(f"dovecot {p.name} ({p.address}) did not start: {why} "
                       f"| log: {_tail(d / 'dovecot.log')}")
    # The daemon writes its pid file just after the starting process returns: wait for it (bounded).
    for _ in range(100):
        if _dovecot_pid(p.name):
            break
        time.sleep(0.05)
    _record(f"dovecot-{p.name}", _dovecot_pid(p.name))


def _dovecot_pid(name: str) -> int | None:
    return _read_pid(_dovecot_dir(name) / "base" / "master.pid")


# --------------------------------------------------------------------------------------------------
# Postfix


POSTFIX_MAIN = """\
# Generated by lab/labctl.py -- edit labctl.py, not this file.
# One Postfix instance for the lab: it receives SMTP dialogs and never delivers or relays anything.
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
inet_protocols = ipv4
# Postfix refuses inet_interfaces addresses that no interface carries (127.0.0.2.. are not configured on
# lo, they are merely routed to it). Every smtpd service in master.cf names its own address, so nothing
# listens on 127.0.0.1; no SMTP client runs.
inet_interfaces = loopback-only
myhostname = {hostname}
mydomain = lab.example
myorigin = $myhostname
mydestination =
mynetworks = 127.0.0.1/32
relay_domains =
relayhost =
local_recipient_maps =
alias_maps =
alias_database =
default_transport = error:the cleartext lab delivers nothing
local_transport = error:the cleartext lab delivers nothing
relay_transport = error:the cleartext lab delivers nothing
virtual_transport = error:the cleartext lab delivers nothing
smtpd_relay_restrictions = reject
smtpd_recipient_restrictions = reject
smtpd_banner = $myhostname ESMTP Postfix (cleartext lab)
biff = no
smtputf8_enable = no
maillog_file = {log}
maillog_file_prefixes = {run}
smtpd_sasl_type = dovecot
smtpd_sasl_path = {sasl}
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
smtpd_tls_security_level = none
smtpd_tls_auth_only = no
smtpd_tls_cert_file = {mail_cert}
smtpd_tls_key_file = {mail_key}
smtpd_tls_loglevel = 1
smtpd_tls_session_cache_database =
tls_preempt_cipherlist = yes
# Named values the per-service overrides in master.cf refer to.
lab_mail_cert = {mail_cert}
lab_mail_key = {mail_key}
lab_legacy_cert = {legacy_cert}
lab_legacy_key = {legacy_key}
lab_strong_ciphers = {strong}
lab_legacy_ciphers = {legacy}
"""

POSTFIX_MASTER_TAIL = """\
# Support services only: no qmgr, pickup or delivery agents run, so nothing is ever delivered.
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
anvil     unix  -       -       n       -       1       anvil
proxymap  unix  -       -       n       -       -       proxymap
rewrite   unix  -       -       n       -       -       trivial-rewrite
cleanup   unix  n       -       n       -       0       cleanup
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _postfix_dir() -> Path:
    return RUN / "postfix"


def _postfix_master_cf() -> str:
    out = ["# Generated by lab/labctl.py -- edit labctl.py, not this file.",
           "# service   type  private unpriv  chroot  wakeup  maxproc command + args"]
    for s in SMTP_SERVICES:
        o = [
            f"syslog_name=postfix/{s.profile}-{s.port}",
            f"smtpd_tls_security_level={s.level}",
            f"smtpd_tls_wrappermode={'yes' if s.wrapper else 'no'}",
            f"smtpd_sasl_auth_enable={'yes' if s.sasl else 'no'}",
            f"smtpd_tls_auth_only={'yes' if s.auth_only else 'no'}",
        ]
        if s.profile == "legacy":
            o.append(f"myhostname={LEGACY_HOSTNAME}")
        if s.exceptions:
            o.append(f"smtpd_sasl_exceptions_networks={CLIENT_ADDRESS}/32")
        if s.cert:
            o += [
                f"smtpd_tls_cert_file=$lab_{s.cert}_cert",
                f"smtpd_tls_key_file=$lab_{s.cert}_key",
                f"smtpd_tls_protocols={s.protocols}",
                f"smtpd_tls_mandatory_protocols={s.protocols}",
                "smtpd_tls_ciphers=high",
                "smtpd_tls_mandatory_ciphers=high",
                f"tls_high_cipherlist=$lab_{'legacy' if s.ciphers == LEGACY_CIPHERS else 'strong'}_ciphers",
            ]
        out.append(f"{s.address}:{s.port} inet n - n - - smtpd")
        out += [f"  -o {x}" for x in o]
    return "\n".join(out) + "\n" + POSTFIX_MASTER_TAIL


def _start_postfix() -> subprocess.Popen:
    d = _postfix_dir()
    _mkdir(d)
    postdrop_gid = grp.getgrnam("postdrop").gr_gid
    queue = _mkdir(d / "queue", 0o755)
    _mkdir(queue / "pid", 0o755)
    for sub in ("private", "incoming", "active", "deferred", "defer", "bounce", "trace", "flush",
                "corrupt", "hold", "saved", "maildrop"):
        _mkdir(queue / sub, 0o700, owner="postfix")
    _mkdir(queue / "public", 0o710, owner="postfix", group_gid=postdrop_gid)
    _mkdir(d / "data", 0o700, owner="postfix")
    _write(d / "main.cf", POSTFIX_MAIN.format(
        queue=queue, data=d / "data", hostname=MAIL_HOSTNAME, log=d / "postfix.log",
        run=RUN, sasl=_sasl_socket(), mail_cert=CERTS / "mail.pem", mail_key=CERTS / "mail.key",
        legacy_cert=CERTS / "legacy.pem", legacy_key=CERTS / "legacy.key", strong=STRONG_CIPHERS,
        legacy=LEGACY_CIPHERS))
    _write(d / "master.cf", _postfix_master_cf())
    log = d / "postfix.log"
    if not log.exists():
        log.touch()
    os.chown(log, 0, 0)
    # -w: a foreground process waits until the daemonized master has initialized, and reports failure.
    # It takes a couple of seconds, so it runs while the other servers start (see _finish_postfix).
    fh = open(d / "start.out", "wb")  # noqa: SIM115 -- closed in _finish_postfix
    try:
        return subprocess.Popen([POSTFIX_MASTER, "-c", str(d), "-w"], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    finally:
        fh.close()


def _finish_postfix(proc: subprocess.Popen) -> None:
    d = _postfix_dir()
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise LabError(f"postfix master did not finish starting in 30s | log: {_tail(d / 'postfix.log')}"
                       ) from None
    if rc != 0:
        err = (d / "start.out").read_text(errors="replace").strip().splitlines()
        why = err[-1] if err else f"exit {rc}"
        raise LabError(f"postfix did not start: {why} (errors before its log opens go to syslog; try "
                       f"`postfix -c {d} check`) | log: {_tail(d / 'postfix.log')}")
    for _ in range(100):
        if _postfix_pid():
            break
        time.sleep(0.05)
    _record("postfix", _postfix_pid())


def _postfix_pid() -> int | None:
    return _read_pid(_postfix_dir() / "queue" / "pid" / "master.pid")


# --------------------------------------------------------------------------------------------------
# Exim and Courier: Debian packages that conflict with Postfix and Dovecot, so they are never installed.
# scripts/install-system-deps downloads them and unpacks each into PKGS/<package> (a symlink to
# <package>-<version>); labctl runs the binaries from there with its own configuration.

PKGS = Path("/var/cache/cleartext-lab/pkgs")
EXIM = PKGS / "exim4-daemon-light" / "usr" / "sbin" / "exim4"
EXIM_USER = "Debian-exim"  # compiled into Debian's exim4: it will not start without that user
COURIER_USER = "courier"  # Courier runs couriertls as this user (MAILUSER, compiled in)
COURIER_PKGS = ("courier-authlib", "courier-authlib-userdb", "courier-authdaemon", "courier-base",
                "courier-imap", "courier-pop")
NSRUN = LAB_DIR / "nsrun.py"


def _exim_dir() -> Path:
    return RUN / "exim"


def _inlist(services: list[EximService]) -> str:
    return " : ".join(f"{x.address}.{x.port}" for x in services) or "none"


EXIM_CONF = """\
# Generated by lab/labctl.py -- edit labctl.py, not this file.
# One Exim daemon for the lab: it takes SMTP dialogs and delivers nothing (no routers, every RCPT denied).
exim_user = @user@
exim_group = @user@
keep_environment =
spool_directory = @dir@/spool
log_file_path = @dir@/%slog
pid_file_path = @dir@/exim.pid
primary_hostname = @hostname@
smtp_banner = $smtp_active_hostname ESMTP Exim $version_number (cleartext lab)
local_interfaces = <; @interfaces@
host_lookup =
rfc1413_hosts =
smtp_receive_timeout = 30s
smtp_accept_max = 50
queue_only = true
tls_advertise_hosts = *
tls_certificate = @dir@/mail.pem
tls_privatekey = @dir@/mail.key
# hidden: AUTH is advertised only under TLS -- but the HELO ACL allows AUTH unadvertised.
IFACE = $received_ip_address.$received_port
HIDDEN = @hidden@
REFUSED = @refused@
auth_advertise_hosts = ${if inlist{IFACE}{HIDDEN}{${if eq{$tls_in_cipher}{}{}{*}}}{*}}
acl_smtp_helo = acl_helo
acl_smtp_auth = acl_auth
acl_smtp_mail = acl_mail
acl_smtp_rcpt = acl_deny
acl_smtp_predata = acl_deny

begin acl

acl_helo:
  accept condition = ${if inlist{IFACE}{HIDDEN}}
         control = allow_auth_unadvertised
  accept

# refused: AUTH is advertised in clear, and denied unless encrypted (the Exim specification's own
# example of an AUTH ACL, "The SMTP AUTH ACL").
acl_auth:
  accept encrypted = *
  deny   condition = ${if inlist{IFACE}{REFUSED}}
         message = 538 5.7.11 Encryption required for requested authentication mechanism
  accept

acl_mail:
  accept

acl_deny:
  deny   message = the cleartext lab delivers nothing

begin authenticators

plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{@login_user@}}{eq{$auth3}{@login_password@}}}}
  server_set_id = $auth2

login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = ${if and{{eq{$auth1}{@login_user@}}{eq{$auth2}{@login_password@}}}}
  server_set_id = $auth1
"""


def _start_exim() -> None:
    d = _exim_dir()
    _mkdir(d)
    _mkdir(d / "spool", 0o750, owner=EXIM_USER)
    uid, gid = _ids(EXIM_USER)
    os.chown(d, 0, gid)
    os.chmod(d, 0o775)  # Exim's unprivileged children write its logs here
    # Exim reads its key after dropping to its own user: it gets a copy of its own.
    shutil.copyfile(CERTS / "mail.pem", d / "mail.pem")
    shutil.copyfile(CERTS / "mail.key", d / "mail.key")
    os.chown(d / "mail.key", uid, gid)
    os.chmod(d / "mail.key", 0o600)
    conf = d / "exim.conf"
    values = {"user": EXIM_USER, "dir": str(d), "hostname": MAIL_HOSTNAME,
              "interfaces": " ; ".join(f"{x.address}.{x.port}" for x in EXIM_SERVICES),
              "hidden": _inlist([x for x in EXIM_SERVICES if x.mode == "hidden"]),
              "refused": _inlist([x for x in EXIM_SERVICES if x.mode == "refused"]),
              "login_user": LOGIN_USER, "login_password": LOGIN_PASSWORD}
    text = EXIM_CONF  # @name@ placeholders: Exim's own syntax is all braces and dollars
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    _write(conf, text)
    # -C as root keeps root (exim.c); -bdf: a daemon in the foreground, so the pid is the one started.
    with open(d / "start.out", "ab") as fh:
        proc = subprocess.Popen([str(EXIM), "-C", str(conf), "-bdf"], stdin=subprocess.DEVNULL, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    _record("exim", proc.pid)


def _courier_dir() -> Path:
    return RUN / "courier"


def _courier_log(c: CourierService) -> Path:
    return _courier_dir() / f"{c.protocol}-{c.address}-{c.port}.log"


def _makedat(entries: str, out: Path) -> None:
    """Courier's userdb .dat files: gdbm, made by courier-authlib's makedatprog from "key<TAB>fields" lines
    ending with "." (what its makeuserdb script feeds it)."""
    prog = PKGS / "courier-authlib" / "usr" / "lib" / "courier" / "courier-authlib" / "makedatprog"
    tmp = out.with_name(out.name + ".tmp")
    res = subprocess.run([str(prog), "-", str(tmp), str(out)], input=entries + ".\n", capture_output=True,
                         text=True, timeout=30)
    if res.returncode != 0:
        raise LabError(f"makedatprog {out.name} failed: {(res.stderr or res.stdout).strip()[-200:]}")


def _start_courier() -> None:
    """Courier IMAP and POP3 with courier-authlib's authdaemond (userdb), in a mount namespace of their
    own (lab/nsrun.py): /usr shows the unpacked packages, /etc/courier the lab's authdaemonrc and userdb,
    /run/courier the daemon's socket. The system's /usr, /etc and /run are untouched."""
    d = _courier_dir()
    _mkdir(d)
    etc = _mkdir(d / "etc" / "courier")
    _mkdir(d / "etc", 0o755)
    _write(etc / "authdaemonrc", 'authmodulelist="authuserdb"\ndaemons=3\n'
                                 'authdaemonvar=/run/courier/authdaemon\nDEBUG_LOGIN=0\nDEFAULTOPTIONS=""\n')
    uid, gid = _ids("nobody")
    home = _mkdir(d / "home" / LOGIN_USER)
    for sub in ("", "cur", "new", "tmp"):
        _mkdir(home / "Maildir" / sub, 0o700)
        os.chown(home / "Maildir" / sub, uid, gid)
    os.chown(home, uid, gid)
    hashed = _run([OPENSSL, "passwd", "-6", LOGIN_PASSWORD]).stdout.strip()
    fields = f"uid={uid}|gid={gid}|home={home}|mail={home / 'Maildir'}|_="
    _makedat(f"{LOGIN_USER}\t{fields}\n", etc / "userdb.dat")
    _makedat(f"{LOGIN_USER}\tsystempw={hashed}\n", etc / "userdbshadow.dat")
    os.chmod(etc / "userdbshadow.dat", 0o600)
    pem = d / "mail.pem"  # couriertls wants the key and the certificate in one file, and runs as courier
    _write(pem, (CERTS / "mail.key").read_text() + (CERTS / "mail.pem").read_text(), 0o600)
    os.chown(pem, *_ids(COURIER_USER))
    path = {"PATH": "/usr/bin:/bin"}
    commands: list[dict] = [{"argv": ["/usr/lib/courier/courier-authlib/authdaemond"], "env": path,
                             "log": str(d / "authdaemond.log"), "settle": 0.3}]
    for c in COURIER_SERVICES:
        env = {**path, "COURIERTLS": "/usr/bin/couriertls", "TLS_CERTFILE": str(pem),
               "TLS_DHPARAMS": str(CERTS / "dh.pem"), "TLS_PROTOCOL": "TLS1_2:TLS1_3",
               "MAILDIRPATH": "Maildir"}
        if c.protocol == "imap":
            env.update({"IMAP_STARTTLS": "YES",
                        "IMAP_CAPABILITY_TLS": COURIER_IMAP_CAPABILITY + " AUTH=PLAIN", "IMAP_KEYWORDS": "1",
                        "IMAP_ACL": "1", "IMAP_IDLE_TIMEOUT": "60", "IMAP_USELOCKS": "1"})
            login, daemon = "/usr/lib/courier/courier/imaplogin", "/usr/bin/imapd"
        else:
            env.update({"POP3_STARTTLS": "YES"})
            login = "/usr/lib/courier/courier/courierpop3login"
            daemon = "/usr/lib/courier/courier/courierpop3d"
        env.update(dict(c.env))
        argv = ["/usr/sbin/couriertcpd", f"-address={c.address}", "-maxprocs=40", "-maxperip=40",
                "-nodnslookup", "-noidentlookup", str(c.port), login, daemon, "Maildir"]
        commands.append({"argv": argv, "env": env, "log": str(_courier_log(c))})
    usr = [str(PKGS / p / "usr") for p in COURIER_PKGS]
    spec = {"overlays": [{"target": "/usr", "lower": usr}, {"target": "/etc", "lower": [str(d / "etc")]}],
            "run_dirs": ["/run/courier/authdaemon"], "keep": [str(RUN)], "commands": commands}
    _write(d / "nsrun.json", json.dumps(spec, indent=1) + "\n")
    with open(d / "nsrun.log", "ab") as fh:
        proc = subprocess.Popen([sys.executable, str(NSRUN), str(d / "nsrun.json")],
                                stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _record("courier", proc.pid)


# --------------------------------------------------------------------------------------------------
# openssl s_server


def _sserver_paths(o: SServer) -> tuple[Path, Path]:
    d = RUN / "openssl"
    return d / f"{o.name}.pid", d / f"{o.name}.log"


def _start_sserver(o: SServer) -> None:
    pid_file, log = _sserver_paths(o)
    _mkdir(pid_file.parent)
    cmd = [OPENSSL, "s_server", "-accept", f"{o.address}:{o.port}", "-4", "-quiet", "-www",
           "-cert", str(CERTS / "mail.pem"), "-key", str(CERTS / "mail.key"),
           "-dhparam", str(CERTS / "dh.pem"), *o.args]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _write(pid_file, f"{proc.pid}\n")
    _record(f"s_server-{o.name}", proc.pid)


# --------------------------------------------------------------------------------------------------
# hostile servers (lab/hostile.py): what no real server can be coaxed into doing

HOSTILE_SCRIPT = LAB_DIR / "hostile.py"
HOSTILE_ADDRESS = "127.0.0.7"
HOSTILE_HOSTNAME = "odd.lab.example"


def _hostile_profiles() -> tuple:
    sys.path.insert(0, str(LAB_DIR))
    try:
        import hostile
    finally:
        sys.path.remove(str(LAB_DIR))
    return hostile.PROFILES


def _hostile_paths() -> tuple[Path, Path]:
    d = RUN / "hostile"
    return d / "hostile.pid", d / "hostile.log"


def _start_hostile() -> None:
    pid_file, log = _hostile_paths()
    _mkdir(pid_file.parent)
    cmd = [sys.executable, str(HOSTILE_SCRIPT), "--address", HOSTILE_ADDRESS,
           "--cert", str(CERTS / "mail.pem"), "--key", str(CERTS / "mail.key"),
           "--login", LOGIN_USER, LOGIN_PASSWORD]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _write(pid_file, f"{proc.pid}\n")
    _record("hostile", proc.pid)


def _hostile_up(timeout: float = 1.0) -> str | None:
    """None when every hostile port accepts a connection; otherwise which does not."""
    for profile in _hostile_profiles():
        try:
            with socket.create_connection((HOSTILE_ADDRESS, profile.port), timeout=timeout):
                pass
        except OSError as exc:
            return f"hostile {profile.name} ({HOSTILE_ADDRESS}:{profile.port}): {exc}"
    return None


# --------------------------------------------------------------------------------------------------
# health checks


_GREETING = {"imap": b"* OK", "pop3": b"+OK", "smtp": b"220"}


def _client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings(), contextlib.suppress(ValueError, ssl.SSLError):
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:aNULL:eNULL:@SECLEVEL=0")
    return ctx


def _probe(ep: Endpoint, timeout: float = 2.0) -> str | None:
    """None when the endpoint accepts a connection and greets (after the handshake, for implicit TLS);
    otherwise why not."""
    try:
        with socket.create_connection((ep.address, ep.port), timeout=timeout) as raw:
            raw.settimeout(timeout)
            sock: socket.socket = raw
            if ep.tls == "implicit":  # "plaintext" (an implicit-TLS port in clear) greets without one
                sock = _client_context().wrap_socket(raw, server_hostname=None)
                if ep.server == "openssl":
                    sock.close()
                    return None  # s_server speaks no mail protocol: a finished handshake is its greeting
            data = b""
            deadline = time.monotonic() + timeout
            want = _GREETING[ep.protocol]
            while len(data) < len(want) and time.monotonic() < deadline:
                chunk = sock.recv(512)
                if not chunk:
                    break
                data += chunk
            if not data.startswith(want):
                return f"no greeting (got {data[:60]!r})"
            with contextlib.suppress(OSError):
                sock.sendall({"imap": b"a LOGOUT\r\n", "pop3": b"QUIT\r\n", "smtp": b"QUIT\r\n"}[ep.protocol])
            return None
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _sserver_of(ep: Endpoint) -> SServer:
    return next(o for o in SSERVERS if (o.address, o.port) == (ep.address, ep.port))


def _log_of(ep: Endpoint) -> Path:
    if ep.server == "dovecot":
        return _dovecot_dir(ep.profile) / "dovecot.log"
    if ep.server == "postfix":
        return _postfix_dir() / "postfix.log"
    if ep.server == "exim":
        return _exim_dir() / "mainlog"
    if ep.server == "courier":
        return _courier_log(next(c for c in COURIER_SERVICES if (c.address, c.port) == (ep.address, ep.port)))
    return _sserver_paths(_sserver_of(ep))[1]


def _server_pid(ep: Endpoint) -> int | None:
    if ep.server == "dovecot":
        return _dovecot_pid(ep.profile)
    if ep.server == "postfix":
        return _postfix_pid()
    if ep.server in ("exim", "courier"):
        return _recorded_pids().get(ep.server)
    return _read_pid(_sserver_paths(_sserver_of(ep))[0])


def _probe_all(timeout: float = 2.0, endpoints: list[Endpoint] | None = None) -> dict[Endpoint, str | None]:
    """Probe endpoints in parallel (different servers, so s_server's one-at-a-time is no matter)."""
    from concurrent.futures import ThreadPoolExecutor

    eps = list(ENDPOINTS if endpoints is None else endpoints)
    with ThreadPoolExecutor(max_workers=max(1, len(eps))) as pool:
        return dict(zip(eps, pool.map(lambda e: _probe(e, timeout), eps), strict=True))


def _wait_healthy(timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    pending = list(ENDPOINTS)
    last: dict[Endpoint, str | None] = {}
    for _round in range(int(timeout / 0.1) + 1):
        results = _probe_all(1.0, pending)
        last.update(results)
        pending = [e for e, why in results.items() if why is not None]
        if not pending or time.monotonic() >= deadline:
            break
        for ep in pending:  # a server that already died will not come up: say so now
            pid = _server_pid(ep)
            if not (pid and _alive(pid)):
                raise LabError(f"{ep.name}: its {ep.server} process exited ({last[ep]}) "
                               f"| log: {_tail(_log_of(ep))}")
        time.sleep(0.1)
    if pending:
        ep = pending[0]
        raise LabError(f"{ep.name} not healthy after {timeout:.0f}s: {last[ep]} | log: {_tail(_log_of(ep))}")
    why = None
    for _round in range(int(max(deadline - time.monotonic(), 1.0) / 0.1) + 1):
        why = _hostile_up()
        if why is None:
            return
        time.sleep(0.1)
    raise LabError(f"{why} | log: {_tail(_hostile_paths()[1])}")


# --------------------------------------------------------------------------------------------------
# public API


def manifest() -> dict:
    """The lab's endpoints and CA as plain data (what ``labctl.py manifest`` prints)."""
    return {
        "ca_file": str(CA_FILE),
        "client_address": CLIENT_ADDRESS,
        "login": {"user": LOGIN_USER, "password": LOGIN_PASSWORD},
        "endpoints": [e.as_dict() for e in ENDPOINTS],
        "hostile": [
            {"address": HOSTILE_ADDRESS, "port": p.port, "service": p.service, "profile": p.name,
             "hostname": HOSTILE_HOSTNAME, "description": p.description,
             "plaintext_login": p.plaintext_login, "advertised": p.advertised, "tls_login": p.tls_login}
            for p in _hostile_profiles()
        ],
    }


SERVER_NAMES = (*(f"dovecot-{p.name}" for p in DOVECOT_PROFILES), "postfix", "exim", "courier",
                *(f"s_server-{o.name}" for o in SSERVERS), "hostile")


def _servers_alive() -> bool:
    """Every server the ledger names still runs."""
    alive = _recorded_pids()
    return all(name in alive for name in SERVER_NAMES)


def is_running() -> bool:
    """True when every endpoint greets and the servers are the ones this labctl.py recorded starting.

    An endpoint slow to greet is asked again with more time before the lab counts as down: on a loaded
    machine (a test run beside others) a live Exim or Courier can take more than 1.5 s, and calling it
    down would restart the whole lab under the tests that use it."""
    if not (_fingerprint() == (FINGERPRINT_FILE.read_text().strip() if FINGERPRINT_FILE.exists() else "")
            and _servers_alive()):
        return False
    slow = [e for e, why in _probe_all(1.5).items() if why is not None]
    if slow and any(why is not None for why in _probe_all(8.0, slow).values()):
        return False
    return _hostile_up() is None


LOCK_TIMEOUT = 120.0


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """Serialize this instance's start and stop across processes (a file lock: freed when its holder
    exits, whatever namespace it is in)."""
    _mkdir(STATE_ROOT, 0o755)
    with open(LOCK_FILE, "a") as fh:
        deadline = time.monotonic() + LOCK_TIMEOUT
        for _ in range(int(LOCK_TIMEOUT / 0.1) + 1):
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise LabError(f"another labctl start/stop held the lab lock for {LOCK_TIMEOUT:.0f}s"
                                   ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stop() -> None:
    """Stop every server the ledger names, and what they started. Idempotent; touches nothing else."""
    with _lock():
        _stop()
        if netns.exists(NETNS) and not netns.inside(NETNS):
            # Nothing of ours is left in it: the name goes too. (A test session inside it keeps it.) A
            # daemon's children may still be exiting a moment after their master: wait for them, bounded.
            for _ in range(50):
                if not netns.members(NETNS):
                    with contextlib.suppress(netns.NetnsError):
                        netns.delete(NETNS)
                    break
                time.sleep(0.1)


def _strays() -> dict[int, int | None]:
    """Servers of this lab that its ledger missed (a start that failed between launching a daemon and
    recording it): processes *inside the lab's own namespace* whose command line names this lab's state
    directory. Nothing else runs there, so nothing else can match; without a namespace there are none."""
    if not netns.exists(NETNS):
        return {}
    marker = str(RUN) + "/"
    return {pid: _start_time(pid) for pid in netns.members(NETNS)
            if pid != os.getpid() and marker in _cmdline(pid)}


def _stop() -> None:
    entries = [e for e in _ledger() if _is_recorded(e)]
    leaders = {e["pid"]: e.get("start") for e in entries}
    leaders.update({pid: start for pid, start in _strays().items() if pid not in leaders})
    # Dovecot and Postfix masters lead their own sessions; their children (login, auth, smtpd ...)
    # share it. Everything is signalled at once: a Dovecot master takes about a second to wind down.
    children = _descendants(leaders)
    _terminate(list(leaders))
    orphans = [c for c in children if _alive(c)] + [c for c in _descendants(leaders) if c not in children]
    if orphans:
        _terminate(orphans, timeout=2.0)
    for f in [*(_sserver_paths(o)[0] for o in SSERVERS), _hostile_paths()[0], FINGERPRINT_FILE, LEDGER_FILE]:
        with contextlib.suppress(FileNotFoundError):
            f.unlink()


def start() -> dict:
    """Start the lab (idempotent) and return the manifest; raise LabError naming what failed."""
    return _start()[0]


def _start() -> tuple[dict, bool]:
    """(manifest, whether servers were started) -- False when the lab was already running and healthy.
    The calling process enters the lab's namespace (see ``enter``)."""
    if os.geteuid() != 0:
        raise LabError("the lab must be started as root (it binds ports below 1024 and runs Dovecot/Postfix)")
    enter()
    with _lock():
        return _start_locked()


def _link_run() -> None:
    """lab/run -> the state directory, for people (the default instance only)."""
    if os.environ.get("CLEARTEXT_LAB_INSTANCE"):
        return
    with contextlib.suppress(OSError):
        if RUN_LINK.is_symlink():
            if os.readlink(RUN_LINK) == str(RUN):
                return
            RUN_LINK.unlink()
        elif RUN_LINK.is_dir():
            _retire_old_run_dir()
        RUN_LINK.symlink_to(RUN, target_is_directory=True)


def _retire_old_run_dir() -> None:
    """lab/run as a directory is the state of a lab made before the lab moved to /run: stop the servers
    its own pid files name (it started them; each is checked to be the program, and to name that
    directory on its command line), then remove it."""
    old = RUN_LINK.resolve()
    pid_files = [*(old / "dovecot").glob("*/base/master.pid"), old / "postfix/queue/pid/master.pid",
                 *(old / "openssl").glob("*.pid"), old / "hostile/hostile.pid"]
    pids = [p for f in pid_files if (p := _read_pid(f)) and _alive(p) and str(old) + "/" in _cmdline(p)]
    _terminate(pids)
    shutil.rmtree(old, ignore_errors=True)


def _start_locked() -> tuple[dict, bool]:
    for tool in (DOVECOT, POSTFIX_MASTER, OPENSSL, str(EXIM), *(str(PKGS / p) for p in COURIER_PKGS)):
        if not (os.path.exists(tool) or shutil.which(tool)):
            raise LabError(f"{tool} not found: run scripts/install-system-deps")
    for user in (EXIM_USER, COURIER_USER):
        if not _user_exists(user):
            raise LabError(f"no user {user} (the unpacked Exim and Courier need it): run "
                           "scripts/install-system-deps")
    _mkdir(STATE_ROOT, 0o755)
    _link_run()
    if is_running():
        _write_manifest()
        return manifest(), False
    _stop()
    if _mode() == "host":
        _check_ports_free()
    _mkdir(RUN)
    _make_certificates()
    postfix = _start_postfix()
    try:
        for p in DOVECOT_PROFILES:
            _start_dovecot(p)
        for o in SSERVERS:
            _start_sserver(o)
        _start_exim()
        _start_courier()
        _start_hostile()
    finally:
        _finish_postfix(postfix)
    _wait_healthy()
    _write(FINGERPRINT_FILE, _fingerprint() + "\n")
    _write_manifest()
    return manifest(), True


def _write_manifest() -> None:
    _write(MANIFEST_FILE, json.dumps(manifest(), indent=2) + "\n")


def status() -> dict[str, bool]:
    """endpoint name -> up (accepts a connection and greets). The calling process enters the lab's
    namespace, where the lab's addresses are."""
    enter()
    return {e.name: why is None for e, why in _probe_all(2.0).items()}


USAGE = "usage: labctl.py start|stop|status|manifest|path | labctl.py exec -- COMMAND..."


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["exec"]:
        if len(args) < 3 or args[1] != "--":
            print(USAGE, file=sys.stderr)
            return 2
        try:
            enter()
        except LabError as exc:
            print(f"labctl exec: {exc}", file=sys.stderr)
            return 1
        try:
            os.execvp(args[2], args[2:])
        except OSError as exc:
            print(f"labctl exec: {args[2]}: {exc.strerror}", file=sys.stderr)
            return 127
    if len(args) != 1 or args[0] not in ("start", "stop", "status", "manifest", "path"):
        print(USAGE, file=sys.stderr)
        return 2
    cmd = args[0]
    try:
        if cmd == "start":
            t0 = time.monotonic()
            _, started = _start()
            what = f"started in {time.monotonic() - t0:.1f}s" if started else "already running"
            where = f"network namespace {NETNS}" if _mode() == "netns" else "this host's loopback"
            print(f"lab {what}: {len(ENDPOINTS)} endpoints in {where}; manifest {MANIFEST_FILE}")
        elif cmd == "stop":
            stop()
            print("lab stopped")
        elif cmd == "status":
            up = status()
            for e in ENDPOINTS:
                print(f"{'up  ' if up[e.name] else 'down'}  {e.address}:{e.port:<4} {e.protocol:<4} "
                      f"{e.tls:<8} {e.server:<7} {e.profile}")
            if any(up.values()) and not _servers_alive():
                print("note: the servers answering are not the ones this labctl recorded starting; "
                      "`labctl.py start` starts its own", file=sys.stderr)
            return 0 if all(up.values()) else 1
        elif cmd == "path":
            print(RUN)
        else:
            print(json.dumps(manifest(), indent=2))
    except LabError as exc:
        print(f"labctl {cmd}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `labctl.py status | head`
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 -- keeps the interpreter's flush quiet
        return 1
    except subprocess.TimeoutExpired as exc:
        print(f"labctl {cmd}: timed out: {' '.join(map(str, exc.cmd))[:120]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
