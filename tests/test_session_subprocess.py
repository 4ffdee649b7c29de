"""A real child process speaking the session protocol over FD 3/4 pipes."""

from __future__ import annotations

import hashlib

import trio
from fd34_peer import pattern
from session_helpers import fd34_peer_argv, spawn_fd34

from plugin_sdk.session import ByteStreamReader, Role, open_session


async def test_real_subprocess_answers_on_reply_channels_and_byte_streams() -> None:
    async with (
        spawn_fd34(fd34_peer_argv()) as (process, receive, send),
        open_session(receive, send, Role.INITIATOR) as session,
    ):
        requests = await session.open_sender()

        async def call(request: dict[str, object]) -> object:
            replies, reply_ref = session.pipe()
            await requests.send({**request, "reply": reply_ref})
            return await replies.receive()

        value = {"n": [1, 2.5, "x", b"\x00"], "nested": {"deep": [[[]]]}}
        replies, reply_ref = session.pipe()
        await requests.send({"op": "echo", "value": value, "reply": reply_ref})
        # One answer, then the peer's CLOSE of the reply channel ends the iteration.
        assert [answer async for answer in replies] == [value]

        # Many requests in flight at once, each with its own reply channel.
        answers: dict[int, object] = {}

        async def echo(i: int) -> None:
            answers[i] = await call({"op": "echo", "value": i})

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(echo, i)
        assert answers == {i: i for i in range(50)}

        # A byte stream we write (several frames' worth) and the peer reads.
        writer, stream_ref = session.byte_stream()
        data = bytes(range(256)) * 2000
        replies, reply_ref = session.pipe()
        await requests.send({"op": "count-stream", "stream": stream_ref, "reply": reply_ref})
        async with writer:
            await writer.send_all(data)
        assert await replies.receive() == {
            "length": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }

        # A byte stream the peer writes and we read.
        download = await call({"op": "download", "size": 300_000})
        assert isinstance(download, dict)
        reader = download["stream"]
        assert isinstance(reader, ByteStreamReader)
        received = bytearray()
        while chunk := await reader.receive_some(70_000):
            received += chunk
        assert bytes(received) == pattern(300_000)

        # A Receiver handed to the peer: we write numbers, it sums them.
        feed, feed_ref = session.reverse_pipe()
        replies, reply_ref = session.pipe()
        await requests.send({"op": "sum-feed", "feed": feed_ref, "reply": reply_ref})
        async with feed:
            for number in range(1000):
                await feed.send(number)
        assert await replies.receive() == sum(range(1000))

        await requests.aclose()  # the peer then ends its session and exits
        await session.wait_closed()
    assert await process.wait() == 0
