"""A real SMTP server for the notify tests, on loopback, and the data they share; plus its own checks.

The server is aiosmtpd (asyncio, in a thread of the test process), with STARTTLS required before MAIL
(``require_starttls``) and a certificate from a test CA generated here, or with implicit TLS, or with no
TLS at all (to prove cleartext refuses it). Messages land in an in-process list together with what the
server knew when MAIL FROM arrived (was TLS up? which version?). Chosen recipients get chosen replies
(a 451 twice, a 550 always, ...), and hooks let a test act at precise points of a transaction — the
SIGKILL test kills the client while the server holds the end of data.

Every server stops at the end of its ``with`` block, and in any case after ``LIFETIME_S`` (a timer), so
a failing test cannot leave a listener behind. Only 127.0.0.1 is used.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cleartext.record import Record, Severity
from cleartext.store import open_store
from tests.enrich_files import country_record, write_contacts, write_iptoasn, write_mmdb
from tests.store_contract import make_record

LIFETIME_S = 120.0
HOST = "127.0.0.1"


# --- a test CA and a server certificate -----------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server's certificate


def _ca(name: str, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_pki(directory: Path) -> Pki:
    """A CA, a certificate for 127.0.0.1 and localhost signed by it, and an unrelated second CA."""
    now = dt.datetime.now(dt.UTC)
    ca_key, ca = _ca("cleartext notify test CA", now)
    _, other = _ca("some other CA", now)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    pki = Pki(
        directory / "ca.pem", directory / "server.pem", directory / "server.key", directory / "other-ca.pem"
    )
    pki.ca.write_bytes(ca.public_bytes(pem))
    pki.other_ca.write_bytes(other.public_bytes(pem))
    pki.cert.write_bytes(cert.public_bytes(pem))
    pki.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return pki


# --- the server -------------------------------------------------------------------------------------


@dataclass
class Delivered:
    """One message the server accepted, with what it knew about the session."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls_at_mail: bool  # TLS was up when MAIL FROM arrived
    tls_version: str | None


@dataclass
class Behaviour:
    """What the server answers. Replies are popped per recipient; when a list is empty, 250."""

    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)
    data_replies: dict[str, list[str]] = field(default_factory=dict)
    always_rcpt: dict[str, str] = field(default_factory=dict)  # recipient -> reply, every time
    # Called (in the server's thread) with the recipient at RCPT, and at the end of data before
    # answering: a test blocks or kills there. Must return quickly or block on a bounded wait.
    on_rcpt: Callable[[str], None] | None = None
    on_data: Callable[[str], None] | None = None


class Handler:
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.delivered: list[Delivered] = []
        self.mail_commands = 0  # MAIL FROM seen, accepted or not
        self.mail_without_tls = 0
        self.rcpt_attempts: dict[str, int] = {}
        self.lock = threading.Lock()

    @staticmethod
    def _tls(server: Any) -> ssl.SSLObject | None:
        transport = getattr(server, "transport", None)
        return transport.get_extra_info("ssl_object") if transport is not None else None

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        tls = self._tls(server)
        with self.lock:
            self.mail_commands += 1
            if tls is None:
                self.mail_without_tls += 1
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        session.tls_at_mail = tls is not None
        session.tls_version_at_mail = tls.version() if tls is not None else None
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        b = self.behaviour
        with self.lock:
            self.rcpt_attempts[address] = self.rcpt_attempts.get(address, 0) + 1
        if b.on_rcpt is not None:
            b.on_rcpt(address)
        if address in b.always_rcpt:
            return b.always_rcpt[address]
        queue = b.rcpt_replies.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        b = self.behaviour
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        if b.on_data is not None:
            b.on_data(rcpt)
        queue = b.data_replies.get(rcpt)
        if queue:
            return queue.pop(0)
        content = envelope.original_content or envelope.content
        with self.lock:
            self.delivered.append(
                Delivered(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    content=content if isinstance(content, bytes) else str(content).encode(),
                    tls_at_mail=bool(getattr(session, "tls_at_mail", False)),
                    tls_version=getattr(session, "tls_version_at_mail", None),
                )
            )
        return "250 2.0.0 queued"

    def received(self) -> list[Delivered]:
        with self.lock:
            return list(self.delivered)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    handler: Handler
    tls: str


def _authenticator(user: str, password: str) -> Callable[..., AuthResult]:
    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 235 or 535 itself

    return check


@contextlib.contextmanager
def smtp_server(
    pki: Pki | None,
    tls: str = "starttls",
    behaviour: Behaviour | None = None,
    credentials: tuple[str, str] | None = None,
) -> Iterator[Server]:
    """An aiosmtpd server on 127.0.0.1: ``starttls`` (required before MAIL), ``implicit`` or ``none``.

    With ``credentials`` the server requires AUTH (PLAIN/LOGIN, offered only inside TLS) before MAIL.
    """
    handler = Handler(behaviour or Behaviour())
    kwargs: dict[str, Any] = {"server_hostname": "relay.test.example", "ready_timeout": 10.0}
    if credentials is not None:
        kwargs.update(authenticator=_authenticator(*credentials), auth_required=True, auth_require_tls=True)
    if tls != "none":
        assert pki is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(pki.cert), str(pki.key))
        if tls == "starttls":
            kwargs.update(tls_context=context, require_starttls=True)
        else:
            kwargs.update(ssl_context=context)
    controller = None
    for _ in range(5):  # the free port may be taken between the probe and the bind
        controller = Controller(handler, hostname=HOST, port=free_port(), **kwargs)
        try:
            controller.start()
            break
        except (OSError, RuntimeError):
            controller = None
            time.sleep(0.1)
    assert controller is not None, "the test SMTP server did not start"
    stopped = threading.Event()

    def stop() -> None:
        if not stopped.is_set():
            stopped.set()
            with contextlib.suppress(Exception):
                controller.stop()

    timer = threading.Timer(LIFETIME_S, stop)
    timer.daemon = True
    timer.start()
    try:
        yield Server(controller.port, handler, tls)
    finally:
        timer.cancel()
        stop()


