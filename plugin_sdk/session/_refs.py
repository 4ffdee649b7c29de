"""References to put inside a payload: the peer receives them as live channel ends.

Each is made together with the local end it connects to, by
:meth:`Session.pipe`, :meth:`Session.reverse_pipe` and :meth:`Session.byte_stream`.
The kinds are named, as on the wire, from the RECIPIENT's point of view: a
:class:`SenderRef` becomes a :class:`~plugin_sdk.session.Sender` in the peer's hands.
A reference can be sent once, and only on the session that made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..wire import ChannelRef, RefKind

if TYPE_CHECKING:
    from ._ends import _End

__all__ = ["ReceiverRef", "SenderRef", "StreamRef"]


class _EndRef(ChannelRef):
    """A reference tied to the local end that serves the other side of its channel."""

    def __init__(self, kind: RefKind, end: _End) -> None:
        super().__init__(kind)
        self._end = end

    def _on_bound(self, channel: int) -> None:
        # Called by the wire while it encodes the message; the session binds the
        # local end only once the message's bytes are queued (see Session._send_message).
        self._end._session._note_bound(self._end, channel)


class SenderRef(_EndRef):
    """Becomes a live :class:`Sender` for the peer; we read its messages (a reply channel)."""

    def __init__(self, end: _End) -> None:
        super().__init__(RefKind.SENDER, end)


class ReceiverRef(_EndRef):
    """Becomes a live :class:`Receiver` for the peer; we write the messages."""

    def __init__(self, end: _End) -> None:
        super().__init__(RefKind.RECEIVER, end)


class StreamRef(_EndRef):
    """Becomes a live :class:`ByteStreamReader` for the peer; we write the bytes."""

    def __init__(self, end: _End) -> None:
        super().__init__(RefKind.STREAM, end)
