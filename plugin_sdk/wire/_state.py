"""Connection state shared by the sending and receiving halves: settings, ids, channels.

See ``_connection.py`` for the rules; this file only holds the data and the helpers
both halves use.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgpack

from ._errors import LocalProtocolError, RemoteProtocolError
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
)
from ._refs import ChannelRef, RefKind

__all__ = ["ConnectionState"]

HELLO: Final = 0
OPEN: Final = 1
MESSAGE: Final = 2
DATA: Final = 3
CLOSE: Final = 4
RESET: Final = 5
CREDIT: Final = 6
GOAWAY: Final = 7

MAX_CREDIT: Final = (1 << 63) - 1
MAX_COUNT: Final = (1 << 63) - 1
MAX_DEPTH_LIMIT: Final = 512  # the msgpack Packer refuses deeper values anyway

# What the msgpack ext hook does with a reference, set per frame before decoding.
REFS_FORBIDDEN: Final = 0
REFS_LIVE: Final = 1
REFS_ORPHAN: Final = 2

RESERVED_HELLO_FIELDS: Final = frozenset(
    {"versions", "max_frame", "window", "max_channels", "max_depth"}
)


class ChannelState:
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


CONTAINER_TYPES: Final = frozenset({list, dict, tuple})
"""Types that nest on the wire (msgpack packs a tuple as an array); anything else in a
payload nests 0 deep."""


def _items_of_each(level: list[Any]) -> list[Any]:
    """The items of every container of ``level`` (a map's keys and values), in one list."""
    items: list[Any] = []
    extend = items.extend
    for container in level:
        if type(container) is dict:
            extend(container.keys())
            extend(container.values())
        else:
            extend(container)
    return items


if sys.implementation.name == "cpython":
    # CPython's list, tuple and dict visit every item (a dict: every value, and its
    # keys unless they are all strings, which never nest) for the garbage collector,
    # so get_referents lists a whole level's items in C, without a Python loop per
    # container. Nothing else is ever asked: only those three types are walked.
    _items_of = gc.get_referents
else:  # another Python: the plain loop

    def _items_of(*level: Any) -> list[Any]:
        return _items_of_each(list(level))


def nesting(obj: Any, limit: int = MAX_DEPTH_LIMIT) -> int:
    """How deep ``obj`` nests: 0 for a scalar, 1 + its deepest item for a container.

    Walks at most ``limit`` levels: a deeper ``obj`` gives ``limit + 1``. Level by level
    rather than recursively: a batch of a hundred small messages is a few hundred
    containers, and a Python call per container cost more than the walk. A map's keys
    count as its items do (docs/PROTOCOL.md): a tuple key nests as the array msgpack
    packs it as. (No received key nests: msgpack refuses an array or map key as
    unhashable, so such a frame is refused as malformed whatever its depth.)
    """
    containers = CONTAINER_TYPES
    if type(obj) not in containers:
        return 0
    items_of = _items_of
    level = [obj]
    depth = 0
    while level:
        if depth >= limit:
            return limit + 1
        depth += 1
        level = [item for item in items_of(*level) if type(item) in containers]
    return depth


# Bytes that can start a msgpack array or map: fixmap, fixarray, array16/32, map16/32.
# A value nested d levels deep needs at least d of them in its encoding, so counting them
# (in C, via translate) rules out deep nesting for most small bodies without a Python walk.
_NOT_CONTAINER_BYTES: Final = bytes(
    b for b in range(256) if not (0x80 <= b <= 0x9F or 0xDC <= b <= 0xDF)
)

_SCAN_MAX: Final = 1024
"""Frames up to this size are scanned for container bytes before any walk.

The scan costs time in proportion to the bytes (about 20 µs for 64 KiB here), the
walk in proportion to the payload's items (about 1 µs for a call with a 64 KiB
body): past about a kilobyte the scan costs more than the walk it might save.
"""


def may_nest_deeper(body: bytes | memoryview, max_depth: int) -> bool:
    """False if the frame ``body`` cannot hold a payload nested more than ``max_depth`` deep.

    True means: walk the payload to know (:func:`payload_too_deep`). Only frames of up
    to :data:`_SCAN_MAX` bytes are scanned; the frame's own array header is one
    container byte, hence the ``+ 1``.
    """
    size = len(body)
    if size <= max_depth + 1:
        return False
    if size > _SCAN_MAX:
        return True
    return len(bytes(body).translate(None, _NOT_CONTAINER_BYTES)) > max_depth + 1


def payload_too_deep(payload: Any, max_depth: int) -> bool:
    """True if ``payload`` nests containers more than ``max_depth`` levels deep."""
    return nesting(payload, max_depth) > max_depth


def check_limit(name: str, value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise LocalProtocolError(f"{name} must be an int in [{low}, {high}], got {value!r}")
    return value


class ConnectionState:
    """The data of one connection end; :class:`Connection` adds the behaviour."""

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
        """Set up one end; nothing is sent until :meth:`Sending.hello` is called.

        ``role`` fixes the parity of our channel ids. ``versions``, ``max_frame``,
        ``window``, ``max_channels`` and ``max_depth`` are what we announce in HELLO and
        enforce on what we receive; ``hello_fields`` adds application fields to HELLO.
        ``ref_factory(kind, id)`` builds the object that stands for a received channel
        reference (default :class:`ChannelRef`); it is called after the channel is
        registered, while the MESSAGE is being decoded, and may be called for a frame that
        then turns out bad (the connection is dead then anyway). Bad arguments raise
        :class:`LocalProtocolError`.
        """
        if not isinstance(role, Role):
            raise LocalProtocolError(f"role must be a Role, got {role!r}")
        vs = list(versions)
        if not vs or any(type(v) is not int or v < 0 for v in vs):
            raise LocalProtocolError(f"versions must be a non-empty list of ints, got {vs!r}")
        self._max_frame = check_limit("max_frame", max_frame, MIN_MAX_FRAME, MAX_FRAME_LIMIT)
        self._window = check_limit("window", window, 1, MAX_CREDIT)
        self._max_channels = check_limit("max_channels", max_channels, 0, MAX_COUNT)
        self._max_depth = check_limit("max_depth", max_depth, 1, MAX_DEPTH_LIMIT)
        extra = dict(hello_fields or {})
        clash = RESERVED_HELLO_FIELDS.intersection(extra)
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
        self._channels: dict[int, ChannelState] = {}

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
        self._ref_mode = REFS_FORBIDDEN
        self._frame_offset = 0
        self._frame_type = 0
        self._frame_channel: int | None = None

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

    def _existed(self, ch: int) -> bool:
        return 0 < ch <= self._last[ch & 1]

    def _frame(self, body: list[Any]) -> bytes:
        packed: bytes = self._packer.pack(body)
        return LENGTH.pack(len(packed)) + packed

    def _with_outbox(self, frame: bytes) -> bytes:
        if not self._outbox:
            return frame
        self._outbox.append(frame)
        return self.data_to_send()

    def _pack_default(self, obj: Any) -> Any:
        """msgpack ``default`` hook; the sending side binds channel references here."""
        raise TypeError(f"cannot encode {type(obj).__name__} as msgpack")

    def _live_channel(self, channel: int, what: str) -> ChannelState:
        st = self._channels.get(channel)
        if st is None:
            if type(channel) is int and self._existed(channel):
                raise LocalProtocolError(f"{what}: channel {channel} has ended")
            raise LocalProtocolError(f"{what}: channel {channel!r} was never opened")
        return st

    def _register(self, cid: int, *, we_write: bool, stream: bool, creator: int) -> None:
        credit = self._peer_window if we_write else self._window
        self._channels[cid] = ChannelState(we_write, stream, credit)
        self._live[creator] += 1

    def _forget(self, cid: int) -> None:
        del self._channels[cid]
        self._live[cid & 1] -= 1
