"""The socket seam: one TCP connection with the endpoint's deadlines and byte budget on every read.

Everything that touches a socket or a TLS object is here (and in :class:`Network`, which tests replace
with a scripted double, cleartext.probe.scripted): opening a connection, reading with a deadline,
upgrading to TLS, closing. The dialog above it only sends commands and frames replies; a failure of any
kind comes out of here as a :class:`Stop` carrying the record's status.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import errno
import ssl
import warnings
from collections.abc import Callable
from functools import lru_cache

from cleartext.probe.settings import ProbeSettings
from cleartext.protocols.base import LimitExceeded, MailClient, ProtocolViolation, Reply
from cleartext.record import Status

READ_CHUNK = 16384
UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


class Stop(Exception):
    """Ends the dialog with a status; caught in :func:`probe` and written into the record."""

    def __init__(self, status: Status, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Budget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, count: int) -> None:
        self.used += count
        if self.used > self.limit:
            raise Stop(Status.PROTOCOL_ERROR, f"server sent more than {self.limit} bytes")


@lru_cache(maxsize=1)
def handshake_context() -> ssl.SSLContext:
    """A client context that completes a handshake with nearly anything, to see what the server does.

    Nothing is verified here (the chain is verified offline in cleartext.tls.certs); old versions and
    weak suites are allowed so that a legacy-only server still yields its certificate.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with contextlib.suppress(ValueError, ssl.SSLError):
            ctx.minimum_version = ssl.TLSVersion.TLSv1
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    # OpenSSL 3 refuses servers without RFC 5746 secure renegotiation; we want to see them, not fail.
    ctx.options |= getattr(ssl, "OP_LEGACY_SERVER_CONNECT", 0x4)
    return ctx


@lru_cache(maxsize=1)
def openssl_suite_ids() -> dict[str, int]:
    """OpenSSL cipher name -> IANA code, so records name suites the same way whichever path saw them."""
    return {c["name"]: c["id"] & 0xFFFF for c in handshake_context().get_ciphers()}


