"""Channels between two live sessions: messages, close, reset, references, parallelism."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from session_helpers import session_pair

from plugin_sdk.session import (
    ByteStreamReader,
    ChannelResetError,
    EndOfChannel,
    ErrorCode,
    Receiver,
    Sender,
    SessionClosed,
)
from plugin_sdk.wire import LocalProtocolError

# msgpack values that survive a round trip unchanged (lists, not tuples; str keys).
msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


async def test_messages_on_an_opened_channel_arrive_in_order_then_end_of_channel() -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        for i in range(5):
            await sender.send({"i": i})
        await sender.aclose()
        receiver = await b.accept()
        assert [await receiver.receive() for _ in range(5)] == [{"i": i} for i in range(5)]
        with pytest.raises(EndOfChannel, match="closed by its writer"):
            await receiver.receive()
        with pytest.raises(trio.EndOfChannel):  # also a trio.EndOfChannel
            await receiver.receive()


async def test_async_iteration_stops_at_close_and_accept_order_follows_open_order() -> None:
    async with session_pair() as (a, b):
        first = await a.open_sender()
        second = await a.open_sender()
        async with second:
            await second.send("second")
        async with first:
            await first.send("first")
        assert [m async for m in await b.accept()] == ["first"]
        assert [m async for m in await b.accept()] == ["second"]


async def test_both_sides_can_open_channels() -> None:
    async with session_pair() as (a, b):
        async with await b.open_sender() as sender:
            await sender.send("from responder")
        receiver = await a.accept()
        assert await receiver.receive() == "from responder"
        assert receiver.channel is not None and receiver.channel % 2 == 0


async def test_reply_channel_in_a_request_carries_the_answer_back() -> None:
    async with session_pair() as (a, b), trio.open_nursery() as nursery:

        async def server() -> None:
            requests = await b.accept()
            async for request in requests:
                reply = request["reply"]
                assert isinstance(reply, Sender)
                async with reply:
                    await reply.send({"pong": request["ping"]})

        nursery.start_soon(server)
        requests = await a.open_sender()
        for n in range(3):
            replies, reply_ref = a.pipe()
            await requests.send({"ping": n, "reply": reply_ref})
            assert [m async for m in replies] == [{"pong": n}]
        await requests.aclose()


async def test_nested_references_inside_a_reply_become_live_ends_too() -> None:
    async with session_pair() as (a, b):
        requests = await a.open_sender()
        replies, reply_ref = a.pipe()
        await requests.send({"reply": reply_ref})
        request = await (await b.accept()).receive()
        # The server answers with a further reply channel of its own, in the reply.
        follow_ups, follow_up_ref = b.pipe()
        await request["reply"].send({"next": follow_up_ref})
        answer = await replies.receive()
        await answer["next"].send("second round")
        assert await follow_ups.receive() == "second round"


async def test_receiver_ref_lets_the_peer_read_what_we_write() -> None:
    async with session_pair() as (a, b), trio.open_nursery() as nursery:
        feed, feed_ref = a.reverse_pipe()
        assert feed.channel is None

        async def produce() -> None:
            async with feed:  # send() waits until the reference has gone out
                for i in range(10):
                    await feed.send(i)

        nursery.start_soon(produce)
        await trio.testing.wait_all_tasks_blocked()
        control = await a.open_sender()
        await control.send({"feed": feed_ref})
        received = await (await b.accept()).receive()
        assert isinstance(received["feed"], Receiver)
        assert [n async for n in received["feed"]] == list(range(10))


async def test_stream_ref_delivers_bytes_in_order_across_many_frames() -> None:
    data = bytes(range(256)) * 3000  # several 64 KiB frames
    async with session_pair(window=100_000) as (a, b), trio.open_nursery() as nursery:
        writer, stream_ref = a.byte_stream()

        async def write() -> None:
            async with writer:
                await writer.send_all(data)

        control = await a.open_sender()
        await control.send({"stream": stream_ref})
        nursery.start_soon(write)
        reader = (await b.accept()).receive
        stream = (await reader())["stream"]
        assert isinstance(stream, ByteStreamReader)
        received = bytearray()
        while chunk := await stream.receive_some(10_000):
            assert len(chunk) <= 10_000
            received += chunk
        assert received == data


async def test_writer_reset_reaches_the_reader_with_code_and_reason() -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        await sender.send("lost")  # a RESET drops what the reader has not taken yet
        await sender.reset("out of paper")
        receiver = await b.accept()
        await trio.testing.wait_all_tasks_blocked()  # both frames have arrived
        with pytest.raises(ChannelResetError) as caught:
            await receiver.receive()
        assert caught.value.code is ErrorCode.APPLICATION_ERROR
        assert caught.value.reason == "out of paper"
        assert "out of paper" in str(caught.value)
        with pytest.raises(trio.ClosedResourceError):
            await sender.send("after reset")


async def test_reader_closing_its_end_makes_the_writer_fail() -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        await sender.send(1)
        receiver = await b.accept()
        await receiver.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await receiver.receive()
        with pytest.raises(ChannelResetError) as caught:
            while True:  # the RESET arrives after the peer's reader task sees it
                await sender.send(2)
        assert caught.value.code is ErrorCode.CANCELLED
        await sender.aclose()  # closing a reset channel is fine and sends nothing


async def test_sender_context_manager_closes_on_success_and_resets_on_error() -> None:
    async with session_pair() as (a, b):
        async with await a.open_sender() as good:
            await good.send("ok")
        with pytest.raises(ValueError):
            async with await a.open_sender() as bad:
                await bad.send("partial")
                raise ValueError("disk on fire")
        assert [m async for m in await b.accept()] == ["ok"]
        await trio.testing.wait_all_tasks_blocked()  # the RESET has arrived
        with pytest.raises(ChannelResetError, match=r"ValueError: disk on fire") as caught:
            await (await b.accept()).receive()
        assert caught.value.code is ErrorCode.APPLICATION_ERROR


async def test_many_channels_in_parallel_each_keep_their_order() -> None:
    channels, per_channel = 40, 25
    async with session_pair(window=4096) as (a, b), trio.open_nursery() as nursery:
        results: dict[int, list[Any]] = {}

        async def write(index: int) -> None:
            async with await a.open_sender() as sender:
                for n in range(per_channel):
                    await sender.send([index, n, "x" * 100])

        async def read(receiver: Receiver) -> None:
            items = [m async for m in receiver]
            results[items[0][0]] = items

        for index in range(channels):
            nursery.start_soon(write, index)
        for _ in range(channels):
            nursery.start_soon(read, await b.accept())
    assert sorted(results) == list(range(channels))
    for index, items in results.items():
        assert items == [[index, n, "x" * 100] for n in range(per_channel)]


async def test_cancelled_waiting_send_sends_nothing_and_session_stays_usable(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with session_pair(b_options={"window": 1000}) as (a, b):
        sender = await a.open_sender()
        await sender.send("a" * 1500)  # overdraws the 1000-byte credit: the next send waits
        with trio.move_on_after(1) as scope:
            await sender.send("never")
        assert scope.cancelled_caught
        receiver = await b.accept()
        assert await receiver.receive() == "a" * 1500
        await sender.send("after")  # credit came back when the reader took the first one
        await sender.aclose()
        assert [m async for m in receiver] == ["after"]


async def test_a_cancelled_receive_loses_no_message(autojump_clock: trio.testing.MockClock) -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        await sender.send("first")
        receiver = await b.accept()
        assert await receiver.receive() == "first"
        with trio.CancelScope() as scope:
            scope.cancel()
            await sender.send("second")  # cancelled before it started: nothing sent
        with trio.move_on_after(1):
            await receiver.receive()
            raise AssertionError("received a message that was never sent")
        await sender.send("third")
        assert await receiver.receive() == "third"


async def test_an_end_closed_before_its_reference_is_sent_arrives_closed() -> None:
    async with session_pair() as (a, b):
        feed, feed_ref = a.reverse_pipe()
        await feed.aclose()
        unwanted, unwanted_ref = a.pipe()
        await unwanted.aclose()
        control = await a.open_sender()
        await control.send({"feed": feed_ref, "unwanted": unwanted_ref})
        message = await (await b.accept()).receive()
        with pytest.raises(EndOfChannel):
            await message["feed"].receive()
        with pytest.raises(ChannelResetError):
            while True:
                await message["unwanted"].send("anyone?")


async def test_a_reference_can_be_sent_only_once() -> None:
    async with session_pair() as (a, _):
        _, ref = a.pipe()
        sender = await a.open_sender()
        await sender.send({"reply": ref})
        with pytest.raises(LocalProtocolError, match="sent once"):
            await sender.send({"reply": ref})


async def test_a_reference_sent_on_another_session_is_refused() -> None:
    async with session_pair() as (a, _), session_pair() as (c, _):
        _, ref = a.pipe()
        sender = await c.open_sender()
        with pytest.raises(LocalProtocolError, match="session that made it"):
            await sender.send({"reply": ref})


async def test_a_message_too_large_for_the_peer_is_refused_and_nothing_changes() -> None:
    async with session_pair(b_options={"max_frame": 4096}) as (a, b):
        sender = await a.open_sender()
        _, ref = a.pipe()
        with pytest.raises(LocalProtocolError, match="max_frame"):
            await sender.send({"blob": b"x" * 5000, "reply": ref})
        assert ref.channel is None  # the reference was not used up
        await sender.send({"small": True, "reply": ref})
        message = await (await b.accept()).receive()
        assert message["small"] is True
        assert isinstance(message["reply"], Sender)


async def test_unbound_ends_wait_and_then_see_the_session_end() -> None:
    async with session_pair() as (a, b), trio.open_nursery() as nursery:
        receiver, _ = a.pipe()
        sender, _ = a.reverse_pipe()
        errors: list[BaseException] = []

        async def expect_closed(op: Any) -> None:
            with pytest.raises(SessionClosed) as caught:
                await op()
            errors.append(caught.value)

        nursery.start_soon(expect_closed, receiver.receive)
        nursery.start_soon(expect_closed, lambda: sender.send("x"))
        await trio.testing.wait_all_tasks_blocked()
        await b.aclose()
    assert len(errors) == 2


@settings(max_examples=60, deadline=None)
@given(payloads=st.lists(msgpack_values, max_size=30), window=st.integers(1, 3000))
async def test_any_payloads_arrive_identical_and_in_order(payloads: list[Any], window: int) -> None:
    async with session_pair(window=window) as (a, b), trio.open_nursery() as nursery:

        async def write() -> None:
            async with await a.open_sender() as sender:
                for payload in payloads:
                    await sender.send(payload)

        nursery.start_soon(write)
        assert [m async for m in await b.accept()] == payloads


async def test_nowait_variants_move_what_is_possible_now_and_say_would_block_otherwise() -> None:
    async with session_pair(b_options={"window": 100}) as (a, b):
        sender = await a.open_sender()
        sender.send_nowait("x" * 150)  # credit 100 > 0: goes, overdrawing it
        with pytest.raises(trio.WouldBlock):
            sender.send_nowait("no credit left")
        idle, _ = b.pipe()
        with pytest.raises(trio.WouldBlock):
            idle.receive_nowait()  # nothing can have arrived
        receiver = await b.accept()
        await trio.testing.wait_all_tasks_blocked()
        assert receiver.receive_nowait() == "x" * 150
        await trio.testing.wait_all_tasks_blocked()  # the credit came back
        sender.send_nowait("again")
        await sender.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert receiver.receive_nowait() == "again"
        with pytest.raises(EndOfChannel):
            receiver.receive_nowait()
        with pytest.raises(trio.ClosedResourceError):
            sender.send_nowait("closed")


async def test_references_in_messages_dropped_unread_are_reset_so_the_peer_does_not_wait() -> None:
    async with session_pair() as (a, b):
        requests = await a.open_sender()
        replies, reply_ref = a.pipe()
        await requests.send({"nested": [{"reply": reply_ref}]})
        receiver = await b.accept()
        await trio.testing.wait_all_tasks_blocked()  # the request is queued, unread
        await receiver.aclose()
        with pytest.raises(ChannelResetError) as caught:
            await replies.receive()
        assert caught.value.code is ErrorCode.CANCELLED
        assert "never read" in caught.value.reason
