"""receive_some: a pipe read that costs no scheduling round once it has waited."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Awaitable, Callable

import pytest
import trio
import trio.testing
from session_helpers import Transport, session_pair

from plugin_sdk.session import receive_some
from router.exec._tap import TapStream


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


class _CountingReads:
    """Wraps ``os.read`` as ``plugin_sdk.session._fdread`` sees it, counting EAGAINs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.would_block = 0
        real = os.read

        def read(fd: int, n: int) -> bytes:
            self.calls += 1
            try:
                return real(fd, n)
            except BlockingIOError:
                self.would_block += 1
                raise

        monkeypatch.setattr("plugin_sdk.session._fdread.os.read", read)


async def _read_one_chunk_after_waiting(wait_first: bool) -> tuple[bytes | bytearray, int]:
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    got: list[bytes | bytearray] = []

    async def reader() -> None:
        got.append(await receive_some(stream, 100, wait_first=wait_first))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        os.write(w, b"late")
    await stream.aclose()
    os.close(w)
    return got[0], len(got)


async def test_wait_first_skips_the_read_that_would_fail_with_eagain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = _CountingReads(monkeypatch)
    assert await _read_one_chunk_after_waiting(wait_first=False) == (b"late", 1)
    assert (reads.calls, reads.would_block) == (2, 1)  # tried, waited, read
    reads.calls = reads.would_block = 0
    assert await _read_one_chunk_after_waiting(wait_first=True) == (b"late", 1)
    assert (reads.calls, reads.would_block) == (1, 0)  # waited, read


async def test_wait_first_still_returns_data_already_there_and_eof() -> None:
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    os.write(w, b"ready")
    assert await receive_some(stream, 100, wait_first=True) == b"ready"
    os.close(w)
    assert await receive_some(stream, 100, wait_first=True) == b""  # EOF
    await stream.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await receive_some(stream, 100, wait_first=True)


@pytest.mark.parametrize("wait_first", [False, True])
async def test_a_cancelled_reader_reads_nothing_even_with_data_there(wait_first: bool) -> None:
    # With wait_first the wait itself is the cancel point (no checkpoint before it).
    r, w = os.pipe()
    stream = trio.lowlevel.FdStream(r)
    os.write(w, b"kept")
    with trio.CancelScope() as scope:
        scope.cancel()
        await receive_some(stream, 100, wait_first=wait_first)
    assert scope.cancelled_caught
    assert await receive_some(stream, 100) == b"kept"
    os.close(w)
    await stream.aclose()


def _pipe_transports() -> tuple[Transport, Transport]:
    a_to_b_r, a_to_b_w = os.pipe()
    b_to_a_r, b_to_a_w = os.pipe()
    fd = trio.lowlevel.FdStream
    return (fd(b_to_a_r), fd(a_to_b_w)), (fd(a_to_b_r), fd(b_to_a_w))


async def test_a_session_reading_one_message_at_a_time_never_reads_an_empty_pipe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = _CountingReads(monkeypatch)
    async with session_pair(*_pipe_transports()) as (a, b):
        sender = await a.open_sender()
        receiver = await b.accept()
        reads.calls = reads.would_block = 0
        for i in range(20):
            await sender.send(i)
            assert await receiver.receive() == i
    assert reads.calls >= 20
    # Each read came after a short one, so each waited for the pipe first.
    assert reads.would_block == 0


async def test_the_exec_tap_waits_first_after_a_short_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reads = _CountingReads(monkeypatch)
    r, w = os.pipe()
    tap = TapStream(trio.lowlevel.FdStream(r))
    os.write(w, b"short")
    assert await tap.receive_some(100) == b"short"
    async with trio.open_nursery() as nursery:
        nursery.start_soon(tap.receive_some, 100)
        await trio.testing.wait_all_tasks_blocked()
        os.write(w, b"next")
    assert tap.last == b"next"
    assert (reads.calls, reads.would_block) == (2, 0)
    await tap.aclose()
    os.close(w)
