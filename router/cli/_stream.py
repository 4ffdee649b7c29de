"""routerd's stream mode: messages in on stdin, one result per input out on stdout.

Reading and writing happen in worker threads, a 64 KiB chunk or a batch of results at
a time: that works for pipes, files and terminals alike and never puts the shared
stdin/stdout file descriptions in non-blocking mode.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import trio

from router.engine import Router
from router.events import EventBus, result_event
from router.result import Result

from .streamio import BadInput, Item, encode_json_line, encode_msgpack, make_decoder

__all__ = ["OutputClosed", "stdin_is_stream", "stream"]

log = logging.getLogger("chanrouter.routerd")

READ_CHUNK = 1 << 16


class OutputClosed(Exception):
    """Whoever read stdout closed it (``routerd ... | head``): no result can go out."""


def stdin_is_stream() -> bool:
    """Whether stdin carries a message stream (a pipe, file or socket, not a terminal)."""
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    if os.isatty(0):
        return False
    # /dev/null is a character device: a daemon started by a service manager.
    return not stat.S_ISCHR(mode)


def _stdin_reader() -> Callable[[int], bytes]:
    """A blocking ``read(n)`` for stdin, run in a worker thread.

    os.read on the real descriptor, not the buffered sys.stdin: a read abandoned at
    SIGTERM must hold no Python-level lock (a BufferedReader's lock held at interpreter
    exit aborts the process). Under click's CliRunner stdin is an in-memory buffer
    with no descriptor; read that directly.
    """
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        buffer = sys.stdin.buffer
        read: Callable[[int], bytes] = getattr(buffer, "read1", buffer.read)
        return read
    return functools.partial(os.read, fd)


async def _read_stdin(fmt: str) -> AsyncIterator[Item]:
    decoder = make_decoder(fmt)
    read = _stdin_reader()
    while True:
        # A thread per 64 KiB chunk works for pipes, files and ttys alike and never puts
        # the shared stdin file description in non-blocking mode.
        chunk = await trio.to_thread.run_sync(read, READ_CHUNK, abandon_on_cancel=True)
        for item in decoder.feed(chunk):
            yield item
        if not chunk:
            return


async def _write_results(receive: trio.MemoryReceiveChannel[dict[str, Any]], fmt: str) -> None:
    encode = encode_msgpack if fmt == "msgpack" else encode_json_line
    out = sys.stdout.buffer
    async for first in receive:
        batch = [encode(first)]
        # Coalesce whatever else is ready into one write.
        while True:
            try:
                batch.append(encode(receive.receive_nowait()))
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        data = b"".join(batch)

        def write(data: bytes = data) -> None:
            out.write(data)
            out.flush()

        try:
            await trio.to_thread.run_sync(write)
        except BrokenPipeError:
            raise OutputClosed("stdout was closed by its reader") from None


async def stream(r: Router, fmt: str, stop: trio.Event, bus: EventBus) -> None:
    """Route stdin to stdout; on ``stop`` read no more, but finish what was read."""
    items_send, items_recv = trio.open_memory_channel[Any](0)
    results_send, results_recv = trio.open_memory_channel[dict[str, Any]](256)
    reading = trio.CancelScope()

    async def read() -> None:
        async with items_send:
            with reading:
                async for item in _read_stdin(fmt):
                    if isinstance(item, BadInput):
                        log.warning("%s", item.reason)
                        await items_send.send(Result.failed_input(item.id, item.reason))
                    else:
                        await items_send.send(item)

    async def stop_reading() -> None:
        await stop.wait()
        reading.cancel()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_results, results_recv, fmt)
        nursery.start_soon(read)
        nursery.start_soon(stop_reading)
        async with (
            results_send,
            items_recv,
            contextlib.aclosing(r.route_stream(items_recv)) as results,
        ):
            async for result in results:
                bus.publish(result_event(result))
                await results_send.send(result.to_wire())
        # The writer finishes when results_send closes; only the watcher is left.
        reading.cancel()
        stop.set()
