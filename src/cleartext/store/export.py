"""Exports of one scan: Parquet (typed columns plus the record), CSV (typed columns, flattened) and JSONL.

The export reads the store's stream batch by batch, so a scan of millions of endpoints is exported in
flat memory. The file is written beside the target and renamed into place at the end: a reader never
sees half an export, and a failed export leaves no file behind.

CSV cells are escaped against formula injection: a cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return gets a leading ``'``, so a spreadsheet shows it as text instead of evaluating
it (hostnames come from target lists, which may come from anywhere).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cleartext.store.schema import COLUMNS, StoreError, arrow_schema

if TYPE_CHECKING:
    import pyarrow as pa

CSV_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "record")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(text: str) -> str:
    """Prefix a cell a spreadsheet would evaluate (=, +, -, @, tab, CR first) with a quote."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: Any) -> str:
    """One typed value as CSV text: lists space-separated, times ISO 8601 UTC, booleans true/false."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        text = " ".join(str(v) for v in value)
    elif isinstance(value, dt.datetime):
        text = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    else:
        text = str(value)
    return escape_formula(text)


def write_export(
    batches: Iterator[pa.RecordBatch],
    fmt: str,
    path: str | os.PathLike[str],
    *,
    extra_lines: Sequence[str] = (),
) -> int:
    """Write the batches to `path` in `fmt`; returns the rows of the batches written.

    ``extra_lines`` (jsonl only: the scan's domain records) follow the batches' records, one a line.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    writer = {"parquet": _parquet, "csv": _csv, "jsonl": _jsonl}[fmt]
    if extra_lines and fmt != "jsonl":
        raise ValueError("only a jsonl export takes extra lines")
    try:
        with contextlib.closing(batches):  # type: ignore[type-var]
            rows = writer(batches, temporary)
            if extra_lines:
                with temporary.open("a", encoding="utf-8") as handle:
                    handle.writelines(f"{line}\n" for line in extra_lines)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target}: {exc.strerror or exc}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return rows


def _parquet(batches: Iterator[pa.RecordBatch], path: Path) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(path, arrow_schema(), compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _csv(batches: Iterator[pa.RecordBatch], path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(CSV_COLUMNS)
        for batch in batches:
            for row in batch.select(list(CSV_COLUMNS)).to_pylist():
                out.writerow([csv_cell(row[c]) for c in CSV_COLUMNS])
                rows += 1
    return rows


def _jsonl(batches: Iterator[pa.RecordBatch], path: Path) -> int:
    rows = 0
    with path.open("w", encoding="utf-8") as handle:
        for batch in batches:
            for text in batch.column("record").to_pylist():
                handle.write(text)
                handle.write("\n")
                rows += 1
    return rows
