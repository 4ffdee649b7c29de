"""A receive stream that remembers the start of what the plugin sent last.

When a plugin breaks the protocol the router kills it and logs what it sent; the wire
error says where framing failed, this says with what bytes. One attribute store per
read keeps it off the hot path's costs.
"""

from __future__ import annotations

import trio

from plugin_sdk.session import receive_some

__all__ = ["TapStream"]


class TapStream(trio.abc.ReceiveStream):
    """Wraps a receive stream; ``first`` and ``last`` hold the first and latest chunks."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self.first: bytes | bytearray = b""
        """The first chunk read (where a plugin printing to FD 4 shows its text)."""
        self.last: bytes | bytearray = b""
        """The latest chunk read."""

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        """Read from the wrapped stream, keeping a reference to the chunk."""
        size = max_bytes or 65536
        # A read that did not fill its buffer most likely emptied the pipe.
        data = await receive_some(self._stream, size, wait_first=0 < len(self.last) < size)
        if not self.first:
            self.first = data
        self.last = data
        return data

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self._stream.aclose()

    def sample(self, limit: int = 80) -> str:
        """What the peer sent, bounded, for a log line."""
        if self.first is self.last or not self.first:
            return repr(bytes(self.last[:limit]))
        return f"first {bytes(self.first[:limit])!r}, latest {bytes(self.last[:limit])!r}"
