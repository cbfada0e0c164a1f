"""Job: one `cleartext scan` run from start to end — plan, output, checkpoint, progress, signals.

The CLI validates arguments and builds a :class:`~cleartext.scan.spec.ScanSpec` and the
:class:`RunOptions` of this run; this module runs the engine over them and
owns everything that must survive trouble: the JSON Lines output (flushed record by record), the state
file that makes ``--resume`` exact after a SIGKILL, and the clean stop on SIGINT/SIGTERM, a full disk or
a closed pipe — what was written stays written, and the state says how far it got.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import signal
import sys
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from cleartext.endpoint_lists import EndpointListError, EndpointReader
from cleartext.errors import EXIT_ABORTED, CleartextError
from cleartext.mx import read_domains, write_endpoint_list
from cleartext.politeness import ExclusionList, Gate
from cleartext.record import Record, record_from_dict
from cleartext.resolve import Resolver
from cleartext.scan.checkpoint import (
    CheckpointError,
    ScanState,
    Tracker,
    cut_to_last_line,
    records_after,
)
from cleartext.scan.engine import Engine, ListedEndpoints, Plan, auto_concurrency, build_space, resolve_named
from cleartext.scan.progress import ScanProgress
from cleartext.scan.spec import ScanSpec
from cleartext.scan.workers import WorkerError, WorkerPool, usable_cpus
from cleartext.store import Store, StoreError, StoreSink, open_store
from cleartext.targets import Named, TargetError


class JobError(CleartextError):
    """Arguments that cannot run (bad state file, resume without output); one line, exit 2."""


class JobAborted(CleartextError):
    """The scan had to stop early (the output cannot be written); one line, exit 1."""

    exit_code = EXIT_ABORTED


@dataclass(frozen=True)
class RunOptions:
    """One run of a scan, as opposed to the scan itself (:class:`~cleartext.scan.spec.ScanSpec`)."""

    out: Path | None = None  # JSON Lines output (None: stdout); the state file is kept beside it
    resume: bool = False
    concurrency: int = 0  # 0: sized to the file-descriptor limit
    progress: bool | None = None  # None: a bar on a terminal, log lines otherwise
    progress_interval: float = 10.0
    store: str | None = None  # store URL (DuckDB path or postgresql://); None: JSON Lines only
    workers: int = 1  # processes that probe (1: this one; 0: one per usable CPU); see cleartext.scan.workers
    domains_out: Path | None = None  # scan --mx: each domain's outcome, one JSON line (default: beside out)


@dataclass
class JobResult:
    counts: Counter[str]
    interrupted: bool
    complete: bool
    scan_id: str | None = None
    skipped_lines: int = 0  # lines of an endpoint list that were no endpoint (--skip-bad-lines)


class _Output:
    """JSON Lines to a file or stdout, flushed per record; remembers the offset of the last whole line."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.handle: TextIO = sys.stdout if path is None else path.open("a", encoding="utf-8")
        self.offset = self.handle.tell() if path is not None else 0

    def write(self, line: str) -> None:
        """One record's ``to_json()``."""
        self.handle.write(line + "\n")
        self.handle.flush()
        if self.path is not None:
            self.offset = self.handle.tell()

    def close(self) -> None:
        if self.handle is not sys.stdout:
            with contextlib.suppress(OSError):
                self.handle.close()


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def _resume_state(spec: ScanSpec, out: Path) -> tuple[ScanState, set[int]]:
    """Load the state, cut the output back to whole lines, and collect positions done after the offset."""
    try:
        state = ScanState.load(state_path(out))
    except CheckpointError as exc:
        raise JobError(str(exc)) from None
    if state.fingerprint != spec.fingerprint():
        raise JobError(
            f"{state_path(out)} belongs to a scan with other targets, ports or shard; "
            "resume with the same arguments"
        )
    if spec.seed is not None and spec.seed != state.seed:
        raise JobError(f"--seed {spec.seed} differs from the resumed scan's seed {state.seed}")
    if not out.exists():
        raise JobError(f"nothing to resume: {out} does not exist")
    cut_to_last_line(out)
    return state, set(state.done_above)


