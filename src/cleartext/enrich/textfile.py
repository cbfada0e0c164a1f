"""Open a text data file, gzip-compressed or not, the same way for every line-oriented reader.

Published dumps (iptoasn, RPSL split files) are usually shipped gzip-compressed and users keep them
that way, so compression is detected from the file's first bytes rather than from its name.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cleartext.enrich.errors import EnrichError

GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def open_text(path: Path, *, encoding: str = "utf-8") -> Iterator[Iterator[str]]:
    """Yield the lines of ``path`` (decompressed if gzip); OS and gzip errors become EnrichError.

    Undecodable bytes are replaced rather than fatal: a stray Latin-1 byte in a description must not
    cost the whole file, and a file that is not text at all is caught by the readers' format checks.
    A damaged gzip stream or a failing disk surfaces while the caller iterates, inside the ``with``
    block, where this context manager turns it into the same one-line error (no per-line wrapper:
    these files have millions of lines).
    """
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise EnrichError(path, f"cannot read: {exc.strerror or exc}") from None
    try:
        magic = raw.peek(2)[:2] if isinstance(raw, io.BufferedReader) else b""
        binary: gzip.GzipFile | io.BufferedReader = gzip.GzipFile(fileobj=raw) if magic == GZIP_MAGIC else raw
        yield io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline=None)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise EnrichError(path, f"cannot read: {exc}") from None
    finally:
        raw.close()
