"""Workers: the per-endpoint work of a scan (probe + assess) spread over N processes, one per core.

One scan process is CPU-bound on one core (TLS handshakes and Python per endpoint). With ``--workers N``
the parent keeps everything that must happen exactly once — the permutation, reserved and opt-out
filtering, the output, the store, the checkpoint, progress, signals — and hands each endpoint to a
worker process, which probes it, assesses it, renders its JSON line and sends the record back. The
engine emits the record and marks its position done only when it is back, so ``--resume`` stays exact.

- **Dispatch by address**: an endpoint goes to worker ``crc32(address) % N`` (a stable hash, not
  Python's per-process randomised ``hash``), so every port of one address is probed by one worker: its
  ``--per-host`` limit is exact, and probe.py's per-chain caches hit for the address's other ports.
- **Politeness per worker**: each worker has its own :class:`~cleartext.politeness.Gate` with ``--rate``
  divided by N (the sum never exceeds ``--rate``; it falls short of it when the addresses of a small scan
  split unevenly), the same ``--per-host`` limit, and its own exclusion list on the same file, re-read as
  it changes: an opt-out still stops new connections within a second.
- **Transport**: one socketpair per worker, length-prefixed pickled batches both ways (everything
  dispatched or finished in one event-loop iteration travels as one message), asyncio streams on both
  ends so neither side ever blocks on a full socket buffer. A record comes back as its JSON line (the
  worker pays ``to_json``) plus the pickled Record (for the store): unpickling a batch costs the parent
  ~12 µs per record against ~29 µs for ``json.loads`` + ``record_from_dict`` and ~37-70 µs for
  ``to_json`` — the parent is the one part that does not scale with N, so it does the least.
- **Lifetime**: workers are started with the ``spawn`` context (forking a process that runs an event
  loop, a store thread and OpenSSL state is unsafe). A worker ignores SIGINT (a Ctrl-C reaches the whole
  process group; the parent decides) and exits when its socket reaches EOF: the parent closed it to stop
  the pool, or the parent died — even by SIGKILL, since the kernel closes a dead process's sockets. On
  Linux the kernel also sends it SIGKILL when the parent dies (``PR_SET_PDEATHSIG``), in case its loop is
  stuck. The parent stops the pool by closing the sockets, waits a short grace, then terminates and kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

from cleartext.assess import assess
from cleartext.politeness import ExclusionList, Gate
from cleartext.probe import probe
from cleartext.record import Record
from cleartext.scan.engine import raise_fd_limit, run_loop
from cleartext.scan.spec import ScanSpec
from cleartext.targets import Endpoint, TargetError

_HEADER = struct.Struct("!I")  # payload length of one message
_PICKLE = pickle.HIGHEST_PROTOCOL
STOP_GRACE = 2.0  # seconds a worker gets to exit after its socket closes, before SIGTERM, then SIGKILL
MAX_BATCH = 512  # endpoints or records per message: large enough to amortise, small enough to interleave
# A worker sends what finished within this many seconds as one message: endpoints take 100 ms and more,
# and fewer, larger messages are what keeps the one parent process from becoming the bottleneck.
FLUSH_DELAY = 0.002


class WorkerError(Exception):
    """A worker died or failed; the scan stops with what was written kept. One line."""


def usable_cpus() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_of(address: str, workers: int) -> int:
    """The worker an address goes to: stable across processes and runs, unlike ``hash()``."""
    return zlib.crc32(address.encode()) % workers


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker needs to probe like the in-process engine would (pickled to the worker)."""

    spec: ScanSpec  # the scan's manners and probe settings, with this worker's share of the rate
    parent_pid: int


class Rendered(Record):
    """A Record back from a worker with its JSON line already rendered, so the parent never re-renders it."""

    __slots__ = ("json_line",)

    def __init__(self, record: Record, json_line: str) -> None:
        super().__init__(record.observation, record.findings)
        self.json_line = json_line

    def to_json(self) -> str:
        return self.json_line


def _frame(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=_PICKLE)
    return _HEADER.pack(len(payload)) + payload


