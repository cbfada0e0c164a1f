"""Where a scan stands, from any machine that reaches the store: shards, endpoints, statuses, rate, ETA.

Everything comes from the store (no broker needed): the ``shards`` table's states and saved checkpoints,
which lag the truth by a few seconds (a checkpoint is saved about every two seconds, once its records
are stored). A scan that was not distributed gets what the store knows about it: its records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from cleartext.distributed import db
from cleartext.store import Store


@dataclass
class ScanStatus:
    scan_id: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    distributed: bool
    endpoints: int  # in the whole scan (for a scan that was not distributed: stored so far)
    done: int = 0  # endpoints done, those passed over without a packet (excluded, reserved) included
    stored: int = 0  # endpoints with a record in the store, as of the shards' checkpoints
    skipped: int = 0  # passed over without a record
    counts: dict[str, int] = field(default_factory=dict)  # stored endpoints by status
    shards: int = 0
    shards_done: int = 0
    shards_running: int = 0
    shards_stalled: int = 0  # running, but no heartbeat for db.STALE_AFTER_S: waiting for redelivery
    shards_queued: int = 0
    elapsed_s: float = 0.0
    rate: float = 0.0  # endpoints done per second since the scan started
    eta_s: float | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # the last error of shards that have one

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("started_at", "finished_at"):
            moment = getattr(self, key)
            data[key] = moment.isoformat().replace("+00:00", "Z") if moment else None
        return data


def scan_status(store: Store, scan_id: str) -> ScanStatus:
    """The scan's status; StoreError if the store has no such scan."""
    info = store.scan(scan_id)
    dist = db.has_tables(store) and store.query(
        "SELECT shards, endpoints FROM distributed_scans WHERE scan_id = ?", (scan_id,)
    )
    if not dist:
        counts = info.counts or {
            str(k): int(v)
            for k, v in store.query(
                "SELECT status, count(*) FROM records WHERE scan_id = ? GROUP BY status", (scan_id,)
            )
        }
        return ScanStatus(
            scan_id,
            info.started_at,
            info.finished_at,
            False,
            info.endpoints,
            done=info.endpoints,
            stored=info.endpoints,
            counts=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        )
    shards, endpoints = int(dist[0][0]), int(dist[0][1])
    row = store.query(
        "SELECT count(*) FILTER (WHERE state = 'done'), "
        "count(*) FILTER (WHERE state = 'running' AND heartbeat_at >= now() - make_interval(secs => ?)), "
        "count(*) FILTER (WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => ?)), "
        "count(*) FILTER (WHERE state = 'queued'), coalesce(sum(done), 0) "
        "FROM shards WHERE scan_id = ?",
        (db.STALE_AFTER_S, db.STALE_AFTER_S, scan_id),
    )[0]
    elapsed = store.query(
        "SELECT EXTRACT(EPOCH FROM coalesce(finished_at, now()) - started_at) FROM scans WHERE scan_id = ?",
        (scan_id,),
    )[0][0]
    errors = store.query(
        "SELECT shard, error FROM shards WHERE scan_id = ? AND error IS NOT NULL AND state <> 'done' "
        "ORDER BY shard LIMIT 5",
        (scan_id,),
    )
    counts = db.shard_counts(store, scan_id)
    skipped = counts.pop("skipped", 0)
    done = int(row[4])
    elapsed_s = max(0.0, float(elapsed))
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    finished = info.finished_at is not None
    return ScanStatus(
        scan_id,
        info.started_at,
        info.finished_at,
        True,
        endpoints,
        done=done,
        stored=sum(counts.values()),
        skipped=skipped,
        counts=dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        shards=shards,
        shards_done=int(row[0]),
        shards_running=int(row[1]),
        shards_stalled=int(row[2]),
        shards_queued=int(row[3]),
        elapsed_s=round(elapsed_s, 1),
        rate=round(rate, 1),
        eta_s=0.0 if finished else (round((endpoints - done) / rate, 1) if rate > 0 else None),
        errors=[{"shard": int(s), "error": str(e)} for s, e in errors],
    )


def duration(seconds: float | None) -> str:
    """3725 → "1h 02m 05s"; None → "unknown"."""
    if seconds is None:
        return "unknown"
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def render(status: ScanStatus) -> str:
    """The status as a few aligned lines of text."""
    s = status
    when = s.started_at.strftime("%Y-%m-%d %H:%M:%SZ")
    state = (
        f"finished {s.finished_at.strftime('%Y-%m-%d %H:%M:%SZ')} after {duration(s.elapsed_s)}"
        if s.finished_at
        else f"running for {duration(s.elapsed_s)}"
    )
    kind = f"distributed, {s.shards} shards" if s.distributed else "one machine"
    lines = [f"scan       {s.scan_id} ({kind}), started {when}, {state}"]
    if s.distributed:
        lines.append(
            f"shards     {s.shards_done} done, {s.shards_running} running, {s.shards_stalled} stalled, "
            f"{s.shards_queued} queued"
        )
        share = 100.0 * s.done / s.endpoints if s.endpoints else 100.0
        lines.append(
            f"endpoints  {s.done:,} of {s.endpoints:,} done ({share:.1f}%): {s.stored:,} stored, "
            f"{s.skipped:,} passed over"
        )
        if not s.finished_at:
            lines.append(f"rate       {s.rate:,.1f} endpoints/s, ETA {duration(s.eta_s)}")
    else:
        lines.append(f"endpoints  {s.stored:,} stored")
    if s.counts:
        lines.append("status     " + ", ".join(f"{n:,} {name}" for name, n in s.counts.items()))
    for item in s.errors:
        lines.append(f"error      shard {item['shard']}: {item['error']}")
    return "\n".join(lines)
