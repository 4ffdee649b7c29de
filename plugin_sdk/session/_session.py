"""The Session: one sans-IO :class:`~plugin_sdk.wire.Connection` driven over trio streams.

Two background tasks do all the I/O. The reader calls ``receive_some`` and
dispatches every event of a read without awaiting, straight into the buffers of
the channel ends (:mod:`._ends`). The writer owns the outgoing buffer: every
frame any task produces is appended to one ``bytearray``, and the writer hands
everything accumulated to a single ``send_all`` (one write per frame would cost
trio about 3x in throughput); before writing it lets runnable tasks add their
frames too (see ``_gather``). Tasks that send data wait while more than
``high_water`` bytes are queued, so at most ``high_water`` + one frame is queued
plus one batch inside ``send_all``; control frames (CREDIT, CLOSE, RESET,
GOAWAY) never wait.

The writer runs in a cancel scope shielded from the caller's cancellation, so
the GOAWAY queued on the way out still reaches the peer when the code using the
session is cancelled; :meth:`Session.aclose` bounds that final flush with
``close_timeout`` and then stops both tasks itself.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, cast

import trio
from trio.lowlevel import ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled

from ..wire import (
    DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW,
    PROTOCOL_VERSIONS,
    ChannelClosed,
    ChannelOpened,
    ChannelReset,
    Connection,
    CreditGranted,
    DataReceived,
    ErrorCode,
    GoAwayReceived,
    HelloReceived,
    LocalProtocolError,
    MessageReceived,
    ProtocolError,
    RefKind,
    RemoteProtocolError,
    Role,
    SessionEnded,
)
from ._ends import ByteStreamReader, ByteStreamWriter, Receiver, Sender, _End
from ._errors import HandshakeError, SessionBroken, SessionClosed
from ._fdread import receive_some
from ._refs import ReceiverRef, SenderRef, StreamRef

__all__ = ["HIGH_WATER", "READ_SIZE", "Session", "open_session"]

READ_SIZE: Final = 65536
"""Bytes asked of the receive stream per read."""
HIGH_WATER: Final = 1 << 20
"""Default outgoing-buffer size above which ``send`` and ``send_all`` wait."""
_DATA_OVERHEAD: Final = 32  # a DATA frame's msgpack header is at most 16 bytes
_MAX_DATA_CHUNK: Final = 1 << 16  # small enough to interleave streams, big enough to be cheap
_GATHER_ROUNDS: Final = 64  # bounds the latency a steady trickle of frames can add
_GATHER_BYTES: Final = 1 << 16  # a batch this big is worth writing at once


class Session:
    """A live session: top-level channels, references and byte streams over one transport.

    Make one with :func:`open_session`, which performs the handshake, runs the
    session's reader and writer tasks, and closes everything on exit. The session
    owns both streams and closes both when it ends (they may be the same object,
    as for a unix socket).

    ``version`` and ``peer_hello`` are the negotiated protocol version and the
    peer's HELLO fields. ``closed`` becomes true when the session ends, for any
    reason; ``await wait_closed()`` waits for that. Once ended, every operation
    raises :class:`SessionClosed` (:class:`SessionBroken` after a protocol
    error), except that messages which had already arrived are still delivered.
    After the peer's GOAWAY no new channels can be made in either direction;
    existing ones carry on.
    """

    def __init__(
        self,
        receive: trio.abc.ReceiveStream,
        send: trio.abc.SendStream,
        role: Role,
        *,
        versions: Sequence[int] = PROTOCOL_VERSIONS,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_depth: int = DEFAULT_MAX_DEPTH,
        hello_fields: Mapping[str, Any] | None = None,
        high_water: int = HIGH_WATER,
        close_timeout: float = 5.0,
    ) -> None:
        self._receive = receive
        self._send = send
        self._conn = Connection(
            role,
            versions=versions,
            max_frame=max_frame,
            window=window,
            max_channels=max_channels,
            max_depth=max_depth,
            hello_fields=hello_fields,
            ref_factory=self._make_end,
        )
        self._high_water = high_water
        self._close_timeout = close_timeout

        self._channels: dict[int, _End] = {}  # live channels, by id
        self._unbound: set[_End] = set()  # ends whose reference has not been sent yet
        self._binding: list[tuple[_End, int]] | None = None  # refs bound by the current encode
        self._accept_queue: deque[Receiver] = deque()
        self._accept_lot = ParkingLot()

        self._outbuf = bytearray()
        self._writer_lot = ParkingLot()  # the writer waits here for bytes to send
        self._space_lot = ParkingLot()  # senders wait here for the buffer to drain
        self._closing = False  # the writer exits once the buffer is empty
        self._sending = False  # the writer holds bytes taken from the buffer
        self._data_chunk = 0  # largest DATA payload per frame; set by the peer's HELLO

        self._dead: tuple[str, ProtocolError | None] | None = None
        self._goaway: GoAwayReceived | None = None
        self._hello_or_death = trio.Event()
        self._closed_event = trio.Event()
        self._writer_done = trio.Event()
        self._shutdown_started = False
        self._shutdown_done = trio.Event()
        self._writer_scope = trio.CancelScope(shield=True)
        self._reader_scope = trio.CancelScope()

        self._handlers: dict[type, Callable[[Any], None]] = {
            MessageReceived: self._on_message,
            DataReceived: self._on_data,
            CreditGranted: self._on_credit,
            ChannelOpened: self._on_opened,
            ChannelClosed: self._on_closed,
            ChannelReset: self._on_reset,
            HelloReceived: self._on_hello,
            GoAwayReceived: self._on_goaway,
            SessionEnded: self._on_ended,
        }
        self._outbuf += self._conn.hello()

    # ------------------------------------------------------------------ public API

    @property
    def role(self) -> Role:
        """This side's role (the initiator spawned or connected; it uses odd channel ids)."""
        return self._conn.role

    @property
    def version(self) -> int:
        """The negotiated protocol version."""
        version = self._conn.version
        if version is None:
            raise RuntimeError("the handshake has not completed")
        return version

    @property
    def peer_hello(self) -> dict[str, Any]:
        """The peer's HELLO fields, unknown ones included."""
        hello = self._conn.peer_hello
        if hello is None:
            raise RuntimeError("the handshake has not completed")
        return hello

    @property
    def closed(self) -> bool:
        """True once the session has ended (for whatever reason)."""
        return self._dead is not None

    @property
    def close_reason(self) -> SessionClosed | None:
        """Why the session ended (the exception operations now raise), or None if live."""
        return None if self._dead is None else self._death_error()

    async def wait_closed(self) -> None:
        """Wait until the session ends: the peer closed or broke it, or this side closed it."""
        await self._closed_event.wait()

    async def open_sender(self) -> Sender:
        """Open a top-level channel that we write; the peer gets it from :meth:`accept`."""
        await checkpoint_if_cancelled()
        self._raise_unless_can_create()
        channel, frame = self._conn.open()
        self._write(frame)
        sender = Sender(self, channel)
        await cancel_shielded_checkpoint()
        return sender

    async def accept(self) -> Receiver:
        """Return the next top-level channel the peer opened, in order.

        Raises :class:`SessionClosed` once the session has ended, or once the peer
        sent GOAWAY and every channel it opened before has been accepted.
        """
        await checkpoint_if_cancelled()
        queue = self._accept_queue
        while not queue:
            if self._dead is not None:
                raise self._death_error()
            if self._goaway is not None:
                raise SessionClosed(f"{_describe_goaway(self._goaway)}: it opens no more channels")
            await self._accept_lot.park()
        receiver = queue.popleft()
        await cancel_shielded_checkpoint()
        return receiver

    def pipe(self) -> tuple[Receiver, SenderRef]:
        """A channel the peer writes and we read: send the :class:`SenderRef` in a
        message and the peer gets a live :class:`Sender` (the reply-channel idiom)."""
        receiver = Receiver(self, None)
        return receiver, SenderRef(receiver)

    def reverse_pipe(self) -> tuple[Sender, ReceiverRef]:
        """A channel we write and the peer reads: the peer gets a live :class:`Receiver`.

        The :class:`Sender`'s ``send`` waits until the reference has been sent.
        """
        sender = Sender(self, None)
        return sender, ReceiverRef(sender)

    def byte_stream(self) -> tuple[ByteStreamWriter, StreamRef]:
        """A byte stream we write and the peer reads: the peer gets a live
        :class:`ByteStreamReader`. ``send_all`` waits until the reference has been sent."""
        writer = ByteStreamWriter(self, None)
        return writer, StreamRef(writer)

    async def aclose(self) -> None:
        """End the session gracefully: GOAWAY(NO_ERROR), flush, close both streams.

        Queued frames are flushed for at most ``close_timeout`` seconds (even if the
        caller is cancelled). Idempotent; :func:`open_session` calls it on exit.
        """
        await self._shutdown(ErrorCode.NO_ERROR, "")

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<Session {self._conn.role.name} {state} channels={len(self._channels)}>"

    # ------------------------------------------------------------------ used by the ends

    def _write(self, data: bytes | bytearray) -> None:
        """Queue bytes for the writer task (never waits)."""
        if self._writer_done.is_set():
            return  # the transport is gone; the caller's state says so already
        if self._writer_lot:
            self._writer_lot.unpark_all()
        self._outbuf += data

    def _send_message(
        self, channel: int, payload: Any, *, now: bool = False, depth: int | None = None
    ) -> None:
        """Encode and queue one MESSAGE, then bind the ends its references created.

        Binding waits until the frame is queued so that an end closed before its
        reference went out can send its CLOSE or RESET *after* the frame that
        creates the channel. ``now``: write it from this task, with whatever is
        queued ahead of it, unless the writer task is in the middle of a write (see
        :meth:`Sender.send_now`). ``depth``: the payload's nesting depth, if known
        (see :meth:`Connection.send_message`).
        """
        binding: list[tuple[_End, int]] = []
        self._binding = binding
        try:
            frame: bytes | bytearray = self._conn.send_message(channel, payload, depth=depth)
        finally:
            self._binding = None
        if (
            now
            and not self._sending
            and type(self._send) is trio.lowlevel.FdStream  # else _write_now writes nothing
            and not self._writer_done.is_set()
        ):
            if self._outbuf:
                # Frames queued ahead go first, in this same write: order is kept and
                # the writer task, woken for them, finds nothing left to gather.
                frame = self._outbuf + frame
                self._outbuf = bytearray()
                if self._space_lot:
                    self._space_lot.unpark_all()
            sent = self._write_now(frame)
            if sent:
                frame = frame[sent:]
        if frame:
            self._write(frame)
        for end, bound in binding:
            end._bound(bound)

    def _note_bound(self, end: _End, channel: int) -> None:
        if self._binding is None:
            raise LocalProtocolError(
                "a channel reference can only be sent on the session that made it"
            )
        self._binding.append((end, channel))

    def _death_error(self) -> SessionClosed:
        """A fresh exception saying why the session ended (one per raise: tracebacks
        must not pile up on a shared object)."""
        assert self._dead is not None
        reason, error = self._dead
        if error is not None:
            broken = SessionBroken(reason, error)
            broken.__cause__ = error
            return broken
        return SessionClosed(reason)

    def _raise_unless_can_create(self) -> None:
        if self._dead is not None:
            raise self._death_error()
        if self._goaway is not None:
            raise SessionClosed(f"{_describe_goaway(self._goaway)}: no new channels")

    def _make_end(self, kind: RefKind, channel: int) -> _End:
        """The wire's ref_factory: a received reference becomes a live end."""
        if kind is RefKind.SENDER:
            return Sender(self, channel)
        if kind is RefKind.RECEIVER:
            return Receiver(self, channel)
        return ByteStreamReader(self, channel)

    # ------------------------------------------------------------------ event handlers

    def _on_message(self, event: MessageReceived) -> None:
        end = self._channels.get(event.channel)
        if end is not None:
            end._on_message(event.payload, event.size)

    def _on_data(self, event: DataReceived) -> None:
        end = self._channels.get(event.channel)
        if end is not None:
            end._on_data(event.data, event.size)

    def _on_credit(self, event: CreditGranted) -> None:
        end = self._channels.get(event.channel)
        if end is not None:
            end._wake()

    def _on_opened(self, event: ChannelOpened) -> None:
        self._accept_queue.append(Receiver(self, event.channel))
        if self._accept_lot:
            self._accept_lot.unpark_all()

    def _on_closed(self, event: ChannelClosed) -> None:
        end = self._channels.pop(event.channel, None)
        if end is not None:
            end._on_closed()

    def _on_reset(self, event: ChannelReset) -> None:
        end = self._channels.pop(event.channel, None)
        if end is not None:
            end._on_reset(event.code, event.reason)

    def _on_hello(self, event: HelloReceived) -> None:
        self._data_chunk = min(_MAX_DATA_CHUNK, self._conn.peer_max_frame - _DATA_OVERHEAD)
        self._hello_or_death.set()

    def _on_goaway(self, event: GoAwayReceived) -> None:
        self._goaway = event
        if self._accept_lot:
            self._accept_lot.unpark_all()

    def _on_ended(self, event: SessionEnded) -> None:
        if self._goaway is None:
            self._terminate("session ended: the peer closed the connection without GOAWAY")
        else:
            self._terminate(f"session ended: {_describe_goaway(self._goaway)}")

    # ------------------------------------------------------------------ lifecycle

    def _terminate(self, reason: str, error: ProtocolError | None = None) -> None:
        """Mark the session ended and wake every waiter so it sees why."""
        if self._dead is not None:
            return
        self._dead = (reason, error)
        self._closing = True
        for lot in (self._writer_lot, self._space_lot, self._accept_lot):
            if lot:
                lot.unpark_all()
        for end in (*self._channels.values(), *self._unbound):
            end._wake()
        self._hello_or_death.set()
        self._closed_event.set()

    def _protocol_failure(self, error: ProtocolError) -> None:
        """The peer broke the protocol: tell it why (best effort), then end the session."""
        if self._dead is None:
            # goaway() only refuses before hello(), which the constructor called.
            with contextlib.suppress(ProtocolError):
                self._write(self._conn.goaway(error.code, str(error)))
        self._terminate(f"protocol error: {error}", error)

    async def _write_loop(self) -> None:
        with self._writer_scope:
            try:
                while True:
                    if not self._outbuf:
                        if self._closing:
                            break
                        await self._writer_lot.park()
                        continue
                    await self._gather()
                    data = self._outbuf
                    if not data:
                        continue  # a send_now wrote it all meanwhile
                    self._outbuf = bytearray()
                    if self._space_lot:
                        self._space_lot.unpark_all()
                    sent = self._write_now(data)
                    if sent < len(data):
                        self._sending = True
                        try:
                            await self._send.send_all(memoryview(data)[sent:])
                        finally:
                            self._sending = False
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                self._terminate(f"session ended: the transport failed while sending ({exc!r})")
            finally:
                self._writer_done.set()
                self._outbuf = bytearray()
                await trio.aclose_forcefully(self._send)

    def _write_now(self, data: bytes | bytearray) -> int:
        """Write what a pipe takes at once, without trio; return how many bytes went.

        ``FdStream.send_all`` yields to the scheduler before writing: one more round
        per batch, which a call made one at a time waits through twice (here and in
        the peer). Writing straight to the non-blocking descriptor skips it; what the
        pipe does not take, and every error, is left to ``send_all``, which waits for
        room and raises the errors trio's way.
        """
        send = self._send
        if type(send) is not trio.lowlevel.FdStream:
            return 0
        try:
            return os.write(send.fileno(), data)
        except OSError:  # full (BlockingIOError), closed, broken: send_all will say
            return 0

    async def _gather(self) -> None:
        """Let the tasks that are ready to run add their frames before we write.

        A write to a pipe wakes the peer and costs far more than a scheduling
        round, and a task that sends yields after every frame; so we wait
        scheduling rounds while the buffer grows or other tasks are runnable.
        trio only reports tasks already queued for the *next* round, so once
        frames have been arriving we want two quiet rounds in a row; a lone
        frame goes after one. Rounds and bytes are bounded to cap the latency.
        """
        quiet_needed = 1
        quiet = 0
        for _ in range(_GATHER_ROUNDS):
            size = len(self._outbuf)
            if size >= _GATHER_BYTES or self._closing:
                return
            await cancel_shielded_checkpoint()
            if len(self._outbuf) != size or trio.lowlevel.current_statistics().tasks_runnable:
                quiet = 0
                quiet_needed = 2
            else:
                quiet += 1
                if quiet >= quiet_needed:
                    return

    async def _read_loop(self) -> None:
        conn = self._conn
        handlers = self._handlers
        receive = self._receive
        # A read that did not fill its buffer most likely emptied the pipe: the next
        # one waits for data first instead of trying (and failing with EAGAIN).
        short = False
        with self._reader_scope:
            while self._dead is None:
                try:
                    data = await receive_some(receive, READ_SIZE, wait_first=short)
                except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                    self._terminate(f"session ended: the transport failed ({exc!r})")
                    return
                short = 0 < len(data) < READ_SIZE
                try:
                    events = conn.receive_data(cast(bytes, data))
                except RemoteProtocolError as exc:
                    self._protocol_failure(exc)
                    return
                for event in events:
                    handlers[type(event)](event)
                extra = conn.data_to_send()  # RESETs for references in dropped messages
                if extra:
                    self._write(extra)

    async def _handshake(self, timeout: float | None) -> None:
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await self._hello_or_death.wait()
        if self._conn.peer_hello is not None:
            return
        if self._dead is None:
            raise HandshakeError(f"handshake failed: no HELLO from the peer within {timeout} s")
        reason, error = self._dead
        if error is not None:
            raise HandshakeError(f"handshake failed: {error}") from error
        raise HandshakeError(f"handshake failed: {reason}")

    async def _shutdown(self, code: ErrorCode, reason: str) -> None:
        if self._shutdown_started:
            with trio.CancelScope(shield=True):
                await self._shutdown_done.wait()
            return
        self._shutdown_started = True
        with trio.move_on_after(self._close_timeout, shield=True):
            if self._dead is None:
                self._write(self._conn.goaway(code, reason))
                self._terminate("session closed by this side")
            await self._writer_done.wait()
        self._writer_scope.cancel()
        self._reader_scope.cancel()
        with trio.CancelScope(shield=True):
            await trio.aclose_forcefully(self._send)
            receive: object = self._receive
            if receive is not self._send:  # one socket can serve both directions
                await trio.aclose_forcefully(self._receive)
        self._shutdown_done.set()


