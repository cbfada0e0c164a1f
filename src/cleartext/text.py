"""Hostile text: everything a scanned server sends is bounded and made inert before we keep it.

A banner can hold terminal escape sequences, NUL bytes, megabytes of junk or invalid UTF-8. Records keep
a *sanitised* string: decoded leniently, control characters shown as ``\\xNN``, cut to a bound. Output
stages (terminal, CSV, HTML) still escape for their own medium; this is the first line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_TEXT = 1024  # characters kept of any one server-sent line in a record


def sanitize(data: bytes | str, limit: int = MAX_TEXT) -> str:
    """Decode server bytes and make them printable: control characters escaped, length bounded."""
    if isinstance(data, bytes):
        data = data[: limit * 4].decode("utf-8", errors="replace")
    if len(data) <= limit and data.isprintable() and "\\" not in data:
        return data  # the common case, checked in C: nothing to escape, nothing to cut
    out: list[str] = []
    size = 0
    for ch in data:
        code = ord(ch)
        # Not printable covers C0/C1 controls, format characters (bidi overrides, zero-width) and
        # unassigned code points: all shown as escapes, so nothing invisible reaches a reader.
        if not ch.isprintable():
            piece = (
                f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
            )
        elif ch == "\\":
            piece = "\\\\"
        else:
            piece = ch
        if size + len(piece) > limit:
            out.append("…")
            break
        out.append(piece)
        size += len(piece)
    return "".join(out)


def join_lines(lines: Iterable[str], limit: int) -> str:
    """Lines that :func:`sanitize` already made inert, joined as one record string (line feeds written
    ``\\x0a``, as sanitize writes them) and bounded to ``limit`` characters.

    Not sanitize again on the joined text: that would escape the escapes, and a NUL sent as ``\\x00``
    would read ``\\\\x00``.
    """
    text = "\\x0a".join(lines)
    if len(text) <= limit:
        return text
    cut = 0
    for piece in _PIECE.finditer(text):  # cut between escapes, never inside one
        if piece.end() > limit - 1:
            break
        cut = piece.end()
    return text[:cut] + "…"


# One character as sanitize writes it: an escaped backslash, an escape, or a character.
_PIECE = re.compile(r"\\\\|\\x[0-9a-f]{2}|\\u[0-9a-f]{4}|\\U[0-9a-f]{8}|.", re.DOTALL)
