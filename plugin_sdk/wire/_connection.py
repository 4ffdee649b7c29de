"""The sans-IO connection: bytes in, events out; calls in, bytes out.

Rules this file enforces (docs/PROTOCOL.md is the normative text):

* Framing: 4-byte big-endian length, then one msgpack array ``[type, ...]``. A length
  above the receive limit fails as soon as the 4 prefix bytes are in (65536 until the
  peer's HELLO is processed, then our ``max_frame``).
* Handshake: each side sends HELLO first. Until the peer's HELLO only HELLO or GOAWAY
  may arrive; we create and send nothing on channels until we have it.
* Channels: initiator ids odd, responder ids even, each side's strictly increasing in
  wire order. A channel is written by one side and read by the other. It is live from
  its creating frame until CLOSE (by the writer) or RESET (by either) is sent or
  received. Frames for an id that existed but ended are ignored; frames for ids that
  never existed are a PROTOCOL_ERROR.
* Flow control: per channel byte credit; the cost of MESSAGE/DATA is the body length.
  A writer may send while its credit is > 0 (so it can overshoot by one frame).
* A RemoteProtocolError kills the connection: later receive_data raises it again.
  A LocalProtocolError leaves no trace: no bytes, no state change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

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
    HELLO_MAX_FRAME,
    LENGTH,
    MAX_FRAME_LIMIT,
    MIN_MAX_FRAME,
    PROTOCOL_VERSIONS,
    Role,
    frame_name,
    read_array_header,
    read_int,
    truncate_reason,
)
from ._refs import ChannelRef, RefKind

__all__ = ["Connection"]

_HELLO: Final = 0
_OPEN: Final = 1
_MESSAGE: Final = 2
_DATA: Final = 3
_CLOSE: Final = 4
_RESET: Final = 5
_CREDIT: Final = 6
_GOAWAY: Final = 7

_MAX_CREDIT: Final = (1 << 63) - 1
_MAX_COUNT: Final = (1 << 63) - 1
_MAX_DEPTH_LIMIT: Final = 512  # the msgpack Packer refuses deeper values anyway

# What the msgpack ext hook does with a reference, set per frame before decoding.
_REFS_FORBIDDEN: Final = 0
_REFS_LIVE: Final = 1
_REFS_ORPHAN: Final = 2

_RESERVED_HELLO_FIELDS: Final = frozenset(
    {"versions", "max_frame", "window", "max_channels", "max_depth"}
)


class _Channel:
    """Per-channel state.

    ``credit`` is the writer's remaining credit: ours if we write, the peer's (as we
    account it) if we read. ``held`` counts received bytes the application has not
    acknowledged yet; ``unacked`` acknowledged bytes not yet returned in a CREDIT.
    """

    __slots__ = ("credit", "held", "stream", "unacked", "we_write")

    def __init__(self, we_write: bool, stream: bool, credit: int) -> None:
        self.we_write = we_write
        self.stream = stream
        self.credit = credit
        self.held = 0
        self.unacked = 0


def _too_deep(obj: Any, budget: int) -> bool:
    """True if container ``obj`` nests deeper than ``budget`` levels (obj itself is one)."""
    if budget <= 0:
        return True
    budget -= 1
    items: Any = obj.values() if type(obj) is dict else obj
    if type(obj) is dict:
        for key in obj:
            tk = type(key)
            if (tk is list or tk is dict) and _too_deep(key, budget):
                return True
    for item in items:
        ti = type(item)
        if (ti is list or ti is dict) and _too_deep(item, budget):
            return True
    return False


# Bytes that can start a msgpack array or map: fixmap, fixarray, array16/32, map16/32.
# A value nested d levels deep needs at least d of them in its encoding, so counting them
# (in C, via translate) rules out deep nesting for most bodies without a Python walk.
_NOT_CONTAINER_BYTES: Final = bytes(
    b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF)
)


def _may_nest_deeper(body: bytes, max_depth: int) -> bool:
    """False if the frame ``body`` cannot hold a payload nested more than ``max_depth`` deep.

    The frame's own array header is one container byte, hence the ``+ 1``.
    """
    if len(body) <= max_depth + 1:
        return False
    return len(body.translate(None, _NOT_CONTAINER_BYTES)) > max_depth + 1


def _payload_too_deep(payload: Any, max_depth: int) -> bool:
    """True if ``payload`` nests containers more than ``max_depth`` levels deep."""
    tp = type(payload)
    return (tp is list or tp is dict) and _too_deep(payload, max_depth)


def _check_limit(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise LocalProtocolError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return value


class Connection:
    """One end of a chanrouter wire session, without any I/O.

    Feed received bytes to :meth:`receive_data` and act on the events it returns;
    every sending method returns the bytes to write to the transport, in call order.
    """

    def __init__(
        self,
        role: Role,
        *,
        versions: Sequence[int] = PROTOCOL_VERSIONS,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        max_channels: int = DEFAULT_MAX_CHANNELS,
        max_depth: int = DEFAULT_MAX_DEPTH,
        hello_fields: Mapping[str, Any] | None = None,
        ref_factory: Callable[[RefKind, int], Any] | None = None,
    ) -> None:
        if not isinstance(role, Role):
            raise LocalProtocolError(f"role must be a Role, got {role!r}")
        vs = list(versions)
        if not vs or any(type(v) is not int or v < 0 for v in vs):
            raise LocalProtocolError(f"versions must be a non-empty list of ints, got {vs!r}")
        self._max_frame = _check_limit("max_frame", max_frame, MIN_MAX_FRAME, MAX_FRAME_LIMIT)
        self._window = _check_limit("window", window, 1, _MAX_CREDIT)
        self._max_channels = _check_limit("max_channels", max_channels, 0, _MAX_COUNT)
        self._max_depth = _check_limit("max_depth", max_depth, 1, _MAX_DEPTH_LIMIT)
        extra = dict(hello_fields or {})
        clash = _RESERVED_HELLO_FIELDS.intersection(extra)
        if clash:
            raise LocalProtocolError(
                f"hello_fields may not set {sorted(clash)}: use the keyword arguments"
            )
        self._versions = vs
        self._hello_extra = extra
        self._ref_factory: Callable[[RefKind, int], Any] = ref_factory or ChannelRef

        self.role: Role = role
        """Our role; it fixes the parity of the channel ids we allocate."""
        self.version: int | None = None
        """The negotiated protocol version, once the peer's HELLO has been processed."""
        self.peer_hello: dict[str, Any] | None = None
        """The peer's HELLO fields (unknown ones included), once received."""

        # Ids: odd for the initiator, even for the responder. _last[p] is the last id
        # created by the side whose ids have parity p; starting at 0 and -1 makes "next
        # id is last + 2" and "existed iff 0 < id <= last" hold from the start.
        self._our_parity = 1 if role is Role.INITIATOR else 0
        self._last = [0, -1]
        self._live = [0, 0]  # live channels per creator parity
        self._channels: dict[int, _Channel] = {}

        self._buf = bytearray()
        self._consumed = 0  # stream offset of _buf[0]
        self._in_limit = HELLO_MAX_FRAME
        self._error: RemoteProtocolError | None = None
        self._eof = False

        self._hello_sent = False
        self._peer_max_frame = HELLO_MAX_FRAME
        self._peer_window = 0
        self._peer_max_channels = 0
        self._peer_max_depth = DEFAULT_MAX_DEPTH
        self._goaway_sent = False
        self._goaway_received = False
        self._ack_threshold = max(1, self._window // 2)

        self._packer = msgpack.Packer(default=self._pack_default, autoreset=True, use_bin_type=True)
        self._pending_refs: list[ChannelRef] = []
        self._encoding_message = False
        self._outbox: list[bytes] = []

        # Decoding context, read by the ext hook and by error messages.
        self._ref_mode = _REFS_FORBIDDEN
        self._frame_offset = 0
        self._frame_type = 0
        self._frame_channel: int | None = None

    # ------------------------------------------------------------------ queries

    @property
    def open_channels(self) -> int:
        """Number of live channels, created by either side."""
        return len(self._channels)

    @property
    def peer_max_frame(self) -> int:
        """Largest frame body the peer accepts (65536 until its HELLO arrives)."""
        return self._peer_max_frame

    @property
    def peer_window(self) -> int:
        """Initial credit the peer grants on each channel it reads (0 before its HELLO)."""
        return self._peer_window

    @property
    def window(self) -> int:
        """Initial credit we grant on each channel we read."""
        return self._window

    @property
    def goaway_sent(self) -> bool:
        """True once we sent GOAWAY: we create no more channels."""
        return self._goaway_sent

    @property
    def goaway_received(self) -> bool:
        """True once the peer sent GOAWAY: neither side creates more channels."""
        return self._goaway_received

    def is_open(self, channel: int) -> bool:
        """True if ``channel`` is live (created and not yet closed or reset)."""
        return channel in self._channels

    def is_writer(self, channel: int) -> bool:
        """True if we write the live ``channel``, False if we read it."""
        return self._live_channel(channel, "is_writer").we_write

    def is_stream(self, channel: int) -> bool:
        """True if the live ``channel`` carries bytes (DATA), False if messages."""
        return self._live_channel(channel, "is_stream").stream

    def credit(self, channel: int) -> int:
        """Our remaining send credit on ``channel``, a live channel we write."""
        st = self._live_channel(channel, "credit")
        if not st.we_write:
            raise LocalProtocolError(f"credit: we read channel {channel}, we do not write it")
        return st.credit

    def data_to_send(self) -> bytes:
        """Bytes the connection produced on its own (RESETs of orphaned references).

        Usually empty. They are also prepended to the result of the next sending
        call, so calling this after :meth:`receive_data` only makes them go sooner.
        """
        out = b"".join(self._outbox)
        self._outbox.clear()
        return out

    # ------------------------------------------------------------------ sending

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
            frame = self._frame([_HELLO, fields])
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
        frame = self._frame([_OPEN, cid])
        self._last[self._our_parity] = cid
        self._register(cid, we_write=True, stream=False, creator=self._our_parity)
        return cid, self._with_outbox(frame)

    def send_message(self, channel: int, payload: Any) -> bytes:
        """Return a MESSAGE frame carrying ``payload`` on ``channel`` (a channel we write).

        :class:`ChannelRef` values in ``payload`` with ``channel is None`` create new
        channels (see :class:`ChannelRef`). Raises :class:`LocalProtocolError`, with no
        effect, if the channel is not ours to write, has no credit, the payload cannot
        be encoded or nests too deep, or the frame exceeds the peer's ``max_frame``.
        """
        st = self._writable(channel, "send_message", stream=False)
        saved_last = self._last[self._our_parity]
        pending: list[ChannelRef] = []
        self._pending_refs = pending
        self._encoding_message = True
        try:
            body = self._encode_message(channel, payload)
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

    def _encode_message(self, channel: int, payload: Any) -> bytes:
        try:
            body: bytes = self._packer.pack([_MESSAGE, channel, payload])
        except (TypeError, ValueError, OverflowError) as exc:
            raise LocalProtocolError(
                f"send_message on channel {channel}: payload cannot be encoded: {exc}"
            ) from exc
        if len(body) > self._peer_max_frame:
            raise LocalProtocolError(
                f"send_message on channel {channel}: the frame is {len(body)} bytes, "
                f"over the peer's max_frame of {self._peer_max_frame}"
            )
        if _may_nest_deeper(body, self._peer_max_depth) and _payload_too_deep(
            payload, self._peer_max_depth
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
        body = self._packer.pack([_DATA, channel, data])
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
        frame = self._frame([_CLOSE, channel])
        self._forget(channel)
        return self._with_outbox(frame)

    def reset(self, channel: int, code: ErrorCode, reason: str) -> bytes:
        """Abort ``channel`` (either direction) with ``code``; b"" if it already ended."""
        code = self._check_code(code, "reset")
        st = self._channels.get(channel)
        if st is None:
            self._check_existed(channel, "reset")
            return b""
        frame = self._frame([_RESET, channel, int(code), truncate_reason(str(reason))])
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
        frame = self._frame([_CREDIT, channel, increment])
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
        frame = self._frame([_GOAWAY, int(code), truncate_reason(str(reason))])
        self._goaway_sent = True
        return self._with_outbox(frame)

    # ------------------------------------------------------------------ receiving

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes received from the peer; b"" means EOF. Returns the events, in order.

        Parses every complete frame in ``data`` plus what was buffered. Raises
        :class:`RemoteProtocolError` when the peer broke the protocol; the connection
        is then dead and every later call raises the same error.
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
            err = RemoteProtocolError(f"internal error while decoding: {exc!r}")
            self._die(err)
            raise
        if pos:
            del buf[:pos]
            self._consumed += pos
        return events

    # ------------------------------------------------------------------ internals: receive

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
        self._frame_type = -1
        self._frame_channel = None
        head = read_array_header(body, 0)
        if head is None:
            raise self._remote("frame body is not a msgpack array")
        count, pos = head
        code_pos = read_int(body, pos) if count else None
        if code_pos is None:
            raise self._remote("frame body does not start with a frame type code")
        ftype, pos = code_pos
        self._frame_type = ftype
        if not 0 <= ftype <= _GOAWAY:
            raise self._remote(f"unknown frame type {ftype}")
        if self.peer_hello is None and ftype != _HELLO and ftype != _GOAWAY:
            raise self._remote("expected HELLO")
        if ftype == _MESSAGE:
            self._receive_message(body, count, pos, events)
            return
        self._ref_mode = _REFS_FORBIDDEN
        frame = self._decode(body)
        if ftype == _DATA:
            self._receive_data_frame(frame, len(body), events)
        elif ftype == _CREDIT:
            self._receive_credit(frame, events)
        elif ftype == _CLOSE:
            self._receive_close(frame, events)
        elif ftype == _RESET:
            self._receive_reset(frame, events)
        elif ftype == _OPEN:
            self._receive_open(frame, events)
        elif ftype == _HELLO:
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

    def _existed(self, ch: int) -> bool:
        return 0 < ch <= self._last[ch & 1]

    def _peer_channel(self, ch: int) -> _Channel | None:
        """The live channel ``ch``; None if it existed and ended; error if it never existed."""
        st = self._channels.get(ch)
        if st is None and not self._existed(ch):
            raise self._remote(f"channel {ch} was never opened")
        return st

    def _receive_message(self, body: memoryview, count: int, pos: int, events: list[Event]) -> None:
        if count != 3:
            raise self._remote(f"expected 3 elements, got {count}")
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
            self._ref_mode = _REFS_ORPHAN
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
        self._ref_mode = _REFS_LIVE
        payload = self._decode(body)[2]
        if (
            size > self._max_depth + 1
            and _may_nest_deeper(body.tobytes(), self._max_depth)
            and _payload_too_deep(payload, self._max_depth)
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
        if st.credit + inc > _MAX_CREDIT:
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
        if self._ref_mode == _REFS_FORBIDDEN:
            raise self._remote("channel references are only allowed in MESSAGE payloads")
        if len(data) != 8:
            raise self._remote(f"channel reference must hold 8 bytes, got {len(data)}")
        ch = int.from_bytes(data, "big")
        self._accept_peer_channel(ch)
        ref_kind = RefKind(kind)
        if self._ref_mode == _REFS_ORPHAN:
            # Nobody here will ever use it: tell the author so it does not wait forever.
            self._outbox.append(
                self._frame(
                    [_RESET, ch, int(ErrorCode.CANCELLED), "referenced by a dropped message"]
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
        if fields and _payload_too_deep(fields, self._max_depth):
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
        window = self._hello_int(fields, "window", DEFAULT_WINDOW, 1, _MAX_CREDIT)
        max_channels = self._hello_int(fields, "max_channels", DEFAULT_MAX_CHANNELS, 0, _MAX_COUNT)
        max_depth = self._hello_int(fields, "max_depth", DEFAULT_MAX_DEPTH, 1, _MAX_COUNT)
        self.version = max(common)
        self.peer_hello = fields
        self._peer_max_frame = max_frame
        self._peer_window = window
        self._peer_max_channels = max_channels
        self._peer_max_depth = min(max_depth, _MAX_DEPTH_LIMIT)
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

    # ------------------------------------------------------------------ internals: send

    def _frame(self, body: list[Any]) -> bytes:
        packed: bytes = self._packer.pack(body)
        return LENGTH.pack(len(packed)) + packed

    def _with_outbox(self, frame: bytes) -> bytes:
        if not self._outbox:
            return frame
        self._outbox.append(frame)
        return self.data_to_send()

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

    def _live_channel(self, channel: int, what: str) -> _Channel:
        st = self._channels.get(channel)
        if st is None:
            if type(channel) is int and self._existed(channel):
                raise LocalProtocolError(f"{what}: channel {channel} has ended")
            raise LocalProtocolError(f"{what}: channel {channel!r} was never opened")
        return st

    def _writable(self, channel: int, what: str, *, stream: bool) -> _Channel:
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

    def _register(self, cid: int, *, we_write: bool, stream: bool, creator: int) -> None:
        credit = self._peer_window if we_write else self._window
        self._channels[cid] = _Channel(we_write, stream, credit)
        self._live[creator] += 1

    def _forget(self, cid: int) -> None:
        del self._channels[cid]
        self._live[cid & 1] -= 1
