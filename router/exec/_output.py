"""Drain a plugin's stdout/stderr into the ``chanrouter.plugin.<name>`` logger, line by line."""

from __future__ import annotations

import logging
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
    logger: logging.Logger,
    *,
    name: str,
    pid: int,
    stream_name: str,
    default_level: int,
    max_line: int = 8192,
) -> None:
    """Log every line of ``stream`` until it ends, tagged ``[name pid N stream]``.

    Reads as fast as the plugin writes whatever the log level: a pipe left full would
    block the plugin (the fluentd exec-filter failure).
    """
    splitter = LineSplitter(max_line)
    while True:
        try:
            data = await stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        for line in splitter.feed(data) if data else splitter.flush():
            level, text = line_level(line, default_level)
            if logger.isEnabledFor(level):
                logger.log(
                    level,
                    "[%s pid %d %s] %s",
                    name,
                    pid,
                    stream_name,
                    text.decode("utf-8", "replace"),
                    extra={"plugin": name, "pid": pid, "stream": stream_name},
                )
        if not data:
            return
