"""The four channel ends: :class:`Sender`, :class:`Receiver`, and the byte-stream pair.

Every channel is one-way, so each end either writes (:class:`Sender`,
:class:`ByteStreamWriter`) or reads (:class:`Receiver`, :class:`ByteStreamReader`).
An end is a thin view over its :class:`~plugin_sdk.session.Session`: the session's
reader task fills a read end's buffer and wakes it; a write end encodes frames
straight into the session's outgoing buffer. Waiting uses one
:class:`trio.lowlevel.ParkingLot` per end, so the hot path costs no task and no
memory channel per message.

An end made by :meth:`Session.pipe` and friends has no channel id until its
reference is sent inside a message; until then a write end's ``send`` waits and
a read end's ``receive`` waits. Closing an end before its reference is sent is
fine: the channel is closed (or reset) right after the message that creates it.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

import trio
from trio.lowlevel import ParkingLot, cancel_shielded_checkpoint, checkpoint_if_cancelled

from ..wire import ErrorCode
from ._errors import ChannelResetError, EndOfChannel

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["ByteStreamReader", "ByteStreamWriter", "Receiver", "Sender"]


class _End:
    """What every end has: its session, channel id, a parking lot and its final state."""

    __slots__ = ("_channel", "_closed", "_lot", "_reset", "_session")

    def __init__(self, session: Session, channel: int | None) -> None:
        self._session = session
        self._channel = channel
        self._lot = ParkingLot()
        self._closed = False  # this side closed it: ClosedResourceError from now on
        self._reset: tuple[ErrorCode, str] | None = None  # the peer RESET it
        if channel is None:
            session._unbound.add(self)
        else:
            session._channels[channel] = self

    @property
    def channel(self) -> int | None:
        """The channel id, or None while this end's reference has not been sent yet."""
        return self._channel

    def _wake(self) -> None:
        if self._lot:
            self._lot.unpark_all()

    def _bound(self, channel: int) -> None:
        """The message carrying our reference went out: the channel now exists."""
        session = self._session
        session._unbound.discard(self)
        self._channel = channel
        if self._closed:
            # Closed before it existed: end it right after the message that created it.
            if session._dead is None:
                self._end_channel_locally(channel)
        else:
            session._channels[channel] = self
            self._wake()

    def _on_reset(self, code: ErrorCode, reason: str) -> None:
        self._reset = (code, reason)
        self._wake()

    # The wire checks that frames match the channel's kind, so only read ends get these.
    def _on_message(self, payload: Any, size: int) -> None:
        raise AssertionError(f"MESSAGE delivered to {self!r}")

    def _on_data(self, data: bytes, size: int) -> None:
        raise AssertionError(f"DATA delivered to {self!r}")

    def _on_closed(self) -> None:
        raise AssertionError(f"CLOSE delivered to {self!r}")

    def _reset_error(self) -> ChannelResetError:
        assert self._reset is not None and self._channel is not None
        return ChannelResetError(self._channel, *self._reset)

    def _closed_error(self) -> trio.ClosedResourceError:
        return trio.ClosedResourceError(f"this {type(self).__name__} was closed by this side")

    def _end_channel_locally(self, channel: int) -> None:
        """Send the frame that ends ``channel`` from our side (CLOSE or RESET)."""
        raise NotImplementedError

    def _close_now(self) -> None:
        """Close this end without waiting: safe in ``finally`` blocks and when cancelled."""
        if self._closed:
            return
        self._closed = True
        session = self._session
        channel = self._channel
        live = channel is not None and session._channels.pop(channel, None) is self
        # Tell the peer unless the channel already ended (RESET seen, session over).
        if live and self._reset is None and session._dead is None:
            assert channel is not None
            self._end_channel_locally(channel)
        self._wake()

    def _abandon(self) -> None:
        """Nobody will ever use this end: end its channel with RESET CANCELLED."""
        self._close_now()

    def close(self) -> None:
        """Close this end at once, without a checkpoint; otherwise as :meth:`aclose`.

        Like :meth:`trio.MemoryReceiveChannel.close`: for ``finally`` blocks and
        cancelled code, and for callers that have just waited anyway (a call that got
        its reply) and need no further scheduling round. A task waiting on this end
        wakes up and gets :class:`trio.ClosedResourceError`.
        """
        self._close_now()

    async def aclose(self) -> None:
        """Close this end (see the class docstring for what the peer sees); idempotent."""
        self._close_now()
        await trio.lowlevel.checkpoint()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} channel={self._channel}>"


def _abandon_ends(payload: Any) -> None:
    """RESET (CANCELLED) every live end inside a payload that will never be read."""
    if isinstance(payload, _End):
        payload._abandon()
    elif isinstance(payload, dict):
        for value in payload.values():
            _abandon_ends(value)
    elif isinstance(payload, list):
        for item in payload:
            _abandon_ends(item)


