"""Every exception :mod:`plugin_sdk.session` raises on purpose, in one place.

The split follows trio: :class:`trio.ClosedResourceError` (raised as is) means
*your* code closed that channel end; the errors below mean something outside your
code ended it. :class:`SessionClosed` and :class:`ChannelResetError` subclass
:class:`trio.BrokenResourceError`, so code written against trio's stream and
channel interfaces handles them without knowing this package, and
:class:`EndOfChannel` subclasses :class:`trio.EndOfChannel`, so ``async for``
over a :class:`~plugin_sdk.session.Receiver` stops at the writer's CLOSE.
"""

from __future__ import annotations

import trio

from ..wire import ErrorCode, ProtocolError

__all__ = [
    "ChannelResetError",
    "EndOfChannel",
    "HandshakeError",
    "SessionBroken",
    "SessionClosed",
    "SessionError",
]


class SessionError(Exception):
    """Base class of the exceptions this package raises on purpose."""


class HandshakeError(SessionError):
    """The session never started: no HELLO in time, no common version, or the peer refused."""


class SessionClosed(SessionError, trio.BrokenResourceError):
    """The whole session has ended, so this operation cannot proceed.

    ``reason`` says why: the peer closed the transport ("session ended"), the
    transport failed, or this side closed the session. A channel that was still
    open when that happened raises this instead of :class:`EndOfChannel`, so a
    reader can tell "the writer finished" from "the connection went away".
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SessionBroken(SessionClosed):
    """The session died of a protocol error; ``error`` is the wire's exception.

    A :class:`~plugin_sdk.wire.RemoteProtocolError` means the peer sent bytes
    that break the protocol (this side then sent GOAWAY with ``code`` and closed).
    """

    def __init__(self, reason: str, error: ProtocolError) -> None:
        super().__init__(reason)
        self.error = error

    @property
    def code(self) -> ErrorCode:
        """The protocol error code (also sent to the peer in GOAWAY)."""
        return self.error.code


class EndOfChannel(SessionError, trio.EndOfChannel):
    """The writer closed the channel (CLOSE): every message on it has been received."""


class ChannelResetError(SessionError, trio.BrokenResourceError):
    """A channel was aborted with RESET (by the peer, or by this side's other end).

    ``channel`` is the channel id, ``code`` the :class:`~plugin_sdk.wire.ErrorCode`
    and ``reason`` the text the resetting side gave.
    """

    def __init__(self, channel: int, code: ErrorCode, reason: str) -> None:
        text = f"channel {channel} was reset by the peer ({code.name})"
        super().__init__(f"{text}: {reason}" if reason else text)
        self.channel = channel
        self.code = code
        self.reason = reason
