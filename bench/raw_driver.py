"""The parent side of the raw baseline: plain blocking Python driving raw echo children.

Two drivers, both decoding every reply (a router must, to route it):

* :func:`round_trips` sends one message and waits for its echo, N times.
* :func:`run_pipelined` keeps ``window`` messages in flight through a chain of
  children (a chain of one is a single echo). New messages are coalesced into one
  write per loop turn; a reply from child ``i`` is re-packed and sent on to child
  ``i + 1``, the way a router drives a pipeline of subprocess plugins.

The pipelined driver polls: with many large messages in flight a blocking write
would deadlock against a child blocked writing its replies back.
"""

from __future__ import annotations

import os
import select
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from .fdpipes import FdChild
from .stats import slice_size

__all__ = ["PipelinedRun", "make_messages", "round_trips", "run_pipelined"]

READ_SIZE = 1 << 18
MAX_BUFFER = 64 << 20
MESSAGE_TYPE = "bench.echo"


def make_messages(count: int, body_size: int) -> list[dict[str, Any]]:
    """``count`` message dicts in the router's wire shape with a ``body_size``-byte body."""
    body = b"x" * body_size
    return [
        {"type": MESSAGE_TYPE, "body": body, "id": f"m{i}", "headers": {}} for i in range(count)
    ]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def round_trips(child: FdChild, messages: Sequence[dict[str, Any]]) -> list[int]:
    """Send each message alone and wait for its echo; return each round trip in ns."""
    os.set_blocking(child.to_child, True)
    packer = msgpack.Packer()
    unpacker = msgpack.Unpacker(raw=False, max_buffer_size=MAX_BUFFER)
    clock = time.perf_counter_ns
    out: list[int] = []
    for message in messages:
        start = clock()
        _write_all(child.to_child, packer.pack(message))
        while True:
            try:
                unpacker.unpack()
                break
            except msgpack.OutOfData:
                data = os.read(child.from_child, READ_SIZE)
                if not data:
                    raise EOFError("echo child closed its pipe mid-run") from None
                unpacker.feed(data)
        out.append(clock() - start)
    return out


@dataclass(frozen=True, slots=True)
class PipelinedRun:
    """Timing of one pipelined run."""

    count: int
    wall_ns: int
    marks_ns: tuple[int, ...]
    """Clock at the start, then each time another ``per_slice`` messages completed."""
    per_slice: int

    @property
    def wall_rate(self) -> float:
        """Messages per second over the whole run, stalls included."""
        return self.count * 1e9 / self.wall_ns


class _Outbox:
    """Bytes waiting for one child; an offset instead of ``del buf[:n]`` keeps writes O(n)."""

    __slots__ = ("blocked", "buf", "fd", "offset")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.offset = 0
        self.blocked = False

    def pending(self) -> bool:
        return self.offset < len(self.buf)

    def flush(self) -> None:
        """Write what the pipe takes now; set ``blocked`` if some is left."""
        try:
            written = os.write(self.fd, memoryview(self.buf)[self.offset :])
        except BlockingIOError:
            written = 0
        self.offset += written
        if self.offset == len(self.buf):
            self.buf.clear()
            self.offset = 0
            self.blocked = False
        else:
            self.blocked = True
            if self.offset > (1 << 20):
                del self.buf[: self.offset]
                self.offset = 0


def run_pipelined(
    chain: Sequence[FdChild],
    messages: Sequence[dict[str, Any]],
    window: int,
    slices: int = 10,
) -> PipelinedRun:
    """Drive ``messages`` through ``chain`` with at most ``window`` in flight in all."""
    if not chain:
        raise ValueError("a chain needs at least one child")
    count = len(messages)
    per_slice = slice_size(count, slices, window)
    packer = msgpack.Packer()
    outboxes = [_Outbox(c.to_child) for c in chain]
    unpackers = [msgpack.Unpacker(raw=False, max_buffer_size=MAX_BUFFER) for _ in chain]
    stage_of_read_fd = {c.from_child: i for i, c in enumerate(chain)}
    outbox_of_write_fd = {o.fd: o for o in outboxes}
    poller = select.poll()
    for c in chain:
        os.set_blocking(c.to_child, False)
        poller.register(c.from_child, select.POLLIN)
    polling_out: set[int] = set()
    last = len(chain) - 1
    clock = time.perf_counter_ns
    sent = done = 0
    start = clock()
    marks = [start]
    try:
        while done < count:
            room = window - (sent - done)
            if room > 0 and sent < count:
                first = outboxes[0]
                for message in messages[sent : sent + min(room, count - sent)]:
                    first.buf += packer.pack(message)
                sent += min(room, count - sent)
            for box in outboxes:
                if box.pending() and not box.blocked:
                    box.flush()
                if box.blocked and box.fd not in polling_out:
                    poller.register(box.fd, select.POLLOUT)
                    polling_out.add(box.fd)
                elif not box.blocked and box.fd in polling_out:
                    poller.unregister(box.fd)
                    polling_out.discard(box.fd)
            for fd, _events in poller.poll():
                stage = stage_of_read_fd.get(fd)
                if stage is None:
                    box = outbox_of_write_fd[fd]
                    box.blocked = False
                    box.flush()
                    continue
                data = os.read(fd, READ_SIZE)
                if not data:
                    raise EOFError(f"echo child {stage} closed its pipe mid-run")
                unpacker = unpackers[stage]
                unpacker.feed(data)
                if stage < last:
                    nxt = outboxes[stage + 1].buf
                    for obj in unpacker:
                        nxt += packer.pack(obj)
                else:
                    for _obj in unpacker:
                        done += 1
                        if done % per_slice == 0:
                            marks.append(clock())
    finally:
        for c in chain:
            os.set_blocking(c.to_child, True)
    end = clock()
    return PipelinedRun(count, end - start, tuple(marks), per_slice)
