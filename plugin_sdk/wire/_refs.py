"""Channel references: channels created by naming them inside a MESSAGE payload.

A reference travels as a msgpack ext value (fixext 8): the ext type is the
:class:`RefKind` and the data the channel id as an 8-byte big-endian unsigned
integer. The kind is named from the RECIPIENT's point of view.
"""

from __future__ import annotations

import enum

__all__ = ["ChannelRef", "RefKind"]


class RefKind(enum.IntEnum):
    """What the recipient of a reference may do with the channel (msgpack ext type)."""

    SENDER = 1
    """The recipient writes messages; the author reads (libchan's reply idiom)."""
    RECEIVER = 2
    """The recipient reads messages; the author writes."""
    STREAM = 3
    """The recipient reads a byte stream (DATA frames); the author writes."""


class ChannelRef:
    """A channel reference inside a payload.

    Put one with ``channel=None`` into a payload passed to
    :meth:`Connection.send_message`: encoding allocates the id, sets ``channel``,
    registers the channel and calls ``_on_bound(channel)`` if the object has that
    method. A reference can be sent once; received references come out of
    ``Connection.ref_factory`` (by default a ``ChannelRef`` with ``channel`` set).
    Subclass it to attach live channel objects.
    """

    def __init__(self, kind: RefKind, channel: int | None = None) -> None:
        self.kind = RefKind(kind)
        self.channel = channel

    @property
    def author_writes(self) -> bool:
        """True if the reference's author writes the channel (RECEIVER and STREAM)."""
        return self.kind is not RefKind.SENDER

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kind.name}, channel={self.channel})"
