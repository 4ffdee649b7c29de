"""Flow control, backpressure and write batching."""

from __future__ import annotations

import msgpack
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from session_helpers import BlockedSendStream, CountingSendStream, memory_transport, session_pair

from plugin_sdk.session import Role, open_session
from plugin_sdk.wire import Connection


def message_frame_cost(channel: int, payload: object) -> int:
    """What one MESSAGE costs in credit: its body length."""
    return len(msgpack.packb([2, channel, payload]))


@settings(max_examples=40, deadline=None)
@given(window=st.integers(1, 20_000), size=st.integers(0, 3000))
async def test_a_reader_that_never_reads_bounds_the_writer_to_window_plus_one_frame(
    window: int, size: int
) -> None:
    payload = "x" * size
    async with session_pair(b_options={"window": window}) as (a, b):
        stuck = await a.open_sender()
        assert stuck.channel is not None
        frame = message_frame_cost(stuck.channel, payload)
        sent = 0

        async def flood() -> None:
            nonlocal sent
            while True:
                await stuck.send(payload)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            # The flood now waits for credit that never comes: it sent while credit
            # was > 0, so at most one frame beyond the window.
            assert sent >= 1
            assert (sent - 1) * frame < window
            assert sent * frame <= window + frame

            # Meanwhile another channel keeps flowing, in both directions.
            never_read = await b.accept()
            other = await a.open_sender()
            other_receiver = await b.accept()
            back = await b.open_sender()
            back_receiver = await a.accept()
            for i in range(50):
                await other.send(i)
                assert await other_receiver.receive() == i
                await back.send(i)
                assert await back_receiver.receive() == i
            assert sent * frame <= window + frame
            nursery.cancel_scope.cancel()

        # Everything the writer sent was buffered at the reader, and nothing more.
        await stuck.aclose()
        assert len([m async for m in never_read]) == sent


async def test_credit_returns_as_the_reader_consumes_so_a_long_stream_completes() -> None:
    async with session_pair(b_options={"window": 2000}) as (a, b), trio.open_nursery() as nursery:

        async def write() -> None:
            async with await a.open_sender() as sender:
                for i in range(500):
                    await sender.send([i, "y" * 900])

        nursery.start_soon(write)
        received = [m async for m in await b.accept()]
        assert received == [[i, "y" * 900] for i in range(500)]


async def test_many_sends_issued_together_reach_the_stream_in_few_writes() -> None:
    (a_receive, a_send), b = memory_transport()
    counting = CountingSendStream(a_send)
    async with session_pair((a_receive, counting), b) as (a, b_session):
        senders = [await a.open_sender() for _ in range(100)]
        await trio.testing.wait_all_tasks_blocked()
        writes_before = counting.calls
        async with trio.open_nursery() as nursery:
            for i, sender in enumerate(senders):
                nursery.start_soon(sender.send, {"n": i})
        await trio.testing.wait_all_tasks_blocked()
        assert counting.calls - writes_before <= 3
        for i in range(100):
            assert await (await b_session.accept()).receive() == {"n": i}


async def test_the_outgoing_buffer_stops_growing_at_the_high_water_mark_and_close_does_not_hang(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A peer that sent its HELLO (with a huge window) and then stopped reading.
    peer_send, a_receive = trio.testing.memory_stream_one_way_pair()
    blocked = BlockedSendStream()
    await peer_send.send_all(Connection(Role.RESPONDER, window=1 << 30).hello())
    high_water = 10_000
    payload = "z" * 1000
    sent = 0
    async with open_session(a_receive, blocked, Role.INITIATOR, high_water=high_water) as a:
        sender = await a.open_sender()
        assert sender.channel is not None
        frame = message_frame_cost(sender.channel, payload) + 4

        async def flood() -> None:
            nonlocal sent
            while True:
                await sender.send(payload)
                sent += 1

        async with trio.open_nursery() as nursery:
            nursery.start_soon(flood)
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        # Credit is plentiful, so only the buffer bound stopped the flood: at most
        # high_water + one frame queued, plus the batch stuck in the transport.
        assert blocked.pending <= high_water + 2 * frame
        assert sent * frame <= blocked.pending + high_water + frame
        assert sent * frame > high_water - frame
    # Leaving the block gave up on the stuck transport after close_timeout and closed it.
    assert blocked.closed
    assert a.closed