async def _read_message(reader: asyncio.StreamReader) -> Any:
    """The next message; EOFError when the other side closed (or died)."""
    try:
        header = await reader.readexactly(_HEADER.size)
        (size,) = _HEADER.unpack(header)
        return pickle.loads(await reader.readexactly(size))
    except (asyncio.IncompleteReadError, ConnectionError):
        raise EOFError from None


# --- the worker process --------------------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this process when its parent dies; exit now if that already happened."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        os._exit(0)


def worker_main(sock: socket.socket, config: WorkerConfig) -> None:
    """A worker process's body (the target given to multiprocessing)."""
    _die_with_parent(config.parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group; the parent stops us
    # stdout is the scan's JSON Lines stream when no --out is given: a worker must never write there,
    # nor keep a reader such as `| head` waiting after the parent is gone.
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    raise_fd_limit()
    run_loop(_serve(sock, config))


async def _serve(sock: socket.socket, config: WorkerConfig) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)
    loop = asyncio.get_running_loop()
    outbox: list[tuple[int, str, Record]] = []
    tasks: set[asyncio.Task[None]] = set()
    main = asyncio.current_task()
    failed = False

    def flush() -> None:
        if writer.is_closing():  # stopping: the parent no longer waits for these
            outbox.clear()
        while outbox:
            batch = outbox[:MAX_BATCH]
            del outbox[:MAX_BATCH]
            writer.write(_frame(("records", batch)))

    def fail(message: str) -> None:
        nonlocal failed
        if failed:
            return
        failed = True
        writer.write(_frame(("error", message)))
        if main is not None and main is not asyncio.current_task():
            main.cancel()  # stop reading endpoints: the parent ends the scan on this message

    try:
        exclusions = ExclusionList(config.spec.exclude) if config.spec.exclude else None
    except TargetError as exc:
        fail(str(exc))
        await writer.drain()
        return
    spec = config.spec
    gate = Gate(exclusions, spec.rate, spec.per_host)

    async def one(seq: int, endpoint: Endpoint) -> None:
        try:
            record = assess(await probe(endpoint, spec.settings, gate))
            line = record.to_json()
        except Exception as exc:  # a bug in probe or assess: in-process it would end the scan too
            fail(f"probing {endpoint.address} port {endpoint.port}: {type(exc).__name__}: {exc}")
            return
        if not outbox:
            loop.call_later(FLUSH_DELAY, flush)  # what finishes together travels together
        outbox.append((seq, line, record))

    try:
        while not failed:
            try:
                batch: list[tuple[int, Endpoint]] = await _read_message(reader)
            except EOFError:  # the parent stopped the pool, or died
                break
            except asyncio.CancelledError:
                if not failed:
                    raise
                if main is not None:
                    main.uncancel()
                break
            for seq, endpoint in batch:
                task = asyncio.create_task(one(seq, endpoint))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 1.0)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await asyncio.wait_for(writer.drain(), 1.0)  # an error message still reaches the parent
        writer.close()


# --- the parent's side ---------------------------------------------------------------------------------


class _Worker:
    def __init__(self, index: int, process: Any, reader: asyncio.StreamReader, writer: Any) -> None:
        self.index = index
        self.process = process
        self.reader = reader
        self.writer: asyncio.StreamWriter = writer
        self.waiting: dict[int, asyncio.Future[Record]] = {}
        self.outbox: list[tuple[int, Endpoint]] = []
        self.receiver: asyncio.Task[None] | None = None

    def describe_exit(self) -> str:
        code = self.process.exitcode
        if code is None:
            return "stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
            return f"was killed by signal {-code}"
        return f"exited with status {code}"


