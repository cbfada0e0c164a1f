"""One receive buffer with its limits, shared by the protocol readers (after h11's _receivebuffer).

Mail protocols are line-based. A hostile server may send a line that never ends, or an endless stream
of short lines; the buffer refuses both with :class:`LimitExceeded`, which the probe turns into the
``protocol-error`` status instead of reading forever.
"""

from __future__ import annotations


class LimitExceeded(Exception):
    """The server sent more than we are willing to hold (a line or a reply too long)."""


class LineBuffer:
    def __init__(self, max_line: int = 8192) -> None:
        self._data = bytearray()
        self.max_line = max_line

    def feed(self, data: bytes) -> None:
        self._data += data

    def __len__(self) -> int:
        return len(self._data)

    def take_line(self) -> bytes | None:
        """Return the next line without its CR LF (a bare LF also ends a line), or None if incomplete."""
        end = self._data.find(b"\n", 0, self.max_line + 2)
        if end < 0:
            if len(self._data) > self.max_line:
                raise LimitExceeded(f"line longer than {self.max_line} bytes")
            return None
        line = bytes(self._data[:end])
        del self._data[: end + 1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line:
            raise LimitExceeded(f"line longer than {self.max_line} bytes")
        return line

    def take_bytes(self, count: int) -> bytes | None:
        """Return exactly ``count`` bytes (an IMAP literal), or None if not all have arrived."""
        if len(self._data) < count:
            return None
        chunk = bytes(self._data[:count])
        del self._data[:count]
        return chunk

    def take_all(self) -> bytes:
        """Hand over whatever is buffered (e.g. bytes a server sent right after agreeing to STARTTLS)."""
        chunk = bytes(self._data)
        self._data.clear()
        return chunk
