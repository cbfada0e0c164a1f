"""Sender policy, sans-IO: MTA-STS (RFC 8461) records and policy files, TLS-RPT (RFC 8460) records.

Each parser takes what the DNS or the policy host sent and returns the fields a sender would use plus a
list of errors, one line each, exactly as a sender would judge them: an MTA-STS record set that is not
exactly one valid ``v=STSv1`` record means "no policy" (RFC 8461 3.1), and so does a policy file that
lacks a required field (3.2). Nothing here raises on input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cleartext.text import sanitize

MAX_AGE_LIMIT = 31_557_600  # RFC 8461 3.2: max_age is at most one year
SHORT_MAX_AGE = 86_400  # below a day a policy protects little: see domain.assess
MAX_POLICY_LINES = 1000
_ID = re.compile(r"[A-Za-z0-9]{1,32}")
_FIELD = re.compile(r"^\s*([A-Za-z0-9_]+)\s*=\s*(.*?)\s*$", re.S)


def _fields(record: str) -> list[tuple[str, str]] | None:
    """``k=v; k=v;`` (RFC 8461 3.1 / RFC 8460 3 ABNF, whitespace tolerated) -> pairs; None if malformed."""
    pairs: list[tuple[str, str]] = []
    for part in record.split(";"):
        if not part.strip():
            continue
        match = _FIELD.match(part)
        if match is None:
            return None
        pairs.append((match.group(1), match.group(2)))
    return pairs


@dataclass(slots=True)
class StsRecord:
    id: str | None = None
    errors: list[str] = field(default_factory=list)


def _single(records: list[str], version: str, example: str) -> tuple[list[tuple[str, str]], list[str]]:
    """RFC 8461 3.1 and RFC 8460 3 alike: keep the records that begin with ``v=<version>``; exactly one
    must remain, and parse. Returns its fields, or [] and why not."""
    candidates = [r for r in records if r.startswith(f"v={version}")]
    if not candidates:
        return [], [f"no record begins with v={version}"] if records else []
    if len(candidates) > 1:
        return [], [f"{len(candidates)} records begin with v={version}; senders then ignore them all"]
    pairs = _fields(candidates[0])
    if not pairs or pairs[0] != ("v", version):
        return [], [f"malformed record: expected {example}"]
    return pairs, []


def parse_sts_records(records: list[str]) -> StsRecord:
    """The ``_mta-sts`` TXT records: one ``v=STSv1`` record with one id of 1 to 32 letters and digits."""
    pairs, errors = _single(records, "STSv1", "v=STSv1; id=...;")
    if errors or not pairs:
        return StsRecord(errors=errors)
    ids = [value for key, value in pairs if key == "id"]
    if len(ids) != 1 or not _ID.fullmatch(ids[0]):
        return StsRecord(errors=["the record needs one id of 1 to 32 letters and digits"])
    return StsRecord(id=ids[0])


@dataclass(slots=True)
class StsPolicy:
    version: str | None = None
    mode: str | None = None
    mx: list[str] = field(default_factory=list)
    max_age: int | None = None
    errors: list[str] = field(default_factory=list)


def parse_sts_policy(body: bytes) -> StsPolicy:
    """RFC 8461 3.2: ``key: value`` lines (CRLF or LF); version, mode and max_age once each, mx lines
    (at least one unless mode is none). Unknown keys are ignored, as senders must."""
    policy = StsPolicy()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        policy.errors.append("the policy is not UTF-8 text")
        return policy
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines()):
        if number >= MAX_POLICY_LINES:
            policy.errors.append(f"more than {MAX_POLICY_LINES} lines")
            break
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            policy.errors.append(f"line {number + 1} is not 'key: value'")
            continue
        seen[key] = seen.get(key, 0) + 1
        if key == "version":
            policy.version = sanitize(value, 40)
        elif key == "mode":
            policy.mode = sanitize(value, 40)
        elif key == "max_age":
            policy.max_age = int(value) if value.isdigit() and len(value) <= 10 else None
            if policy.max_age is None:
                policy.errors.append(f"max_age {sanitize(value, 40)!r} is not a number of seconds")
        elif key == "mx" and len(policy.mx) < 100:
            policy.mx.append(sanitize(value, 255).lower().rstrip("."))
    for key in ("version", "mode", "max_age"):
        if seen.get(key, 0) > 1:
            policy.errors.append(f"{key} appears {seen[key]} times")
    if policy.version != "STSv1":
        policy.errors.append("version must be STSv1" if policy.version else "no version line")
    if policy.mode not in ("enforce", "testing", "none"):
        policy.errors.append(
            f"mode {policy.mode!r} is not enforce, testing or none" if policy.mode else "no mode line"
        )
    if policy.max_age is not None and policy.max_age > MAX_AGE_LIMIT:
        policy.errors.append(f"max_age {policy.max_age} exceeds {MAX_AGE_LIMIT} (one year)")
    elif "max_age" not in seen:
        policy.errors.append("no max_age line")
    if policy.mode in ("enforce", "testing") and not policy.mx:
        policy.errors.append(f"mode {policy.mode} without any mx line")
    return policy


def mx_matches(pattern: str, host: str) -> bool:
    """RFC 8461 4.1: an exact name, or ``*.example.com`` standing for exactly one leftmost label."""
    pattern = pattern.strip().lower().rstrip(".")
    host = host.strip().lower().rstrip(".")
    if not pattern or not host:
        return False
    if pattern.startswith("*."):
        head, dot, rest = host.partition(".")
        return bool(head and dot) and rest == pattern[2:]
    return pattern == host


def uncovered(patterns: list[str], hosts: list[str]) -> list[str]:
    """The MX hosts no pattern of the policy covers."""
    return [h for h in hosts if not any(mx_matches(p, h) for p in patterns)]


@dataclass(slots=True)
class RptRecord:
    rua: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def parse_tlsrpt_records(records: list[str]) -> RptRecord:
    """RFC 8460 3: exactly one record beginning with ``v=TLSRPTv1``, with a ``rua`` of mailto:/https: URIs."""
    pairs, errors = _single(records, "TLSRPTv1", "v=TLSRPTv1; rua=...;")
    if errors or not pairs:
        return RptRecord(errors=errors)
    ruas = [value for key, value in pairs if key == "rua"]
    if len(ruas) != 1:
        return RptRecord(errors=["the record needs exactly one rua"])
    uris = [u.strip() for u in ruas[0].split(",") if u.strip()]
    good = [sanitize(u, 255) for u in uris if u.lower().startswith(("mailto:", "https:"))][:10]
    if not good:
        return RptRecord(errors=["rua names no mailto: or https: address"])
    partial = [] if len(good) == len(uris) else ["rua has URIs that are not mailto: or https:"]
    return RptRecord(rua=good, errors=partial)