class WorkerPool:
    """N worker processes behind one :meth:`probe` that the engine awaits like the in-process probe."""

    def __init__(self, workers: int, spec: ScanSpec) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self.size = workers
        self.config = WorkerConfig(spec.for_worker(workers), parent_pid=os.getpid())
        self._workers: list[_Worker] = []
        self._seq = itertools.count()
        self._flush_scheduled = False
        self._error: WorkerError | None = None
        self._closing = False
        self._closed = False

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers]

    async def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        try:
            for index in range(self.size):
                ours, theirs = socket.socketpair()
                process = ctx.Process(
                    target=worker_main,
                    args=(theirs, self.config),
                    name=f"cleartext-worker-{index}",
                    daemon=True,  # multiprocessing's exit handler ends it if we exit without close()
                )
                try:
                    process.start()  # fork + exec of a fresh interpreter: milliseconds; imports run there
                finally:
                    theirs.close()  # only the worker holds its end: our exit is its EOF
                reader, writer = await asyncio.open_connection(sock=ours)
                worker = _Worker(index, process, reader, writer)
                worker.receiver = asyncio.create_task(self._receive(worker))
                self._workers.append(worker)
        except OSError as exc:
            await self.close()
            raise WorkerError(f"cannot start worker processes: {exc.strerror or exc}") from None

    def probe(self, endpoint: Endpoint) -> asyncio.Future[Record]:
        """Send the endpoint to its worker; the future gets its record (the engine's prober)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Record] = loop.create_future()
        if self._error is not None:
            future.set_exception(self._error)
            return future
        seq = next(self._seq)
        worker = self._workers[worker_of(endpoint.address, self.size)]
        worker.waiting[seq] = future
        worker.outbox.append((seq, endpoint))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)  # what the engine dispatches in one iteration goes as one message
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        for worker in self._workers:
            if self._error is not None or worker.writer.is_closing():  # failed or stopping: nobody waits
                worker.outbox.clear()
            while worker.outbox:
                batch = worker.outbox[:MAX_BATCH]
                del worker.outbox[:MAX_BATCH]
                with contextlib.suppress(ConnectionError, RuntimeError):  # a dead worker: _receive reports
                    worker.writer.write(_frame(batch))

    async def _receive(self, worker: _Worker) -> None:
        while True:
            try:
                kind, body = await _read_message(worker.reader)
            except EOFError:
                break
            if kind == "records":
                for seq, line, record in body:
                    future = worker.waiting.pop(seq, None)
                    if future is not None and not future.done():  # done: cancelled by a stopping engine
                        future.set_result(Rendered(record, line))
            else:
                self._fail(worker, f"worker {worker.index} (pid {worker.process.pid}) failed: {body}")
                return
        if self._closing:
            return
        # EOF without being asked: the worker died. Give the kernel a moment to report how.
        for _ in range(20):
            if worker.process.exitcode is not None:
                break
            await asyncio.sleep(0.05)
        self._fail(worker, f"worker {worker.index} (pid {worker.process.pid}) {worker.describe_exit()}")

    def _fail(self, worker: _Worker, message: str) -> None:
        """Fail every endpoint waiting on any worker: the engine stops at the first, keeping what it wrote."""
        if self._error is None:
            self._error = WorkerError(message)
        for each in self._workers:
            for future in each.waiting.values():
                if not future.done():
                    future.set_exception(self._error)
            each.waiting.clear()

    async def close(self) -> None:
        """Stop every worker: close its socket (its EOF), wait a grace, then SIGTERM, then SIGKILL."""
        if self._closed:
            return
        self._closing = self._closed = True
        for worker in self._workers:
            worker.writer.close()
        deadline = time.monotonic() + STOP_GRACE
        for escalate in (None, "terminate", "kill"):
            alive = [w for w in self._workers if w.process.exitcode is None]
            if not alive:
                break
            for worker in alive:
                if escalate is not None:
                    with contextlib.suppress(OSError):
                        getattr(worker.process, escalate)()
            while time.monotonic() < deadline and any(w.process.exitcode is None for w in alive):
                await asyncio.sleep(0.02)
            deadline = time.monotonic() + 1.0
        for worker in self._workers:
            worker.process.join(timeout=0.5)  # reaped: no zombie left behind
            if worker.receiver is not None:
                worker.receiver.cancel()
        receivers = [w.receiver for w in self._workers if w.receiver is not None]
        if receivers:
            await asyncio.gather(*receivers, return_exceptions=True)
        for worker in self._workers:
            with contextlib.suppress(Exception):
                worker.process.close()

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
