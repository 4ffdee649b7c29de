"""The receiving half of a connection: bytes in, events out.

Frames are parsed straight out of one buffer through memoryview slices; the frame type
and, for MESSAGE, the channel are read from the first bytes before the msgpack decode,
so the ext hook already knows what to do with channel references.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ._errors import ErrorCode, LocalProtocolError, RemoteProtocolError
from ._events import (
    ChannelClosed,
    ChannelOpened,
    ChannelReset,
    CreditGranted,
    DataReceived,
    Event,
    GoAwayReceived,
    HelloReceived,
    MessageReceived,
    SessionEnded,
)
from ._frames import (
    DEFAULT_MAX_CHANNELS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW,
    LENGTH,
    MAX_FRAME_LIMIT,
    MIN_MAX_FRAME,
    frame_name,
    read_array_header,
    read_int,
)
from ._refs import RefKind
from ._state import (
    CLOSE,
    CREDIT,
    DATA,
    GOAWAY,
    HELLO,
    MAX_COUNT,
    MAX_CREDIT,
    MAX_DEPTH_LIMIT,
    MESSAGE,
    OPEN,
    REFS_FORBIDDEN,
    REFS_LIVE,
    REFS_ORPHAN,
    RESET,
    ChannelState,
    ConnectionState,
    may_nest_deeper,
    payload_too_deep,
)

__all__ = ["Receiving"]


class Receiving(ConnectionState):
    """Bytes in, events out."""

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes received from the peer; b"" means EOF. Returns the events, in order.

        Parses every complete frame in ``data`` plus what was buffered. Raises
        :class:`RemoteProtocolError` when the peer broke the protocol; the connection
        is then dead, every later call raises the same error, and the events of good
        frames that preceded the bad one in the same call are dropped with it (the
        session is over, so nothing may act on them). After this method, call
        :meth:`data_to_send` (usually b"").
        """
        if self._error is not None:
            raise self._error
        if self._eof:
            if data:
                raise LocalProtocolError("receive_data after EOF")
            return []
        if not data:
            return self._receive_eof()
        buf = self._buf
        buf += data
        events: list[Event] = []
        pos = 0
        end = len(buf)
        try:
            with memoryview(buf) as view:
                while end - pos >= 4:
                    (size,) = LENGTH.unpack_from(view, pos)
                    if size > self._in_limit:
                        self._frame_offset = self._consumed + pos
                        self._frame_type = -1
                        self._frame_channel = None
                        raise self._remote(
                            f"announced length {size} exceeds the limit of {self._in_limit}",
                            ErrorCode.FRAME_TOO_LARGE,
                        )
                    stop = pos + 4 + size
                    if stop > end:
                        break
                    self._frame_offset = self._consumed + pos
                    with view[pos + 4 : stop] as body:
                        self._dispatch(body, events)
                    pos = stop
        except RemoteProtocolError as exc:
            self._die(exc)
            raise
        except Exception as exc:  # pragma: no cover - a bug; never leave a live connection
            self._die(RemoteProtocolError(f"internal error while decoding: {exc!r}"))
            raise
        if pos:
            del buf[:pos]
            self._consumed += pos
        return events

    def _receive_eof(self) -> list[Event]:
        self._eof = True
        have = len(self._buf)
        if have == 0:
            return [SessionEnded()]
        offset = self._consumed
        if have < 4:
            msg = f"EOF after {have} of the 4 length bytes of the frame at byte {offset}"
        else:
            (size,) = LENGTH.unpack_from(self._buf, 0)
            msg = f"EOF after {have - 4} of {size} bytes of the frame at byte {offset}"
        err = RemoteProtocolError(msg, ErrorCode.TRUNCATED, offset=offset)
        self._die(err)
        raise err

    def _die(self, err: RemoteProtocolError) -> None:
        self._error = err
        self._buf = bytearray()  # free memory: nothing more will be parsed

    def _remote(self, text: str, code: ErrorCode = ErrorCode.PROTOCOL_ERROR) -> RemoteProtocolError:
        """Build an error for the frame being decoded, naming where and what it is."""
        where = f"frame at byte {self._frame_offset}"
        ftype = self._frame_type
        ch = self._frame_channel
        if ftype >= 0:
            detail = frame_name(ftype) if ch is None else f"{frame_name(ftype)}, channel {ch}"
            where = f"{where} ({detail})"
        return RemoteProtocolError(f"{where}: {text}", code, offset=self._frame_offset, channel=ch)

    def _dispatch(self, body: memoryview, events: list[Event]) -> None:
        self._frame_channel = None
        first = body[0] if len(body) > 1 else 0
        if 0x91 <= first <= 0x9F and body[1] < 0x80:
            # The common shape (fixarray, fixint type code), read without helper calls.
            count, ftype, pos = first & 0x0F, body[1], 2
        else:
            self._frame_type = -1
            head = read_array_header(body, 0)
            if head is None:
                raise self._remote("frame body is not a msgpack array")
            count, pos = head
            code_pos = read_int(body, pos) if count else None
            if code_pos is None:
                raise self._remote("frame body does not start with a frame type code")
            ftype, pos = code_pos
        self._frame_type = ftype
        if not 0 <= ftype <= GOAWAY:
            raise self._remote(f"unknown frame type {ftype}")
        if self.peer_hello is None and ftype != HELLO and ftype != GOAWAY:
            raise self._remote("expected HELLO")
        if ftype == MESSAGE:
            self._receive_message(body, count, pos, events)
            return
        self._ref_mode = REFS_FORBIDDEN
        frame = self._decode(body)
        if ftype == DATA:
            self._receive_data_frame(frame, len(body), events)
        elif ftype == CREDIT:
            self._receive_credit(frame, events)
        elif ftype == CLOSE:
            self._receive_close(frame, events)
        elif ftype == RESET:
            self._receive_reset(frame, events)
        elif ftype == OPEN:
            self._receive_open(frame, events)
        elif ftype == HELLO:
            self._receive_hello(frame, events)
        else:
            self._receive_goaway(frame, events)

    def _decode(self, body: memoryview) -> list[Any]:
        try:
            frame = msgpack.unpackb(
                body,
                raw=False,
                strict_map_key=False,
                ext_hook=self._ext_hook,
                use_list=True,
            )
        except RemoteProtocolError:
            raise
        except msgpack.StackError:
            raise self._remote("msgpack nesting too deep", ErrorCode.LIMIT_EXCEEDED) from None
        except (ValueError, TypeError, OverflowError, msgpack.UnpackException) as exc:
            text = str(exc) or type(exc).__name__
            raise self._remote(f"malformed msgpack body: {text}") from None
        return frame  # type: ignore[no-any-return]

    def _channel_field(self, frame: list[Any], length: int) -> int:
        """Check the frame's shape and return its channel id."""
        if len(frame) != length:
            raise self._remote(f"expected {length} elements, got {len(frame)}")
        ch = frame[1]
        if type(ch) is not int:
            raise self._remote(f"channel id must be an integer, got {type(ch).__name__}")
        self._frame_channel = ch
        return ch

    def _peer_channel(self, ch: int) -> ChannelState | None:
        """The live channel ``ch``; None if it existed and ended; error if it never existed."""
        st = self._channels.get(ch)
        if st is None and not self._existed(ch):
            raise self._remote(f"channel {ch} was never opened")
        return st

    def _receive_message(self, body: memoryview, count: int, pos: int, events: list[Event]) -> None:
        if count != 3:
            raise self._remote(f"expected 3 elements, got {count}")
        ch = body[pos] if pos < len(body) else 0xC1
        if ch >= 0x80:
            ch_pos = read_int(body, pos)
            if ch_pos is None:
                raise self._remote("channel id must be an integer")
            ch = ch_pos[0]
        self._frame_channel = ch
        st = self._peer_channel(ch)
        size = len(body)
        if st is None:
            # The channel ended (say we reset it while this was in flight): drop the
            # message, but its references still consume ids and must be reset.
            self._ref_mode = REFS_ORPHAN
            self._decode(body)
            return
        if st.we_write:
            raise self._remote(f"we write channel {ch}; the peer may not send on it")
        if st.stream:
            raise self._remote(f"channel {ch} is a byte stream; MESSAGE is not allowed on it")
        if st.credit <= 0:
            raise self._remote(
                f"no credit left on channel {ch} ({st.credit})", ErrorCode.FLOW_CONTROL
            )
        self._ref_mode = REFS_LIVE
        payload = self._decode(body)[2]
        if (
            size > self._max_depth + 1
            and may_nest_deeper(body, self._max_depth)
            and payload_too_deep(payload, self._max_depth)
        ):
            raise self._remote(
                f"payload nests deeper than {self._max_depth} levels", ErrorCode.LIMIT_EXCEEDED
            )
        st.credit -= size
        st.held += size
        events.append(MessageReceived(ch, payload, size))

    def _receive_data_frame(self, frame: list[Any], size: int, events: list[Event]) -> None:
        ch = self._channel_field(frame, 3)
        data = frame[2]
        if type(data) is not bytes:
            raise self._remote(f"DATA must carry msgpack bin, got {type(data).__name__}")
        st = self._peer_channel(ch)
        if st is None:
            return
        if st.we_write:
            raise self._remote(f"we write channel {ch}; the peer may not send on it")
        if not st.stream:
            raise self._remote(f"channel {ch} is a message channel; DATA is not allowed on it")
        if st.credit <= 0:
            raise self._remote(
                f"no credit left on channel {ch} ({st.credit})", ErrorCode.FLOW_CONTROL
            )
        st.credit -= size
        st.held += size
        events.append(DataReceived(ch, data, size))

    def _receive_credit(self, frame: list[Any], events: list[Event]) -> None:
        ch = self._channel_field(frame, 3)
        inc = frame[2]
        if type(inc) is not int or inc <= 0:
            raise self._remote(f"credit increment must be a positive integer, got {inc!r}")
        st = self._peer_channel(ch)
        if st is None:
            return
        if not st.we_write:
            raise self._remote(f"we read channel {ch}; only its reader grants credit")
        if st.credit + inc > MAX_CREDIT:
            raise self._remote(
                f"credit on channel {ch} would exceed 2**63-1", ErrorCode.FLOW_CONTROL
            )
        st.credit += inc
        events.append(CreditGranted(ch, inc))

    def _receive_close(self, frame: list[Any], events: list[Event]) -> None:
        ch = self._channel_field(frame, 2)
        st = self._peer_channel(ch)
        if st is None:
            return
        if st.we_write:
            raise self._remote(f"we write channel {ch}; only its writer closes it")
        self._forget(ch)
        events.append(ChannelClosed(ch))

    def _receive_reset(self, frame: list[Any], events: list[Event]) -> None:
        ch = self._channel_field(frame, 4)
        code, reason = frame[2], frame[3]
        if type(code) is not int or code < 0:
            raise self._remote(f"error code must be an unsigned integer, got {code!r}")
        if type(reason) is not str:
            raise self._remote(f"reason must be a string, got {type(reason).__name__}")
        if self._peer_channel(ch) is None:
            return
        self._forget(ch)
        events.append(ChannelReset(ch, ErrorCode.from_wire(code), reason))

    def _receive_open(self, frame: list[Any], events: list[Event]) -> None:
        ch = self._channel_field(frame, 2)
        self._accept_peer_channel(ch)
        self._register(ch, we_write=False, stream=False, creator=ch & 1)
        events.append(ChannelOpened(ch))

    def _accept_peer_channel(self, ch: int) -> None:
        """Check that the peer may create channel ``ch`` now, and record its id."""
        parity = 1 - self._our_parity
        if ch & 1 != parity or ch <= self._last[parity]:
            side = "odd" if parity else "even"
            raise self._remote(
                f"channel {ch} is not a new id of the peer's parity ({side}, above "
                f"{max(self._last[parity], 0)})"
            )
        if self._goaway_received:
            raise self._remote(f"channel {ch} created after the peer's GOAWAY")
        if self._live[parity] >= self._max_channels:
            raise self._remote(
                f"channel {ch} exceeds our max_channels of {self._max_channels}",
                ErrorCode.LIMIT_EXCEEDED,
            )
        self._last[parity] = ch

    def _ext_hook(self, kind: int, data: bytes) -> Any:
        if not 1 <= kind <= 3:
            raise self._remote(f"unknown msgpack ext type {kind}")
        if self._ref_mode == REFS_FORBIDDEN:
            raise self._remote("channel references are only allowed in MESSAGE payloads")
        if len(data) != 8:
            raise self._remote(f"channel reference must hold 8 bytes, got {len(data)}")
        ch = int.from_bytes(data, "big")
        self._accept_peer_channel(ch)
        ref_kind = RefKind(kind)
        if self._ref_mode == REFS_ORPHAN:
            # Nobody here will ever use it: tell the author so it does not wait forever.
            self._outbox.append(
                self._frame(
                    [RESET, ch, int(ErrorCode.CANCELLED), "referenced by a dropped message"]
                )
            )
            return None
        # The kind names the recipient's (our) side: SENDER means we write.
        self._register(
            ch,
            we_write=ref_kind is RefKind.SENDER,
            stream=ref_kind is RefKind.STREAM,
            creator=ch & 1,
        )
        return self._ref_factory(ref_kind, ch)

    def _receive_hello(self, frame: list[Any], events: list[Event]) -> None:
        if self.peer_hello is not None:
            raise self._remote("second HELLO")
        if len(frame) != 2 or type(frame[1]) is not dict:
            raise self._remote("HELLO must be [0, {fields}]")
        fields: dict[str, Any] = frame[1]
        if fields and payload_too_deep(fields, self._max_depth):
            raise self._remote(
                f"HELLO fields nest deeper than {self._max_depth} levels",
                ErrorCode.LIMIT_EXCEEDED,
            )
        theirs = fields.get("versions")
        if type(theirs) is not list or not theirs or any(type(v) is not int for v in theirs):
            raise self._remote(f"HELLO 'versions' must be a non-empty list of ints, got {theirs!r}")
        common = set(self._versions).intersection(theirs)
        if not common:
            raise self._remote(
                f"no common protocol version: we speak {sorted(self._versions)}, "
                f"the peer speaks {sorted(theirs)}",
                ErrorCode.VERSION_MISMATCH,
            )
        max_frame = self._hello_int(
            fields, "max_frame", DEFAULT_MAX_FRAME, MIN_MAX_FRAME, MAX_FRAME_LIMIT
        )
        window = self._hello_int(fields, "window", DEFAULT_WINDOW, 1, MAX_CREDIT)
        max_channels = self._hello_int(fields, "max_channels", DEFAULT_MAX_CHANNELS, 0, MAX_COUNT)
        max_depth = self._hello_int(fields, "max_depth", DEFAULT_MAX_DEPTH, 1, MAX_COUNT)
        self.version = max(common)
        self.peer_hello = fields
        self._peer_max_frame = max_frame
        self._peer_window = window
        self._peer_max_channels = max_channels
        self._peer_max_depth = min(max_depth, MAX_DEPTH_LIMIT)
        self._in_limit = self._max_frame
        events.append(HelloReceived(self.version, fields))

    def _hello_int(
        self, fields: dict[str, Any], name: str, default: int, low: int, high: int
    ) -> int:
        value = fields.get(name, default)
        if type(value) is not int or not low <= value <= high:
            raise self._remote(f"HELLO {name!r} must be an int in [{low}, {high}], got {value!r}")
        return value

    def _receive_goaway(self, frame: list[Any], events: list[Event]) -> None:
        if len(frame) != 3:
            raise self._remote(f"expected 3 elements, got {len(frame)}")
        code, reason = frame[1], frame[2]
        if type(code) is not int or code < 0:
            raise self._remote(f"error code must be an unsigned integer, got {code!r}")
        if type(reason) is not str:
            raise self._remote(f"reason must be a string, got {type(reason).__name__}")
        self._goaway_received = True
        events.append(GoAwayReceived(ErrorCode.from_wire(code), reason))