def _describe_goaway(goaway: GoAwayReceived) -> str:
    text = f"the peer sent GOAWAY ({goaway.code.name})"
    return f"{text}: {goaway.reason}" if goaway.reason else text


def _goaway_for(exc: BaseException) -> tuple[ErrorCode, str]:
    """The GOAWAY to send when the code using the session exits with ``exc``."""
    if isinstance(exc, trio.Cancelled | GeneratorExit):
        return ErrorCode.CANCELLED, "cancelled"
    if isinstance(exc, HandshakeError):
        return ErrorCode.CANCELLED, str(exc)
    return ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}"


@asynccontextmanager
async def open_session(
    receive: trio.abc.ReceiveStream,
    send: trio.abc.SendStream,
    role: Role,
    *,
    hello_fields: Mapping[str, Any] | None = None,
    handshake_timeout: float | None = 10.0,
    versions: Sequence[int] = PROTOCOL_VERSIONS,
    max_frame: int = DEFAULT_MAX_FRAME,
    window: int = DEFAULT_WINDOW,
    max_channels: int = DEFAULT_MAX_CHANNELS,
    max_depth: int = DEFAULT_MAX_DEPTH,
    high_water: int = HIGH_WATER,
    close_timeout: float = 5.0,
) -> AsyncIterator[Session]:
    """Run a :class:`Session` over ``receive``/``send`` for the duration of the block.

    Both sides send HELLO at once; this waits for the peer's (``hello_fields`` adds
    fields to ours). Raises :class:`HandshakeError` if none comes within
    ``handshake_timeout`` seconds (None: wait forever), if the versions have
    nothing in common (after sending GOAWAY VERSION_MISMATCH; the text lists both
    sides' versions) or if the peer refuses. ``max_frame``, ``window``,
    ``max_channels`` and ``max_depth`` are the limits we announce (see
    docs/PROTOCOL.md); ``high_water`` bounds the outgoing buffer;
    ``close_timeout`` bounds the final flush.

    On exit: GOAWAY (NO_ERROR, or CANCELLED / INTERNAL_ERROR with the reason when
    the block was cancelled or raised), flush, close both streams, stop the tasks.
    The session owns the streams from the moment this is entered. For a plugin::

        async with open_session(FdStream(3), FdStream(4), Role.RESPONDER) as session:
            ...
    """
    session = Session(
        receive,
        send,
        role,
        versions=versions,
        max_frame=max_frame,
        window=window,
        max_channels=max_channels,
        max_depth=max_depth,
        hello_fields=hello_fields,
        high_water=high_water,
        close_timeout=close_timeout,
    )
    failure: BaseException | None = None
    async with trio.open_nursery() as nursery:
        nursery.start_soon(session._write_loop)
        nursery.start_soon(session._read_loop)
        code, reason = ErrorCode.NO_ERROR, ""
        try:
            await session._handshake(handshake_timeout)
            yield session
        except BaseException as exc:
            # Raised again below, outside the nursery, so the caller gets the
            # exception itself rather than an ExceptionGroup wrapping it.
            failure = exc
            code, reason = _goaway_for(exc)
        finally:
            await session._shutdown(code, reason)
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
