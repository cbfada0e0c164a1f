"""Checkpoint: what lets a scan killed with SIGKILL continue with ``--resume``, nothing lost or twice.

The scan order is a permutation (cleartext.scan.permutation), so "where we are" is a *watermark* — every
position of this shard below it is done — plus the few positions above it already done (endpoints finish
out of order). A state file beside the output, replaced atomically about once a second, holds those, the
byte offset of the output at that moment, the seed, and the resolved hostname targets.

A record reaches the tracker only after its line is flushed, so the state never claims more than the
output holds. On resume the output is cut back to its last complete line (SIGKILL may have cut one in
half), and the few records written after the saved offset are read back and mapped to their positions —
they are done too. Everything else is scanned again.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cleartext.errors import CleartextError

STATE_VERSION = 1


class CheckpointError(CleartextError):
    """A state file that cannot be used for these arguments; the message is one line."""


@dataclass
class ScanState:
    fingerprint: str
    seed: int
    shard: int
    shards: int
    watermark: int
    done_above: list[int] = field(default_factory=list)
    offset: int = 0
    named: list[list[str]] = field(default_factory=list)  # [hostname, address] pairs, as resolved
    scan_id: str | None = None  # the scan's id in the store, so a resumed scan continues the same one
    store_offset: int = 0  # output offset up to which every record is known to be in the store
    version: int = STATE_VERSION

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        # Not dataclasses.asdict: it deep-copies every element of done_above (thousands of positions
        # while slow endpoints hold the watermark back), ~1.5 % of a dense scan's CPU once a second.
        state = {f.name: getattr(self, f.name) for f in fields(self)}
        tmp.write_text(json.dumps(state, separators=(",", ":")))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> ScanState:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            if data.get("version") != STATE_VERSION:
                raise CheckpointError(f"{path}: unknown state version {data.get('version')!r}")
            return cls(**data)
        except FileNotFoundError:
            raise CheckpointError(f"nothing to resume: {path} does not exist") from None
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(f"cannot read scan state {path}: {exc}") from None


def fingerprint(arguments: dict[str, Any]) -> str:
    """What must not change between a scan and its resumption (targets, ports, shard, ...)."""
    return hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:32]


class Tracker:
    """The watermark and the set of positions done above it, for one shard's positions."""

    def __init__(self, watermark: int, shards: int, done_above: set[int] | None = None) -> None:
        self.watermark = watermark
        self.shards = shards
        self.above: set[int] = set(done_above or ())
        self._advance()

    def _advance(self) -> None:
        while self.watermark in self.above:
            self.above.discard(self.watermark)
            self.watermark += self.shards

    def complete(self, position: int) -> None:
        if position < self.watermark:
            return
        self.above.add(position)
        self._advance()

    def is_done(self, position: int) -> bool:
        return position < self.watermark or position in self.above


def cut_to_last_line(path: Path) -> int:
    """Truncate a file after its last newline (a SIGKILL may leave half a line); return the new size."""
    with open(path, "rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        keep = size
        chunk = 65536
        while keep > 0:
            start = max(0, keep - chunk)
            handle.seek(start)
            block = handle.read(keep - start)
            newline = block.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            keep = start
        if keep != size:
            handle.truncate(keep)
        return keep


def records_after(path: Path, offset: int) -> list[dict[str, Any]]:
    """The complete JSON lines written after ``offset`` (at most about one second of output)."""
    out: list[dict[str, Any]] = []
    with open(path, "rb") as handle:
        handle.seek(offset)
        for line in handle:
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # not one of ours; ignore rather than lose the resume
    return out
