"""Progress: where a scan stands — a rich bar on a terminal, machine-readable lines in logs.

On a terminal (stderr is a TTY) a bar shows endpoints done, the rate, the ETA and the counts by status.
Elsewhere (CI, systemd, a pipe) one JSON object per interval goes to stderr, prefixed by nothing, so log
collectors can parse it: ``{"progress": {"done": ..., "total": ..., "rate": ..., "eta_s": ...,
"status": {...}}}``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn


class ScanProgress:
    def __init__(
        self,
        total: int | None,
        *,
        stream: TextIO | None = None,
        interval: float = 10.0,
        tty: bool | None = None,
        enabled: bool = True,
    ) -> None:
        self.enabled = enabled
        self.total = total
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = self.stream.isatty() if tty is None else tty
        self.done = 0
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()
        self._last_line = self.started
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> ScanProgress:
        if self.tty and self.enabled:
            self._bar = Progress(
                TextColumn("[bold]scan"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>8.1f}/s"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[counts]}"),
                console=Console(file=self.stream, highlight=False),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task("scan", total=self.total, rate=0.0, counts="")
        return self

    def __exit__(self, *exc: object) -> None:
        self.tick(force=True)
        if self._bar is not None:
            self._bar.stop()

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def advance(self, status: str, count: int = 1) -> None:
        self.done += count
        self.counts[status] += count
        if self._bar is None:
            self.tick()  # a log line is due only when the interval has passed; checking is cheap

    def skip(self, count: int = 1) -> None:
        """Endpoints passed over without a record (reserved space inside a network, opted out)."""
        self.advance("skipped", count)

    def tick(self, force: bool = False) -> None:
        """Refresh the bar, or write a log line when the interval has passed."""
        if not self.enabled:
            return
        now = time.monotonic()
        if self._bar is not None and self._task is not None:
            counts = " ".join(f"{k}={v}" for k, v in self.counts.most_common(5))
            self._bar.update(self._task, completed=self.done, rate=self.rate, counts=counts)
            return
        if force or now - self._last_line >= self.interval:
            self._last_line = now
            remaining = (self.total - self.done) if self.total is not None else None
            eta = round(remaining / self.rate, 1) if remaining is not None and self.rate > 0 else None
            line = {
                "progress": {
                    "done": self.done,
                    "total": self.total,
                    "rate": round(self.rate, 1),
                    "elapsed_s": round(now - self.started, 1),
                    "eta_s": eta,
                    "status": dict(self.counts),
                }
            }
            self.stream.write(json.dumps(line, separators=(",", ":")) + "\n")
            self.stream.flush()