async def run_job(
    spec: ScanSpec,
    run: RunOptions,
    resolver: Resolver,
    warn: Callable[[str], None],
    note: Callable[[str], None] | None = None,
) -> JobResult:
    if run.resume and run.out is None:
        raise JobError("--resume needs --out: the state is kept beside the output file")
    if spec.mx_domains is not None:
        spec = await _list_mx_endpoints(spec, run, resolver, note or warn)
    done_above: set[int] = set()
    scan_id: str | None = None
    if run.resume:
        assert run.out is not None
        state, done_above = _resume_state(spec, run.out)
        seed = state.seed
        named = [Named(h, a) for h, a in state.named]
        watermark = state.watermark
        scan_id = state.scan_id
    else:
        seed = spec.seed if spec.seed is not None else secrets.randbits(63)
        named = await resolve_named(spec.specs, resolver, warn)
        watermark = spec.shard
    plan = Plan(
        build_space(spec.specs, named, spec.ports),
        seed,
        spec.shard,
        spec.shards,
        spec.allow_reserved,
        listed=_listed(spec),
    )
    if run.resume:
        # Records flushed after the last saved state are done too: map them back to their positions.
        assert run.out is not None
        found = [
            (str(data.get("address")), int(data.get("port", 0)), data.get("hostname"))
            for data in records_after(run.out, state.offset)
        ]
        done_above |= plan.positions_of(found)
    tracker = Tracker(watermark, plan.shards, done_above)

    try:
        exclusions = ExclusionList(spec.exclude) if spec.exclude else None
    except ValueError as exc:
        raise JobError(str(exc)) from None
    gate = Gate(exclusions, spec.rate, spec.per_host)
    shard_size = plan.shard_size
    remaining = None if shard_size is None else max(0, shard_size - _done_count(tracker, plan))
    store, sink, scan_id = _open_store(spec, run.store, scan_id, seed)
    if store is not None and remaining is not None:
        caution = store.memory_warning(remaining)
        if caution is not None:
            warn(caution)
    if run.resume and store is not None and scan_id is not None:
        # The store's sink buffers a second or two; what a kill cut off there is in the output: replay it.
        assert run.out is not None
        _replay_into_store(store, scan_id, run.out, state.store_offset)
    # Which output offset the store has caught up with: (records emitted before it, offset after it).
    in_flight_to_store: deque[tuple[int, int]] = deque()
    emitted = 0
    store_offset = 0
    try:
        output = _Output(run.out)
    except OSError as exc:
        raise JobError(f"cannot write {run.out}: {exc.strerror or exc}") from None
    store_offset = output.offset
    fp = spec.fingerprint()

    keep_state = run.out is not None and (not run.out.exists() or run.out.is_file())

    def save_state() -> None:
        if run.out is None or not keep_state:  # stdout, /dev/null, a FIFO: nothing to resume from
            return
        state = ScanState(
            fingerprint=fp,
            seed=seed,
            shard=spec.shard,
            shards=spec.shards,
            watermark=tracker.watermark,
            done_above=sorted(tracker.above),
            offset=output.offset,
            store_offset=store_caught_up(),
            named=[[n.hostname, n.address] for n in plan.space.named],
            scan_id=scan_id,
        )
        with contextlib.suppress(OSError):  # a full disk: the previous state stays valid
            state.save(state_path(run.out))

    def store_caught_up() -> int:
        nonlocal store_offset
        if sink is None:
            return output.offset
        written = sink.written
        while in_flight_to_store and in_flight_to_store[0][0] < written:
            store_offset = in_flight_to_store.popleft()[1]
        return store_offset

    store_failure: StoreError | None = None

    def emit(record: Record) -> None:
        nonlocal emitted, store_failure
        if store_failure is not None:
            raise store_failure  # before this record reaches the output: it stays to be done
        line = record.to_json()  # once, for the output and the store
        output.write(line)
        if sink is not None:
            in_flight_to_store.append((emitted, output.offset))
            emitted += 1
            try:
                sink(record, line)
            except StoreError as exc:
                # This record is in the output already, so it must count as done (or --resume would
                # scan it twice): the scan stops at the next one.
                store_failure = exc

    # A bar on a terminal, JSON lines elsewhere; --no-progress: neither.
    progress = ScanProgress(remaining, interval=run.progress_interval, enabled=run.progress is not False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    workers = run.workers or usable_cpus()
    pool: WorkerPool | None = None
    if workers > 1:
        # The per-endpoint work goes to worker processes; everything that must happen once stays here.
        pool = WorkerPool(workers, spec)
    engine = Engine(
        plan,
        spec.settings,
        emit,
        concurrency=auto_concurrency(run.concurrency),
        gate=gate,  # with a pool: only its exclusion check runs here; each worker has its own gate
        tracker=tracker,
        progress=progress,
        on_tick=save_state,
        prober=pool.probe if pool is not None else None,
    )
    save_state()
    try:
        if pool is not None:
            await pool.start()
        with progress:
            counts = await engine.run(stop)
    except BrokenPipeError:
        raise
    except EndpointListError as exc:
        # A bad line of a list read from a pipe (a file's lines are all checked before the scan).
        save_state()
        raise JobAborted(f"{exc}; {sum(engine.counts.values())} endpoints were kept") from None
    except (WorkerError, StoreError, OSError) as exc:
        # A dead worker; a batch the store refused (a full disk, no memory: rolled back, and the output
        # holds its records for --resume to write); an output that cannot be written.
        save_state()
        cause = (
            f"cannot write {run.out or 'the output'}: {exc.strerror or exc}"
            if isinstance(exc, OSError)
            else str(exc)
        )
        raise JobAborted(
            f"{cause}; {sum(engine.counts.values())} endpoints were kept"
            + ("; --resume continues" if run.out else "")
        ) from None
    finally:
        if pool is not None:
            await pool.close()  # no worker outlives the scan, however it ended
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        output.close()
        store_error = _close_store(store, sink)
    save_state()
    size = plan.size
    complete = size is not None and tracker.watermark >= size
    if store_error is not None:
        raise JobAborted(f"{store_error}; the JSON Lines output is complete")
    if store is not None and scan_id is not None and complete:
        try:
            store.finish_scan(scan_id)  # counts every record of the scan, over all its resumptions
        except StoreError as exc:
            raise JobAborted(str(exc)) from None
        finally:
            store.close()
    elif store is not None:
        store.close()
    listed = plan.listed
    skipped = listed.reader.skipped if listed is not None and listed.reader is not None else 0
    return JobResult(counts, stop.is_set(), complete, scan_id, skipped)


def _replay_into_store(store: Store, scan_id: str, out: Path, offset: int, batch: int = 5000) -> None:
    """Write the output's records from ``offset`` on into the store (writes are idempotent per endpoint)."""
    records = []
    try:
        for data in records_after(out, offset):
            with contextlib.suppress(ValueError):
                records.append(record_from_dict(data))
            if len(records) >= batch:
                store.write(scan_id, records)
                records = []
        if records:
            store.write(scan_id, records)
    except StoreError as exc:
        raise JobError(str(exc)) from None


def _open_store(
    spec: ScanSpec, url: str | None, scan_id: str | None, seed: int
) -> tuple[Store | None, StoreSink | None, str | None]:
    """Open the store and begin (or, resuming, continue) this scan's entry in it."""
    if url is None:
        return None, None, None
    try:
        store = open_store(url)
        if scan_id is None:
            shard = f"{spec.shard}/{spec.shards}"
            scan_id = store.begin_scan({**spec.params(), "seed": seed, "shard": shard})
        else:
            store.scan(scan_id)  # the resumed scan must be in this store
        # new=True: the engine emits each endpoint once, and what an earlier run of a resumed scan
        # stored is replayed apart (_replay_into_store, idempotent).
        return store, StoreSink(store, scan_id, new=True), scan_id
    except StoreError as exc:
        raise JobError(str(exc)) from None


def _close_store(store: Store | None, sink: StoreSink | None) -> str | None:
    """Write what the sink still holds; the error, as one line, if that fails."""
    if sink is None:
        return None
    try:
        sink.close()
    except StoreError as exc:
        assert store is not None
        store.close()
        return str(exc)
    return None


async def _list_mx_endpoints(
    spec: ScanSpec, run: RunOptions, resolver: Resolver, note: Callable[[str], None]
) -> ScanSpec:
    """scan --mx: the domains' MX endpoints written to a list (beside --out, so that --resume scans the
    same list without asking DNS again), then the scan goes on as scan --endpoints of that list."""
    assert spec.mx_domains is not None
    domains_out: Path | None
    if run.out is not None:
        listing = run.out.with_name(run.out.name + ".mx-endpoints")
        domains_out = run.domains_out or run.out.with_name(run.out.name + ".domains.jsonl")
    else:
        import tempfile

        listing = Path(tempfile.mkstemp(prefix="cleartext-mx-", suffix=".txt")[1])
        domains_out = run.domains_out
    if not (run.resume and listing.is_file()):
        source = spec.mx_domains

        def names() -> Iterator[str]:
            with open(source, encoding="utf-8", errors="replace") as handle:
                for _, name in read_domains(handle, source):
                    yield name

        try:
            for _ in names():  # every line checked before the first DNS query
                pass
        except OSError as exc:
            raise JobError(f"cannot read {source}: {exc.strerror or exc}") from None
        except TargetError as exc:
            raise JobError(str(exc)) from None
        try:
            with listing.open("w", encoding="utf-8") as endpoints_out:
                domains_file = domains_out.open("w", encoding="utf-8") if domains_out else None
                try:
                    counts = await write_endpoint_list(
                        names(), resolver, list(spec.ports), endpoints_out, domains_file,
                        allow_reserved=spec.allow_reserved,
                    )
                finally:
                    if domains_file is not None:
                        domains_file.close()
        except OSError as exc:
            raise JobError(f"cannot write {listing}: {exc.strerror or exc}") from None
        by_count = sorted(counts.by_status.items(), key=lambda item: -item[1])
        statuses = ", ".join(f"{n} {status}" for status, n in by_count)
        note(
            f"cleartext: {counts.domains} domains ({statuses}): {counts.endpoints} MX endpoints to scan"
            + (f" ({counts.shared} named by more than one domain)" if counts.shared else "")
            + (f"; each domain's outcome in {domains_out}" if domains_out else "")
        )
    return dataclasses.replace(spec, endpoint_list=str(listing), list_format="plain", mx_domains=None)


def _listed(spec: ScanSpec) -> ListedEndpoints | None:
    """The endpoint list, streamed from its file (read again by each walk) or from stdin (once)."""
    if spec.endpoint_list is None:
        return None
    name = spec.endpoint_list
    ports = {p.port: p for p in spec.ports}

    def reader() -> EndpointReader:
        return EndpointReader(
            "stdin" if name == "-" else name, fmt=spec.list_format, ports=ports, skip_bad=spec.skip_bad_lines
        )

    def lines() -> Iterator[str]:
        if name == "-":
            yield from sys.stdin
            return
        try:
            with open(name, encoding="utf-8", errors="replace") as handle:
                yield from handle
        except OSError as exc:
            raise JobError(f"cannot read {name}: {exc.strerror or exc}") from None

    if name == "-":
        return ListedEndpoints(reader, lines, rewindable=False)
    # A file is read through once before the scan: a bad line is a usage error before any packet, and
    # the count gives the progress bar its total. (It costs a few seconds per million lines.)
    try:
        size = sum(1 for _ in reader().endpoints(lines()))
    except EndpointListError as exc:
        raise JobError(str(exc)) from None
    return ListedEndpoints(reader, lines, size=size)


def _done_count(tracker: Tracker, plan: Plan) -> int:
    """Endpoints of this shard already done when a resumed scan starts."""
    below = max(0, (tracker.watermark - plan.shard + plan.shards - 1) // plan.shards)
    return below + len(tracker.above)
