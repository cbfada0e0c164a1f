"""The data directory: where `cleartext data fetch` keeps the attribution files, and how others find them.

One directory holds every downloaded file under its catalogue name (enrich/sources.py), a manifest
(``cleartext-data.json``) recording for each file where it came from, its validators (ETag,
Last-Modified) for the next conditional request, its checksum and when it was fetched, and optionally
the operator's own ``contacts.csv``. `report`, `attribute`, `notify` and `serve` read the manifest to
load every file without each being named.

The directory is ``--data-dir``, else ``$CLEARTEXT_DATA_DIR``, else ``$XDG_DATA_HOME/cleartext`` (by
default ``~/.local/share/cleartext``). The manifest is read back as untrusted input: bounded, and every
file name in it must be a plain name inside the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path

from cleartext.enrich.sources import CATALOGUE, KINDS, SAFE_FILE
from cleartext.errors import CleartextError

ENV = "CLEARTEXT_DATA_DIR"
MANIFEST = "cleartext-data.json"
CONTACTS = "contacts.csv"
LOCK = ".fetch.lock"
PART_SUFFIX = ".part"
MANIFEST_MAX_BYTES = 4 << 20
MANIFEST_VERSION = 1


class DataDirError(CleartextError):
    """The data directory cannot be used; the message is one line."""


def default_data_dir() -> Path:
    """``$CLEARTEXT_DATA_DIR``, else the XDG data home's ``cleartext`` directory."""
    chosen = os.environ.get(ENV)
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cleartext"


@dataclass(slots=True)
class Entry:
    """What the manifest knows about one fetched file."""

    source: str
    kind: str
    file: str
    url: str  # redacted: no query string, no credentials
    sha256: str
    size: int
    mtime_ns: int  # of the file as written; a differing file was changed by hand: no conditional request
    fetched_at: str  # when the content last changed (ISO 8601, UTC)
    checked_at: str  # when the source was last asked
    etag: str | None = None
    last_modified: str | None = None
    checksum: str | None = None  # "md5:…" / "sha256:…" as published, when the source publishes one

    def matches_disk(self, directory: Path) -> bool:
        try:
            stat = (directory / self.file).stat()
        except OSError:
            return False
        return stat.st_size == self.size and stat.st_mtime_ns == self.mtime_ns


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


class Manifest:
    """The entries of one data directory, by source name, in catalogue order when saved."""

    def __init__(self, directory: Path, entries: dict[str, Entry] | None = None) -> None:
        self.directory = directory
        self.entries: dict[str, Entry] = entries or {}

    @classmethod
    def load(cls, directory: Path) -> Manifest:
        """The directory's manifest; an empty one when there is none. DataDirError if it is damaged."""
        path = directory / MANIFEST
        try:
            with path.open("rb") as handle:
                raw = handle.read(MANIFEST_MAX_BYTES + 1)
        except FileNotFoundError:
            return cls(directory)
        except OSError as exc:
            raise DataDirError(f"cannot read {path}: {exc.strerror or exc}") from None
        if len(raw) > MANIFEST_MAX_BYTES:
            raise DataDirError(f"{path}: larger than {MANIFEST_MAX_BYTES} bytes: not a data manifest")
        try:
            document = json.loads(raw)
            if document.get("version") != MANIFEST_VERSION:
                raise ValueError(f"unknown version {document.get('version')!r}")
            entries = {}
            names = {f.name for f in fields(Entry)}
            for item in document["files"]:
                entry = Entry(**{k: v for k, v in item.items() if k in names})
                if entry.kind not in KINDS or not SAFE_FILE.fullmatch(entry.file):
                    raise ValueError(f"bad entry for {entry.source!r}")
                entries[entry.source] = entry
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise DataDirError(f"{path}: damaged data manifest ({exc}); delete it and fetch again") from None
        return cls(directory, entries)

    def save(self) -> None:
        """Write the manifest atomically (temporary file, fsync, rename)."""
        order = {s.name: i for i, s in enumerate(CATALOGUE)}
        ranked = sorted(self.entries.values(), key=lambda e: order.get(e.source, len(order)))
        document = {"version": MANIFEST_VERSION, "files": [asdict(e) for e in ranked]}
        write_atomic(self.directory / MANIFEST, (json.dumps(document, indent=1) + "\n").encode())

    def files(self) -> dict[str, list[Path]]:
        """Existing files by reader kind, in precedence order, and ``contacts.csv`` when present."""
        by_kind: dict[str, list[Path]] = {kind: [] for kind in (*KINDS, "contacts")}
        order = {s.name: i for i, s in enumerate(CATALOGUE)}
        for entry in sorted(self.entries.values(), key=lambda e: order.get(e.source, len(order))):
            path = self.directory / entry.file
            if path.is_file():
                by_kind[entry.kind].append(path)
        contacts = self.directory / CONTACTS
        if contacts.is_file():
            by_kind["contacts"].append(contacts)
        return by_kind


def age_days(stamp: str, now: datetime | None = None) -> float | None:
    """Days since an ISO 8601 time from the manifest; None when it cannot be read."""
    try:
        then = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return ((now or datetime.now(UTC)) - then).total_seconds() / 86400


def max_age_days(source: str) -> int:
    """How old a source's file may be before `data status` calls it stale (7 days for your own sources)."""
    return next((s.max_age_days for s in CATALOGUE if s.name == source), 7)


def write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}{PART_SUFFIX}")
    try:
        with part.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def sync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's fetch lock; DataDirError if another fetch holds it.

    Under the lock, temporary files left by a fetch that was killed are removed: no other fetch can be
    writing them.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataDirError(f"cannot use data directory {directory}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirError(f"another `cleartext data fetch` is writing into {directory}") from None
        for stale in directory.glob(f".*{PART_SUFFIX}"):
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)
