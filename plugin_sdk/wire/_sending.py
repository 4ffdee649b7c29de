"""The sending half of a connection: every call returns the bytes to write.

A failed call raises :class:`LocalProtocolError` and leaves no trace: no bytes, no
state change (send_message rolls back the ids its references took).
"""

from __future__ import annotations

from typing import Any

import msgpack

from ._errors import ErrorCode, LocalProtocolError
from ._frames import (
    HELLO_MAX_FRAME,
    LENGTH,
    truncate_reason,
)
from ._refs import ChannelRef, RefKind
from ._state import (
    CLOSE,
    CREDIT,
    DATA,
    GOAWAY,
    HELLO,
    MESSAGE,
    OPEN,
    RESET,
    ChannelState,
    ConnectionState,
    may_nest_deeper,
    payload_too_deep,
)

__all__ = ["Sending"]


class Sending(ConnectionState):
    """Calls in, bytes out."""

    def hello(self) -> bytes:
        """Return our HELLO frame; must be the first thing we send."""
        if self._hello_sent:
            raise LocalProtocolError("hello() was already called")
        fields = dict(self._hello_extra)
        fields.update(
            versions=self._versions,
            max_frame=self._max_frame,
            window=self._window,
            max_channels=self._max_channels,
            max_depth=self._max_depth,
        )
        try:
            frame = self._frame([HELLO, fields])
        except (TypeError, ValueError, OverflowError) as exc:
            raise LocalProtocolError(f"hello_fields cannot be encoded: {exc}") from exc
        if len(frame) - 4 > HELLO_MAX_FRAME:
            raise LocalProtocolError(
                f"HELLO is {len(frame) - 4} bytes, over the {HELLO_MAX_FRAME}-byte HELLO limit"
            )
        self._hello_sent = True
        return frame

    def open(self) -> tuple[int, bytes]:
        """Create a top-level message channel that we write; returns ``(id, OPEN frame)``."""
        self._check_can_create("open", 1)
        cid = self._last[self._our_parity] + 2
        frame = self._frame([OPEN, cid])
        self._last[self._our_parity] = cid
        self._register(cid, we_write=True, stream=False, creator=self._our_parity)
        return cid, self._with_outbox(frame)

    def send_message(self, channel: int, payload: Any, *, depth: int | None = None) -> bytes:
        """Return a MESSAGE frame carrying ``payload`` on ``channel`` (a channel we write).

        :class:`ChannelRef` values in ``payload`` with ``channel is None`` create new
        channels (see :class:`ChannelRef`). Raises :class:`LocalProtocolError`, with no
        effect, if the channel is not ours to write, has no credit, the payload cannot
        be encoded or nests too deep, or the frame exceeds the peer's ``max_frame``.

        ``depth``: the payload's nesting depth (:func:`nesting`), when the caller knows
        it without a walk (a batch it built of parts whose depth it knew); the payload
        is then not walked to check it against the peer's ``max_depth``. A wrong value
        only moves the refusal to the peer.
        """
        st = self._writable(channel, "send_message", stream=False)
        saved_last = self._last[self._our_parity]
        pending: list[ChannelRef] = []
        self._pending_refs = pending
        self._encoding_message = True
        try:
            body = self._encode_message(channel, payload, depth)
        except BaseException:
            for ref in pending:
                ref.channel = None
            self._last[self._our_parity] = saved_last
            raise
        finally:
            self._encoding_message = False
            self._pending_refs = []
        for ref in pending:
            cid = ref.channel
            assert cid is not None
            self._register(
                cid,
                we_write=ref.author_writes,
                stream=ref.kind is RefKind.STREAM,
                creator=self._our_parity,
            )
            on_bound = getattr(ref, "_on_bound", None)
            if on_bound is not None:
                on_bound(cid)
        st.credit -= len(body)
        return self._with_outbox(LENGTH.pack(len(body)) + body)

    def _encode_message(self, channel: int, payload: Any, depth: int | None) -> bytes:
        try:
            body: bytes = self._packer.pack([MESSAGE, channel, payload])
        except (TypeError, ValueError, OverflowError) as exc:
            raise LocalProtocolError(
                f"send_message on channel {channel}: payload cannot be encoded: {exc}"
            ) from exc
        if len(body) > self._peer_max_frame:
            raise LocalProtocolError(
                f"send_message on channel {channel}: the frame is {len(body)} bytes, "
                f"over the peer's max_frame of {self._peer_max_frame}"
            )
        limit = self._peer_max_depth
        if (
            depth > limit
            if depth is not None
            else may_nest_deeper(body, limit) and payload_too_deep(payload, limit)
        ):
            raise LocalProtocolError(
                f"send_message on channel {channel}: the payload nests deeper than "
                f"the peer's max_depth of {self._peer_max_depth}"
            )
        return body

    def send_data(self, channel: int, data: bytes) -> bytes:
        """Return a DATA frame carrying ``data`` on ``channel`` (a byte stream we write)."""
        st = self._writable(channel, "send_data", stream=True)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise LocalProtocolError(f"send_data needs bytes, got {type(data).__name__}")
        body = self._packer.pack([DATA, channel, data])
        if len(body) > self._peer_max_frame:
            raise LocalProtocolError(
                f"send_data on channel {channel}: the frame is {len(body)} bytes, "
                f"over the peer's max_frame of {self._peer_max_frame}"
            )
        st.credit -= len(body)
        return self._with_outbox(LENGTH.pack(len(body)) + body)

    def close(self, channel: int) -> bytes:
        """Half-close ``channel`` (we are its writer); b"" if it already ended."""
        st = self._channels.get(channel)
        if st is None:
            self._check_existed(channel, "close")
            return b""
        if not st.we_write:
            raise LocalProtocolError(
                f"close: we read channel {channel}; only its writer closes it (use reset)"
            )
        frame = self._frame([CLOSE, channel])
        self._forget(channel)
        return self._with_outbox(frame)

    def reset(self, channel: int, code: ErrorCode, reason: str) -> bytes:
        """Abort ``channel`` (either direction) with ``code``; b"" if it already ended."""
        code = self._check_code(code, "reset")
        st = self._channels.get(channel)
        if st is None:
            self._check_existed(channel, "reset")
            return b""
        frame = self._frame([RESET, channel, int(code), truncate_reason(str(reason))])
        self._forget(channel)
        return self._with_outbox(frame)

    def acknowledge(self, channel: int, nbytes: int) -> bytes:
        """Record that the application consumed ``nbytes`` received on ``channel``.

        Returns a CREDIT frame once the acknowledged-but-unreturned amount reaches half
        our window, else b"" (also b"" if the channel already ended).
        """
        if type(nbytes) is not int or nbytes < 0:
            raise LocalProtocolError(f"acknowledge: nbytes must be an int >= 0, got {nbytes!r}")
        st = self._channels.get(channel)
        if st is None:
            self._check_existed(channel, "acknowledge")
            return b""
        if st.we_write:
            raise LocalProtocolError(
                f"acknowledge: we write channel {channel}; only its reader acknowledges"
            )
        if nbytes > st.held:
            raise LocalProtocolError(
                f"acknowledge: {nbytes} bytes on channel {channel}, but only {st.held} "
                "received bytes are unacknowledged"
            )
        st.held -= nbytes
        st.unacked += nbytes
        if st.unacked < self._ack_threshold:
            return b""
        increment = st.unacked
        frame = self._frame([CREDIT, channel, increment])
        st.unacked = 0
        st.credit += increment
        return self._with_outbox(frame)

    def goaway(self, code: ErrorCode = ErrorCode.NO_ERROR, reason: str = "") -> bytes:
        """Return a GOAWAY frame: we create no more channels and accept no new ones.

        After a non-zero code the caller should close the transport once it is sent.
        """
        code = self._check_code(code, "goaway")
        if not self._hello_sent:
            raise LocalProtocolError("goaway: call hello() first")
        frame = self._frame([GOAWAY, int(code), truncate_reason(str(reason))])
        self._goaway_sent = True
        return self._with_outbox(frame)

    def _check_can_create(self, what: str, count: int) -> None:
        self._check_ready(what)
        if self._goaway_sent or self._goaway_received:
            raise LocalProtocolError(f"{what}: no new channels after GOAWAY")
        if self._live[self._our_parity] + count > self._peer_max_channels:
            raise LocalProtocolError(
                f"{what}: would exceed the peer's max_channels of {self._peer_max_channels}"
            )

    def _check_ready(self, what: str) -> None:
        if not self._hello_sent:
            raise LocalProtocolError(f"{what}: call hello() first")
        if self.peer_hello is None:
            raise LocalProtocolError(f"{what}: the peer's HELLO has not been received yet")

    def _check_existed(self, channel: int, what: str) -> None:
        if type(channel) is not int or not self._existed(channel):
            raise LocalProtocolError(f"{what}: channel {channel!r} was never opened")

    def _check_code(self, code: ErrorCode, what: str) -> ErrorCode:
        try:
            return ErrorCode(code)
        except ValueError:
            raise LocalProtocolError(f"{what}: unknown error code {code!r}") from None

    def _writable(self, channel: int, what: str, *, stream: bool) -> ChannelState:
        st = self._live_channel(channel, what)
        if not st.we_write:
            raise LocalProtocolError(f"{what}: we read channel {channel}, we cannot write it")
        if st.stream is not stream:
            kind = "a byte stream" if st.stream else "a message channel"
            raise LocalProtocolError(f"{what}: channel {channel} is {kind}")
        if st.credit <= 0:
            raise LocalProtocolError(
                f"{what}: no send credit on channel {channel} ({st.credit}); wait for CreditGranted"
            )
        return st

    def _pack_default(self, obj: Any) -> Any:
        """msgpack ``default`` hook: turn an unbound :class:`ChannelRef` into an ext value."""
        if not isinstance(obj, ChannelRef):
            raise TypeError(f"cannot encode {type(obj).__name__} as msgpack")
        if not self._encoding_message:
            raise LocalProtocolError("channel references may only appear in message payloads")
        if obj.channel is not None:
            raise LocalProtocolError(
                f"a channel reference can be sent once (this one is bound to channel {obj.channel})"
            )
        self._check_can_create("a channel reference", len(self._pending_refs) + 1)
        cid = self._last[self._our_parity] + 2
        self._last[self._our_parity] = cid
        obj.channel = cid
        self._pending_refs.append(obj)
        return msgpack.ExtType(int(obj.kind), cid.to_bytes(8, "big"))
