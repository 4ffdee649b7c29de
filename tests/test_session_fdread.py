"""receive_some: a pipe read that costs no scheduling round once it has waited."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing

from plugin_sdk.session import receive_some


class _Steps(trio.abc.Instrument):
    """Counts the scheduling steps of one task."""

    def __init__(self, task: trio.lowlevel.Task) -> None:
        self.task = task
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task is self.task:
            self.count += 1


Read = Callable[[trio.lowlevel.FdStream, int], Awaitable[bytes | bytearray]]


async def _steps_to_take_one_chunk_and_wait_again(read: Read) -> int:
    """Steps a reading loop takes between a chunk's arrival and waiting for the next."""
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    tasks: list[trio.lowlevel.Task] = []

    async def reader() -> None:
        tasks.append(trio.lowlevel.current_task())
        with contextlib.suppress(trio.ClosedResourceError):
            while await read(stream, 100):
                pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        steps = _Steps(tasks[0])
        trio.lowlevel.add_instrument(steps)
        os.write(w, b"chunk")
        await trio.testing.wait_all_tasks_blocked()
        trio.lowlevel.remove_instrument(steps)
        await stream.aclose()
    os.close(w)
    return steps.count


async def test_after_a_chunk_the_reader_waits_again_in_the_same_step() -> None:
    async def trio_read(stream: trio.lowlevel.FdStream, n: int) -> bytes:
        return await stream.receive_some(n)

    # trio's own receive_some yields before each read, even one that must wait.
    assert await _steps_to_take_one_chunk_and_wait_again(trio_read) == 2
    assert await _steps_to_take_one_chunk_and_wait_again(receive_some) == 1


async def test_data_already_there_comes_back_after_a_checkpoint() -> None:
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    os.write(w, b"ready")
    assert await receive_some(stream, 100) == b"ready"
    os.close(w)
    assert await receive_some(stream, 100) == b""  # EOF
    await stream.aclose()


async def test_a_closed_stream_raises_closed_resource_error() -> None:
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await receive_some(stream, 100)
    os.close(w)


async def test_a_stream_closed_while_waiting_raises_closed_resource_error() -> None:
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    failure: list[BaseException] = []

    async def reader() -> None:
        try:
            await receive_some(stream, 100)
        except trio.ClosedResourceError as exc:
            failure.append(exc)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        await stream.aclose()
    assert len(failure) == 1
    os.close(w)


async def test_other_streams_are_read_as_they_are() -> None:
    send, recv = trio.testing.memory_stream_pair()
    await send.send_all(b"memory")
    assert await receive_some(recv, 100) == b"memory"
