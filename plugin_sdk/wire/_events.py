"""Events returned by :meth:`Connection.receive_data`: what the peer did, in wire order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import ErrorCode

__all__ = [
    "ChannelClosed",
    "ChannelOpened",
    "ChannelReset",
    "CreditGranted",
    "DataReceived",
    "Event",
    "GoAwayReceived",
    "HelloReceived",
    "MessageReceived",
    "SessionEnded",
]


@dataclass(frozen=True, slots=True)
class HelloReceived:
    """The peer's HELLO arrived; ``version`` is the negotiated protocol version."""

    version: int
    fields: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ChannelOpened:
    """The peer OPENed a top-level channel; the peer writes it, we read it."""

    channel: int


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """One message on a message channel we read; ``size`` is its frame cost in bytes.

    Pass ``size`` to :meth:`Connection.acknowledge` once the application has consumed it.
    """

    channel: int
    payload: Any
    size: int


@dataclass(frozen=True, slots=True)
class DataReceived:
    """One chunk on a byte-stream channel we read; ``size`` is its frame cost in bytes."""

    channel: int
    data: bytes
    size: int


@dataclass(frozen=True, slots=True)
class ChannelClosed:
    """The writer half-closed a channel we read: nothing more will arrive on it."""

    channel: int


@dataclass(frozen=True, slots=True)
class ChannelReset:
    """The peer aborted a channel (either direction) with an error code and reason."""

    channel: int
    code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class CreditGranted:
    """The peer granted ``increment`` more bytes of send credit on a channel we write."""

    channel: int
    increment: int


@dataclass(frozen=True, slots=True)
class GoAwayReceived:
    """The peer is ending the session: it creates no new channels and accepts none.

    ``code`` NO_ERROR means a graceful drain; anything else means the peer is about to
    close the transport because of an error.
    """

    code: ErrorCode
    reason: str


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """The transport reached EOF cleanly, at a frame boundary."""


Event = (
    HelloReceived
    | ChannelOpened
    | MessageReceived
    | DataReceived
    | ChannelClosed
    | ChannelReset
    | CreditGranted
    | GoAwayReceived
    | SessionEnded
)
"""Any event :meth:`Connection.receive_data` can return."""
