"""Drain a plugin's stdout/stderr line by line into a sink (the handle logs them)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import trio

from ._lines import LineSplitter

__all__ = ["forward_output", "line_level"]

_LEVELS: Final = {
    b"DEBUG": logging.DEBUG,
    b"INFO": logging.INFO,
    b"WARNING": logging.WARNING,
    b"ERROR": logging.ERROR,
    b"CRITICAL": logging.CRITICAL,
}


def line_level(line: bytes, default: int) -> tuple[int, bytes]:
    """The level a line names in its first word (the plugin runner's log format), if any.

    ``b"ERROR boom"`` is ``(ERROR, b"boom")``; a line without a level word keeps
    ``default`` and its text.
    """
    word, sep, rest = line.partition(b" ")
    level = _LEVELS.get(word)
    if level is None or not sep:
        return default, line
    return level, rest


async def forward_output(
    stream: trio.abc.ReceiveStream,
    sink: Callable[[int, str], None],
    *,
    default_level: int,
    max_line: int = 8192,
) -> None:
    """Hand every line of ``stream`` to ``sink(level, text)`` until the stream ends.

    Reads as fast as the plugin writes, whatever the sink does with the lines: a pipe
    left full would block the plugin (the fluentd exec-filter failure).
    """
    splitter = LineSplitter(max_line)
    while True:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        for line in splitter.feed(data) if data else splitter.flush():
            level, text = line_level(line, default_level)
            sink(level, text.decode("utf-8", "replace"))
        if not data:
            return
