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

from plugin_sdk import Message
from router.engine import Router
from router.events import EventBus
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


class _Input:
    """stdin as the router's input stream: what each chunk read decodes to, in order.

    The router pulls straight from :meth:`items`, so an input costs no hand-over
    between tasks (a channel in between made one scheduling round per message).
    """

    def __init__(self, fmt: str) -> None:
        self._decoder = make_decoder(fmt)
        self._read = _stdin_reader()
        self._stopped = False
        self._reading: trio.CancelScope | None = None

    def stop(self) -> None:
        """Read no more: a read under way is abandoned; what was read is still routed."""
        self._stopped = True
        if self._reading is not None:
            self._reading.cancel()

    async def items(self) -> AsyncIterator[Message | Result]:
        """Messages (and failed results for bad inputs) until the end of stdin or a stop."""
        while not self._stopped:
            # The scope holds no ``yield``: the router's workers take turns pulling, so
            # a scope left open across one would belong to whichever task pulled.
            with trio.CancelScope() as reading:
                self._reading = reading
                # A thread per 64 KiB chunk works for pipes, files and ttys alike and
                # never puts the shared stdin file description in non-blocking mode.
                chunk = await trio.to_thread.run_sync(
                    self._read, READ_CHUNK, abandon_on_cancel=True
                )
            self._reading = None
            if reading.cancelled_caught:
                return  # stopped mid-read: the read was abandoned with its thread
            # Every item of a chunk read is routed, even after a stop that came once the
            # read was done: its bytes have left stdin.
            for item in self._decoder.feed(chunk):
                yield _routable(item)
            if not chunk:
                return


def _routable(item: Item) -> Message | Result:
    if isinstance(item, BadInput):
        log.warning("%s", item.reason)
        return Result.failed_input(item.id, item.reason)
    return item


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
    results_send, results_recv = trio.open_memory_channel[dict[str, Any]](256)
    source = _Input(fmt)

    async def stop_reading() -> None:
        await stop.wait()
        source.stop()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_write_results, results_recv, fmt)
        nursery.start_soon(stop_reading)
        async with results_send, contextlib.aclosing(r.route_stream(source.items())) as results:
            async for result in results:
                wire = result.to_wire()
                bus.publish_result(wire)
                # Queued without a checkpoint while there is room: route_stream waits
                # (and lets the writer run) whenever no result is ready, and a
                # checkpoint per result was a scheduling round per message.
                try:
                    results_send.send_nowait(wire)
                except trio.WouldBlock:
                    await results_send.send(wire)
        # The writer finishes when results_send closes; only the watcher is left.
        stop.set()
