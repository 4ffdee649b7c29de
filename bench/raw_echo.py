"""The raw echo child: blocking reads on FD 3, each msgpack object echoed on FD 4.

No trio, no framing beyond msgpack itself: the floor a plugin protocol is measured
against. Everything decoded from one read is answered with one write.
Run as ``python bench/raw_echo.py`` (by path, so it needs nothing but msgpack).
"""

from __future__ import annotations

import contextlib
import os

import msgpack

READ_FD = 3
WRITE_FD = 4
READ_SIZE = 1 << 18
MAX_BUFFER = 16 << 20


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to a blocking fd (a write may be cut short)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(read_fd: int = READ_FD, write_fd: int = WRITE_FD) -> None:
    """Echo until EOF on ``read_fd``."""
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_BUFFER)
    packer = msgpack.Packer()
    while True:
        data = os.read(read_fd, READ_SIZE)
        if not data:
            return
        unpacker.feed(data)
        out = b"".join(packer.pack(obj) for obj in unpacker)
        if out:
            write_all(write_fd, out)


if __name__ == "__main__":
    # A broken pipe means the parent went away: nothing is left to answer.
    with contextlib.suppress(BrokenPipeError):
        serve()
