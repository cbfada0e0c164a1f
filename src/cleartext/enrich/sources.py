"""Where the attribution data files come from: the catalogue `cleartext data fetch` downloads.

Each :class:`Source` is one published file: its URL, the name it is stored under in the data directory
(fixed here, never taken from the server), the reader that uses it (``kind``), the checksum file its
publisher puts beside it, and a size bound. docs/attribution.md gives each source's licence, size and
cadence.

Every URL can be replaced, per source, by ``--url NAME=URL`` or by a TOML file (``sources.toml`` in the
data directory, or ``--config FILE``), which can also add sources of its own::

    [sources.rir-arin]
    url = "https://mirror.example/delegated-arin-extended-latest"
    checksum_url = "https://mirror.example/delegated-arin-extended-latest.md5"   # "" for none

    [sources.my-geo]                       # a source of your own
    kind = "mmdb"
    file = "my-geo.mmdb"
    url = "https://data.example/geo.mmdb.gz"
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cleartext.errors import CleartextError

KINDS = ("mmdb", "iptoasn", "rir", "rpsl")
MiB = 1 << 20
GiB = 1 << 30

# A stored file name: one path component, no leading dot, nothing a shell or a path could misread.
SAFE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
SAFE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
CONFIG_FILE = "sources.toml"
CONFIG_MAX_BYTES = 1 * MiB


class SourceError(CleartextError, ValueError):
    """A source definition (flag or config file) that cannot be used; the message is one line."""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    kind: str  # which reader uses the file: one of KINDS
    url: str  # "{month}" stands for the current UTC month, YYYY-MM (DB-IP names its files so)
    file: str  # the name in the data directory
    groups: tuple[str, ...] = ()  # names that select several sources at once
    checksum_url: str | None = None  # md5, sha1 or sha256 hex, told apart by length
    max_bytes: int = 256 * MiB  # bound on what is read from the network (and what an MMDB unpacks to)
    max_age_days: int = 7  # `data status` calls the file stale past this
    auth: str | None = None  # "maxmind" (HTTP basic: account ID, licence key) or "ipinfo" (token)
    default: bool = True  # fetched when no source is named (sources that need credentials: when given)


def _rir(registry: str, base: str) -> Source:
    url = f"{base}/delegated-{registry}-extended-latest"
    return Source(
        name=f"rir-{registry}",
        kind="rir",
        url=url,
        file=f"delegated-{registry}-extended-latest",
        groups=("rir",),
        checksum_url=f"{url}.md5",
        max_bytes=128 * MiB,
    )


def _rpsl(registry: str, base: str, objects: str) -> Source:
    return Source(
        name=f"{registry}-{objects}",
        kind="rpsl",
        url=f"{base}/{registry}.db.{objects}.gz",
        file=f"{registry}.db.{objects}.gz",
        groups=("rpsl", f"rpsl-{registry}"),
        max_bytes=2 * GiB,
        max_age_days=14,
    )


# The split RPSL files the enricher reads: ranges, origin ASes, and what their contacts point to.
RPSL_OBJECTS = ("inetnum", "inet6num", "aut-num", "role", "organisation", "irt")


def _mmdb(name: str, url: str, file: str, groups: tuple[str, ...], **extra: Any) -> Source:
    return Source(
        name=name, kind="mmdb", url=url, file=file, groups=("mmdb", *groups), max_age_days=45, **extra
    )


def _maxmind(name: str, edition: str) -> Source:
    """A GeoLite2 edition: a tar.gz behind HTTP basic auth, with its SHA-256 beside it."""
    url = f"https://download.maxmind.com/geoip/databases/{edition}/download?suffix=tar.gz"
    return _mmdb(name, url, f"{edition}.mmdb", ("maxmind",), checksum_url=f"{url}.sha256", auth="maxmind")


CATALOGUE: tuple[Source, ...] = (
    # MMDB first: within a kind, the order here is the order of precedence (docs/attribution.md).
    _maxmind("maxmind-asn", "GeoLite2-ASN"),
    _maxmind("maxmind-country", "GeoLite2-Country"),
    _mmdb(
        "ipinfo-lite",
        "https://ipinfo.io/data/ipinfo_lite.mmdb",
        "ipinfo_lite.mmdb",
        ("ipinfo",),
        auth="ipinfo",
    ),
    _mmdb(
        "dbip-asn",
        "https://download.db-ip.com/free/dbip-asn-lite-{month}.mmdb.gz",
        "dbip-asn-lite.mmdb",
        ("dbip",),
        default=False,
    ),
    _mmdb(
        "dbip-country",
        "https://download.db-ip.com/free/dbip-country-lite-{month}.mmdb.gz",
        "dbip-country-lite.mmdb",
        ("dbip",),
        default=False,
    ),
    Source(
        name="iptoasn",
        kind="iptoasn",
        url="https://iptoasn.com/data/ip2asn-combined.tsv.gz",
        file="ip2asn-combined.tsv.gz",
        max_bytes=256 * MiB,
        max_age_days=3,
    ),
    _rir("arin", "https://ftp.arin.net/pub/stats/arin"),
    _rir("ripencc", "https://ftp.ripe.net/pub/stats/ripencc"),
    _rir("apnic", "https://ftp.apnic.net/stats/apnic"),
    _rir("lacnic", "https://ftp.lacnic.net/pub/stats/lacnic"),
    _rir("afrinic", "https://ftp.afrinic.net/pub/stats/afrinic"),
    *(_rpsl("ripe", "https://ftp.ripe.net/ripe/dbase/split", objects) for objects in RPSL_OBJECTS),
    *(_rpsl("apnic", "https://ftp.apnic.net/apnic/whois", objects) for objects in RPSL_OBJECTS),
    # AFRINIC publishes one whole dump rather than split files; the RPSL reader takes either.
    Source(
        name="afrinic-db",
        kind="rpsl",
        url="https://ftp.afrinic.net/pub/dbase/afrinic.db.gz",
        file="afrinic.db.gz",
        groups=("rpsl", "rpsl-afrinic"),
        max_bytes=2 * GiB,
        max_age_days=14,
    ),
)


@dataclass(slots=True)
class Catalogue:
    """The sources in effect: the built-in ones with the user's overrides, then the user's own."""

    sources: list[Source] = field(default_factory=lambda: list(CATALOGUE))

    def get(self, name: str) -> Source | None:
        return next((s for s in self.sources if s.name == name), None)

    def groups(self) -> set[str]:
        return {g for s in self.sources for g in s.groups}

    def select(self, names: Sequence[str]) -> list[Source]:
        """Sources named, or in a group named, in catalogue order; SourceError for an unknown name."""
        known = {s.name for s in self.sources} | self.groups()
        for name in names:
            if name not in known:
                raise SourceError(
                    f"unknown source {name!r} (sources: {', '.join(s.name for s in self.sources)}; "
                    f"groups: {', '.join(sorted(self.groups()))})"
                )
        wanted = set(names)
        return [s for s in self.sources if s.name in wanted or wanted & set(s.groups)]

    def override(self, name: str, **changes: Any) -> None:
        for index, source in enumerate(self.sources):
            if source.name == name:
                self.sources[index] = replace(source, **changes)
                return
        raise SourceError(f"unknown source {name!r}")

    def add(self, source: Source) -> None:
        if self.get(source.name) is not None:
            raise SourceError(f"source {source.name!r} is defined twice")
        if any(s.file == source.file for s in self.sources):
            raise SourceError(f"source {source.name!r}: file {source.file!r} is another source's")
        self.sources.append(source)


def check_url(url: str, what: str) -> str:
    """An http(s) URL with a host, or SourceError. ``{month}`` may stand in the path."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise SourceError(f"{what}: not a URL: {url!r}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SourceError(f"{what}: expected an http:// or https:// URL, got {redact(url)!r}")
    if any(ch.isspace() for ch in url):
        raise SourceError(f"{what}: a URL cannot contain spaces")
    return url


