"""Reading a pipe without a scheduling round per read.

``trio.lowlevel.FdStream.receive_some`` yields to the scheduler before every read,
even when it must then wait for the pipe anyway. A session's reading task reads
once per batch of frames: one call at a time, that extra round is a task switch per
round trip. Here, a read that had to wait for data returns it at once (the wait was
the checkpoint), and only a read that found data already there yields first, so a
peer that keeps the pipe full still cannot starve the other tasks.
"""

from __future__ import annotations

import os

import trio
from trio.lowlevel import cancel_shielded_checkpoint, checkpoint_if_cancelled, wait_readable

__all__ = ["receive_some"]


async def receive_some(stream: trio.abc.ReceiveStream, max_bytes: int) -> bytes | bytearray:
    """``stream.receive_some(max_bytes)``, without the extra round for an ``FdStream``."""
    if type(stream) is not trio.lowlevel.FdStream:
        return await stream.receive_some(max_bytes)
    fd = stream.fileno()
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
    while True:
        await wait_readable(fd)
        try:
            return os.read(fd, max_bytes)
        except BlockingIOError:
            continue  # woken without data after all
        except OSError:
            return await stream.receive_some(max_bytes)
