"""Hostile text: everything a scanned server sends is bounded and made inert before we keep it.

A banner can hold terminal escape sequences, NUL bytes, megabytes of junk or invalid UTF-8. Records keep
a *sanitised* string: decoded leniently, control characters shown as ``\\xNN``, cut to a bound. Output
stages (terminal, CSV, HTML) still escape for their own medium; this is the first line of defence.
"""

from __future__ import annotations

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
