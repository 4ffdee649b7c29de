"""Error codes and the two protocol error classes.

The split follows h11: :class:`LocalProtocolError` means *this* side misused the
API (a bug in the caller), :class:`RemoteProtocolError` means the peer sent bytes
that break the protocol (the connection is dead). Any other exception escaping
:mod:`plugin_sdk.wire` is a bug in this package.
"""

from __future__ import annotations

import enum

__all__ = ["ErrorCode", "LocalProtocolError", "ProtocolError", "RemoteProtocolError"]


class ErrorCode(enum.IntEnum):
    """Codes carried by RESET and GOAWAY frames and by :class:`ProtocolError`."""

    NO_ERROR = 0
    PROTOCOL_ERROR = 1
    FRAME_TOO_LARGE = 2
    VERSION_MISMATCH = 3
    FLOW_CONTROL = 4
    LIMIT_EXCEEDED = 5
    CANCELLED = 6
    TRUNCATED = 7
    INTERNAL_ERROR = 8
    APPLICATION_ERROR = 9

    @classmethod
    def from_wire(cls, value: int) -> ErrorCode:
        """Map a received code to an :class:`ErrorCode`; unknown numbers become INTERNAL_ERROR.

        Unknown codes are tolerated so that a later protocol revision can add codes
        without breaking older peers.
        """
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL_ERROR


class ProtocolError(Exception):
    """A protocol rule was broken; ``code`` says which kind of rule.

    ``offset`` is the byte offset, in the received stream, of the frame that broke
    the rule (remote errors only); ``channel`` the channel involved, if any.
    """

    def __init__(
        self,
        message: str,
        code: ErrorCode = ErrorCode.PROTOCOL_ERROR,
        *,
        offset: int | None = None,
        channel: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.offset = offset
        self.channel = channel

    @property
    def message(self) -> str:
        """The human-readable text (also ``str(error)``)."""
        return str(self.args[0]) if self.args else ""


class LocalProtocolError(ProtocolError):
    """This side misused the API: the call had no effect (no bytes, no state change)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol; the connection is dead and every later
    ``receive_data`` raises this same error again."""