class Wire(asyncio.Protocol):
    """The receiving end of one connection: bytes land in a buffer, and one reader at a time awaits them.

    Why not asyncio's streams: a probe needs only "the bytes so far, or wait for more", and a flood
    must pause reading until the bytes are charged to the endpoint's budget. (Streams showed in the
    scan's profile, but replacing them changed the CPU per endpoint by less than the noise of an
    interleaved A/B: bench/RESULTS.md. This is kept as the simpler part, not as a speed-up.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False  # connection_lost has been called
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= READ_CHUNK and not self.paused and self.transport is not None:
            # A flood is not read faster than we parse it: the byte budget is charged as we take data.
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None and self.error is None:
            self.error = exc
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self, deadline: float) -> bytes:
        """Everything that has arrived, waiting if nothing has; b"" at the end of the stream.

        TimeoutError once the loop's clock passes ``deadline``. One timer per wait, not an
        ``asyncio.timeout`` scope per step: those scopes cost ~5 % of a scan's CPU.
        """
        if not self.buffer and not self.eof:
            await self._wake_or_expire(deadline)
        if self.buffer:
            data = bytes(self.buffer)
            self.buffer.clear()
            if self.paused and self.transport is not None:
                self.paused = False
                self.transport.resume_reading()
            return data
        if self.error is not None:
            # A copy: the stored error, once raised here, would hold this frame and so this Wire, and
            # keep the connection alive in a cycle (gc.garbage showed one per reset connection).
            raise copy.copy(self.error)
        return b""

    async def wait_closed(self, deadline: float) -> None:
        """Until the transport has called connection_lost; TimeoutError once the loop's clock passes
        ``deadline``. One timer, as :meth:`read` (an ``asyncio.timeout`` scope cost ~7 µs more per close)."""
        for _ in range(64):  # each pass is a wake-up: the loss, or data or EOF that came before it
            if self.closed:
                return
            await self._wake_or_expire(deadline)
        if not self.closed:
            raise TimeoutError

    async def _wake_or_expire(self, deadline: float) -> None:
        """Until the next :meth:`_wake` (data, EOF, the loss); TimeoutError at ``deadline``."""
        self.waiter = waiter = self.loop.create_future()
        timer = self.loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            self.waiter = None
            timer.cancel()
            # A timed-out waiter holds its TimeoutError, whose traceback holds this frame: without
            # this, each timeout would be a reference cycle that only the cyclic collector frees.
            del waiter


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Expiry:
    """``asyncio.timeout(delay)`` for one step, as a plain ``with``: one timer that cancels the task,
    TimeoutError out of the block when it fired, the same accounting of cancel requests (``uncancel``)
    so that an outer deadline's cancellation still goes through.

    Why not asyncio.timeout: its object and its two coroutines (``__aenter__``/``__aexit__``) cost
    ~9 µs per scope against ~2 µs for the timer alone, and every connection opens one.
    """

    __slots__ = ("_cancelling", "_fired", "_handle", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - the probe always runs in a task
            raise RuntimeError("Expiry must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._fired = False
        self._handle = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        self._fired = True
        self._task.cancel()

    def __enter__(self) -> Expiry:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self._handle.cancel()  # also drops the handle's reference to this object
        if self._fired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc


class Connection:
    """One TCP connection with the endpoint's deadlines and byte budget applied to every read."""

    def __init__(
        self,
        wire: Wire,
        settings: ProbeSettings,
        budget: Budget,
        release: Callable[[], None] | None = None,
        network: Network | None = None,
    ) -> None:
        assert wire.transport is not None
        self.wire = wire
        self.transport: asyncio.Transport = wire.transport
        self.settings = settings
        self.budget = budget
        self._release: Callable[[], None] | None = release  # the politeness gate's slot, given back once
        self.network = network or TCP

    def _give_back(self) -> None:
        if self._release is not None:
            self._release()
            self._release = None

    def abort(self) -> None:
        """Drop the connection at once (raw hellos: no goodbye is owed to a half-finished handshake)."""
        self.transport.abort()
        self._give_back()

    def write(self, data: bytes) -> None:
        if self.transport.is_closing():
            raise ConnectionResetError("the connection is closed")
        self.transport.write(data)

    def deadline(self, timeout: float) -> float:
        return self.wire.loop.time() + timeout

    async def read_some(self, deadline: float) -> bytes:
        data = await self.wire.read(deadline)
        self.budget.take(len(data))
        return data

    async def reply(self, client: MailClient, step: str, timeout: float | None = None) -> Reply:
        timeout = self.settings.read_timeout if timeout is None else timeout
        deadline = self.deadline(timeout)  # for the whole reply, however many reads it takes
        try:
            while True:
                reply = client.next_reply()
                if reply is not None:
                    return reply
                data = await self.read_some(deadline)
                if not data:
                    raise Stop(Status.CLOSED, f"server closed the connection while we awaited {step}")
                client.receive_data(data)
        except TimeoutError:
            raise Stop(Status.READ_TIMEOUT, f"timed out after {timeout:g} s awaiting {step}") from None
        except (LimitExceeded, ProtocolViolation) as exc:
            raise Stop(Status.PROTOCOL_ERROR, f"{step}: {exc}") from None
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise Stop(Status.CLOSED, f"connection reset while we awaited {step}: {exc}") from None
        except ssl.SSLError as exc:
            why = getattr(exc, "reason", None) or exc
            raise Stop(Status.TLS_ERROR, f"TLS error while we awaited {step}: {why}") from None
        except OSError as exc:
            raise Stop(Status.CLOSED, f"connection lost while we awaited {step}: {exc}") from None

    async def command(self, client: MailClient, data: bytes, step: str) -> Reply:
        try:
            self.write(data)
        except (ConnectionResetError, BrokenPipeError, RuntimeError) as exc:
            raise Stop(Status.CLOSED, f"connection lost before {step}: {exc}") from None
        return await self.reply(client, step)

    async def start_tls(self, server_hostname: str | None) -> None:
        # Bytes that arrived before the handshake are not part of the TLS session: counted, then dropped.
        self.budget.take(len(self.wire.buffer))
        self.wire.buffer.clear()
        if self.wire.eof:
            raise Stop(Status.TLS_ERROR, "connection lost before the TLS handshake")
        try:
            transport = await self.network.start_tls(
                self.wire, handshake_context(), server_hostname, self.settings.read_timeout
            )
        except (ConnectionError, OSError, EOFError, RuntimeError, ssl.SSLError) as exc:
            # The loop's handshake waiter holds this exception and its traceback holds the waiter: a
            # reference cycle per failed handshake, keeping the connection's buffers until the cyclic
            # collector runs. Dropping the traceback breaks it.
            exc.__traceback__ = None
            raise self._handshake_failed(exc) from None
        if transport is None:  # pragma: no cover - the loop closed under us
            raise Stop(Status.TLS_ERROR, "connection lost during the TLS handshake")
        self.transport = transport
        self.wire.transport = transport
        self.wire.paused = False

    def _handshake_failed(self, exc: BaseException) -> Stop:
        timeout = self.settings.read_timeout
        if isinstance(exc, TimeoutError):
            return Stop(Status.READ_TIMEOUT, f"TLS handshake not finished within {timeout:g} s")
        if isinstance(exc, ssl.SSLError):
            return Stop(Status.TLS_ERROR, f"TLS handshake failed: {getattr(exc, 'reason', None) or exc}")
        if isinstance(exc, ConnectionAbortedError) and "taking longer than" in str(exc):
            # asyncio reports its own ssl_handshake_timeout this way: silence, not a broken TLS stack.
            return Stop(Status.READ_TIMEOUT, f"TLS handshake not finished within {timeout:g} s")
        if isinstance(exc, ConnectionResetError):
            # A TCP reset, not a TLS answer (a TLS stack that refuses a hello says so with an alert): the
            # server dropped the connection, as one that resets right after accepting does.
            return Stop(Status.CLOSED, f"connection reset during the TLS handshake: {exc}")
        return Stop(Status.TLS_ERROR, f"connection lost during the TLS handshake: {exc}")

    def ssl_object(self) -> ssl.SSLObject | None:
        return self.transport.get_extra_info("ssl_object")  # type: ignore[no-any-return]

    async def quit(self, client: MailClient) -> None:
        """Say goodbye politely, briefly; whatever happens, the connection closes."""
        try:
            self.write(client.quit_command())
            await self.reply(client, "the reply to QUIT", timeout=min(1.0, self.settings.read_timeout))
        except (Stop, OSError, RuntimeError):
            pass

    async def close(self) -> None:
        transport = self.transport
        try:
            transport.close()
            await self.wire.wait_closed(self.wire.loop.time() + 1.0)
        except (TimeoutError, OSError, ssl.SSLError, RuntimeError, asyncio.CancelledError) as exc:
            transport.abort()
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._give_back()


def noop() -> None:
    pass


class Network:
    """How a connection is opened and upgraded to TLS: TCP through the event loop.

    The one place the probe reaches the operating system's network (after httpcore's network backends).
    Tests give :func:`cleartext.probe.probe` a scripted one instead (cleartext.probe.scripted), which
    replays a server's bytes, so the dialog's every branch is a unit test.
    """

    async def open(
        self, wire: Wire, address: str, port: int, local_addr: tuple[str, int] | None
    ) -> None:
        """Connect ``wire`` to address:port (its ``connection_made`` is called); OSError on failure."""
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: wire, address, port, local_addr=local_addr)

    async def start_tls(
        self, wire: Wire, ctx: ssl.SSLContext, server_hostname: str | None, timeout: float
    ) -> asyncio.Transport | None:
        """Run the TLS handshake over the wire's transport; the TLS transport, or None if the loop closed."""
        assert wire.transport is not None
        return await wire.loop.start_tls(
            wire.transport, wire, ctx, server_hostname=server_hostname, ssl_handshake_timeout=timeout
        )


TCP = Network()
