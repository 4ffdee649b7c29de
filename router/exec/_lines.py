"""Split a plugin's stdout/stderr bytes into bounded lines (pure: bytes in, lines out).

A plugin may print megabytes without a newline; the router must keep draining the pipe
(a full pipe blocks the plugin) without holding the whole line, so a line longer than
``max_line`` is cut there, marked, and the rest of it is skipped up to its newline.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CUT_MARK", "LineSplitter"]

CUT_MARK: Final = b" [line cut]"


class LineSplitter:
    """Feed chunks in any split; get the same complete lines (without newlines) out."""

    __slots__ = ("_buf", "_skipping", "max_line")

    def __init__(self, max_line: int = 8192) -> None:
        if max_line < 1:
            raise ValueError("max_line must be >= 1")
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """The lines ``data`` completes (a cut line is returned as soon as it is cut)."""
        out: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                if not self._skipping:
                    self._buf += data[start:]
                    if len(self._buf) > self.max_line:
                        out.append(self._cut(self._buf))
                        self._buf.clear()
                        self._skipping = True
                break
            if self._skipping:
                self._skipping = False
            else:
                self._buf += data[start:end]
                line = bytes(self._buf)
                self._buf.clear()
                out.append(self._cut(line) if len(line) > self.max_line else _strip_cr(line))
            start = end + 1
        return out

    def flush(self) -> list[bytes]:
        """At end of stream: the unterminated last line, if any."""
        line = bytes(self._buf)
        self._buf.clear()
        skipping, self._skipping = self._skipping, False
        if not line or skipping:
            return []
        return [_strip_cr(line)]

    def _cut(self, line: bytes | bytearray) -> bytes:
        return bytes(line[: self.max_line]) + CUT_MARK


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line
