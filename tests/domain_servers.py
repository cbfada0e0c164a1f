"""Real servers for the domain view's tests: a test CA, HTTPS sites, a DNSSEC-signed DNS (nsd + unbound).

- :func:`make_ca` makes a CA and issues server certificates with the ``cryptography`` library.
- :class:`HttpsSite` is Python's ``ThreadingHTTPServer`` under TLS on one loopback address, port 443,
  answering by Host header and path: a fixed body, a status code, or a hostile behaviour (a slow drip, a
  body that never ends).
- :class:`SignedDns` writes zone files, signs some of them with ldns-signzone (keys from ldns-keygen),
  serves them with nsd, and puts unbound in front as a validating resolver with those zones' keys as
  trust anchors: the AD bit, SERVFAIL for bogus data, exactly as a real validating resolver behaves.
- :class:`CraftedDns` is a DNS server written here, for answers no real server would give (CNAME loops).

Everything listens on the test session's own loopback (the lab's network namespace) and is stopped by
the process or thread that started it; every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# --- certificates -------------------------------------------------------------------------------------


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
    )


@dataclass
class Authority:
    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def pem(self) -> Path:
        return self.directory / "test-ca.pem"

    def issue(self, name: str, dns_names: list[str]) -> tuple[Path, Path]:
        """A server certificate for ``dns_names``; returns (certificate PEM, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
        cert = (
            _builder(subject, self.cert.subject, key)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.directory / f"{name}.pem", self.directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        pkcs8 = serialization.PrivateFormat.PKCS8
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
        )
        return cert_path, key_path


def make_ca(directory: Path) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cleartext domain-view test CA")])
    usage = x509.KeyUsage(
        False, False, False, False, False, True, True, False, False
    )  # certificate, CRL sign
    cert = (
        _builder(name, name, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .sign(key, hashes.SHA256())
    )
    ca = Authority(directory, key, cert)
    ca.pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ca


def spki_sha256(pem: Path) -> str:
    """The DANE 3 1 1 digest of the first certificate in a PEM file."""
    cert = x509.load_pem_x509_certificates(pem.read_bytes())[0]
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


# --- HTTPS ------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """What a route answers: a status and a body, or a behaviour."""

    body: bytes = b""
    status: int = 200
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0  # seconds between bytes of the body (a slow server)
    endless: bool = False  # a chunked body that never ends (until the client hangs up, or 60 s)


Routes = dict[tuple[str, str], Reply]  # (host, path without query) -> reply


class HttpsSite:
    """A TLS web server on ``address``:443 answering from ``routes`` (404 for everything else)."""

    def __init__(self, address: str, cert: Path, key: Path, routes: Routes) -> None:
        self.address = address
        self.routes = routes
        self.requests: list[tuple[str, str, str]] = []  # (method, host, path) seen
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 30

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self) -> None:
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                path = self.path.split("?")[0]
                site.requests.append((self.command, host, path))
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(min(length, 65536))
                reply = site.routes.get((host, path), Reply(b"not here\n", status=404))
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.endless:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    chunk = b"A" * 65536
                    deadline = time.monotonic() + 60
                    try:
                        while time.monotonic() < deadline:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                try:
                    if reply.drip:
                        for byte in reply.body[:60]:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(reply.drip)
                    else:
                        self.wfile.write(reply.body)
                except OSError:
                    pass

            do_GET = _answer
            do_POST = _answer

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self) -> tuple[socket.socket, object]:
                sock, peer = super().get_request()
                sock.settimeout(10)
                try:
                    return context.wrap_socket(sock, server_side=True), peer
                except (ssl.SSLError, OSError):
                    sock.close()
                    raise

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that hangs up mid-reply is what several tests do on purpose

        self.server = Server((address, 443), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1})

    def __enter__(self) -> HttpsSite:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


# --- DNSSEC: nsd + ldns-signzone, unbound as the validating resolver ----------------------------------


def _run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def _wait_udp(address: str, port: int, name: str, seconds: float = 15) -> None:
    """Until the server at address:port answers a SOA question for ``name`` (bounded)."""
    query = dns.message.make_query(name, "SOA")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(0.3)
            try:
                sock.sendto(query.to_wire(), (address, port))
                sock.recvfrom(4096)
                return
            except OSError:
                time.sleep(0.1)
    raise RuntimeError(f"no DNS answer from {address}:{port} within {seconds} s")


@dataclass
class Zone:
    name: str  # "good.example"
    records: str  # zone file lines below the SOA/NS, relative names allowed
    signed: bool = False
    tamper: Callable[[str], str] | None = None  # edits the signed zone file (a bogus signature)