# --- the data: records, attribution files ---------------------------------------------------------

HOSTILE_GREETING = '220 <script>alert(1)</script> =HYPERLINK("http://evil.example") ESMTP\\x1b[31m'


def scan_records() -> list[Record]:
    """Endpoints of three owners plus one nobody subscribed to, with findings, and two clean ones.

    192.0.2.0/25 is AS64500 (FR), 192.0.2.128/25 AS64501 (FR), 198.51.100.0/24 AS64502 (DE),
    203.0.113.0/24 AS64503 (NL, only an abuse contact).
    """
    records = [
        make_record("192.0.2.10", 143, ("cleartext-login", "cert-expired"), software="dovecot"),
        make_record("192.0.2.10", 110, ("cleartext-login",), software="dovecot"),
        make_record("192.0.2.11", 25, ("no-tls",), software="postfix", greeting=HOSTILE_GREETING),
        make_record("192.0.2.12", 993, ()),  # clean: never listed
        make_record(
            "192.0.2.140", 587, ("legacy-tls", "weak-cipher"), software="exim", hostname="mx.b.example"
        ),
        make_record("198.51.100.20", 143, ("cleartext-login",), software="courier"),
        make_record("198.51.100.21", 995, ()),  # clean
        make_record("203.0.113.5", 25, ("cert-expired",), software=None, greeting="220 mystery ESMTP"),
    ]
    for record in records:  # the severities the catalogue gives these codes
        for finding in record.findings:
            if finding.code == "no-tls" and record.observation.port == 25:
                finding.severity = Severity.MEDIUM
    return records


def seed_store(path: Path | str, records: list[Record] | None = None) -> str:
    """A store (a DuckDB path or a URL) with one finished scan of ``scan_records()``; returns its id."""
    with open_store(str(path)) as store:
        scan_id = store.begin_scan({"source": "notify tests"})
        store.write(scan_id, records if records is not None else scan_records())
        store.finish_scan(scan_id)
    return scan_id


@dataclass(frozen=True)
class Attribution:
    iptoasn: Path
    mmdb: Path
    contacts: Path

    def args(self) -> list[str]:
        return ["--iptoasn", str(self.iptoasn), "--mmdb", str(self.mmdb), "--contacts", str(self.contacts)]

    def paths(self) -> dict[str, list[Path]]:
        return {"iptoasn": [self.iptoasn], "mmdb": [self.mmdb], "contacts": [self.contacts]}


def attribution_files(directory: Path) -> Attribution:
    """Real data files: iptoasn (AS, registry country), a GeoLite2-style country MMDB, a contacts CSV."""
    iptoasn = write_iptoasn(
        directory / "ip2asn-v4.tsv",
        [
            ("192.0.2.0", "192.0.2.127", 64500, "FR", "EXAMPLE-A"),
            ("192.0.2.128", "192.0.2.255", 64501, "FR", "EXAMPLE-B"),
            ("198.51.100.0", "198.51.100.255", 64502, "DE", "EXAMPLE-C"),
            ("203.0.113.0", "203.0.113.255", 64503, "NL", "EXAMPLE-D"),
        ],
    )
    mmdb = write_mmdb(
        directory / "country.mmdb",
        {
            "192.0.2.0/24": country_record("FR"),
            "198.51.100.0/24": country_record("DE"),
            "203.0.113.0/24": country_record("NL"),
        },
        database_type="GeoLite2-Country",
    )
    contacts = write_contacts(
        directory / "contacts.csv",
        [("cidr", "203.0.113.0/24", "abuse@d.example", ""), ("asn", "64502", "noc@c.example", "")],
    )
    return Attribution(iptoasn, mmdb, contacts)


# --- the server's own checks: the fixture is what the other tests believe it is -------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_server_refuses_mail_before_starttls(pki: Pki) -> None:
    import smtplib

    with smtp_server(pki) as server, smtplib.SMTP(HOST, server.port, timeout=5) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        code, _ = client.mail("a@a.example")
        assert code == 530  # "Must issue a STARTTLS command first"
        client.starttls(context=ssl.create_default_context(cafile=str(pki.ca)))
        client.ehlo()
        client.sendmail("a@a.example", ["b@b.example"], b"Subject: t\r\n\r\nhello\r\n")
    (got,) = server.handler.received()
    assert got.tls_at_mail and got.tls_version in ("TLSv1.2", "TLSv1.3")


def test_server_answers_chosen_replies(pki: Pki) -> None:
    import smtplib

    behaviour = Behaviour(
        rcpt_replies={"t@a.example": ["451 4.3.0 later"]}, always_rcpt={"p@a.example": "550 no"}
    )
    with smtp_server(pki, "implicit", behaviour) as server:
        context = ssl.create_default_context(cafile=str(pki.ca))
        with smtplib.SMTP_SSL(HOST, server.port, timeout=5, context=context) as client:
            client.ehlo()
            client.mail("a@a.example")
            assert client.rcpt("t@a.example")[0] == 451
            assert client.rcpt("t@a.example")[0] == 250
            assert client.rcpt("p@a.example")[0] == 550
