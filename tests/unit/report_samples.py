"""Records for the report tests: built by hand and judged by the real assessment, never scanned.

One small "scan" with every case a report has to place: each protocol, IPv4 and IPv6, a password
before TLS, no TLS at all, SSLv3, an expired self-signed certificate, a clean server, silent and
blocklisted endpoints, and a server whose banner and certificate are hostile (markup, formulas).
Attribution comes from a fixed table, as the enricher would give it.
"""

from __future__ import annotations

from cleartext.assess import assess
from cleartext.enrich.model import Attribution
from cleartext.record import (
    Certificate,
    Observation,
    PlainPhase,
    Protocol,
    Record,
    Status,
    TLSMatrix,
    TLSMode,
    TLSPhase,
)

STARTED = "2026-11-28T08:03:13.445537Z"
HOSTILE_BANNER = (
    '* OK <script>alert(1)</script> "><img src=x onerror=alert(2)> '
    '<svg onload=alert(3)> <a href="https://evil.example/x">x</a> ready'
)
HOSTILE_CN = '=HYPERLINK("https://evil.example","click")'


def dn(*attributes: tuple[str, str]) -> str:
    """A name as the record holds it: cryptography's RFC 4514 string, sanitised as cleartext.tls.certs does.

    Attributes by short name: CN, O, OU, C, L, ST, emailAddress, surname, givenName.
    """
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from cleartext.text import sanitize

    oids = {
        "CN": NameOID.COMMON_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
        "L": NameOID.LOCALITY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "emailAddress": NameOID.EMAIL_ADDRESS,
        "surname": NameOID.SURNAME,
        "givenName": NameOID.GIVEN_NAME,
    }
    name = x509.Name([x509.NameAttribute(oids[key], value) for key, value in attributes])
    return sanitize(name.rfc4514_string(), 512)


ATTRIBUTION: dict[str, Attribution] = {
    "192.0.2.10": Attribution(
        asn=64500, as_name="EXAMPLE-NET", country="DE", registry_country="DE", network="192.0.2.0/25"
    ),
    "192.0.2.11": Attribution(
        asn=64500, as_name="EXAMPLE-NET", country="DE", registry_country="AT", network="192.0.2.0/25"
    ),
    "198.51.100.7": Attribution(
        asn=64501, as_name="OTHER-AS", country="FR", registry_country="FR", network="198.51.100.0/24"
    ),
    "2001:db8::25": Attribution(
        asn=64502, as_name="V6-NET", country="NL", registry_country="NL", network="2001:db8::/32"
    ),
    "203.0.113.66": Attribution(
        asn=64503, as_name="-EVIL <b>AS</b>", country="US", registry_country="US", network="203.0.113.0/24"
    ),
}


def attribution(address: str) -> Attribution:
    return ATTRIBUTION.get(address, Attribution())


def cert(**kw: object) -> Certificate:
    base: dict[str, object] = dict(
        sha256="3f" * 32,
        subject=dn(
            ("C", "DE"),
            ("emailAddress", "postmaster@example.org"),
            ("O", "Example, Inc."),
            ("CN", "mail.example.org"),
        ),
        issuer=dn(("C", "US"), ("O", "Example Trust"), ("CN", "Example CA R1")),
        not_before="2026-01-01T00:00:00Z",
        not_after="2027-01-31T12:00:00Z",
        key_type="rsa",
        key_bits=2048,
        signature_algorithm="sha256WithRSAEncryption",
        dns_names=["mail.example.org"],
        self_signed=False,
    )
    base.update(kw)
    return Certificate(**base)  # type: ignore[arg-type]


def matrix(**versions: str) -> TLSMatrix:
    states = {"SSLv3": "rejected", "TLSv1.0": "rejected", "TLSv1.1": "rejected", "TLSv1.2": "accepted"}
    states["TLSv1.3"] = "accepted"
    states.update({k.replace("_", "."): v for k, v in versions.items()})
    return TLSMatrix(
        versions=states,
        weak_classes={c: "rejected" for c in ("null", "anon", "export", "rc4", "3des", "des", "static-rsa")},
    )


def tls(**kw: object) -> TLSPhase:
    base: dict[str, object] = dict(
        version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        chain=[cert()],
        trusted=True,
        hostname_checked="mail.example.org",
        hostname_match=True,
    )
    base.update(kw)
    return TLSPhase(**base)  # type: ignore[arg-type]


