"""The one error the enrich stage raises for a data file it cannot use.

A data file is the operator's, not ours: when it is missing, unreadable or not in the format it was given
as (a CSV passed as an MMDB, a truncated database, a TSV with the wrong columns), the only useful answer
is a one-line message naming the file, and the line when there is one, so the CLI can print it as is.
"""

from __future__ import annotations

from pathlib import Path

from cleartext.errors import CleartextError


class EnrichError(CleartextError):
    """A data file cannot be used; ``str(error)`` is one line: ``path[:line]: what is wrong``."""

    def __init__(self, path: str | Path, message: str, line: int | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.reason = " ".join(message.split())  # always one line, whatever the library said
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {self.reason}")