def redact(url: str) -> str:
    """The URL without its query and credentials, which may hold a token: for messages and the manifest."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    query = "&".join(
        pair if pair.partition("=")[0] in _PLAIN_QUERY else f"{pair.partition('=')[0]}=…"
        for pair in parts.query.split("&")
        if pair
    )
    return f"{parts.scheme}://{host}{port}{parts.path}" + (f"?{query}" if query else "")


# Query parameters that never hold a secret (MaxMind's file suffix); any other value is hidden.
_PLAIN_QUERY = frozenset({"suffix", "edition_id", "date"})


_OVERRIDABLE = {"url": str, "checksum_url": str, "max_bytes": int, "max_age_days": int}
_NEW = {**_OVERRIDABLE, "kind": str, "file": str}


def load_config(path: Path, catalogue: Catalogue) -> None:
    """Apply a sources TOML file to the catalogue (see the module docstring); SourceError if unusable."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(CONFIG_MAX_BYTES + 1)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > CONFIG_MAX_BYTES:
        raise SourceError(f"{path}: larger than {CONFIG_MAX_BYTES} bytes: not a sources file")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SourceError(f"{path}: not TOML: {exc}") from None
    unknown = set(document) - {"sources"}
    if unknown:
        raise SourceError(f"{path}: unknown table {sorted(unknown)[0]!r} (expected [sources.NAME])")
    sources = document.get("sources", {})
    if not isinstance(sources, dict):
        raise SourceError(f"{path}: 'sources' must be a table of [sources.NAME] tables")
    for name, settings in sources.items():
        where = f"{path}: [sources.{name}]"
        if not isinstance(settings, dict):
            raise SourceError(f"{where}: expected a table")
        existing = catalogue.get(name)
        allowed = _OVERRIDABLE if existing is not None else _NEW
        for key, value in settings.items():
            if key not in allowed:
                extra = "" if existing is None else " (kind and file are fixed for a built-in source)"
                raise SourceError(f"{where}: unknown key {key!r}{extra}")
            if not isinstance(value, allowed[key]) or isinstance(value, bool):
                raise SourceError(f"{where}: {key} must be a {allowed[key].__name__}")
        changes = _changes(where, settings)
        if existing is not None:
            catalogue.override(name, **changes)
            continue
        if not SAFE_NAME.fullmatch(name):
            raise SourceError(f"{where}: a source name is lower-case letters, digits and '-'")
        missing = [key for key in ("kind", "file", "url") if key not in settings]
        if missing:
            raise SourceError(f"{where}: a new source needs {', '.join(missing)}")
        kind, file = settings["kind"], settings["file"]
        if kind not in KINDS:
            raise SourceError(f"{where}: kind must be one of {', '.join(KINDS)}")
        catalogue.add(Source(name=name, kind=kind, file=check_file(file, where), **changes))