def observation(address: str, port: int, protocol: Protocol, **kw: object) -> Observation:
    mode = TLSMode.IMPLICIT if port in (465, 993, 995) else TLSMode.STARTTLS
    o = Observation(address=address, port=port, protocol=protocol, tls_mode=mode, started_at=STARTED)
    for key, value in kw.items():
        setattr(o, key, value)
    return o


def sample_records() -> list[Record]:
    """The sample scan. Expected numbers are spelled out in the tests that use it."""
    login_plain = PlainPhase(
        capabilities=["* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN"],
        auth_mechanisms=["PLAIN"],
        login_command=True,
        starttls_advertised=True,
        starttls_reply="c2 OK Begin TLS",
        starttls_accepted=True,
    )
    records = [
        # 1. IMAP, password before TLS, otherwise sound (Dovecot).
        assess(
            observation(
                "192.0.2.10",
                143,
                Protocol.IMAP,
                hostname="mail.example.org",
                software="dovecot",
                greeting="* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Dovecot ready.",
                plain=login_plain,
                tls=tls(),
                matrix=matrix(),
            )
        ),
        # 2. POP3 without STLS: no TLS at all and USER/PASS in clear.
        assess(
            observation(
                "192.0.2.10",
                110,
                Protocol.POP3,
                software="dovecot",
                greeting="+OK Dovecot ready.",
                plain=PlainPhase(
                    capabilities=["+OK", "USER", "UIDL", "."],
                    login_command=True,
                    starttls_reply="-ERR unknown command",
                    starttls_accepted=False,
                ),
            )
        ),
        # 3. SMTP port 25 without STARTTLS: no-tls, medium on the relay port.
        assess(
            observation(
                "198.51.100.7",
                25,
                Protocol.SMTP,
                software="postfix",
                greeting="220 mx.example.net ESMTP Postfix",
                plain=PlainPhase(
                    capabilities=["250-mx.example.net", "250 8BITMIME"],
                    starttls_reply="502 5.5.1 not implemented",
                    starttls_accepted=False,
                ),
            )
        ),
        # 4. IMAPS over IPv6 accepting SSLv3 (legacy-tls high), expired self-signed certificate.
        assess(
            observation(
                "2001:db8::25",
                993,
                Protocol.IMAP,
                software="courier",
                greeting="* OK Courier-IMAP ready.",
                tls=tls(
                    version="TLSv1.2",
                    cipher="TLS_RSA_WITH_AES_128_CBC_SHA",
                    chain=[
                        cert(
                            subject=dn(("CN", "old.example.net")),
                            issuer=dn(("CN", "old.example.net")),
                            not_before="2019-01-01T00:00:00Z",
                            not_after="2020-01-01T00:00:00Z",
                            self_signed=True,
                            key_bits=1024,
                        )
                    ],
                    trusted=False,
                    verify_error="self-signed certificate",
                    hostname_checked=None,
                    hostname_match=None,
                ),
                matrix=matrix(SSLv3="accepted", TLSv1_0="accepted", TLSv1_3="rejected"),
            )
        ),
        # 5. Submission, sound: no finding.
        assess(
            observation(
                "198.51.100.7",
                587,
                Protocol.SMTP,
                software="postfix",
                greeting="220 mx.example.net ESMTP Postfix",
                plain=PlainPhase(
                    capabilities=["250-mx.example.net", "250-STARTTLS", "250 8BITMIME"],
                    starttls_advertised=True,
                    starttls_reply="220 2.0.0 Ready to start TLS",
                    starttls_accepted=True,
                ),
                tls=tls(),
                matrix=matrix(),
            )
        ),
        # 6. A hostile server: markup and a formula in its banner and certificate, login before TLS.
        assess(
            observation(
                "203.0.113.66",
                143,
                Protocol.IMAP,
                hostname="evil.example",
                greeting=HOSTILE_BANNER,
                plain=login_plain,
                tls=tls(
                    chain=[cert(subject=dn(("CN", HOSTILE_CN)), issuer=dn(("CN", "<i>CA</i>")))],
                    trusted=False,
                ),
                matrix=matrix(),
            )
        ),
        # 7. Nothing listens.
        Record(observation("192.0.2.11", 143, Protocol.IMAP, status=Status.REFUSED)),
        # 8. Filtered.
        Record(observation("192.0.2.11", 25, Protocol.SMTP, status=Status.CONNECT_TIMEOUT)),
        # 9. Not scanned.
        Record(
            Observation(
                address="192.0.2.12",
                port=25,
                protocol=Protocol.SMTP,
                tls_mode=TLSMode.STARTTLS,
                status=Status.BLOCKLISTED,
            )
        ),
        # 10. Something that is not a mail server.
        Record(
            observation(
                "192.0.2.11", 110, Protocol.POP3, status=Status.NOT_MAIL, greeting="SSH-2.0-OpenSSH_9.6"
            )
        ),
    ]
    return records


