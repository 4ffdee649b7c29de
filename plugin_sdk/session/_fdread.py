"""Reading a pipe without a scheduling round per read.

``trio.lowlevel.FdStream.receive_some`` yields to the scheduler before every read,
even when it must then wait for the pipe anyway. A session's reading task reads
once per batch of frames: one call at a time, that extra round is a task switch per
round trip. Here, a read that had to wait for data returns it at once (the wait was
the checkpoint), and only a read that found data already there yields first, so a
peer that keeps the pipe full still cannot starve the other tasks.

``wait_first`` skips the opening read attempt: after a read that did not fill its
buffer the pipe is most likely empty, and that attempt would only fail with EAGAIN
(one system call in six of a router's round trip to a plugin).
"""

from __future__ import annotations

import os

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled, wait_readable

__all__ = ["receive_some"]


async def receive_some(
    stream: trio.abc.ReceiveStream, max_bytes: int, *, wait_first: bool = False
) -> bytes | bytearray:
    """``stream.receive_some(max_bytes)``, without the extra round for an ``FdStream``.

    ``wait_first``: wait for the pipe to be readable before the first read (a hint;
    ignored for other streams).
    """
    if type(stream) is not trio.lowlevel.FdStream:
        return await stream.receive_some(max_bytes)
    fd = stream.fileno()
    if wait_first and fd >= 0:  # a closed stream (fd -1) raises its error below
        # No checkpoint first: the wait is one (a cancelled task raises as it parks).
        return await _wait_then_read(stream, fd, max_bytes)
    await checkpoint_if_cancelled()
    try:
        data = os.read(fd, max_bytes)
    except BlockingIOError:
        pass
    except OSError:
        return await stream.receive_some(max_bytes)  # raises the error trio's way
    else:
        await cancel_shielded_checkpoint()
        return data
    return await _wait_then_read(stream, fd, max_bytes)


async def _wait_then_read(
    stream: trio.lowlevel.FdStream, fd: int, max_bytes: int
) -> bytes | bytearray:
    while True:
        await wait_readable(fd)
        try:
            return os.read(fd, max_bytes)
        except BlockingIOError:
            continue  # woken without data after all
        except OSError:
            return await stream.receive_some(max_bytes)