class _WriteEnd(_End):
    """An end that writes: waits for a channel id, send credit and buffer space."""

    __slots__ = ("_abort",)

    def __init__(self, session: Session, channel: int | None) -> None:
        super().__init__(session, channel)
        self._abort: tuple[ErrorCode, str] | None = None  # set by reset(): RESET, not CLOSE

    def _raise_if_unusable(self) -> None:
        if self._closed:
            raise self._closed_error()
        if self._reset is not None:
            raise self._reset_error()
        if self._session._dead is not None:
            raise self._session._death_error()

    async def _wait_writable(self) -> int:
        """Return the channel id once a frame may be sent on it now.

        Sending is allowed while credit is > 0 (one frame may overdraw it, as the
        wire protocol says), and while the session's outgoing buffer is below its
        high-water mark. Cancellation while waiting sends nothing.
        """
        session = self._session
        while True:
            self._raise_if_unusable()
            channel = self._channel
            if channel is None or session._conn.credit(channel) <= 0:
                await self._lot.park()
            elif len(session._outbuf) > session._high_water:
                await session._space_lot.park()
            else:
                return channel

    def _end_channel_locally(self, channel: int) -> None:
        conn = self._session._conn
        if self._abort is None:
            self._session._write(conn.close(channel))
        else:
            self._session._write(conn.reset(channel, *self._abort))

    def _reset_now(self, reason: str, code: ErrorCode) -> None:
        if not self._closed:
            self._abort = (code, reason)
            self._close_now()

    def _abandon(self) -> None:
        self._reset_now("the message carrying it was never read", ErrorCode.CANCELLED)

    async def reset(self, reason: str = "", code: ErrorCode = ErrorCode.APPLICATION_ERROR) -> None:
        """Abort the channel with RESET (``code``, ``reason``): the reader gets
        :class:`ChannelResetError`. Messages still in flight may be discarded."""
        self._reset_now(reason, code)
        await trio.lowlevel.checkpoint()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the channel on a normal exit; RESET it if the block raised.

        A RESET rather than a CLOSE tells the reader the stream of messages is
        incomplete, instead of letting it believe it got everything.
        """
        if exc_value is None:
            self._close_now()
            await trio.lowlevel.checkpoint()
        elif isinstance(exc_value, trio.Cancelled):
            self._reset_now("the writer was cancelled", ErrorCode.CANCELLED)
        else:
            text = f"{type(exc_value).__name__}: {exc_value}"
            self._reset_now(f"the writer failed: {text}", ErrorCode.APPLICATION_ERROR)


class Sender(_WriteEnd, trio.abc.SendChannel[Any]):
    """The writing end of a message channel.

    ``await send(payload)`` queues one MESSAGE: it waits (cancellably, sending
    nothing) while the channel has no send credit or the session's outgoing
    buffer is full, then encodes the whole frame at once, so a cancelled send
    either sent the entire message or nothing. The payload is any msgpack value;
    it may contain :class:`SenderRef`, :class:`ReceiverRef` and :class:`StreamRef`
    objects, which the peer receives as live ends. A payload whose frame exceeds
    the peer's ``max_frame`` raises :class:`~plugin_sdk.wire.LocalProtocolError`
    (nothing is sent).

    ``aclose()`` sends CLOSE (the reader gets :class:`EndOfChannel` after the
    messages already sent); ``reset(reason)`` aborts. ``async with sender:``
    closes on exit, or resets if the block raised. After the peer resets the
    channel, ``send`` raises :class:`ChannelResetError`; once the session ends,
    :class:`SessionClosed`.
    """

    __slots__ = ()

    async def send(self, value: Any) -> None:
        """Send one message (see the class docstring for waiting and errors)."""
        await checkpoint_if_cancelled()
        channel = await self._wait_writable()
        self._session._send_message(channel, value)
        await cancel_shielded_checkpoint()

    def send_nowait(self, value: Any, *, depth: int | None = None) -> None:
        """Send one message if that needs no waiting, else raise :class:`trio.WouldBlock`
        (nothing sent). Saves the scheduling round of ``send`` for batches.

        ``depth``: the value's nesting depth, when the caller knows it without walking
        it (see :meth:`plugin_sdk.wire.Connection.send_message`); else it is walked.
        """
        self._session._send_message(self._ready_channel(), value, depth=depth)

    def send_now(self, value: Any, *, depth: int | None = None) -> None:
        """Like :meth:`send_nowait`, but written to the transport from this task, with
        the frames queued ahead of it, unless the session's writer task is in the
        middle of a write.

        For a message that is already a batch, or a request sent alone: the session's
        writer task would otherwise wake and wait a scheduling round or two to gather
        more frames, latency and rounds for nothing. What the transport does not take
        at once is queued for the writer as usual. ``depth`` as for :meth:`send_nowait`.
        """
        self._session._send_message(self._ready_channel(), value, now=True, depth=depth)

    def _ready_channel(self) -> int:
        """The channel, if a message can go out without waiting; else WouldBlock."""
        self._raise_if_unusable()
        channel = self._channel
        session = self._session
        if (
            channel is None
            or session._conn.credit(channel) <= 0
            or len(session._outbuf) > session._high_water
        ):
            raise trio.WouldBlock
        return channel


class _ReadEnd(_End):
    """An end that reads: a buffer the session fills, credit returned as it drains."""

    __slots__ = ("_eof",)

    def __init__(self, session: Session, channel: int | None) -> None:
        super().__init__(session, channel)
        self._eof = False  # the writer sent CLOSE

    def _on_closed(self) -> None:
        self._eof = True
        self._wake()

    def _consumed(self, size: int) -> None:
        """Return ``size`` bytes of credit to the writer (batched by the wire)."""
        session = self._session
        channel = self._channel
        if not self._eof and self._reset is None and session._dead is None and channel is not None:
            frame = session._conn.acknowledge(channel, size)
            if frame:
                session._write(frame)

    def _end_channel_locally(self, channel: int) -> None:
        session = self._session
        session._write(session._conn.reset(channel, ErrorCode.CANCELLED, "the reader closed it"))


class Receiver(_ReadEnd, trio.abc.ReceiveChannel[Any]):
    """The reading end of a message channel.

    ``await receive()`` returns the next payload, in order. Then it raises
    :class:`EndOfChannel` after the writer's CLOSE (``async for payload in
    receiver`` stops there), :class:`ChannelResetError` if the writer reset the
    channel (messages not yet received are dropped), or :class:`SessionClosed`
    (:class:`SessionBroken` for a protocol error) once the session ended,
    after every message that arrived before that. At most the peer's send credit
    (our HELLO ``window`` plus one frame) is ever buffered; credit goes back as
    messages are received.

    ``aclose()`` means "I want no more": it RESETs the channel with CANCELLED
    (unless it already ended), so the writer's next ``send`` fails.
    """

    __slots__ = ("_listener", "_queue")

    def __init__(self, session: Session, channel: int | None) -> None:
        super().__init__(session, channel)
        self._queue: deque[tuple[Any, int]] = deque()
        self._listener: Callable[[Any], None] | None = None

    def listen(self, listener: Callable[[Any], None]) -> None:
        """Hand every message to ``listener(payload)`` as it arrives, instead of queueing it.

        The listener runs in the session's reading task, right as each message is
        decoded (messages already queued go first, from this call): no task wakes up
        per message. It must be quick and must not raise (an exception would end the
        session's reading). ``receive`` then only reports the end of the channel:
        :class:`EndOfChannel`, a reset, or the session's end, as usual.
        """
        self._listener = listener
        queue = self._queue
        while queue:
            payload, size = queue.popleft()
            self._consumed(size)
            listener(payload)

    @property
    def buffered(self) -> int:
        """Messages received on this channel and not yet taken by :meth:`receive`."""
        return len(self._queue)

    def _on_message(self, payload: Any, size: int) -> None:
        listener = self._listener
        if listener is not None:
            self._consumed(size)
            listener(payload)
            return
        self._queue.append((payload, size))
        if self._lot:
            self._lot.unpark_all()

    def _on_reset(self, code: ErrorCode, reason: str) -> None:
        self._drop_queue()
        super()._on_reset(code, reason)

    def _close_now(self) -> None:
        self._drop_queue()
        super()._close_now()

    def _drop_queue(self) -> None:
        """Discard unread messages, ending the channels their references created:
        otherwise the peer would wait forever for a reply nobody will send."""
        queue = self._queue
        while queue:
            _abandon_ends(queue.popleft()[0])

    async def receive(self) -> Any:
        """Return the next message's payload (see the class docstring for the errors)."""
        await checkpoint_if_cancelled()
        queue = self._queue
        if queue:
            payload, size = queue.popleft()
            self._consumed(size)
            await cancel_shielded_checkpoint()
            return payload
        # Having waited is our checkpoint: no second scheduling round on the way out.
        while not queue:
            self._raise_if_finished()
            await self._lot.park()
        payload, size = queue.popleft()
        self._consumed(size)
        return payload

    def receive_nowait(self) -> Any:
        """Return the next payload if one has arrived, else raise :class:`trio.WouldBlock`
        (or the error ``receive`` would raise). Drains a burst without scheduling rounds."""
        if not self._queue:
            self._raise_if_finished()
            raise trio.WouldBlock
        payload, size = self._queue.popleft()
        self._consumed(size)
        return payload

    def _raise_if_finished(self) -> None:
        """Raise why nothing more will arrive, if so (called with an empty queue)."""
        if self._closed:
            raise self._closed_error()
        if self._reset is not None:
            raise self._reset_error()
        if self._eof:
            raise EndOfChannel(f"channel {self._channel} was closed by its writer")
        if self._session._dead is not None:
            raise self._session._death_error()


class ByteStreamWriter(_WriteEnd, trio.abc.SendStream):
    """The writing end of a byte-stream channel (a :class:`trio.abc.SendStream`).

    ``send_all(data)`` cuts ``data`` into DATA frames no larger than the peer
    accepts and queues them as credit allows. As with any trio stream, a
    cancelled ``send_all`` may have sent a prefix of ``data`` (whole frames).
    ``aclose()`` sends CLOSE: the reader then gets ``b""``. Once the reader
    closes its end, ``send_all`` raises :class:`ChannelResetError` (a
    :class:`trio.BrokenResourceError`).
    """

    __slots__ = ("_busy",)

    def __init__(self, session: Session, channel: int | None) -> None:
        super().__init__(session, channel)
        self._busy = False

    def _claim(self) -> None:
        if self._busy:
            raise trio.BusyResourceError("another task is already writing to this byte stream")
        self._busy = True

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        """Send every byte of ``data`` (see the class docstring)."""
        self._claim()
        try:
            await checkpoint_if_cancelled()
            view = memoryview(data).cast("B")
            if not view:
                self._raise_if_unusable()
            session = self._session
            position = 0
            while position < len(view):
                channel = await self._wait_writable()
                end = position + session._data_chunk
                session._write(session._conn.send_data(channel, bytes(view[position:end])))
                position = end
            await cancel_shielded_checkpoint()
        finally:
            self._busy = False

    async def wait_send_all_might_not_block(self) -> None:
        """Return once ``send_all`` could queue at least one frame without waiting."""
        self._claim()
        try:
            await checkpoint_if_cancelled()
            await self._wait_writable()
            await cancel_shielded_checkpoint()
        finally:
            self._busy = False


class ByteStreamReader(_ReadEnd, trio.abc.ReceiveStream):
    """The reading end of a byte-stream channel (a :class:`trio.abc.ReceiveStream`).

    ``receive_some(max_bytes)`` returns what has arrived (at most ``max_bytes``;
    all of it when None), ``b""`` after the writer's CLOSE. Errors as for
    :class:`Receiver`. ``aclose()`` RESETs the channel with CANCELLED.
    """

    __slots__ = ("_busy", "_chunks", "_offset")

    def __init__(self, session: Session, channel: int | None) -> None:
        super().__init__(session, channel)
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._offset = 0  # bytes of the first chunk already returned
        self._busy = False

    def _on_data(self, data: bytes, size: int) -> None:
        self._chunks.append((data, size))
        if self._lot:
            self._lot.unpark_all()

    def _on_reset(self, code: ErrorCode, reason: str) -> None:
        self._chunks.clear()
        super()._on_reset(code, reason)

    def _close_now(self) -> None:
        self._chunks.clear()
        super()._close_now()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        """Return the next bytes (see the class docstring)."""
        if max_bytes is not None:
            max_bytes = operator.index(max_bytes)
            if max_bytes < 1:
                raise ValueError("max_bytes must be >= 1")
        if self._busy:
            raise trio.BusyResourceError("another task is already reading this byte stream")
        self._busy = True
        try:
            await checkpoint_if_cancelled()
            chunks = self._chunks
            while not chunks:
                if self._closed:
                    raise self._closed_error()
                if self._reset is not None:
                    raise self._reset_error()
                if self._eof:
                    await cancel_shielded_checkpoint()
                    return b""
                if self._session._dead is not None:
                    raise self._session._death_error()
                await self._lot.park()
            result = self._take(max_bytes)
            await cancel_shielded_checkpoint()
            return result
        finally:
            self._busy = False

    def _take(self, max_bytes: int | None) -> bytes:
        chunks = self._chunks
        wanted = max_bytes if max_bytes is not None else 1 << 62
        parts: list[bytes] = []
        while chunks and wanted > 0:
            data, size = chunks[0]
            start = self._offset
            available = len(data) - start
            if available > wanted:
                parts.append(data[start : start + wanted])
                self._offset = start + wanted
                break
            parts.append(data[start:] if start else data)
            wanted -= available
            chunks.popleft()
            self._offset = 0
            # Credit goes back per whole frame: the writer was charged the frame's size.
            self._consumed(size)
        return parts[0] if len(parts) == 1 else b"".join(parts)
