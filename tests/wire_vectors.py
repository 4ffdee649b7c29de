"""Wire test vectors (the same bytes as docs/PROTOCOL.md) and helpers shared by the wire tests.

The vectors come from one scripted session, :func:`vector_session`: an initiator with
default settings and a responder announcing ``window=16, max_channels=8``.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgpack
from hypothesis import strategies as st

from plugin_sdk.wire import (
    ChannelRef,
    Connection,
    ErrorCode,
    Event,
    RefKind,
    Role,
)


@dataclass(frozen=True)
class Vector:
    """One frame: its name in PROTOCOL.md, who sends it, its bytes, and its msgpack value."""

    name: str
    sender: Role
    hex: str
    value: list[Any]

    @property
    def data(self) -> bytes:
        """The frame's bytes, length prefix included."""
        return bytes.fromhex(self.hex)


def _ref(kind: RefKind, channel: int) -> msgpack.ExtType:
    return msgpack.ExtType(int(kind), channel.to_bytes(8, "big"))


INIT, RESP = Role.INITIATOR, Role.RESPONDER

VECTORS: list[Vector] = [
    Vector(
        "HELLO (initiator, defaults)",
        INIT,
        "00000044920085a876657273696f6e739101a96d61785f6672616d65ce00100000a677696e646f77"
        "ce00040000ac6d61785f6368616e6e656c73cd1000a96d61785f646570746820",
        [
            0,
            {
                "versions": [1],
                "max_frame": 1048576,
                "window": 262144,
                "max_channels": 4096,
                "max_depth": 32,
            },
        ],
    ),
    Vector(
        "HELLO (responder, window 16, max_channels 8)",
        RESP,
        "0000003e920085a876657273696f6e739101a96d61785f6672616d65ce00100000a677696e646f77"
        "10ac6d61785f6368616e6e656c7308a96d61785f646570746820",
        [
            0,
            {
                "versions": [1],
                "max_frame": 1048576,
                "window": 16,
                "max_channels": 8,
                "max_depth": 32,
            },
        ],
    ),
    Vector("OPEN", INIT, "00000003920101", [1, 1]),
    Vector(
        "MESSAGE with a nested SENDER reference",
        INIT,
        "0000001e93020182a474797065a470696e67a57265706c79d7010000000000000003",
        [2, 1, {"type": "ping", "reply": _ref(RefKind.SENDER, 3)}],
    ),
    Vector(
        "MESSAGE (reply on the SENDER channel)",
        RESP,
        "0000000e93020381a474797065a4706f6e67",
        [2, 3, {"type": "pong"}],
    ),
    Vector("CREDIT", RESP, "000000049306011e", [6, 1, 30]),
    Vector(
        "MESSAGE with RECEIVER and STREAM references",
        INIT,
        "0000002e93020183a474797065a4636f7079a66576656e7473d7020000000000000005a464617461"
        "d7030000000000000007",
        [
            2,
            1,
            {
                "type": "copy",
                "events": _ref(RefKind.RECEIVER, 5),
                "data": _ref(RefKind.STREAM, 7),
            },
        ],
    ),
    Vector("DATA", INIT, "0000000a930307c40568656c6c6f", [3, 7, b"hello"]),
    Vector("CLOSE", INIT, "00000003920407", [4, 7]),
    Vector("RESET", RESP, "0000000e94050506a96e6f207468616e6b73", [5, 5, 6, "no thanks"]),
    Vector("GOAWAY", INIT, "00000004930700a0", [7, 0, ""]),
]
"""Every frame type, in the order :func:`vector_session` produces them."""


def vector_session() -> tuple[list[bytes], list[list[Event]]]:
    """Run the scripted session behind :data:`VECTORS`.

    Returns the bytes each call produced (in vector order) and, for each, the events
    the other side got from them.
    """
    a = Connection(Role.INITIATOR)
    b = Connection(Role.RESPONDER, window=16, max_channels=8)
    sent: list[bytes] = []
    events: list[list[Event]] = []

    def to_b(data: bytes) -> None:
        sent.append(data)
        events.append(b.receive_data(data))

    def to_a(data: bytes) -> None:
        sent.append(data)
        events.append(a.receive_data(data))

    to_b(a.hello())
    to_a(b.hello())
    to_b(a.open()[1])
    to_b(a.send_message(1, {"type": "ping", "reply": ChannelRef(RefKind.SENDER)}))
    to_a(b.send_message(3, {"type": "pong"}))
    to_a(b.acknowledge(1, 30))
    to_b(
        a.send_message(
            1,
            {
                "type": "copy",
                "events": ChannelRef(RefKind.RECEIVER),
                "data": ChannelRef(RefKind.STREAM),
            },
        )
    )
    to_b(a.send_data(7, b"hello"))
    to_b(a.close(7))
    to_a(b.reset(5, ErrorCode.CANCELLED, "no thanks"))
    to_b(a.goaway())
    return sent, events


# ---------------------------------------------------------------------- helpers


def raw_frame(value: Any) -> bytes:
    """Encode ``value`` as one frame with plain msgpack: for hand-made (often bad) frames."""
    body: bytes = msgpack.packb(value, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def raw_body_frame(body: bytes) -> bytes:
    """Prefix an arbitrary body with its length."""
    return struct.pack(">I", len(body)) + body


def connected_pair(
    a_kwargs: dict[str, Any] | None = None, b_kwargs: dict[str, Any] | None = None
) -> tuple[Connection, Connection]:
    """An initiator and a responder that have exchanged HELLOs."""
    a = Connection(Role.INITIATOR, **(a_kwargs or {}))
    b = Connection(Role.RESPONDER, **(b_kwargs or {}))
    b.receive_data(a.hello())
    a.receive_data(b.hello())
    return a, b


def feed_chunks(conn: Connection, chunks: Iterable[bytes]) -> list[Event]:
    """Feed ``chunks`` one by one and collect all events."""
    events: list[Event] = []
    for chunk in chunks:
        events.extend(conn.receive_data(chunk))
    return events


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (any order, duplicates allowed); no empty chunk."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    return [data[x:y] for x, y in itertools.pairwise(bounds) if y > x]


def depth(value: Any) -> int:
    """Nesting depth of a msgpack value: scalars 0, a container 1 + its deepest item."""
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((max(depth(k), depth(v)) for k, v in value.items()), default=0)
    return 0


_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
_keys = st.text(max_size=8) | st.integers(min_value=-1000, max_value=1000)

msgpack_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_keys, children, max_size=5),
    max_leaves=20,
)
"""Arbitrary msgpack values as msgpack-python decodes them (lists, str keys or int keys)."""


def deliver(conn: Connection, data: bytes) -> list[Event]:
    """Hand ``data`` to ``conn`` as a transport would: empty output is not EOF."""
    return conn.receive_data(data) if data else []
