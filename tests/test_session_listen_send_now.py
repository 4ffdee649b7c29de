"""Receiver.listen (messages handed over as decoded) and Sender.send_now (no gathering)."""

from __future__ import annotations

import os
from typing import Any

import trio
import trio.testing
from session_helpers import RawPeer, session_pair

from plugin_sdk.session import EndOfChannel, open_session
from plugin_sdk.wire import MessageReceived, Role


async def test_a_listener_gets_queued_messages_first_then_each_as_it_arrives() -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        receiver = await b.accept()
        await sender.send("early")
        await trio.testing.wait_all_tasks_blocked()
        got: list[Any] = []
        receiver.listen(got.append)
        assert got == ["early"]
        for n in range(200):  # far more than one window of credit: credit must come back
            await sender.send({"n": n, "pad": b"x" * 4096})
        await trio.testing.wait_all_tasks_blocked()
        assert [m["n"] for m in got[1:]] == list(range(200))
        assert receiver.buffered == 0


async def test_a_listening_receiver_still_reports_the_end_of_the_channel() -> None:
    async with session_pair() as (a, b):
        sender = await a.open_sender()
        receiver = await b.accept()
        got: list[Any] = []
        receiver.listen(got.append)
        await sender.send(1)
        await sender.aclose()
        try:
            await receiver.receive()
        except EndOfChannel:
            pass
        else:
            raise AssertionError("receive() should only report the end while listening")
        assert got == [1]


async def test_send_now_puts_a_frame_and_those_queued_before_it_on_the_pipe_at_once() -> None:
    to_peer_r, to_peer_w = os.pipe()
    from_peer_r, from_peer_w = os.pipe()
    os.set_blocking(to_peer_r, False)
    peer = RawPeer((trio.lowlevel.FdStream(to_peer_r), trio.lowlevel.FdStream(from_peer_w)))
    await peer.send_hello()

    def drain() -> list[object]:
        events: list[object] = []
        try:
            while True:
                events.extend(peer.conn.receive_data(os.read(to_peer_r, 65536)))
        except BlockingIOError:
            return events

    async with open_session(
        trio.lowlevel.FdStream(from_peer_r), trio.lowlevel.FdStream(to_peer_w), Role.INITIATOR
    ) as session:
        sender = await session.open_sender()
        await trio.testing.wait_all_tasks_blocked()
        drain()  # HELLO and OPEN
        sender.send_now("now")  # no checkpoint after it: the writer task has not run
        payloads = [e.payload for e in drain() if isinstance(e, MessageReceived)]
        assert payloads == ["now"]
        sender.send_nowait("later")
        assert drain() == []  # send_nowait leaves it to the writer task, later
        await trio.testing.wait_all_tasks_blocked()
        assert [e.payload for e in drain() if isinstance(e, MessageReceived)] == ["later"]
        # What is queued for the writer task goes first, in send_now's own write.
        sender.send_nowait("queued")
        sender.send_now("batch")
        payloads = [e.payload for e in drain() if isinstance(e, MessageReceived)]
        assert payloads == ["queued", "batch"]
        await trio.testing.wait_all_tasks_blocked()
        assert drain() == []  # the writer task found nothing left to write
