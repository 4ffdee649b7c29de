"""Session features added for the hot path: close() without a checkpoint, and
receive() that takes one scheduling round, not two, after waiting."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from session_helpers import session_pair

from plugin_sdk.session import ChannelResetError, ErrorCode, Receiver


async def test_close_wakes_a_waiting_receive_with_closed_resource_error_and_resets_the_peer() -> (
    None
):
    async with session_pair() as (a, b):
        receiver, ref = a.pipe()
        outbound = await a.open_sender()
        await outbound.send({"reply": ref})
        inbound = await b.accept()
        reply_sender = (await inbound.receive())["reply"]
        outcome: list[BaseException] = []

        async def wait_for_reply() -> None:
            try:
                await receiver.receive()
            except trio.ClosedResourceError as exc:
                outcome.append(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(wait_for_reply)
            await trio.testing.wait_all_tasks_blocked()
            receiver.close()  # synchronous: from another task, no await
        assert len(outcome) == 1
        with pytest.raises(ChannelResetError) as info:
            for _ in range(100):  # until the RESET has travelled back
                await reply_sender.send("late")
                await trio.sleep(0)
        assert info.value.code == ErrorCode.CANCELLED


async def test_close_is_idempotent_and_does_not_checkpoint() -> None:
    async with session_pair() as (a, _b):
        receiver, _ref = a.pipe()
        with trio.testing.assert_no_checkpoints():
            receiver.close()
            receiver.close()
        with pytest.raises(trio.ClosedResourceError):
            await receiver.receive()


async def test_a_receive_that_waited_returns_the_message_and_is_a_checkpoint() -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        receivers: list[Receiver] = []

        async def accept() -> None:
            receivers.append(await b.accept())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            await sender.send("first")
        (receiver,) = receivers
        assert await receiver.receive() == "first"  # already queued: no wait
        got: list[object] = []

        async def waiter() -> None:
            with trio.testing.assert_checkpoints():
                got.append(await receiver.receive())

        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter)
            await trio.testing.wait_all_tasks_blocked()
            await sender.send({"n": 2})
        assert got == [{"n": 2}]


async def test_buffered_counts_messages_received_and_not_yet_taken() -> None:
    async with session_pair() as (a, b):
        receiver, ref = a.pipe()
        outbound = await a.open_sender()
        await outbound.send({"reply": ref})
        inbound = await b.accept()
        reply_sender = (await inbound.receive())["reply"]
        assert receiver.buffered == 0
        await reply_sender.send("one")
        await reply_sender.send("two")
        with trio.fail_after(5):
            while receiver.buffered < 2:  # until both have travelled
                await trio.sleep(0)
        assert await receiver.receive() == "one"
        assert receiver.buffered == 1
        receiver.close()
        assert receiver.buffered == 0  # closing discards what was not taken