class SignedDns:
    """nsd (authoritative, the zones) on 127.0.0.30:53 and unbound (validating) on 127.0.0.31:53."""

    AUTH = "127.0.0.30"
    RESOLVER = "127.0.0.31"

    def __init__(self, directory: Path, zones: list[Zone]) -> None:
        self.dir = directory
        self.zones = zones
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def nameserver(self) -> str:
        return f"{self.RESOLVER}:53"

    def _zone_file(self, zone: Zone) -> Path:
        head = (
            f"$ORIGIN {zone.name}.\n$TTL 60\n"
            f"@ IN SOA ns.{zone.name}. hostmaster.{zone.name}. 1 3600 600 86400 60\n"
            f"@ IN NS ns.{zone.name}.\nns IN A {self.AUTH}\n"
        )
        path = self.dir / f"{zone.name}.zone"
        path.write_text(head + zone.records.strip() + "\n")
        if not zone.signed:
            return path
        ksk = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", zone.name], self.dir)
        zsk = _run(["ldns-keygen", "-a", "ECDSAP256SHA256", zone.name], self.dir)
        _run(["ldns-signzone", "-n", path.name, ksk, zsk], self.dir)  # -n: NSEC3
        signed = self.dir / f"{path.name}.signed"
        if zone.tamper is not None:
            signed.write_text(zone.tamper(signed.read_text()))
        (self.dir / f"{zone.name}.anchor").write_text((self.dir / f"{ksk}.key").read_text())
        return signed

    def __enter__(self) -> SignedDns:
        files = {z.name: self._zone_file(z) for z in self.zones}
        nsd_conf = self.dir / "nsd.conf"
        nsd_conf.write_text(
            "server:\n"
            f'  ip-address: {self.AUTH}\n  port: 53\n  username: ""\n  chroot: ""\n'
            f'  zonesdir: "{self.dir}"\n  database: ""\n  pidfile: "{self.dir}/nsd.pid"\n'
            f'  logfile: "{self.dir}/nsd.log"\n  xfrdfile: "{self.dir}/xfrd.state"\n'
            f'  zonelistfile: "{self.dir}/zone.list"\n  xfrdir: "{self.dir}"\n'
            "  server-count: 1\n  verbosity: 1\n"
            "remote-control:\n  control-enable: no\n"
            + "".join(f'zone:\n  name: {name}\n  zonefile: "{path}"\n' for name, path in files.items())
        )
        anchors = "".join(
            f'  trust-anchor-file: "{self.dir}/{z.name}.anchor"\n' for z in self.zones if z.signed
        )
        stubs = "".join(f'stub-zone:\n  name: "{z.name}"\n  stub-addr: {self.AUTH}@53\n' for z in self.zones)
        unbound_conf = self.dir / "unbound.conf"
        unbound_conf.write_text(
            "server:\n"
            f'  interface: {self.RESOLVER}\n  port: 53\n  do-daemonize: no\n  username: ""\n'
            f'  chroot: ""\n  directory: "{self.dir}"\n  pidfile: "{self.dir}/unbound.pid"\n'
            f'  use-syslog: no\n  logfile: "{self.dir}/unbound.log"\n  verbosity: 1\n'
            "  do-not-query-localhost: no\n  access-control: 127.0.0.0/8 allow\n  num-threads: 1\n"
            '  module-config: "validator iterator"\n  qname-minimisation: no\n  do-ip6: no\n'
            "  harden-dnssec-stripped: yes\n  val-log-level: 2\n  cache-max-ttl: 1\n"
            "  cache-max-negative-ttl: 1\n  prefetch: no\n  so-reuseport: no\n"
            + anchors
            + "remote-control:\n  control-enable: no\n"
            + stubs
        )
        _run(["nsd-checkconf", str(nsd_conf)], self.dir)
        _run(["unbound-checkconf", str(unbound_conf)], self.dir)
        for cmd in (["nsd", "-d", "-c", str(nsd_conf)], ["unbound", "-d", "-c", str(unbound_conf)]):
            self.procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=self.dir,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _wait_udp(self.AUTH, 53, self.zones[0].name)
        _wait_udp(self.RESOLVER, 53, self.zones[0].name)
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:  # only the processes started above, by their own handle
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


# --- crafted answers ------------------------------------------------------------------------------------


class CraftedDns:
    """A DNS server written here on ``address``:53 (UDP), answering from a table of (name, type) -> rrsets
    (each rrset "name TTL IN TYPE data"), NXDOMAIN for names it does not know. For answers no real server
    gives: CNAME chains that loop. Bounded: at most 10,000 polls of 0.2 s."""

    def __init__(self, address: str, table: dict[tuple[str, str], list[str]]) -> None:
        self.address = address
        self.table = table
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def nameserver(self) -> str:
        return f"{self.address}:53"

    def _serve(self) -> None:
        for _ in range(10_000):
            if self.stop.is_set():
                return
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            query = dns.message.from_wire(data)
            response = dns.message.make_response(query)
            question = query.question[0]
            key = (question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype))
            rrsets = self.table.get(key)
            if rrsets is None:
                rrsets = self.table.get((key[0], "CNAME"))
            if rrsets:
                for text in rrsets:
                    response.answer.append(dns.rrset.from_text(*_split_rr(text)))
            elif not any(name == key[0] for name, _ in self.table):
                response.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(response.to_wire(), peer)

    def __enter__(self) -> CraftedDns:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def _split_rr(text: str) -> tuple[str, int, str, str, str]:
    name, ttl, klass, rdtype, data = text.split(None, 4)
    return name, int(ttl), klass, rdtype, data