def _changes(where: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "url" in settings:
        changes["url"] = check_url(settings["url"], f"{where} url")
    if "checksum_url" in settings:
        value = settings["checksum_url"]
        changes["checksum_url"] = check_url(value, f"{where} checksum_url") if value else None
    for key in ("max_bytes", "max_age_days"):
        if key in settings:
            if settings[key] < 1:
                raise SourceError(f"{where}: {key} must be positive")
            changes[key] = settings[key]
    return changes


def check_file(name: str, where: str) -> str:
    if not SAFE_FILE.fullmatch(name) or name in (".", ".."):
        raise SourceError(f"{where}: file must be a plain file name (letters, digits, '.', '_', '-')")
    return name


def apply_url_flags(flags: Iterable[str], catalogue: Catalogue) -> None:
    """``NAME=URL`` pairs from ``--url``: replace a source's URL (its checksum URL is then dropped)."""
    for flag in flags:
        name, sep, url = flag.partition("=")
        if not sep or not name:
            raise SourceError(f"--url {flag!r}: expected NAME=URL")
        if catalogue.get(name) is None:
            raise SourceError(f"--url {flag!r}: unknown source {name!r}")
        source = catalogue.get(name)
        assert source is not None
        checksum = None
        if source.checksum_url and source.checksum_url.startswith(source.url):
            # The publisher's convention (FILE.md5, FILE...sha256) is kept for the new location.
            checksum = url + source.checksum_url[len(source.url) :]
        catalogue.override(name, url=check_url(url, f"--url {name}"), checksum_url=checksum)


def add_mmdb_url(url: str, catalogue: Catalogue) -> Source:
    """A source of its own for ``--mmdb-url``: an MMDB (raw, gzip, or tar.gz with one .mmdb) at ``url``.

    Its name and file come from the URL's last path segment, checked, never from what the server says.
    """
    check_url(url, "--mmdb-url")
    segment = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"(\.tar)?\.gz$|\.tgz$", "", segment, flags=re.IGNORECASE)
    stem = re.sub(r"\.mmdb$", "", stem, flags=re.IGNORECASE)
    name = re.sub(r"[^a-z0-9-]+", "-", stem.lower()).strip("-")[:48]
    if not name or not SAFE_FILE.fullmatch(f"{stem}.mmdb"):
        raise SourceError(f"--mmdb-url {redact(url)}: cannot name a file after {segment!r}")
    source = Source(
        name=f"mmdb-{name}", kind="mmdb", url=url, file=f"{stem}.mmdb", groups=("mmdb",), max_age_days=45
    )
    catalogue.add(source)
    return source
