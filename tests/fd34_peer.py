"""A tiny plugin-side peer for the session tests, run as a real subprocess.

It reads FD 3 and writes FD 4 through :mod:`plugin_sdk.session`, accepts one
top-level request channel and serves each request concurrently. Every request
is a map with an ``op`` and a ``reply`` (a Sender the host put in it):

- ``echo``: reply with ``value``.
- ``count-stream``: read the byte stream ``stream`` to its end; reply with its
  length and sha256.
- ``download``: reply with ``{"stream": StreamRef}``, then write ``size`` bytes
  (the pattern ``bytes(i % 251)``) on that stream and close it.
- ``sum-feed``: read numbers from the Receiver ``feed`` until it closes; reply
  with their sum.

When the host closes the request channel, the peer ends its session and exits 0.

Run as ``fd34_peer.py echo`` it instead echoes every message of the channel it
accepts on a channel it opens, in order (a pipelined echo, for throughput checks).
"""

from __future__ import annotations

import hashlib
import sys
from typing import Any

import trio

from plugin_sdk.session import ByteStreamReader, Receiver, Role, Session, open_session


def pattern(size: int) -> bytes:
    """The bytes ``download`` sends: a pattern whose corruption a test would notice."""
    return bytes(i % 251 for i in range(size))


async def handle(session: Session, request: dict[str, Any]) -> None:
    """Serve one request (see the module docstring)."""
    async with request["reply"] as reply:
        op = request["op"]
        if op == "echo":
            await reply.send(request["value"])
        elif op == "count-stream":
            stream: ByteStreamReader = request["stream"]
            digest = hashlib.sha256()
            length = 0
            while chunk := await stream.receive_some():
                digest.update(chunk)
                length += len(chunk)
            await reply.send({"length": length, "sha256": digest.hexdigest()})
        elif op == "download":
            writer, ref = session.byte_stream()
            await reply.send({"stream": ref})
            async with writer:
                await writer.send_all(pattern(request["size"]))
        elif op == "sum-feed":
            feed: Receiver = request["feed"]
            total = 0
            async for number in feed:
                total += number
            await reply.send(total)
        else:
            await reply.send({"error": f"unknown op {op!r}"})


async def main(mode: str) -> None:
    """Serve one request channel (or echo one channel) over FD 3/4."""
    receive = trio.lowlevel.FdStream(3)
    send = trio.lowlevel.FdStream(4)
    async with open_session(receive, send, Role.RESPONDER) as session:
        requests = await session.accept()
        if mode == "echo":
            async with await session.open_sender() as echoes:
                async for message in requests:
                    await echoes.send(message)
            return
        async with trio.open_nursery() as nursery:
            async for request in requests:
                nursery.start_soon(handle, session, request)


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "serve")
    sys.exit(0)