def sample_pairs() -> list[tuple[Record, Attribution]]:
    return [(r, attribution(r.observation.address)) for r in sample_records()]


# -- a larger, seeded random scan ----------------------------------------------------------------------

_NETWORKS = (
    ("192.0.2.", 64500, "EXAMPLE-NET", "DE", "DE"),
    ("198.51.100.", 64501, "OTHER-AS", "FR", "FR"),
    ("203.0.113.", 64503, "TRANSIT-3", "US", "US"),
    ("100.64.7.", 64510, "CARRIER-GRADE", "NL", "BE"),
    ("2001:db8:5::", 64502, "V6-NET", "NL", "NL"),
    ("10.9.8.", None, None, None, None),  # no data file covers it
)
_SERVICES = (
    (143, Protocol.IMAP),
    (993, Protocol.IMAP),
    (110, Protocol.POP3),
    (995, Protocol.POP3),
    (25, Protocol.SMTP),
    (587, Protocol.SMTP),
    (465, Protocol.SMTP),
)
_SOFTWARE = ("dovecot", "postfix", "exim", "courier", "exchange", None)


def random_attribution(address: str) -> Attribution:
    for prefix, asn, name, geo, registry in _NETWORKS:
        if address.startswith(prefix):
            if asn is None:
                return Attribution()
            return Attribution(asn=asn, as_name=name, country=geo, registry_country=registry)
    return Attribution()


def random_records(count: int, seed: int = 7, started: str = STARTED) -> list[Record]:
    """A plausible scan of ``count`` endpoints, the same for the same seed."""
    import random

    rnd = random.Random(seed)
    out: list[Record] = []
    seen: set[tuple[str, int]] = set()
    while len(out) < count:
        prefix = rnd.choice(_NETWORKS)[0]
        address = (
            f"{prefix}{rnd.randrange(1, 250):x}" if ":" in prefix else f"{prefix}{rnd.randrange(1, 255)}"
        )
        port, protocol = rnd.choice(_SERVICES)
        if (address, port) in seen:
            continue
        seen.add((address, port))
        roll = rnd.random()
        if roll < 0.25:
            out.append(Record(observation(address, port, protocol, status=Status.REFUSED)))
            continue
        if roll < 0.32:
            out.append(Record(observation(address, port, protocol, status=Status.CONNECT_TIMEOUT)))
            continue
        o = observation(address, port, protocol, software=rnd.choice(_SOFTWARE), greeting=f"ready {len(out)}")
        if roll < 0.34:
            o.status = Status.NOT_MAIL
            out.append(Record(o))
            continue
        versions = {
            "SSLv3": "accepted" if rnd.random() < 0.05 else "rejected",
            "TLSv1.0": rnd.choice(("accepted", "rejected", "unknown")),
            "TLSv1.1": rnd.choice(("accepted", "rejected")),
            "TLSv1.2": "accepted" if rnd.random() < 0.9 else "rejected",
            "TLSv1.3": "accepted" if rnd.random() < 0.6 else "rejected",
        }
        offers_tls = o.tls_mode is TLSMode.IMPLICIT or rnd.random() < 0.8
        if o.tls_mode is TLSMode.STARTTLS:
            o.plain = PlainPhase(
                capabilities=["CAPA"],
                auth_mechanisms=["PLAIN"] if rnd.random() < 0.3 else [],
                login_command=protocol is not Protocol.SMTP and rnd.random() < 0.4,
                starttls_advertised=offers_tls,
                starttls_accepted=offers_tls,
                starttls_reply="OK" if offers_tls else "ERR",
            )
        if offers_tls:
            best = "TLSv1.3" if versions["TLSv1.3"] == "accepted" else "TLSv1.2"
            expired = rnd.random() < 0.1
            o.tls = tls(
                version=best if versions[best] == "accepted" else "TLSv1",
                chain=[cert(not_after="2020-01-01T00:00:00Z" if expired else "2027-06-01T00:00:00Z")],
                trusted=rnd.random() < 0.8,
            )
            o.matrix = TLSMatrix(versions=versions)
        out.append(assess(o))
    return out
