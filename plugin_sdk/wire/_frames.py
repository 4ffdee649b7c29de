"""Frame type codes, protocol constants and the low-level framing helpers.

A frame on the wire is a 4-byte big-endian length ``N`` followed by ``N`` bytes
holding exactly one msgpack array whose first element is the frame type code.
The helpers here read just enough of a body (array header, type code, channel)
to dispatch before the full msgpack decode; they accept every msgpack integer
encoding because other implementations are free to use non-shortest forms.
"""

from __future__ import annotations

import enum
import struct
from typing import Final

__all__ = [
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME",
    "DEFAULT_WINDOW",
    "HELLO_MAX_FRAME",
    "MAX_FRAME_LIMIT",
    "MIN_MAX_FRAME",
    "PROTOCOL_VERSIONS",
    "FrameType",
    "Role",
]

PROTOCOL_VERSIONS: Final = (1,)
"""Protocol versions this implementation speaks."""
DEFAULT_MAX_FRAME: Final = 1 << 20
"""Default largest frame body (bytes) a side accepts."""
MIN_MAX_FRAME: Final = 4096
"""Smallest ``max_frame`` a side may announce: every control frame fits in it."""
MAX_FRAME_LIMIT: Final = (1 << 32) - 1
"""Largest body the 4-byte length prefix can describe."""
HELLO_MAX_FRAME: Final = 65536
"""Frame size limit before the peer's HELLO is processed, so HELLO itself is bounded."""
DEFAULT_WINDOW: Final = 256 << 10
"""Default initial per-channel credit a reader grants."""
DEFAULT_MAX_CHANNELS: Final = 4096
"""Default number of live peer-created channels a side accepts."""
DEFAULT_MAX_DEPTH: Final = 32
"""Default payload nesting depth limit."""
MAX_REASON_BYTES: Final = 1024
"""RESET/GOAWAY reasons are truncated to this many UTF-8 bytes when sent."""
MAX_CHANNEL_ID: Final = (1 << 64) - 1

LENGTH: Final = struct.Struct(">I")


class Role(enum.Enum):
    """Which end of the transport we are: it decides the parity of the ids we allocate."""

    INITIATOR = "initiator"
    """The side that spawned or connected (router host, admin client): odd ids."""
    RESPONDER = "responder"
    """The side that was spawned or accepted (plugin, admin server): even ids."""


class FrameType(enum.IntEnum):
    """The first element of every frame body."""

    HELLO = 0
    OPEN = 1
    MESSAGE = 2
    DATA = 3
    CLOSE = 4
    RESET = 5
    CREDIT = 6
    GOAWAY = 7


FRAME_NAMES: Final = tuple(t.name for t in FrameType)

# type byte -> (number of following bytes, signed)
_INT_FORMS: Final = {
    0xCC: (1, False),
    0xCD: (2, False),
    0xCE: (4, False),
    0xCF: (8, False),
    0xD0: (1, True),
    0xD1: (2, True),
    0xD2: (4, True),
    0xD3: (8, True),
}


def read_array_header(body: memoryview, pos: int) -> tuple[int, int] | None:
    """Return ``(length, next_pos)`` of the msgpack array header at ``pos``, or None."""
    if pos >= len(body):
        return None
    t = body[pos]
    if 0x90 <= t <= 0x9F:
        return t & 0x0F, pos + 1
    if t == 0xDC or t == 0xDD:
        width = 2 if t == 0xDC else 4
        end = pos + 1 + width
        if end > len(body):
            return None
        return int.from_bytes(body[pos + 1 : end], "big"), end
    return None


def read_int(body: memoryview, pos: int) -> tuple[int, int] | None:
    """Return ``(value, next_pos)`` of the msgpack integer at ``pos``, or None."""
    if pos >= len(body):
        return None
    t = body[pos]
    if t < 0x80:
        return t, pos + 1
    if t >= 0xE0:
        return t - 0x100, pos + 1
    form = _INT_FORMS.get(t)
    if form is None:
        return None
    width, signed = form
    end = pos + 1 + width
    if end > len(body):
        return None
    return int.from_bytes(body[pos + 1 : end], "big", signed=signed), end


def frame_name(code: int) -> str:
    """Name of a frame type code, or ``type N`` for unknown codes."""
    return FRAME_NAMES[code] if 0 <= code < len(FRAME_NAMES) else f"type {code}"


def truncate_reason(reason: str) -> str:
    """Cut ``reason`` to at most :data:`MAX_REASON_BYTES` UTF-8 bytes, on a character boundary."""
    raw = reason.encode("utf-8", "replace")
    if len(raw) <= MAX_REASON_BYTES:
        return reason
    return raw[:MAX_REASON_BYTES].decode("utf-8", "ignore")
